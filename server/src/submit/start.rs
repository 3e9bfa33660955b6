//! Starting a checked submission: its nodes are admitted (those another workflow uses are discarded
//! unless `force`), the workflow is recorded, then one engine run per cluster starts on that cluster's
//! executor, its request built from that cluster's settings.

use super::{EngineRequest, Fetched, PartCluster, Submission, err};
use crate::nodeset;
use crate::observe::Observer;
use crate::store::WorkflowRow;
use crate::workflow::{Part, Submitted, Workflow};
use crate::{App, Cluster};
use kadeploy::engine::{self, Context};
use kadeploy::error::{ApiError, RequestError};
use kadeploy::output::{LogLine, Output, Sink};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

/// Admits the nodes of `submission` and starts it; `files` are its fetched files.
///
/// Submissions run concurrently: the "in use" check and the rows marking the nodes busy happen under
/// [`App::admit`], so two requests cannot both take the same nodes.
pub fn start(
    app: &Arc<App>,
    submission: &Submission,
    files: &Fetched,
) -> Result<Arc<Workflow>, RequestError> {
    let _admit = app.admit.lock().unwrap_or_else(|e| e.into_inner());
    let names = free_nodes(app, submission)?;
    let wf = Arc::new(Workflow::new(
        submitted(submission),
        parts(app, submission, &names),
    ));
    let row = WorkflowRow {
        wid: wf.wid.clone(),
        kind: wf.kind.base().into(),
        user: wf.user.clone(),
        state: "running".into(),
        nodes: names,
    };
    let env_id = submission.environment().map_or(-1, |e| e.db_id());
    app.store.workflow_begin(&row, wf.states.running, env_id)?;
    app.workflows
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(wf.wid.clone(), wf.clone());
    let observer = Observer::new(&app.logs, &wf);
    for (index, part) in wf.parts.iter().enumerate() {
        let Some(cluster) = app.clusters.get(part.cluster) else {
            continue;
        };
        let req = submission.engine_request(files, PartCluster::from(cluster), part.nodes.clone());
        spawn(app, cluster, &wf, &observer, index, req);
    }
    Ok(wf)
}

/// The nodes of the submission, without those another workflow holds (error 1 when none is left),
/// unless `force`.
fn free_nodes(app: &App, submission: &Submission) -> Result<Vec<String>, RequestError> {
    let common = submission.common();
    let mut names = common.nodes.clone();
    if !common.force {
        let since = crate::store::now_epoch() - app.settings.purge_timer;
        let busy = app.store.nodes_in_use(&names, since)?;
        names.retain(|n| busy.binary_search(n).is_err());
        if names.is_empty() {
            return Err(err(
                ApiError::NothingModified,
                "All the nodes have been discarded",
            ));
        }
    }
    Ok(names)
}

/// The workflow's description.
fn submitted(submission: &Submission) -> Submitted {
    let common = submission.common();
    let env = submission.environment();
    Submitted {
        kind: submission.kind(),
        user: common.requester.user.clone(),
        environment: env.map(|e| e.view()),
        env_label: env.map(|e| e.label()).unwrap_or_default(),
        debug: common.debug,
        verbose: common.verbose,
        states: submission.states(),
        step1: submission.step1(),
    }
}

/// One part per cluster of `names`, in cluster order.
fn parts(app: &App, submission: &Submission, names: &[String]) -> Vec<Part> {
    nodeset::by_cluster(&app.nodes, names)
        .into_iter()
        .filter_map(|(index, nodes)| {
            let cluster = app.clusters.get(index)?;
            Some(Part {
                cluster: index,
                cluster_name: cluster.config.name.clone(),
                nodes: nodes.iter().map(|(id, _)| *id).collect(),
                names: nodes.into_iter().map(|(_, name)| name).collect(),
                ok_state: submission.ok_state(&cluster.config),
                ctx: OnceLock::new(),
                report: Mutex::new(None),
            })
        })
        .collect()
}

/// Runs part `index` of `wf` on the executor of `cluster`.
fn spawn(
    app: &App,
    cluster: &Cluster,
    wf: &Arc<Workflow>,
    observer: &Arc<Observer>,
    index: usize,
    req: EngineRequest,
) {
    let (wf, store, server) = (wf.clone(), app.store.clone(), app.server.clone());
    let observer = observer.clone();
    let (config, drivers, windows) = (
        cluster.config.clone(),
        cluster.backend.drivers.clone(),
        cluster.windows.clone(),
    );
    let cluster_index = wf.parts.get(index).map_or(0, |p| p.cluster);
    let prefix = (wf.parts.len() > 1)
        .then(|| (config.prefix.clone()).unwrap_or_else(|| format!("c{cluster_index}")));
    let job = Box::new(move || -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(async move {
            let sink = log_sink(&wf, &observer, prefix);
            let mut ctx = Context::new(
                drivers,
                server,
                config,
                windows,
                Output::with_sink(sink, false),
            );
            ctx.cancel = wf.cancel.child_token();
            let ctx = Arc::new(ctx);
            if let Some(part) = wf.parts.get(index) {
                let _ = part.ctx.set(ctx.clone());
            }
            let result = match req {
                EngineRequest::Deploy(d) => engine::deploy(&ctx, &d).await,
                EngineRequest::Reboot(r) => engine::reboot(&ctx, &r).await,
                EngineRequest::Power(p) => Ok(engine::power(&ctx, &p).await),
            };
            match result {
                Ok(report) => {
                    observer.part_ending(&wf, index, Some(&report));
                    wf.part_done(index, Some(report), &store)
                }
                Err(e) => {
                    wf.fail(e);
                    observer.part_ending(&wf, index, None);
                    wf.part_done(index, None, &store);
                }
            }
        })
    });
    if !cluster.executor.spawn(job) {
        tracing::error!("the executor of cluster {} is gone", cluster.config.name);
    }
}

/// Where the engine's output lines of a part go: the debug file, and the workflow's logs up to its
/// verbose level (shown with the cluster's `prefix` when the workflow spans several clusters).
fn log_sink(wf: &Arc<Workflow>, observer: &Arc<Observer>, prefix: Option<String>) -> Sink {
    let weak = Arc::downgrade(wf);
    let verbose = wf.verbose;
    let observer = observer.clone();
    Box::new(move |l: &LogLine| {
        observer.line(prefix.as_deref(), l);
        if l.level <= verbose
            && let Some(w) = weak.upgrade()
        {
            w.push_log(l.time, prefix.as_deref(), &l.text);
        }
    })
}

//! Starting a checked submission: its nodes are admitted (those another workflow uses are discarded
//! unless `force`, as Kadeploy's `Workflow#start!`: the workflow says so in its output and shows them
//! `discarded` in its `state`; when every node of a cluster is discarded, the workflow fails with error
//! 14), the workflow is recorded, then one engine run per cluster starts on that cluster's executor, its
//! request built from that cluster's settings.

use super::{EngineRequest, Fetched, PartCluster, Submission, err};
use crate::nodeset;
use crate::observe::Observer;
use crate::store::WorkflowRow;
use crate::workflow::{Kind, Part, Submitted, Workflow};
use crate::{App, Cluster};
use kadeploy::config::wire::Hooks;
use kadeploy::engine::debug::Trace;
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
    let (names, busy) = free_nodes(app, submission)?;
    let all_discarded = all_discarded_cluster(app, &submission.common().nodes, &names);
    let parts = if all_discarded {
        Vec::new()
    } else {
        parts(app, submission, &names)
    };
    let wf = Arc::new(Workflow::new(submitted(app, submission), parts, busy));
    if !wf.discarded.is_empty() {
        discard_notice(app, &wf);
    }
    if all_discarded {
        wf.fail(err(
            ApiError::NothingModified,
            "All the nodes have been discarded ...",
        ));
        app.workflows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(wf.wid.clone(), wf.clone());
        wf.run_hook();
        return Ok(wf);
    }
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

/// The nodes of the submission that no other workflow holds, and those it holds (none with `force`).
fn free_nodes(
    app: &App,
    submission: &Submission,
) -> Result<(Vec<String>, Vec<String>), RequestError> {
    let common = submission.common();
    let mut names = common.nodes.clone();
    if common.force {
        return Ok((names, Vec::new()));
    }
    let since = crate::store::now_epoch() - app.settings.purge_timer;
    let busy = app.store.nodes_in_use(&names, since)?;
    names.retain(|n| busy.binary_search(n).is_err());
    Ok((names, busy))
}

/// Some cluster of the `requested` nodes has none of them left in `free` (Kadeploy's error 14 "All the
/// nodes have been discarded", raised by that cluster's workflow).
fn all_discarded_cluster(app: &App, requested: &[String], free: &[String]) -> bool {
    let wanted = nodeset::by_cluster(&app.nodes, requested);
    let kept = nodeset::by_cluster(&app.nodes, free);
    wanted.keys().any(|c| !kept.contains_key(c))
}

/// Kadeploy's level-0 line naming the discarded nodes, per cluster (with the cluster's prefix when the
/// workflow spans several clusters), in the workflow's output and the debug file.
fn discard_notice(app: &App, wf: &Workflow) {
    let opname = match wf.kind {
        Kind::Deploy => "deployment",
        Kind::Reboot => "reboot",
        Kind::Power => "power operation",
    };
    let requested = nodeset::by_cluster(&app.nodes, &wf.discarded);
    let every: Vec<String> = (wf.node_names().into_iter())
        .chain(wf.discarded.iter().cloned())
        .collect();
    let clusters = nodeset::by_cluster(&app.nodes, &every).len();
    for (index, nodes) in requested {
        let Some(cluster) = app.clusters.get(index) else {
            continue;
        };
        let names: Vec<&str> = nodes.iter().map(|(_, n)| n.as_str()).collect();
        let text = format!(
            "The nodes {} are already involved in {opname}, let's discard them",
            kadeploy::nodelist::fold(&names)
        );
        let prefix = (clusters > 1).then(|| cluster_prefix(cluster, index));
        let line = LogLine {
            time: 0.0,
            level: 0,
            text,
        };
        app.logs.line(&wf.wid, &wf.user, prefix.as_deref(), &line);
        wf.push_log(
            0.0,
            Some(&cluster.config.name),
            prefix.as_deref(),
            &line.text,
        );
    }
}

/// The configured end-of-operation hook of `kind` (`None` when `''`), `WORKFLOW_ID` not yet replaced.
fn hook_template(hooks: &Hooks, kind: Kind) -> Option<String> {
    let cmd = match kind {
        Kind::Deploy => &hooks.end_of_deployment,
        Kind::Reboot => &hooks.end_of_reboot,
        Kind::Power => &hooks.end_of_power,
    };
    (!cmd.trim().is_empty()).then(|| cmd.clone())
}

/// The prefix of a cluster's lines in a workflow spanning several clusters.
fn cluster_prefix(cluster: &Cluster, index: usize) -> String {
    (cluster.config.prefix.clone()).unwrap_or_else(|| format!("c{index}"))
}

/// The workflow's description.
fn submitted(app: &App, submission: &Submission) -> Submitted {
    let common = submission.common();
    let env = submission.environment();
    Submitted {
        kind: submission.kind(),
        user: common.requester.user.clone(),
        environment: env.map(|e| e.view()),
        env_label: env.map(|e| e.label()).unwrap_or_default(),
        env_md5: env.map(|e| e.md5.clone()).unwrap_or_default(),
        debug: common.debug,
        verbose: common.verbose,
        states: submission.states(),
        step1: submission.step1(),
        hook: (common.hook)
            .then(|| hook_template(&app.settings.hooks, submission.kind()))
            .flatten(),
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
    let planner = cluster.backend.planner.clone();
    let cluster_index = wf.parts.get(index).map_or(0, |p| p.cluster);
    let prefix = (wf.parts.len() > 1).then(|| cluster_prefix(cluster, cluster_index));
    let cluster_name = config.name.clone();
    let job = Box::new(move || -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(async move {
            let sink = log_sink(&wf, &observer, cluster_name, prefix);
            let mut ctx = Context::new(
                drivers,
                server,
                config,
                windows,
                Output::with_sink(sink, false),
            );
            ctx.cancel = wf.cancel.child_token();
            ctx.planner = planner;
            if wf.debug {
                let weak = Arc::downgrade(&wf);
                ctx.debug = Some(Arc::new(move |t: &Trace| {
                    if let Some(w) = weak.upgrade() {
                        w.push_debug(t);
                    }
                }));
            }
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

/// Where the engine's output lines of the part of `cluster` go: the debug file, and the workflow's logs
/// up to its verbose level (shown with the cluster's `prefix` when the workflow spans several clusters).
fn log_sink(
    wf: &Arc<Workflow>,
    observer: &Arc<Observer>,
    cluster: String,
    prefix: Option<String>,
) -> Sink {
    let weak = Arc::downgrade(wf);
    let verbose = wf.verbose;
    let observer = observer.clone();
    Box::new(move |l: &LogLine| {
        observer.line(prefix.as_deref(), l);
        if l.level <= verbose
            && let Some(w) = weak.upgrade()
        {
            w.push_log(l.time, Some(&cluster), prefix.as_deref(), &l.text);
        }
    })
}

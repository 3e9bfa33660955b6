//! Running workflows as the REST API shows them (spec §3.7): the workflow object, incremental logs, per-node
//! `state`, nested `status`, the error, and the database writes at the end.

mod outputs;

use super::reply::{Key, Ruby};
use crate::store::{LogRow, Store};
use hal::NodeId;
use kadeploy::engine::{Context, NodeStatus, Report};
use kadeploy::error::RequestError;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio_util::sync::CancellationToken;

/// The three workflow operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `POST /deployment`.
    Deploy,
    /// `POST /reboot`.
    Reboot,
    /// `PUT /power`, `GET /power?nodes=`.
    Power,
}

impl Kind {
    /// Route base (`deployment`, `reboot`, `power`).
    pub fn base(self) -> &'static str {
        match self {
            Kind::Deploy => "deployment",
            Kind::Reboot => "reboot",
            Kind::Power => "power",
        }
    }

    /// Workflow id prefix.
    pub fn prefix(self) -> char {
        match self {
            Kind::Deploy => 'D',
            Kind::Reboot => 'R',
            Kind::Power => 'P',
        }
    }

    /// The kind of a route base.
    pub fn from_base(base: &str) -> Option<Kind> {
        [Kind::Deploy, Kind::Reboot, Kind::Power]
            .into_iter()
            .find(|k| k.base() == base)
    }
}

/// The engine run of one cluster of a workflow.
pub struct Part {
    /// Cluster index.
    pub cluster: usize,
    /// Cluster name.
    pub cluster_name: String,
    /// Nodes, as indices of the cluster.
    pub nodes: Vec<NodeId>,
    /// Their names, same order.
    pub names: Vec<String>,
    /// Database state of its nodes on success (`deployed`, `prod_env`...): it may depend on the cluster.
    pub ok_state: String,
    /// The engine context, once started.
    pub ctx: OnceLock<Arc<Context>>,
    /// The report, once ended.
    pub report: Mutex<Option<Report>>,
}

/// Database states of a workflow's nodes while running and on failure (the state on success is each
/// part's [`Part::ok_state`]).
#[derive(Clone, Debug)]
pub struct DbStates {
    /// While running (`deploying`).
    pub running: &'static str,
    /// On failure (`deploy_failed`).
    pub ko: &'static str,
}

/// What a workflow is, as its submission says.
#[derive(Clone, Debug)]
pub struct Submitted {
    /// Operation.
    pub kind: Kind,
    /// Owner.
    pub user: String,
    /// `environment` of the workflow object, when any.
    pub environment: Option<Value>,
    /// Environment label (`name:version`) and anonymity, for the log table.
    pub env_label: (String, bool),
    /// The environment's image checksum, for the log table.
    pub env_md5: String,
    /// `debug` was requested.
    pub debug: bool,
    /// Verbose level of stored log lines.
    pub verbose: u8,
    /// Database states.
    pub states: DbStates,
    /// Step-1 name of reboot and power rows (`Simple`, `On`...).
    pub step1: Option<String>,
    /// The end-of-operation hook to run at the end (`WORKFLOW_ID` not yet replaced), when asked for.
    pub hook: Option<String>,
}

#[derive(Default)]
struct Inner {
    /// Unread log lines by cluster name (`None`: lines of the whole workflow).
    logs: BTreeMap<Option<String>, String>,
    /// Unread debug lines by node (with `debug`).
    debugs: BTreeMap<String, String>,
    done: bool,
    error: Option<RequestError>,
    end: Option<f64>,
    remaining: usize,
    /// When the workflow ended or failed (what autoclean measures).
    finished_at: Option<std::time::Instant>,
}

/// One workflow.
pub struct Workflow {
    /// `D-<uuid>`...
    pub wid: String,
    /// Operation.
    pub kind: Kind,
    /// Owner.
    pub user: String,
    /// Epoch seconds at submission.
    pub start_time: i64,
    started: std::time::Instant,
    /// `environment` of the workflow object, when any.
    pub environment: Option<Value>,
    /// Environment label (`name:version`) and anonymity, for the log table.
    pub env_label: (String, bool),
    /// The environment's image checksum, for the log table.
    pub env_md5: String,
    /// `debug` was requested.
    pub debug: bool,
    /// Verbose level of stored log lines.
    pub verbose: u8,
    /// Cancels every part.
    pub cancel: CancellationToken,
    /// Per-cluster runs.
    pub parts: Vec<Part>,
    /// Database states.
    pub states: DbStates,
    /// Step-1 name of reboot and power rows (`Simple`, `On`...).
    pub step1: Option<String>,
    /// Requested nodes left out because another workflow uses them (`/state` shows them `discarded`).
    pub discarded: Vec<String>,
    hook: Option<String>,
    hook_started: AtomicBool,
    inner: Mutex<Inner>,
}

impl Workflow {
    /// A new workflow (not started) of `parts`; `discarded` are the requested nodes another workflow
    /// uses.
    pub fn new(submitted: Submitted, parts: Vec<Part>, discarded: Vec<String>) -> Workflow {
        let remaining = parts.len();
        Workflow {
            wid: format!("{}-{}", submitted.kind.prefix(), uuid::Uuid::new_v4()),
            kind: submitted.kind,
            user: submitted.user,
            start_time: crate::store::now_epoch(),
            started: std::time::Instant::now(),
            environment: submitted.environment,
            env_label: submitted.env_label,
            env_md5: submitted.env_md5,
            debug: submitted.debug,
            verbose: submitted.verbose,
            cancel: CancellationToken::new(),
            parts,
            states: submitted.states,
            step1: submitted.step1,
            discarded,
            hook: submitted.hook,
            hook_started: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                remaining,
                ..Inner::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every node name, sorted.
    pub fn node_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.parts.iter().flat_map(|p| p.names.clone()).collect();
        v.sort();
        v
    }

    /// Done (or in error).
    pub fn done(&self) -> bool {
        self.lock().done
    }

    /// The workflow-level error, if any.
    pub fn error(&self) -> Option<RequestError> {
        self.lock().error.clone()
    }

    /// Marks a workflow-level error (refused plan, ...).
    pub fn fail(&self, e: RequestError) {
        let mut inner = self.lock();
        if inner.error.is_none() {
            inner.error = Some(e);
        }
        inner
            .finished_at
            .get_or_insert_with(std::time::Instant::now);
    }

    /// How long ago the workflow ended or failed; `None` while it runs.
    pub fn finished_for(&self) -> Option<std::time::Duration> {
        self.lock().finished_at.map(|t| t.elapsed())
    }

    /// Records that part `index` ended with `report` (or an error); after the last part, writes the node
    /// states and log rows in one transaction, then marks the workflow done.
    pub fn part_done(&self, index: usize, report: Option<Report>, store: &Store) {
        if let Some(part) = self.parts.get(index) {
            *part.report.lock().unwrap_or_else(|e| e.into_inner()) = report;
        }
        {
            let mut inner = self.lock();
            inner.remaining = inner.remaining.saturating_sub(1);
            if inner.remaining > 0 {
                return;
            }
        }
        let (state, nodes, rows) = self.final_rows();
        if let Err(e) = store.workflow_end(&self.wid, state, &nodes, &rows) {
            tracing::error!(wid = %self.wid, "recording the end of the workflow failed: {e}");
            self.fail(e.into());
        }
        {
            let mut inner = self.lock();
            inner.done = true;
            inner.end = Some(self.started.elapsed().as_secs_f64());
            inner
                .finished_at
                .get_or_insert_with(std::time::Instant::now);
        }
        self.run_hook();
    }

    /// The workflow's final state, each node's final state, and the `log` rows (what [`Workflow::part_done`]
    /// records).
    pub fn final_rows(&self) -> (&'static str, Vec<(String, String)>, Vec<LogRow>) {
        let error = self.lock().error.is_some();
        let aborted = self.cancel.is_cancelled();
        let mut nodes = Vec::new();
        let mut rows = Vec::new();
        for part in &self.parts {
            let report = part
                .report
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            for (i, name) in part.names.iter().enumerate() {
                let mut row = LogRow::new(&self.wid, name, &self.user, self.start_time);
                row.env = self.env_label.0.clone();
                row.anonymous_env = self.env_label.1;
                row.md5 = self.env_md5.clone();
                let status = report
                    .as_ref()
                    .and_then(|r| r.nodes.get(i))
                    .map(|(_, s)| s.clone());
                let state = match (&status, error || aborted) {
                    (Some(NodeStatus::Ko(f)), _) => {
                        row.error = format!("{}-{}: {}", f.macro_step, f.micro_step, f.error);
                        if aborted {
                            "aborted".to_string()
                        } else {
                            self.states.ko.to_string()
                        }
                    }
                    (Some(_), false) => {
                        row.success = true;
                        part.ok_state.clone()
                    }
                    _ => {
                        row.error = "aborted".into();
                        "aborted".to_string()
                    }
                };
                if let Some(log) = report.as_ref().and_then(|r| r.logs.get(i)) {
                    for s in 0..3 {
                        row.steps[s] = log.steps[s].as_deref().unwrap_or("").to_string();
                        row.retries[s] = i64::from(log.retries[s]);
                        row.durations[s] = log.durations[s].round() as i64;
                    }
                    if let Some(ctx) = part.ctx.get() {
                        row.timeouts = timeouts(ctx, &row.steps);
                    }
                }
                if let Some(step1) = &self.step1 {
                    row.steps = [step1.clone(), String::new(), String::new()];
                }
                nodes.push((name.clone(), state));
                rows.push(row);
            }
        }
        let state = if error {
            "error"
        } else if aborted {
            "aborted"
        } else {
            "done"
        };
        (state, nodes, rows)
    }

    /// The workflow object (`work_get`): full for the owner or an almighty user, reduced otherwise.
    /// Its keys are Ruby Symbols, in Kadeploy's order.
    pub fn view(&self, full: bool) -> Ruby {
        let inner = self.lock();
        let error = inner.error.is_some();
        let done = inner.done || error;
        let mut m = Ruby::symbols([
            ("wid", Ruby::from(&self.wid)),
            ("user", Ruby::from(&self.user)),
            ("done", done.into()),
            ("error", error.into()),
            ("start_time", self.start_time.into()),
        ]);
        if !full {
            m.set(sym("nodes"), self.node_names());
            return m;
        }
        if let Some(env) = &self.environment {
            let field = |k: &str| Ruby::from(&env[k]);
            m.set(
                sym("environment"),
                Ruby::symbols([
                    ("id", field("id")),
                    ("user", field("user")),
                    ("name", field("name")),
                    ("version", field("version")),
                ]),
            );
        }
        if !error {
            m.set(sym("logs"), inner.logs.values().any(|l| !l.is_empty()));
            if self.debug {
                m.set(sym("debugs"), inner.debugs.values().any(|d| !d.is_empty()));
            }
            m.set(sym("nodes"), self.nodes_view(inner.done));
        }
        let time = inner
            .end
            .unwrap_or_else(|| self.started.elapsed().as_secs_f64());
        m.set(sym("time"), (time * 100.0).round() / 100.0);
        m
    }

    fn nodes_view(&self, done: bool) -> Ruby {
        let (mut ok, mut ko, mut processing) = (Vec::new(), Vec::new(), Vec::new());
        for part in &self.parts {
            let report = part.report.lock().unwrap_or_else(|e| e.into_inner());
            for (i, name) in part.names.iter().enumerate() {
                match report.as_ref().and_then(|r| r.nodes.get(i)) {
                    Some((_, NodeStatus::Ko(_))) => ko.push(name.clone()),
                    Some(_) => ok.push(name.clone()),
                    None if done => ko.push(name.clone()),
                    None => processing.push(name.clone()),
                }
            }
        }
        let mut v = Ruby::symbols([("ok", Ruby::from(ok)), ("ko", ko.into())]);
        if !done {
            v.set(sym("processing"), processing);
        }
        v
    }

    /// `/state` (`NodeState#states`): hostname (a String) → `{:macro, :micro, :state, :error?, :out?}`.
    pub fn state(&self) -> Ruby {
        let mut out = Ruby::hash();
        for part in &self.parts {
            let report = part.report.lock().unwrap_or_else(|e| e.into_inner());
            for (i, name) in part.names.iter().enumerate() {
                let node = |m: Option<&str>, u: Option<&str>, s: &str| {
                    Ruby::symbols([
                        ("macro", Ruby::from(m)),
                        ("micro", Ruby::from(u)),
                        ("state", Ruby::from(s)),
                    ])
                };
                let v = match report
                    .as_ref()
                    .and_then(|r| r.nodes.get(i).map(|n| (n, r.logs.get(i))))
                {
                    Some(((_, NodeStatus::Ok), log)) => {
                        let mut v = node(None, None, "ok");
                        if let Some(out) = log.and_then(|l| l.out.clone()) {
                            v.set(sym("out"), out);
                        }
                        v
                    }
                    Some(((_, NodeStatus::Brk { at }), _)) => node(Some(at), None, "brk"),
                    Some(((_, NodeStatus::Ko(f)), _)) => {
                        let mut v = node(Some(&f.macro_step), Some(&f.micro_step), "ko");
                        let error = format!("{}-{}: {}", f.macro_step, f.micro_step, f.error);
                        v.set(sym("error"), error);
                        v
                    }
                    None => {
                        let pos = part
                            .ctx
                            .get()
                            .map(|c| c.position(part.nodes[i]))
                            .unwrap_or_default();
                        node(pos.macro_step.as_deref(), pos.micro_step.as_deref(), "ok")
                    }
                };
                out.set(Key::Str(name.clone()), v);
            }
        }
        // `NodeState#set(node, '', '', 'discarded')`: empty macro and micro are not set.
        for name in &self.discarded {
            let v = Ruby::symbols([("state", Ruby::from("discarded"))]);
            out.set(Key::Str(name.clone()), v);
        }
        out
    }

    /// `/status`: cluster (a String) → macro-step → micro-step → `{:nodes => {:OK, :KO, :**}, :time}`
    /// (Symbols below the cluster, in the order the steps are met); `{}` once done.
    pub fn status(&self) -> Ruby {
        let mut out = Ruby::hash();
        if self.done() {
            return out;
        }
        let time = self.started.elapsed().as_secs_f64().round() as i64;
        for part in &self.parts {
            let Some(ctx) = part.ctx.get() else { continue };
            if part
                .report
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some()
            {
                continue;
            }
            let mut cluster = Ruby::hash();
            for (i, name) in part.names.iter().enumerate() {
                let pos = ctx.position(part.nodes[i]);
                let macro_step = pos.macro_step.as_deref().unwrap_or("Starting");
                let micro = pos.micro_step.as_deref().unwrap_or("none");
                let leaf = cluster
                    .entry(sym(macro_step), Ruby::hash)
                    .and_then(|m| m.entry(sym(micro), || status_leaf(time)))
                    .and_then(|l| l.entry(sym("nodes"), Ruby::hash))
                    .and_then(|n| n.entry(sym("**"), || Ruby::Array(Vec::new())));
                if let Some(Ruby::Array(list)) = leaf {
                    list.push(Ruby::from(name));
                }
            }
            out.set(Key::Str(part.cluster_name.clone()), cluster);
        }
        out
    }
}

fn sym(name: &str) -> Key {
    Key::Sym(name.to_string())
}

/// A running micro-step's status (`Microstep#status`) with no node placed yet.
fn status_leaf(time: i64) -> Ruby {
    let none = || Ruby::Array(Vec::new());
    Ruby::symbols([
        (
            "nodes",
            Ruby::symbols([("OK", none()), ("KO", none()), ("**", none())]),
        ),
        ("time", time.into()),
    ])
}

/// Timeouts of the automata instances named in `steps`.
fn timeouts(ctx: &Context, steps: &[String; 3]) -> [i64; 3] {
    let a = &ctx.cluster.automata;
    let slots = [
        ("SetDeploymentEnv", &a.set_deployment_env),
        ("BroadcastEnv", &a.broadcast_env),
        ("BootNewEnv", &a.boot_new_env),
    ];
    let mut out = [0; 3];
    for (i, (prefix, instances)) in slots.iter().enumerate() {
        out[i] = instances
            .iter()
            .find(|m| format!("{prefix}{}", m.kind) == steps[i])
            .map(|m| m.timeout.round() as i64)
            .unwrap_or(0);
    }
    out
}

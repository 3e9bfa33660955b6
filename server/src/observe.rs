//! What the server records about each workflow besides the database: its output lines in the debug file
//! while it runs, then, once, at its end: its records in the log file and its metrics (final state, node
//! outcomes, durations). The end is recorded before the workflow shows as done, so a client that sees it
//! done finds its records and metrics there.

use super::logfiles::LogFiles;
use super::workflow::{Kind, Workflow};
use kadeploy::engine::{NodeStatus, Report};
use kadeploy::metrics;
use kadeploy::output::LogLine;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The observer of one workflow, shared by its parts.
pub struct Observer {
    wid: String,
    user: String,
    logs: Arc<LogFiles>,
    remaining: AtomicUsize,
}

impl Observer {
    /// The observer of `wf`, writing to `logs`.
    pub fn new(logs: &Arc<LogFiles>, wf: &Workflow) -> Arc<Observer> {
        Arc::new(Observer {
            wid: wf.wid.clone(),
            user: wf.user.clone(),
            logs: logs.clone(),
            remaining: AtomicUsize::new(wf.parts.len()),
        })
    }

    /// An output line of the part shown with `prefix`.
    pub fn line(&self, prefix: Option<&str>, line: &LogLine) {
        self.logs.line(&self.wid, &self.user, prefix, line);
    }

    /// Part `index` of `wf` ended with `report` (`None`: in error, after [`Workflow::fail`]), just before
    /// [`Workflow::part_done`]: keeps the report in the part, and after the last part records the end.
    pub fn part_ending(&self, wf: &Workflow, index: usize, report: Option<&Report>) {
        if let Some(part) = wf.parts.get(index) {
            *part.report.lock().unwrap_or_else(|e| e.into_inner()) = report.cloned();
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.ended(wf);
        }
    }

    fn ended(&self, wf: &Workflow) {
        let (state, _, rows) = wf.final_rows();
        self.logs.records(&rows);
        let kind = kind_name(wf.kind);
        metrics::WORKFLOWS.inc(&[kind, state]);
        let mut seconds: Option<f64> = None;
        for part in &wf.parts {
            let report = part.report.lock().unwrap_or_else(|e| e.into_inner());
            for i in 0..part.names.len() {
                match report.as_ref().and_then(|r| r.nodes.get(i)).map(|n| &n.1) {
                    Some(NodeStatus::Ok) => metrics::NODES.inc(&[kind, "ok", "", "", ""]),
                    Some(NodeStatus::Brk { at }) => {
                        metrics::NODES.inc(&[kind, "brk", at.as_str(), "", ""])
                    }
                    Some(NodeStatus::Ko(f)) => metrics::NODES.inc(&[
                        kind,
                        "ko",
                        f.macro_step.as_ref(),
                        f.micro_step.as_ref(),
                        f.kind.as_str(),
                    ]),
                    None => metrics::NODES.inc(&[kind, "aborted", "", "", ""]),
                }
            }
            if let Some(r) = report.as_ref() {
                seconds = Some(seconds.unwrap_or(0.0).max(r.seconds));
                for (step, s) in &r.macro_durations {
                    metrics::STEP_DURATION.observe(&[kind, step.as_str()], *s);
                }
            }
        }
        if let Some(s) = seconds {
            metrics::WORKFLOW_DURATION.observe(&[kind], s);
        }
    }
}

/// The metric label of a workflow kind.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Deploy => "deploy",
        Kind::Reboot => "reboot",
        Kind::Power => "power",
    }
}

//! What a workflow tells about each node: where it failed and why, and the final OK/KO/BRK lists.

use hal::{ErrorKind, NodeId};
use serde::Serialize;
use std::sync::Arc;

/// Where and why a node failed: Kadeploy's `macro`, `micro` and `error` of `/state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Macro-step instance, e.g. `SetDeploymentEnvUntrusted`.
    #[serde(rename = "macro")]
    pub macro_step: Arc<str>,
    /// Micro-step, e.g. `wait_reboot`.
    #[serde(rename = "micro")]
    pub micro_step: Arc<str>,
    /// Kadeploy's error text, e.g. `Unreachable after the reboot`.
    pub error: String,
    /// The kind of the failure.
    #[serde(skip)]
    pub kind: ErrorKind,
}

/// Final state of a node in a workflow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum NodeStatus {
    /// Done successfully.
    Ok,
    /// Failed.
    Ko(Failure),
    /// Stopped at a breakpoint (reported in the OK list, as Kadeploy does).
    Brk {
        /// Where the node stopped.
        at: String,
    },
}

/// Per-node record kept for statistics (`kastat3` fields).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NodeLog {
    /// Retries and fallbacks per macro-step slot (`retry_step1..3`).
    pub retries: [u32; 3],
    /// Seconds spent in each macro-step slot (`step1..3_duration`).
    pub durations: [f64; 3],
    /// Implementation last used in each slot (`step1..3`).
    pub steps: [Option<Arc<str>>; 3],
    /// Output of a status operation (`power(:status)`).
    pub out: Option<String>,
}

/// The result of a workflow.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Final status per node, indexed like the workflow's node list.
    pub nodes: Vec<(NodeId, NodeStatus)>,
    /// Per-node statistics, same order.
    pub logs: Vec<NodeLog>,
    /// Virtual (or wall) seconds from start to end.
    pub seconds: f64,
    /// Seconds each macro-step instance ran, summed over its runs, in first-run order.
    pub macro_durations: Vec<(String, f64)>,
    /// The workflow was cancelled.
    pub aborted: bool,
}

impl Report {
    /// Nodes that ended OK or at a breakpoint, in order.
    pub fn ok(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, s)| !matches!(s, NodeStatus::Ko(_)))
            .map(|(n, _)| *n)
            .collect()
    }

    /// Nodes that ended KO with their failures, in order.
    pub fn ko(&self) -> Vec<(NodeId, Failure)> {
        self.nodes
            .iter()
            .filter_map(|(n, s)| match s {
                NodeStatus::Ko(f) => Some((*n, f.clone())),
                _ => None,
            })
            .collect()
    }
}

/// A group of nodes leaving a task.
#[derive(Clone, Debug)]
pub enum Batch {
    /// Nodes that succeeded.
    Ok(Vec<NodeId>),
    /// Nodes that failed, with why.
    Ko(Vec<(NodeId, Failure)>),
    /// Nodes stopped at a breakpoint, with where.
    Brk(Vec<NodeId>, String),
}

impl Batch {
    /// The nodes of the batch, whatever their end.
    pub(crate) fn nodes(&self) -> Vec<NodeId> {
        match self {
            Batch::Ok(n) | Batch::Brk(n, _) => n.clone(),
            Batch::Ko(f) => f.iter().map(|(n, _)| *n).collect(),
        }
    }
}

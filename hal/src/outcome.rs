//! Per-node outcomes of node-set operations and the small error-kind enum the engine decides on.

mod fanout;

pub(crate) use fanout::for_each_node;

use crate::node::{NodeId, NodeInfo};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an operation failed on one node. The engine's retry, escalation and KO decisions look only at this kind.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The node could not be contacted (connection refused, lost, no route).
    Unreachable,
    /// A command ran on the node or on the server and exited non-zero.
    CommandFailed,
    /// The operation did not finish in time.
    Timeout,
    /// The backend has no command or support for this operation at this level.
    NotSupported,
    /// A data transfer (broadcast, file send) broke off.
    Transfer,
    /// The disk refused a write, a partitioning or a format.
    Disk,
    /// Data arrived corrupted and could not be repaired.
    Integrity,
    /// The operation was cancelled by the caller.
    Cancelled,
    /// The backend's configuration does not allow this operation on this node.
    Config,
}

impl ErrorKind {
    /// A stable lower-case name, used in JSON output and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::CommandFailed => "command_failed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::NotSupported => "not_supported",
            ErrorKind::Transfer => "transfer",
            ErrorKind::Disk => "disk",
            ErrorKind::Integrity => "integrity",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Config => "config",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure on one node: its kind and the message Kadeploy would show in `state.error`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct NodeError {
    /// What went wrong, for decisions.
    pub kind: ErrorKind,
    /// What went wrong, for people (stderr of the command, or Kadeploy's text); never empty.
    pub message: String,
}

impl NodeError {
    /// A new error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        NodeError {
            kind,
            message: message.into(),
        }
    }
}

/// The result of an operation on one node.
pub type Outcome<T = ()> = Result<T, NodeError>;

/// One outcome per node, in the order the nodes were given to the operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcomes<T = ()>(pub Vec<(NodeId, Outcome<T>)>);

impl<T> Outcomes<T> {
    /// Every node of `nodes` with the same outcome.
    pub fn all(nodes: &[NodeId], outcome: Outcome<T>) -> Self
    where
        T: Clone,
    {
        Outcomes(nodes.iter().map(|&n| (n, outcome.clone())).collect())
    }

    /// Builds outcomes by calling `f` for each node, in order.
    pub fn from_fn(nodes: &[NodeId], mut f: impl FnMut(NodeId) -> Outcome<T>) -> Self {
        Outcomes(nodes.iter().map(|&n| (n, f(n))).collect())
    }

    /// The nodes that succeeded, in order.
    pub fn ok_nodes(&self) -> Vec<NodeId> {
        self.0
            .iter()
            .filter(|(_, o)| o.is_ok())
            .map(|(n, _)| *n)
            .collect()
    }

    /// The nodes that failed with their errors, in order.
    pub fn failures(&self) -> Vec<(NodeId, NodeError)> {
        self.0
            .iter()
            .filter_map(|(n, o)| o.as_ref().err().map(|e| (*n, e.clone())))
            .collect()
    }

    /// Number of outcomes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no outcome.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over `(node, outcome)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = &(NodeId, Outcome<T>)> {
        self.0.iter()
    }
}

impl<T> IntoIterator for Outcomes<T> {
    type Item = (NodeId, Outcome<T>);
    type IntoIter = std::vec::IntoIter<(NodeId, Outcome<T>)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// The facts of `node` in a backend's node table, or a configuration error when it is not there.
pub fn lookup(nodes: &[NodeInfo], node: NodeId) -> Outcome<&NodeInfo> {
    nodes
        .get(node.index())
        .ok_or_else(|| NodeError::new(ErrorKind::Config, format!("unknown node {node}")))
}

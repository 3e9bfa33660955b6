//! BroadcastEnvAuto's question to a broadcast planner: which strategy and chunk size deliver this image
//! to these nodes fastest, and in how many seconds. The engine only asks; the daemon wires the
//! simulator's planner (the simulator depends on the engine, not the other way round).

use hal::Strategy;
use std::sync::Arc;

/// One node of a [`PlanRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanNode {
    /// The node's position in the cluster's node list (its `NodeId`).
    pub index: usize,
    /// The node's name.
    pub name: String,
    /// The switch the node hangs off (the cluster's `switch` of the node), when configured.
    pub switch: Option<String>,
}

/// What BroadcastEnvAuto asks before it broadcasts.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanRequest {
    /// The cluster's name.
    pub cluster: String,
    /// The receivers, in broadcast order.
    pub nodes: Vec<PlanNode>,
    /// Bytes of the compressed image.
    pub image_size: u64,
    /// Decompressed over compressed size, when the environment tells it.
    pub ratio: Option<f64>,
}

/// A planner's answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BroadcastPlan {
    /// The strategy to broadcast with.
    pub strategy: Strategy,
    /// The chunk size in bytes.
    pub chunk: u32,
    /// Predicted seconds until the last node has written the image.
    pub predicted: f64,
}

/// Why a planner gave no plan.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The request cannot be planned (no node, an empty image).
    #[error("cannot plan the broadcast: {0}")]
    Request(String),
    /// The planner's model parameters cannot predict this broadcast.
    #[error("no prediction: {0}")]
    Model(String),
}

/// The kind of a [`PlanError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanErrorKind {
    /// [`PlanError::Request`].
    Request,
    /// [`PlanError::Model`].
    Model,
}

impl PlanError {
    /// The error's kind.
    pub fn kind(&self) -> PlanErrorKind {
        match self {
            PlanError::Request(_) => PlanErrorKind::Request,
            PlanError::Model(_) => PlanErrorKind::Model,
        }
    }
}

/// Chooses a broadcast's strategy and chunk size (BroadcastEnvAuto); one per cluster.
pub trait BroadcastPlanner: Send + Sync {
    /// The fastest plan for `request`.
    fn plan(&self, request: &PlanRequest) -> Result<BroadcastPlan, PlanError>;
}

/// A shared planner, as a workflow's context holds it.
pub type SharedPlanner = Arc<dyn BroadcastPlanner>;

/// What BroadcastEnvAuto does without a plan (no planner configured, or the planner's error): the
/// strategy of BroadcastEnvKascade, Kadeploy's default, with the backend's own chunk size.
pub const FALLBACK_STRATEGY: Strategy = Strategy::FaultTolerantChain;

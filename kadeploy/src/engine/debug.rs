//! Per-node traces of what the micro-steps run (Kadeploy's `-d`, the `debugs` resource of a workflow): for
//! each operation a micro-step runs, each node's command, outputs and exit status. Only kept when the
//! workflow's context has a [`DebugSink`].

use std::sync::Arc;

/// One node's trace of one operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// Seconds since the workflow's output started.
    pub time: f64,
    /// The node's name.
    pub node: String,
    /// What ran (`<micro-step>: <operation>`).
    pub command: String,
    /// Its standard output.
    pub stdout: String,
    /// Its error output (the failure's message).
    pub stderr: String,
    /// Its exit status (0: success).
    pub status: i32,
}

/// Where traces go.
pub type DebugSink = Arc<dyn Fn(&Trace) + Send + Sync>;

//! Wire structs of a cluster file's `automata/macrosteps` (section 4.3.1 of the specification).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `automata/*`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AutomataSection {
    /// `macrosteps`: mandatory when `automata` is present.
    pub macrosteps: Option<Macrosteps>,
}

/// `automata/macrosteps/*`: each slot is an ordered list of instances (fallback order), all mandatory.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Macrosteps {
    /// `SetDeploymentEnv`.
    #[serde(rename = "SetDeploymentEnv")]
    pub set_deployment_env: Option<Vec<Instance>>,
    /// `BroadcastEnv`.
    #[serde(rename = "BroadcastEnv")]
    pub broadcast_env: Option<Vec<Instance>>,
    /// `BootNewEnv`.
    #[serde(rename = "BootNewEnv")]
    pub boot_new_env: Option<Vec<Instance>>,
}

/// One macro-step instance.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Instance {
    /// `type`: mandatory, e.g. `Untrusted`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `retries` (0).
    pub retries: u32,
    /// `timeout` in seconds (0: none).
    pub timeout: u64,
    /// `raisable` (true).
    pub raisable: bool,
    /// `breakpoint` (false).
    pub breakpoint: bool,
    /// `microsteps`: per-micro-step settings.
    pub microsteps: Vec<Microstep>,
}

impl Default for Instance {
    fn default() -> Self {
        Instance {
            kind: None,
            retries: 0,
            timeout: 0,
            raisable: true,
            breakpoint: false,
            microsteps: Vec::new(),
        }
    }
}

/// An item of an instance's `microsteps`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Microstep {
    /// `name`: mandatory.
    pub name: Option<String>,
    /// `timeout` in seconds (0: none).
    pub timeout: u64,
    /// `retries` (0).
    pub retries: u32,
    /// `raisable` (true).
    pub raisable: bool,
    /// `breakpoint` (false).
    pub breakpoint: bool,
    /// `substitute`: custom operations replacing the micro-step.
    pub substitute: Option<Value>,
    /// `pre-ops`: custom operations run before.
    #[serde(rename = "pre-ops")]
    pub pre_ops: Option<Value>,
    /// `post-ops`: custom operations run after.
    #[serde(rename = "post-ops")]
    pub post_ops: Option<Value>,
}

impl Default for Microstep {
    fn default() -> Self {
        Microstep {
            name: None,
            timeout: 0,
            retries: 0,
            raisable: true,
            breakpoint: false,
            substitute: None,
            pre_ops: None,
            post_ops: None,
        }
    }
}

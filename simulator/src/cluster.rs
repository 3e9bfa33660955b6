//! The simulated cluster: [`SimCluster`] implements every `hal` trait in virtual time (tokio's paused
//! clock), from a lazily evaluated per-node state machine, seeded per-node draws and a failure plan.
//!
//! Every node-set operation costs O(nodes) work plus one `sleep` to the instant its slowest node
//! finishes, so 10,000 nodes simulate in seconds. Times are seconds since the cluster's start instant.

mod broadcast;
mod console;
pub mod faults;
pub mod journal;
mod netboot;
mod nodeops;
mod plan;
mod power;
mod reachability;
mod state;
mod system;

pub use journal::{NodeEvent, Taken};
pub use plan::{FailurePlan, NodeFaults};
pub use state::{BootKind, DEPLOY_ENV_PORT, Env, NextBoot, NodeRecord, NodeView, SSH_PORT};

use crate::params::{ParamsError, SimParams};
use hal::{Drivers, ErrorKind, NodeError, NodeId, NodeInfo};
use state::{BootCtx, NodeState};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// A simulated cluster of nodes driven through the `hal` traits.
///
/// Every node starts powered on, running its production system. Use it on a tokio runtime with paused
/// time (`start_paused = true`, or `tokio::time::pause()`): durations are `tokio::time::sleep`s.
#[derive(Debug)]
pub struct SimCluster {
    nodes: Vec<NodeInfo>,
    params: SimParams,
    seed: u64,
    plan: FailurePlan,
    /// Per-node disk write rate (bytes/s of decompressed data), drawn once per node.
    disk_rates: Vec<f64>,
    state: Mutex<Vec<NodeState>>,
    start: OnceLock<Instant>,
    runs: Mutex<Vec<BroadcastRun>>,
}

/// One broadcast as the model ran it: for timelines and for the measured (simulated) time.
#[derive(Clone, Debug, PartialEq)]
pub struct BroadcastRun {
    /// The strategy.
    pub strategy: hal::Strategy,
    /// Start, in seconds since the cluster's start.
    pub start: f64,
    /// When the model's last event happened.
    pub end: f64,
    /// Each receiver's node index and the time (since the start of the cluster) it finished or failed.
    pub receivers: Vec<(u32, f32)>,
}

impl SimCluster {
    /// A cluster of `nodes` (`NodeId(i)` is `nodes[i]`) following `params`, with every random draw made
    /// from `seed` (which takes precedence over `params.seed`). Fails when a parameter is out of range
    /// or a failure rule names an unknown node.
    ///
    /// The clock starts at the first call made inside a tokio runtime (at once when called inside one).
    pub fn new(nodes: Vec<NodeInfo>, params: SimParams, seed: u64) -> Result<Self, ParamsError> {
        params
            .validate()
            .map_err(|(key, message)| ParamsError::Invalid {
                origin: "simulation parameters".to_string(),
                key,
                message,
            })?;
        let plan = FailurePlan::resolve(&params.failures, seed, &nodes)?;
        let disk_rates = (0..nodes.len())
            .map(|i| crate::model_input::disk_rate(&params, seed, i))
            .collect();
        let state = Mutex::new(vec![NodeState::new(); nodes.len()]);
        let cluster = SimCluster {
            nodes,
            params,
            seed,
            plan,
            disk_rates,
            state,
            start: OnceLock::new(),
            runs: Mutex::new(Vec::new()),
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            cluster.now();
        }
        Ok(cluster)
    }

    /// The cluster's drivers, one per hardware concern, all backed by this cluster.
    pub fn drivers(self: &Arc<Self>) -> Drivers {
        Drivers {
            power: self.clone(),
            netboot: self.clone(),
            ops: self.clone(),
            reachability: self.clone(),
            broadcast: self.clone(),
            console: self.clone(),
        }
    }

    /// Seconds of virtual time since the cluster's start.
    pub fn now(&self) -> f64 {
        let start = *self.start.get_or_init(Instant::now);
        Instant::now()
            .saturating_duration_since(start)
            .as_secs_f64()
    }

    /// The nodes, in `NodeId` order.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// The parameters.
    pub fn params(&self) -> &SimParams {
        &self.params
    }

    /// The seed every draw derives from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The resolved failure plan.
    pub fn plan(&self) -> &FailurePlan {
        &self.plan
    }

    /// The disk write rate drawn for `node`, in bytes/s.
    pub fn disk_rate(&self, node: NodeId) -> Option<f64> {
        self.disk_rates.get(node.index()).copied()
    }

    /// The broadcasts run so far, in order.
    pub fn broadcast_runs(&self) -> Vec<BroadcastRun> {
        self.runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Records a broadcast.
    fn record_run(&self, run: BroadcastRun) {
        self.runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(run);
    }

    /// What `node` looks like now, or `None` for an unknown node.
    pub fn view(&self, node: NodeId) -> Option<NodeView> {
        let t = self.now();
        self.lock().get(node.index()).map(|s| s.view(t))
    }

    /// What `node` looks like at `t` seconds of virtual time (for callers outside the cluster's runtime,
    /// which read its clock there), or `None` for an unknown node.
    pub fn view_at(&self, node: NodeId, t: f64) -> Option<NodeView> {
        self.lock().get(node.index()).map(|s| s.view(t))
    }

    /// Starts recording every node's [`NodeEvent`]s (boots, successful operations, image writes).
    pub fn enable_journal(&self) {
        for s in self.lock().iter_mut() {
            s.journal.enable();
        }
    }

    /// Takes the events recorded on `node` since the last take, or `None` for an unknown node.
    pub fn take_events(&self, node: NodeId) -> Option<Taken> {
        self.lock().get_mut(node.index()).map(|s| s.journal.take())
    }

    /// The state table. Never held across an `.await`.
    fn lock(&self) -> MutexGuard<'_, Vec<NodeState>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The table index of `node`, or a `Config` error for a node this cluster does not have.
    fn index(&self, node: NodeId) -> Result<usize, NodeError> {
        if node.index() < self.nodes.len() {
            Ok(node.index())
        } else {
            Err(NodeError::new(
                ErrorKind::Config,
                format!("node {node} is not part of the simulated cluster"),
            ))
        }
    }

    /// The node's FQDN (or its id when unknown).
    fn name(&self, index: usize) -> String {
        self.nodes
            .get(index)
            .map_or_else(|| format!("#{index}"), |n| n.name.clone())
    }

    /// What a boot of the node at `index` needs.
    fn boot_ctx(&self, index: usize) -> BootCtx<'_> {
        BootCtx {
            params: &self.params.boot,
            seed: self.seed,
            index,
            never_boot: self.plan.node(index).never_boot,
            stretch: self.stretch(),
        }
    }

    /// How much longer processor work takes on a node: the nodes per core of the shared `host` (all
    /// nodes busy at once), at least 1; 1 for real nodes.
    fn stretch(&self) -> f64 {
        crate::model_input::host_stretch(&self.params, self.nodes.len())
    }

    /// Sleeps until `t` seconds after the start (at once when `t` is past).
    async fn sleep_until(&self, t: f64) {
        let start = *self.start.get_or_init(Instant::now);
        match start.checked_add(secs(t)) {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => hang_forever().await,
        }
    }
}

/// `x` seconds as a `Duration`: 0 for negative or NaN, saturating for huge or infinite values.
fn secs(x: f64) -> Duration {
    if x.is_nan() || x <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(x).unwrap_or(Duration::MAX)
    }
}

/// Never returns: a hung node keeps the whole call waiting (the engine's timeouts handle it).
async fn hang_forever() {
    std::future::pending::<()>().await
}

/// "ssh: connect to host X port 22: Connection refused", as a node error.
fn ssh_refused(name: &str) -> NodeError {
    NodeError::new(
        ErrorKind::Unreachable,
        format!("ssh: connect to host {name} port {SSH_PORT}: Connection refused"),
    )
}

/// The node went down while an operation ran on it.
fn connection_lost(name: &str) -> NodeError {
    NodeError::new(ErrorKind::Unreachable, format!("Connection to {name} lost"))
}

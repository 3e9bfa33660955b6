//! The `simulated` backend: the simulator's cluster, with the configuration directory's `simulation.conf`
//! (as loaded) when there is one, in virtual time; with its `ssh` section, every node answers SSH.

mod ssh;

use kadeploy::config::{ClusterConfig, Loaded};
use kadeploy_server::BackendSpec;
use simulator::cluster::SimCluster;
use std::sync::Arc;

/// The name of this backend in `backend/kind` (the default).
pub const KIND: &str = kadeploy::config::DEFAULT_BACKEND;

/// Builds the simulated drivers of `cluster`.
pub fn backend(cluster: &ClusterConfig, loaded: &Loaded) -> anyhow::Result<BackendSpec> {
    let params = super::planner::params(loaded)?;
    let sim = Arc::new(SimCluster::new(
        cluster.nodes.clone(),
        params.clone(),
        params.seed,
    )?);
    if let Some(endpoints) = &params.ssh {
        ssh::start(sim.clone(), &cluster.name, endpoints, loaded)?;
    }
    Ok(BackendSpec {
        drivers: sim.drivers(),
        virtual_time: true,
        image_size: params.image.size.max(0.0) as u64,
        image_ratio: params.image.ratio,
        planner: Some(super::planner::planner(params)),
    })
}

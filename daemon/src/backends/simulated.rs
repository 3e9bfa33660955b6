//! The `simulated` backend: the simulator's cluster, with `simulation.conf` from the configuration
//! directory when there is one, in virtual time.

use kadeploy::config::ClusterConfig;
use kadeploy_server::BackendSpec;
use simulator::cluster::SimCluster;
use simulator::params::SimParams;
use std::path::Path;
use std::sync::Arc;

/// The name of this backend in `backend/kind` (the default).
pub const KIND: &str = "simulated";

/// Builds the simulated drivers of `cluster`.
pub fn backend(cluster: &ClusterConfig, dir: &Path) -> anyhow::Result<BackendSpec> {
    let file = dir.join("simulation.conf");
    let params = if file.is_file() {
        SimParams::load(&file)?
    } else {
        SimParams::default()
    };
    let sim = Arc::new(SimCluster::new(
        cluster.nodes.clone(),
        params.clone(),
        params.seed,
    )?);
    Ok(BackendSpec {
        drivers: sim.drivers(),
        virtual_time: true,
        image_size: params.image.size.max(0.0) as u64,
        image_ratio: params.image.ratio,
    })
}

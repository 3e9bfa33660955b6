//! The backends `backend/kind` can name: the simulated cluster (`simulated`, the default) and the real
//! drivers of a site (`site`).

use kadeploy::server::{BackendSpec, Backends};
use simulator::cluster::SimCluster;
use simulator::params::SimParams;
use std::sync::Arc;

/// The name of the default backend.
pub const SIMULATED: &str = "simulated";

/// The name → constructor table.
pub fn backends() -> Backends {
    let mut b = Backends::new();
    b.register(
        SIMULATED,
        true,
        Arc::new(|cluster, dir| {
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
        }),
    );
    b.register(
        kadeploy::site::KIND,
        false,
        Arc::new(kadeploy::site::backend),
    );
    b
}

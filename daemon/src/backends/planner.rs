//! BroadcastEnvAuto's planner for every backend: the simulator's models ([`SimPlanner`]) with the
//! network, disk and loss parameters of the configuration directory's `simulation.conf` as loaded
//! (`network/*`, `disk/*`, `fault_tolerance/*`, `swarm/*`, `seed`), or their documented defaults when
//! there is no such file; the nodes' switches come from the cluster's `switch` keys. A malformed
//! `simulation.conf` stops the start with the parser's error.

use kadeploy::config::Loaded;
use kadeploy::engine::planner::SharedPlanner;
use simulator::params::SimParams;
use simulator::planner::SimPlanner;
use std::sync::Arc;

/// The simulation parameters of `loaded`: its `simulation.conf`, or the defaults.
pub fn params(loaded: &Loaded) -> anyhow::Result<SimParams> {
    match &loaded.simulation {
        Some(file) => Ok(SimParams::parse(
            &file.text,
            &file.path.display().to_string(),
        )?),
        None => Ok(SimParams::default()),
    }
}

/// The planner modelling `params`.
pub fn planner(params: SimParams) -> SharedPlanner {
    Arc::new(SimPlanner::new(params))
}

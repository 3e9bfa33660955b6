//! A finished run's calibration, rebuilt from what the run left behind (`kalab calibrate`): kadeploy3's
//! `-V 4` output, the consoles' `timeline.json`, kalab's JSON report (the SSH cost, the idle and busy
//! loads measured after the deployment) and the environment's image. Runs made before a measurement
//! existed can be given it (`busy_load`), measured since on the same host.

use super::{HostLoad, SshCost, StepTimes, measure, phases, simulation_conf};
use crate::timeline::Timeline;
use anyhow::Context as _;
use std::path::Path;

/// The `simulation.conf` text of the run (`output`, `timeline`, `report`: kalab's last stdout line),
/// its busy load taken from `busy_load` when given, else from the report; its broadcast time from
/// kadeploy3d's log when given (`server_log`).
pub fn simulation_conf_of(
    output: &str,
    timeline: &Timeline,
    report: &serde_json::Value,
    image: &Path,
    busy_load: Option<f64>,
    server_log: Option<&str>,
) -> anyhow::Result<String> {
    let steps = StepTimes::parse(output.lines()).with_server_log(server_log.unwrap_or_default());
    let boots = phases::measure(timeline);
    let ssh = SshCost {
        seconds: report["ssh"]["seconds"]
            .as_f64()
            .context("the report has no ssh.seconds")?,
        cpu_share: report["ssh"]["cpu_share"]
            .as_f64()
            .context("the report has no ssh.cpu_share")?,
    };
    let load = HostLoad {
        idle: report["idle_load"].as_f64().unwrap_or(0.0),
        busy: busy_load.or_else(|| report["busy_load"].as_f64()),
    };
    let measured = measure(&steps, Some(&boots), ssh, load, image)?;
    Ok(simulation_conf(&measured, 1))
}

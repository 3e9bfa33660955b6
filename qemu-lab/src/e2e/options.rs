//! What `kalab e2e` runs: the environment, its boot path, and the faults and checks to add.

use serde::Serialize;

/// How the deployed environment is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BootPath {
    /// kexec from the deploy kernel into the environment's kernel (`BootNewEnvKexec`).
    Kexec,
    /// A reboot with the PXE profile switched to the local disk (`BootNewEnvClassical`).
    Classical,
}

impl BootPath {
    /// The BootNewEnv implementation.
    pub(crate) fn step(self) -> &'static str {
        match self {
            BootPath::Kexec => "BootNewEnvKexec",
            BootPath::Classical => "BootNewEnvClassical",
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Environment to deploy (`kalab-linux` or `kalab-linux-dd`).
    pub env: String,
    /// Boot path of the deployed environment.
    pub boot: BootPath,
    /// Power one VM off through its BMC during the broadcast and stop another node's BMC.
    pub faults: bool,
    /// Also run kapower3, kareboot3 and kaconsole3 against the deployed nodes.
    pub tools: bool,
    /// Stop the deploy kernel's agents before the broadcast (a custom pre-op) so that kadeploy3d
    /// sends `kaagent` over SSH (the lab must be up with `agent_over_ssh`).
    pub agent_over_ssh: bool,
    /// Predict the deployment with `kasim` and these parameters (a `simulation.conf` written by an
    /// earlier run); without it, with the parameters measured on this run.
    pub sim_params: Option<std::path::PathBuf>,
    /// Commands run over SSH on every deployed node after the lab's own checks (`--check`).
    pub checks: Vec<String>,
    /// The busy-load probes run after the deployment, in order (`--busy-probe`); the first one's
    /// load goes into the calibration; none: no busy load measured.
    pub busy_probes: Vec<crate::e2e::busy_load::ProbeSpec>,
}

//! The systems a simulated node runs and the ports each one opens.

/// Port of sshd, open in every running system.
pub const SSH_PORT: u16 = 22;
/// Kadeploy's `test_deploy_env` port, open only in the deploy environment.
pub const DEPLOY_ENV_PORT: u16 = 25300;

/// The system a running node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Env {
    /// The production environment the node starts in (booted from its disk).
    Production,
    /// The deployment miniOS (sshd and a listener on 25300).
    Deploy,
    /// The environment a deployment wrote on the disk.
    Deployed,
    /// A user-provided boot profile.
    Custom,
}

impl Env {
    /// True when `port` accepts connections in this system (22 everywhere, 25300 in the deploy env).
    pub fn port_open(self, port: u16) -> bool {
        port == SSH_PORT || (port == DEPLOY_ENV_PORT && self == Env::Deploy)
    }

    /// A short name for logs and consoles.
    pub fn name(self) -> &'static str {
        match self {
            Env::Production => "production",
            Env::Deploy => "deploy",
            Env::Deployed => "deployed",
            Env::Custom => "custom",
        }
    }

    /// The first line its console prints.
    pub fn banner(self) -> &'static str {
        match self {
            Env::Production => "Debian GNU/Linux 12",
            Env::Deploy => "Kadeploy deployment environment",
            Env::Deployed => "Deployed environment",
            Env::Custom => "Custom boot profile",
        }
    }
}

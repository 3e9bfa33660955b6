//! The lab BMC: an IPMI-over-LAN (RMCP+) server that powers one QEMU VM on, off and through cycles,
//! sets the device it boots next, answers a site's inventory queries and attaches serial-over-LAN to its
//! serial port.

pub mod boot;
pub mod bootorder;
pub mod info;
pub mod payload;
pub mod sdr;
pub mod serial;
pub mod server;
pub mod sessions;
pub mod sol;
pub mod vm;
pub mod vm_boot;

use std::net::SocketAddr;
use std::path::PathBuf;

/// What one `kalab-bmc` process serves.
#[derive(Debug, Clone)]
pub struct BmcConfig {
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// The IPMI user name.
    pub user: String,
    /// The IPMI password.
    pub password: String,
    /// Shell script that starts the VM daemonized and writes the pidfile.
    pub start_script: PathBuf,
    /// The VM's pidfile.
    pub pidfile: PathBuf,
    /// The VM's QMP socket, if any.
    pub qmp: Option<PathBuf>,
    /// The VM's serial socket, attached by serial-over-LAN (none: SOL disabled).
    pub serial: Option<PathBuf>,
}

/// Why the BMC stopped.
#[derive(Debug, thiserror::Error)]
pub enum BmcError {
    /// The credentials break IPMI's limits.
    #[error("invalid credentials: {0}")]
    Credentials(&'static str),
    /// The socket failed.
    #[error("UDP {addr}: {source}")]
    Io {
        /// The listen address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// Serves IPMI over LAN for one VM until the socket fails.
pub async fn run(config: BmcConfig) -> Result<(), BmcError> {
    if config.user.len() > 16 {
        return Err(BmcError::Credentials(
            "the user name has more than 16 bytes",
        ));
    }
    if config.password.len() > 20 {
        return Err(BmcError::Credentials("the password has more than 20 bytes"));
    }
    let io = |source| BmcError::Io {
        addr: config.listen,
        source,
    };
    let sock = tokio::net::UdpSocket::bind(config.listen)
        .await
        .map_err(io)?;
    tracing::info!(listen = %config.listen, user = %config.user, "kalab-bmc serving");
    let vm = vm::Vm {
        start_script: config.start_script,
        pidfile: config.pidfile,
        qmp: config.qmp,
        boot_defaults: Default::default(),
    };
    server::Server::new(sock, &config.user, &config.password, vm, config.serial)
        .map_err(io)?
        .serve()
        .await
        .map_err(io)
}

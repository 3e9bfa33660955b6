//! The lab PDU: an SNMP agent (v1/v2c and v3 USM) whose outlets power the lab VMs, speaking the OIDs of
//! an APC, Raritan or Eaton PDU (`hal::power::snmp::models`).

pub mod agent;
pub mod mib;
pub mod outlets;

use crate::bmc::vm::Vm;
use hal::power::snmp::client::V3User;
use hal::power::snmp::models::OutletModel;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// What one `kalab-pdu` process serves.
#[derive(Debug, Clone)]
pub struct PduConfig {
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// The OIDs spoken.
    pub model: OutletModel,
    /// The read-only community.
    pub read_community: String,
    /// The read-write community.
    pub write_community: String,
    /// The v3 user, if any.
    pub user: Option<V3User>,
    /// The VM directories powered by outlets 1, 2...: each holds `start.sh`, `qemu.pid` and `qmp.sock`.
    pub outlets: Vec<PathBuf>,
}

/// Why the PDU stopped.
#[derive(Debug, thiserror::Error)]
pub enum PduError {
    /// The socket failed.
    #[error("UDP {addr}: {source}")]
    Io {
        /// The listen address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The configuration cannot be served.
    #[error("{0}")]
    Config(String),
}

/// The VM powered from the directory `dir` (the lab's layout).
pub fn vm_of_dir(dir: &std::path::Path) -> Vm {
    Vm {
        start_script: dir.join("start.sh"),
        pidfile: dir.join("qemu.pid"),
        qmp: Some(dir.join("qmp.sock")),
        boot_defaults: Default::default(),
    }
}

/// Serves SNMP until the socket fails.
pub async fn run(config: PduConfig) -> Result<(), PduError> {
    config.model.validate().map_err(PduError::Config)?;
    if let Some(user) = &config.user
        && (user.auth_password.len() < 8 || user.privacy.as_ref().is_some_and(|(_, p)| p.len() < 8))
    {
        return Err(PduError::Config(
            "USM passwords need at least 8 characters".into(),
        ));
    }
    let io = |source| PduError::Io {
        addr: config.listen,
        source,
    };
    let sock = tokio::net::UdpSocket::bind(config.listen)
        .await
        .map_err(io)?;
    let outlets = config
        .outlets
        .iter()
        .map(|d| outlets::Outlet::new(vm_of_dir(d)))
        .collect();
    let mut engine_id = b"\x80\x00\x1f\x88\x04kalab-pdu-".to_vec();
    engine_id.extend_from_slice(config.listen.port().to_string().as_bytes());
    let mib = mib::Mib::new(config.model.clone(), outlets, "kalab-pdu".into());
    let agent = Arc::new(agent::Agent::new(
        mib,
        agent::Access {
            read_community: config.read_community,
            write_community: config.write_community,
            user: config.user,
        },
        engine_id,
    ));
    tracing::info!(listen = %config.listen, model = %config.model.name, outlets = config.outlets.len(), "kalab-pdu serving");
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, peer) = sock.recv_from(&mut buf).await.map_err(io)?;
        if let Some(answer) = agent.handle(&buf[..n], peer)
            && let Err(e) = sock.send_to(&answer, peer).await
        {
            tracing::debug!(%peer, "cannot answer: {e}");
        }
    }
}

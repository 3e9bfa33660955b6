//! A DHCPv4 server for the boot network (dhcproto for the wire format): static reservations per node,
//! an optional dynamic pool, journaled leases, PXE/UEFI/iPXE boot files and relay agents.

pub mod client;
pub mod config;
pub mod declined;
pub mod handler;
pub mod lease;
pub mod reply;
pub mod wire;

pub use config::{BootFiles, DhcpConfig, Host, Mac, Pool};
pub use handler::DhcpState;
pub use lease::{Lease, Leases};
pub use reply::Reply;

use super::socket::bind_udp;
use dhcproto::{Decodable, Decoder, Encodable, Encoder, v4::Message};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::UdpSocket;
use tracing::{debug, info};

/// Why the DHCP server could not start.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    /// Invalid configuration.
    #[error("{0}")]
    Config(String),
    /// The lease file cannot be read or written.
    #[error("dhcp lease file {path}: {source}")]
    Leases {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Socket failure.
    #[error("dhcp socket on {addr}: {source}")]
    Socket {
        /// The listen address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Why a datagram was not decoded.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Refused by the layout check before decoding.
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    /// Refused by dhcproto.
    #[error("undecodable: {0}")]
    Dhcproto(#[from] dhcproto::error::DecodeError),
    /// dhcproto panicked on a datagram the layout check let through (a gap in [`wire::validate`]).
    #[error("the decoder panicked")]
    Panic,
}

/// Decodes a datagram after [`wire::validate`] has checked its layout, so that the debug assertions
/// and length arithmetic inside dhcproto 0.15 are never reached with hostile lengths. A panic the
/// check missed is still caught, and the datagram dropped like any malformed one.
pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
    wire::validate(buf)?;
    match std::panic::catch_unwind(|| Message::decode(&mut Decoder::new(buf))) {
        Ok(decoded) => Ok(decoded?),
        Err(_) => Err(DecodeError::Panic),
    }
}

/// Encodes a message; `None` if it cannot be encoded.
pub fn encode(msg: &Message) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(576);
    msg.encode(&mut Encoder::new(&mut out)).ok()?;
    Some(out)
}

/// A bound DHCP server; [`DhcpServer::run`] serves until the task is dropped.
pub struct DhcpServer {
    socket: UdpSocket,
    state: DhcpState,
}

impl DhcpServer {
    /// Validates `config`, replays the lease file and binds the socket.
    pub fn bind(config: DhcpConfig) -> Result<Self, DhcpError> {
        config.validate().map_err(DhcpError::Config)?;
        let leases = match &config.lease_file {
            Some(path) => Leases::open(path).map_err(|source| DhcpError::Leases {
                path: path.display().to_string(),
                source,
            })?,
            None => Leases::in_memory(),
        };
        let socket =
            bind_udp(config.listen, config.interface.as_deref(), true).map_err(|source| {
                DhcpError::Socket {
                    addr: config.listen,
                    source,
                }
            })?;
        info!(
            leases = leases.len(),
            hosts = config.hosts.len(),
            "dhcp leases loaded"
        );
        Ok(DhcpServer {
            socket,
            state: DhcpState::new(config, leases),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Serves requests forever.
    pub async fn run(mut self) -> Result<(), DhcpError> {
        info!(addr = ?self.socket.local_addr().ok(), "dhcp server ready");
        // One byte more than accepted: a longer datagram is truncated to a length the check refuses.
        let mut buf = vec![0u8; wire::MAX_LEN + 1];
        loop {
            let (n, peer) = match self.socket.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    debug!(error = %e, "dhcp receive error");
                    continue;
                }
            };
            super::stats::DHCP.request();
            let req = match decode(&buf[..n]) {
                Ok(req) => req,
                Err(e) => {
                    super::stats::DHCP.error();
                    debug!(%peer, len = n, error = %e, "ignoring malformed dhcp datagram");
                    continue;
                }
            };
            let Some(reply) = self.state.handle(&req, unix_now()) else {
                continue;
            };
            let Some(bytes) = encode(&reply.message) else {
                continue;
            };
            if let Err(e) = self.socket.send_to(&bytes, reply.to).await {
                super::stats::DHCP.error();
                debug!(to = %reply.to, error = %e, "dhcp send failed");
            }
        }
    }
}

#[cfg(test)]
mod mutation_tests;

//! A read-only TFTP server (RFC 1350, 2347, 2348, 2349, 7440) confined to its root: one thread per
//! transfer on an ephemeral port, caps on concurrent transfers (in all and per client address) and on
//! the time an unacknowledged transfer lives, hostile packets answered or ignored.

pub mod packet;
pub mod session;
pub mod transfer;

use super::fsroot::FsRoot;
use super::per_client::PerClient;
use super::socket::bind_udp;
use packet::{ErrorCode, Packet};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

/// `tftp` section of the boot services configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TftpConfig {
    /// `listen`: address and port (`0.0.0.0:69`).
    pub listen: SocketAddr,
    /// `interface`: bind to this interface only (`SO_BINDTODEVICE`).
    pub interface: Option<String>,
    /// `root`: the served tree (Kadeploy's pxe repository).
    pub root: PathBuf,
    /// `max_blksize`: cap on negotiated block sizes (65464).
    pub max_blksize: u16,
    /// `max_window`: cap on negotiated window sizes (64).
    pub max_window: u16,
    /// `timeout_ms`: retransmission timeout unless the client negotiates one (1000).
    pub timeout_ms: u64,
    /// `retries`: retransmissions before giving up (5).
    pub retries: u32,
    /// `max_transfers`: concurrent transfers; more are refused with an error (1024).
    pub max_transfers: usize,
    /// `max_transfers_per_client`: concurrent transfers from one client address; more are refused
    /// with an error, so one host cannot take every slot (8).
    pub max_transfers_per_client: usize,
    /// `max_negotiated_timeout`: largest `timeout` option (RFC 2349, seconds) a client may
    /// negotiate; a larger one is ignored (left out of the OACK) and `timeout_ms` applies (10).
    pub max_negotiated_timeout: u64,
    /// `stall_timeout_ms`: a transfer whose client acknowledges nothing new for this long is
    /// abandoned, whatever the timeout and `retries` (15000).
    pub stall_timeout_ms: u64,
}

impl Default for TftpConfig {
    fn default() -> Self {
        TftpConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 69)),
            interface: None,
            root: PathBuf::from("/var/lib/tftpboot"),
            max_blksize: transfer::MAX_BLKSIZE,
            max_window: 64,
            timeout_ms: 1000,
            retries: 5,
            max_transfers: 1024,
            max_transfers_per_client: 8,
            max_negotiated_timeout: 10,
            stall_timeout_ms: 15_000,
        }
    }
}

/// Why the TFTP server could not start or stopped.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TftpError {
    /// The root directory is missing.
    #[error("tftp root {path}: {source}")]
    Root {
        /// The configured root.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Socket failure.
    #[error("tftp socket on {addr}: {source}")]
    Socket {
        /// The listen address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// A bound TFTP server; [`TftpServer::run`] serves until the task is dropped.
pub struct TftpServer {
    socket: UdpSocket,
    root: FsRoot,
    config: Arc<TftpConfig>,
    slots: Arc<Semaphore>,
    /// Transfers per client address.
    per_client: Arc<PerClient>,
    /// Set when [`TftpServer::run`] is dropped: transfer threads stop at their next exchange.
    stop: Arc<AtomicBool>,
}

impl TftpServer {
    /// Binds the listening socket and checks the root.
    pub fn bind(config: TftpConfig) -> Result<Self, TftpError> {
        let root = FsRoot::new(&config.root).map_err(|source| TftpError::Root {
            path: config.root.display().to_string(),
            source,
        })?;
        let socket =
            bind_udp(config.listen, config.interface.as_deref(), false).map_err(|source| {
                TftpError::Socket {
                    addr: config.listen,
                    source,
                }
            })?;
        let slots = Arc::new(Semaphore::new(config.max_transfers.max(1)));
        Ok(TftpServer {
            socket,
            root,
            per_client: PerClient::new(config.max_transfers_per_client),
            config: Arc::new(config),
            slots,
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Serves requests forever.
    pub async fn run(self) -> Result<(), TftpError> {
        info!(addr = ?self.socket.local_addr().ok(), root = %self.root.path().display(), "tftp server ready");
        let _stop = StopOnDrop(self.stop.clone());
        let mut buf = vec![0u8; 2048];
        loop {
            let (n, peer) = match self.socket.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    // ICMP errors from earlier replies surface here; they never stop the server.
                    debug!(error = %e, "tftp receive error");
                    continue;
                }
            };
            match packet::parse(&buf[..n]) {
                Ok(Packet::Rrq {
                    filename, options, ..
                }) => {
                    super::stats::TFTP.request();
                    let owned: Vec<(String, String)> = options
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_string()))
                        .collect();
                    self.start(peer, filename.to_string(), owned).await;
                }
                Ok(Packet::Wrq) => {
                    self.reply(peer, ErrorCode::AccessViolation, "read-only server")
                        .await
                }
                Ok(_) => {}
                Err(e) => {
                    super::stats::TFTP.error();
                    debug!(%peer, error = %e, "malformed tftp request");
                    self.reply(peer, ErrorCode::IllegalOperation, "malformed request")
                        .await;
                }
            }
        }
    }

    async fn reply(&self, peer: SocketAddr, code: ErrorCode, message: &str) {
        let _ = self
            .socket
            .send_to(&packet::error(code, message), peer)
            .await;
    }

    async fn start(&self, peer: SocketAddr, filename: String, options: Vec<(String, String)>) {
        let Some(client_slot) = self.per_client.acquire(peer.ip()) else {
            debug!(%peer, "too many tftp transfers from this client");
            return self
                .reply(
                    peer,
                    ErrorCode::Undefined,
                    "too many transfers from this client",
                )
                .await;
        };
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            super::stats::TFTP.error();
            warn!(%peer, "too many tftp transfers");
            return self.reply(peer, ErrorCode::Undefined, "server busy").await;
        };
        let Ok(local) = self.socket.local_addr() else {
            return;
        };
        let (root, config, stop) = (self.root.clone(), self.config.clone(), self.stop.clone());
        // A thread per transfer, as tftpd-hpa forks a process: lock-step blocks then cost one send and
        // one receive each, without a trip through the async scheduler per block.
        let spawned = std::thread::Builder::new()
            .name("tftp-transfer".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let _slots = (permit, client_slot);
                session::serve(&root, &config, local, peer, &filename, &options, &stop);
            });
        if let Err(e) = spawned {
            warn!(%peer, error = %e, "cannot start a tftp transfer thread");
            self.reply(peer, ErrorCode::Undefined, "server busy").await;
        }
    }
}

/// Tells the transfer threads to stop when the serving future is dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

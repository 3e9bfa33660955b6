//! The HTTP boot server (axum on hyper): the TFTP tree over HTTP for iPXE and UEFI HTTP boot,
//! read-only and confined to its root, with Range, HEAD, Last-Modified and ETag/If-None-Match.
//! Connections are bounded: in number (in all and per client address), in the time a request
//! header may take, and in the time a connection may move no byte.

pub mod files;
pub mod idle;

use super::fsroot::FsRoot;
use super::per_client::PerClient;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use idle::IdleTimeout;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

/// `http` section of the boot services configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// `listen` (`0.0.0.0:80`).
    pub listen: SocketAddr,
    /// `root`: the served tree (the same as TFTP's).
    pub root: PathBuf,
    /// `header_timeout`: seconds a connection has to send a whole request header, counted from its
    /// opening or from the end of the previous response; idle keep-alive connections close then (10).
    pub header_timeout: u64,
    /// `idle_timeout`: seconds a connection may move no byte while a read or write waits, e.g. a
    /// client that stops reading its response (60).
    pub idle_timeout: u64,
    /// `max_connections`: connections served at once; more wait in the listen backlog (512).
    pub max_connections: usize,
    /// `max_connections_per_client`: connections from one client address; more are closed at once
    /// (32).
    pub max_connections_per_client: usize,
    /// `keep_alive`: keep connections open for further requests (true). GRUB 2.06's HTTP client asks
    /// HTTP/1.1 without `Connection: close` and then waits for the server to close: with keep-alive,
    /// every file it reads costs `header_timeout` and more; false answers each request with
    /// `Connection: close` and closes.
    pub keep_alive: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 80)),
            root: PathBuf::from("/var/lib/tftpboot"),
            header_timeout: 10,
            idle_timeout: 60,
            max_connections: 512,
            max_connections_per_client: 32,
            keep_alive: true,
        }
    }
}

/// Why the HTTP server could not start or stopped.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The root directory is missing.
    #[error("http root {path}: {source}")]
    Root {
        /// The configured root.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Socket failure.
    #[error("http socket on {addr}: {source}")]
    Socket {
        /// The listen address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// The axum router serving `root`.
pub fn router(root: FsRoot) -> Router {
    Router::new().fallback(files::serve).with_state(root)
}

/// A bound HTTP boot server.
pub struct HttpServer {
    listener: tokio::net::TcpListener,
    root: FsRoot,
    config: HttpConfig,
}

impl HttpServer {
    /// Checks the root and binds the listener.
    pub async fn bind(config: HttpConfig) -> Result<Self, HttpError> {
        let root = FsRoot::new(&config.root).map_err(|source| HttpError::Root {
            path: config.root.display().to_string(),
            source,
        })?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| HttpError::Socket {
                addr: config.listen,
                source,
            })?;
        Ok(HttpServer {
            listener,
            root,
            config,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves forever: one task per connection, at most `max_connections` of them.
    pub async fn run(self) -> Result<(), HttpError> {
        let addr = self
            .listener
            .local_addr()
            .map_err(|source| HttpError::Socket {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })?;
        let c = &self.config;
        info!(
            %addr,
            root = %self.root.path().display(),
            max_connections = c.max_connections,
            "http boot server ready"
        );
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .keep_alive(c.keep_alive)
            .header_read_timeout(Duration::from_secs(c.header_timeout.max(1)));
        let idle = Duration::from_secs(c.idle_timeout.max(1));
        let slots = Arc::new(Semaphore::new(c.max_connections.max(1)));
        let per_client = PerClient::new(c.max_connections_per_client);
        let app = router(self.root);
        loop {
            // Taken before accepting: at the limit, new connections wait in the kernel's backlog.
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return Ok(());
            };
            let (stream, peer) = match self.listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors or memory: wait instead of spinning on the error.
                    warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(client) = per_client.acquire(peer.ip()) else {
                debug!(%peer, "too many http connections from this client: closed");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let io = TokioIo::new(IdleTimeout::new(stream, idle));
            let service = TowerToHyperService::new(app.clone());
            let connection = http.serve_connection(io, service);
            tokio::spawn(async move {
                let _held = (slot, client);
                if let Err(e) = connection.await {
                    debug!(%peer, error = %e, "http connection closed");
                }
            });
        }
    }
}

#[cfg(test)]
mod keep_alive_tests;

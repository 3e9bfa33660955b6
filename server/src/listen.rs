//! Binding the API: plain HTTP, or HTTPS with the configured certificate or a generated self-signed one
//! (rustls with ring), on Kadeploy's port 25300 by default.

use super::App;
use super::api::LocalPort;
use super::conn::{Guard, Slots, Timeouts};
use super::live::Live;
use anyhow::Context as _;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
pub use kadeploy::wire::self_signed;
use std::net::SocketAddr;
use std::sync::Arc;

/// A running API server.
pub struct Listening {
    /// The bound address.
    pub addr: SocketAddr,
    /// HTTPS.
    pub secure: bool,
    /// The server task.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Serves `app` on `listener` (HTTPS when `security/secure_server`, the default), under the connection
/// bounds of `limits/*` ([`super::conn`]), and starts the autoclean task.
pub async fn serve(app: Arc<App>, listener: std::net::TcpListener) -> anyhow::Result<Listening> {
    serve_live(Live::new(app), listener).await
}

/// Serves the application `live` holds (replaced by configuration reloads) on `listener`; the listener
/// itself (TLS, certificates) is set up from the application serving now.
pub async fn serve_live(
    live: Arc<Live>,
    listener: std::net::TcpListener,
) -> anyhow::Result<Listening> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let app = live.app();
    let secure = app.settings.secure;
    let limits = &app.settings.limits;
    let timeouts = Timeouts {
        header: limits.header_timeout,
        body: limits.body_timeout,
        idle: limits.idle_timeout,
    };
    let max = max_connections(limits.max_connections);
    let slots = Slots {
        total: max,
        per_address: limits
            .max_connections_per_address
            .unwrap_or(max / 2)
            .clamp(1, max),
    };
    let router = live
        .service()
        .layer(axum::Extension(LocalPort(addr.port())));
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    // Kadeploy speaks HTTP/1.1 only; hyper's own header timeout would also cut idle keep-alive
    // connections, so it stays off and `conn` keeps the deadlines.
    let server = axum_server::from_tcp(listener)?.http1_only();
    // TCP_NODELAY: without it, a reply written in two segments waits for the client's delayed ACK
    // (40 ms on Linux) on every new connection.
    let nodelay = axum_server::accept::NoDelayAcceptor::new();
    let task = if secure {
        let (cert, key) = match &app.settings.certificate {
            Some((cert, key)) => (
                std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?,
                std::fs::read(key).with_context(|| format!("reading {}", key.display()))?,
            ),
            None => {
                let (cert, key) = self_signed(&app.settings.hostname)?;
                (cert.into_bytes(), key.into_bytes())
            }
        };
        let config = super::tls::server_config(&cert, &key, app.settings.cert.is_some())?;
        let tls = RustlsAcceptor::new(RustlsConfig::from_config(Arc::new(config)))
            .handshake_timeout(limits.tls_handshake_timeout)
            .acceptor(nodelay);
        let server = server.acceptor(Guard::new(tls, slots, timeouts));
        tokio::spawn(server.serve(service))
    } else {
        let server = server.acceptor(Guard::new(nodelay, slots, timeouts));
        tokio::spawn(server.serve(service))
    };
    // The application serving now, across configuration reloads.
    let weak = Arc::downgrade(&live);
    tokio::spawn(super::autoclean::run(
        move || weak.upgrade().map(|live| live.app()),
        limits.autoclean_threshold,
    ));
    Ok(Listening { addr, secure, task })
}

/// `configured`, lowered to half the process's open-file limit so that connections alone never
/// exhaust file descriptors (the database, consoles and executors need some too).
fn max_connections(configured: usize) -> usize {
    let Some(files) = open_file_limit() else {
        return configured;
    };
    let max = configured.min((files / 2).max(1));
    if max < configured {
        tracing::info!(
            "at most {max} API connections (limits/max_connections is {configured}, the open-file limit {files})"
        );
    }
    max
}

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits`.
fn open_file_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

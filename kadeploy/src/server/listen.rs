//! Binding the API: plain HTTP, or HTTPS with the configured certificate or a generated self-signed one
//! (rustls with ring), on Kadeploy's port 25300 by default.

use super::App;
use super::live::Live;
use anyhow::Context as _;
use axum_server::tls_rustls::RustlsConfig;
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

/// The port the API listens on, added to every request (ident queries need it).
#[derive(Clone, Copy, Debug)]
pub struct LocalPort(pub u16);

/// A self-signed certificate and key (PEM) for `hostname`.
pub fn self_signed(hostname: &str) -> anyhow::Result<(String, String)> {
    let names = vec![
        hostname.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ];
    let ck = rcgen::generate_simple_self_signed(names)
        .context("generating the self-signed certificate")?;
    Ok((ck.cert.pem(), ck.signing_key.serialize_pem()))
}

/// Serves `app` on `listener` (HTTPS when `security/secure_server`, the default).
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
    let router = live
        .service()
        .layer(axum::Extension(LocalPort(addr.port())));
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
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
        let config = if app.settings.cert.is_some() {
            RustlsConfig::from_config(Arc::new(super::tls::with_client_certs(&cert, &key)?))
        } else {
            RustlsConfig::from_pem(cert, key).await?
        };
        // TCP_NODELAY: without it, a reply written in two segments waits for the client's delayed ACK
        // (40 ms on Linux) on every new connection.
        let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
            .acceptor(axum_server::accept::NoDelayAcceptor::new());
        let server = axum_server::from_tcp(listener)?.acceptor(acceptor);
        tokio::spawn(server.serve(service))
    } else {
        use axum::serve::ListenerExt as _;
        let listener = tokio::net::TcpListener::from_std(listener)?.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("setting TCP_NODELAY: {e}");
            }
        });
        tokio::spawn(async move { axum::serve(listener, service).await })
    };
    Ok(Listening { addr, secure, task })
}

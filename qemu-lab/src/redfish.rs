//! The lab's Redfish service: one per VM, over HTTPS with a self-signed certificate (rustls with ring),
//! powering the VM and overriding its next boot device through QMP.

pub mod machine;
pub mod service;
pub mod sessions;

use anyhow::Context as _;
use axum_server::tls_rustls::RustlsConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What one `kalab-redfish` process serves.
#[derive(Debug, Clone)]
pub struct RedfishConfig {
    /// TCP address to listen on.
    pub listen: SocketAddr,
    /// The system's id (the VM's name).
    pub id: String,
    /// The account.
    pub user: String,
    /// Its password.
    pub password: String,
    /// The VM's directory (`start.sh`, `qemu.pid`, `qmp.sock`).
    pub vm_dir: PathBuf,
    /// Serve plain HTTP instead of HTTPS.
    pub plain_http: bool,
}

/// A self-signed certificate and key (PEM) for `names`.
pub fn self_signed(names: Vec<String>) -> anyhow::Result<(String, String)> {
    let ck = rcgen::generate_simple_self_signed(names).context("self-signed certificate")?;
    Ok((ck.cert.pem(), ck.signing_key.serialize_pem()))
}

/// A TLS configuration (ring) offering HTTP/1.1 only, as the server speaks.
fn tls_config(cert_pem: &str, key_pem: &str) -> anyhow::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("the certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("the key")?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves Redfish until the listener fails.
pub async fn run(config: RedfishConfig) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = &config.vm_dir;
    let machine = machine::Machine {
        vm: crate::pdu::vm_of_dir(dir),
        qmp: dir.join("qmp.sock"),
    };
    let service = service::Service::new(&config.id, machine, &config.user, &config.password);
    let app = service::router(service).into_make_service();
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("binding {}", config.listen))?;
    listener.set_nonblocking(true)?;
    tracing::info!(listen = %config.listen, id = %config.id, tls = !config.plain_http, "kalab-redfish serving");
    let server = axum_server::from_tcp(listener)?.http1_only();
    if config.plain_http {
        server.serve(app).await?;
        return Ok(());
    }
    let (cert, key) = self_signed(vec![config.id.clone(), config.listen.ip().to_string()])?;
    let tls = RustlsConfig::from_config(Arc::new(tls_config(&cert, &key)?));
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
        .handshake_timeout(Duration::from_secs(10));
    server.acceptor(acceptor).serve(app).await?;
    Ok(())
}

/// The service's shared state type (for tests that build the router themselves).
pub type SharedService = Arc<service::Service>;

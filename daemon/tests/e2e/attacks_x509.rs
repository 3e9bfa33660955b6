//! Attacks on X.509 client-certificate authentication (security issue, item 5), performed against the
//! real `kadeploy3d`. Each test says what the attack achieved before the fix (commit f72496d).

use super::auth::set_authentication;
use super::harness::{Server, config_copy, setup};
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::{Value, json};
use std::path::PathBuf;

struct Ca {
    pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let key_pem = key.serialize_pem();
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = p.self_signed(&key).expect("CA certificate");
    Ca {
        pem: cert.pem(),
        key_pem,
        issuer: Issuer::new(p, key),
    }
}

/// A certificate for `cn` signed by `ca`, shaped by `shape`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, cn: &str, shape: impl FnOnce(&mut CertificateParams)) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, cn);
    shape(&mut p);
    let cert = p.signed_by(&key, &ca.issuer).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

/// A request over HTTPS with an optional TLS client identity: (status, body).
fn https(
    port: u16,
    identity: Option<&(String, String)>,
    headers: &[(&str, String)],
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut b = reqwest::Client::builder().tls_danger_accept_invalid_certs(true);
        if let Some((cert, key)) = identity {
            let pem = format!("{cert}\n{key}");
            b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
        }
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = b
            .build()
            .expect("client")
            .request(method, format!("https://127.0.0.1:{port}{path}"))
            .header("Accept", "application/json");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(body) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let r = req.send().await.expect("request");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    })
}

/// A server with certificate authentication by `ca` (and `extra` keys in its section).
fn cert_server(name: &str, ca: &Ca, extra: &str) -> (PathBuf, Server) {
    let dir = setup(name);
    let conf = config_copy(&dir, true);
    std::fs::write(conf.join("ca.pem"), &ca.pem).expect("ca.pem");
    set_authentication(
        &conf,
        &format!(
            "authentication:\n  certificate:\n    ca_cert: ca.pem\n    whitelist:\n      - 127.0.0.1\n{extra}"
        ),
    );
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    (dir, server)
}

pub(super) fn b64(pem: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(pem)
}

/// Before: with only root's public certificate in `X-Kadeploy-Certificate` (no private key, no TLS client
/// certificate) `POST /rights` succeeded, and the CA's own certificate authenticated as user "TestCA".
#[test]
fn a_copied_certificate_in_the_header_authenticates_nobody() {
    let test_ca = ca("TestCA");
    let root = leaf(&test_ca, "root", |_| {});
    let (dir, server) = cert_server("x509-copy", &test_ca, "");
    let grant =
        json!({"username": "mallory", "nodes": ["node-1.sim.kadeploy"], "partitions": ["*"]});
    let headers = [
        ("X-Kadeploy-User", "root".to_string()),
        ("X-Kadeploy-Certificate", b64(&root.0)),
    ];
    let (status, text) = https(server.port, None, &headers, "POST", "/rights", Some(grant));
    assert_eq!(status, 401, "{text}");
    let headers = [("X-Kadeploy-Certificate", b64(&test_ca.pem))];
    let (status, text) = https(server.port, None, &headers, "GET", "/deployment", None);
    assert_eq!(status, 401, "{text}");
    // Root's own TLS certificate and key do authenticate root.
    let (status, text) = https(server.port, Some(&root), &[], "GET", "/deployment", None);
    assert_eq!(status, 200, "{text}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Before: CA certificates and certificates for servers only authenticated their common name; the
/// header was believed from any host. Now: the TLS certificate, or the header from a listed front end,
/// for a client certificate whose CN names the user.
#[test]
fn certificates_from_tls_or_a_trusted_front_end_must_be_client_certificates() {
    let test_ca = ca("TestCA");
    let alice = leaf(&test_ca, "alice", |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    });
    let server_only = leaf(&test_ca, "root", |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    });
    let enc_only = leaf(&test_ca, "root", |p| {
        p.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
    });
    let (dir, server) = cert_server(
        "x509-frontend",
        &test_ca,
        "    trusted_front_ends:\n      - 127.0.0.1\n",
    );
    let port = server.port;
    let get = |identity: Option<&(String, String)>, headers: &[(&str, String)]| {
        https(port, identity, headers, "GET", "/deployment", None)
    };
    let from_front_end = |user: Option<&str>, pem: &str| {
        let mut h = vec![("X-Kadeploy-Certificate", b64(pem))];
        if let Some(u) = user {
            h.push(("X-Kadeploy-User", u.to_string()));
        }
        get(None, &h)
    };
    // Accepted: the TLS client certificate, and the header from the front end, for alice.
    assert_eq!(get(Some(&alice), &[]).0, 200);
    assert_eq!(from_front_end(Some("alice"), &alice.0).0, 200);
    assert_eq!(from_front_end(None, &alice.0).0, 200);
    // Refused: another user than the CN, the CA itself, certificates not for client authentication.
    let refused = |(status, text): (u16, String), why: &str| {
        assert_eq!(status, 401, "{text}");
        assert!(text.contains(why), "{why}: {text}");
    };
    refused(from_front_end(Some("root"), &alice.0), "not issued to root");
    refused(from_front_end(None, &test_ca.pem), "CA's own certificate");
    let ca_identity = (test_ca.pem.clone(), test_ca.key_pem.clone());
    refused(get(Some(&ca_identity), &[]), "CA's own certificate");
    refused(from_front_end(Some("root"), &server_only.0), "clientAuth");
    refused(get(Some(&server_only), &[]), "clientAuth");
    refused(
        from_front_end(Some("root"), &enc_only.0),
        "digitalSignature",
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

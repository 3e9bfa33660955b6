//! Authentication methods other than ACL (spec §3.2), against the real server: X.509 client certificates
//! (in the TLS handshake, through `client.conf`, or Kadeploy's `X-Kadeploy-Certificate` header) and ident
//! (RFC 1413) with a tiny identd on loopback.

use super::harness::{Server, config_copy, setup};
use base64::Engine as _;
use kadeploy_clients::{Api, ClientEnv, ClientError};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use reqwest::Method;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Replaces the `authentication` section of `conf/server.conf` by `block`.
pub fn set_authentication(conf: &Path, block: &str) {
    let path = conf.join("server.conf");
    let text = std::fs::read_to_string(&path).expect("server.conf");
    let start = text
        .find("authentication:\n")
        .expect("authentication section");
    let end = text.find("security:\n").expect("security section");
    let text = format!("{}{block}{}", &text[..start], &text[end..]);
    std::fs::write(&path, text).expect("server.conf");
}

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = p.self_signed(&key).expect("CA certificate");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(p, key),
    }
}

/// A certificate for `cn` signed by `ca`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, cn: &str) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, cn);
    let cert = p.signed_by(&key, &ca.issuer).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

/// `GET path` over HTTPS with an optional client identity and extra headers: (status, body).
async fn https_get(
    port: u16,
    identity: Option<&(String, String)>,
    headers: &[(&str, String)],
    path: &str,
) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder().tls_danger_accept_invalid_certs(true);
    if let Some((cert, key)) = identity {
        b = b.identity(
            reqwest::Identity::from_pem(format!("{cert}\n{key}").as_bytes()).expect("identity"),
        );
    }
    let mut req = b
        .build()
        .expect("client")
        .get(format!("https://127.0.0.1:{port}{path}"));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let r = req.send().await.expect("request");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

fn client_env(dir: &Path, port: u16, user: &str, identity: Option<(&str, &str)>) -> ClientEnv {
    let cert = identity
        .map(|(c, k)| format!(", certificate: {c}, private_key: {k}"))
        .unwrap_or_default();
    let conf = format!(
        "default: t\nservers:\n  - {{name: t, hostname: 127.0.0.1, port: {port}, secure: true{cert}}}\n"
    );
    std::fs::write(dir.join("client.conf"), conf).expect("client.conf");
    ClientEnv {
        config_dir: dir.to_path_buf(),
        user: user.into(),
    }
}

#[test]
fn x509_client_certificates_authenticate_their_common_name() {
    let dir = setup("x509");
    let conf = config_copy(&dir, true);
    let good = ca("Kadeploy test CA");
    let other = ca("Another CA");
    std::fs::write(conf.join("ca.pem"), &good.pem).expect("ca.pem");
    set_authentication(
        &conf,
        "authentication:\n  certificate:\n    ca_cert: ca.pem\n    whitelist:\n      - 127.0.0.1\n",
    );
    let root = leaf(&good, "root");
    let alice = leaf(&good, "alice");
    let forged = leaf(&other, "root");
    for (name, (c, k)) in [("root", &root), ("forged", &forged)] {
        std::fs::write(dir.join(format!("{name}.pem")), c).expect("cert");
        std::fs::write(dir.join(format!("{name}.key")), k).expect("key");
    }
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        // The real client with the certificate of client.conf: authenticated as root (almighty, so it
        // may grant rights).
        let env = client_env(&dir, server.port, "root", Some(("root.pem", "root.key")));
        let api = Api::connect(&env, None).await.expect("connect");
        let body = serde_json::json!({"username": "bob", "nodes": ["node-1.sim.kadeploy"], "partitions": ["*"]});
        api.json(Method::POST, "/rights", &[], Some(&body))
            .await
            .expect("root's certificate grants rights");
        // The same certificate does not authenticate another user.
        let env = client_env(&dir, server.port, "alice", Some(("root.pem", "root.key")));
        let api = Api::connect(&env, None).await.expect("connect");
        match api.json(Method::GET, "/deployment", &[], None).await {
            Err(ClientError::Http(401, text)) => {
                assert!(text.contains("not issued to alice"), "{text}")
            }
            other => panic!("expected a 401, got {other:?}"),
        }
        // A certificate of another CA is refused with Kadeploy's 401.
        let env = client_env(&dir, server.port, "root", Some(("forged.pem", "forged.key")));
        let api = Api::connect(&env, None).await.expect("connect");
        let e = api
            .json(Method::GET, "/deployment", &[], None)
            .await
            .expect_err("foreign CA");
        assert_eq!(e.code(), 2, "{e}");
        let user = |u: &str| vec![("X-Kadeploy-User", u.to_string())];
        let (status, text) = https_get(server.port, Some(&forged), &user("root"), "/deployment").await;
        assert_eq!(status, 401, "{text}");
        assert!(
            text.starts_with("Unauthorized -- Authentication failed: invalid certificate: the certificate is not signed by the trusted CA"),
            "{text}"
        );
        // Without a user header, the certificate names the user (3.3 answers a 500 here, quirk 10).
        let (status, text) = https_get(server.port, Some(&alice), &[], "/deployment").await;
        assert_eq!((status, text.trim()), (200, "[]"));
        // Without any certificate nothing else is configured.
        let (status, text) = https_get(server.port, None, &user("root"), "/deployment").await;
        assert_eq!(status, 401, "{text}");
        assert!(text.contains("valid methods are cert"), "{text}");
        // Kadeploy's header (Base64 of the PEM certificate) proves nothing from a host that is not a
        // trusted front end: anybody can copy a public certificate (attacks_auth.rs has the accepted path).
        let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
        let mut h = user("alice");
        h.push(("X-Kadeploy-Certificate", b64(&alice.0)));
        let (status, text) = https_get(server.port, None, &h, "/deployment").await;
        assert_eq!(status, 401, "{text}");
        assert!(text.contains("trusted_front_ends"), "{text}");
        let mut h = user("root");
        h.push(("X-Kadeploy-Certificate", b64(&forged.0)));
        let (status, text) = https_get(server.port, None, &h, "/deployment").await;
        assert_eq!(status, 401, "{text}");
        h[1].1 = "not base64!".into();
        let (status, _) = https_get(server.port, None, &h, "/deployment").await;
        assert_eq!(status, 401);
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A listener on a free privileged port of 127.0.0.1 (the server only asks identds there; needs root).
pub fn bind_privileged() -> TcpListener {
    (900..1024)
        .find_map(|p| TcpListener::bind(("127.0.0.1", p)).ok())
        .expect("a free privileged port for the identd (the ident tests need root)")
}

/// A tiny identd: answers `USERID` for the client ports registered in `owners`, `ERROR : NO-USER`
/// otherwise; records the queries.
struct Identd {
    port: u16,
    owners: Arc<Mutex<BTreeMap<u16, String>>>,
    queries: Arc<Mutex<Vec<String>>>,
}

impl Identd {
    fn start() -> Identd {
        let listener = bind_privileged();
        let port = listener.local_addr().expect("addr").port();
        let owners: Arc<Mutex<BTreeMap<u16, String>>> = Arc::default();
        let queries: Arc<Mutex<Vec<String>>> = Arc::default();
        let (o, q) = (owners.clone(), queries.clone());
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let mut line = String::new();
                let mut reader = BufReader::new(&s);
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let line = line.trim().to_string();
                q.lock().unwrap().push(line.clone());
                let client: Option<u16> =
                    line.split(',').next().and_then(|p| p.trim().parse().ok());
                let answer = match client.and_then(|p| o.lock().unwrap().get(&p).cloned()) {
                    Some(user) => format!("{line} : USERID : UNIX : {user}\r\n"),
                    None => format!("{line} : ERROR : NO-USER\r\n"),
                };
                let _ = (&s).write_all(answer.as_bytes());
            }
        });
        Identd {
            port,
            owners,
            queries,
        }
    }
}

/// `GET /deployment` on a connection owned (for the identd) by `owner`, with an optional user header.
fn get_as(
    server: u16,
    identd: &Identd,
    owner: Option<&str>,
    header: Option<&str>,
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", server)).expect("connect");
    let local = s.local_addr().expect("addr").port();
    if let Some(o) = owner {
        identd.owners.lock().unwrap().insert(local, o.into());
    }
    let user = header
        .map(|u| format!("X-Kadeploy-User: {u}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "GET /deployment HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAccept: application/json\r\n{user}\r\n"
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    let status = buf
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[test]
fn ident_authenticates_the_owner_of_the_connection() {
    let dir = setup("ident");
    let conf = config_copy(&dir, false);
    let identd = Identd::start();
    set_authentication(
        &conf,
        &format!(
            "authentication:\n  ident:\n    port: {}\n    whitelist:\n      - 127.0.0.1\n",
            identd.port
        ),
    );
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    // No header: the user is the one identd names.
    assert_eq!(get_as(server.port, &identd, Some("bob"), None).0, 200);
    // Header and identd agree.
    assert_eq!(
        get_as(server.port, &identd, Some("bob"), Some("bob")).0,
        200
    );
    // Header and identd disagree.
    let (status, body) = get_as(server.port, &identd, Some("bob"), Some("root"));
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("not root"), "{body}");
    // identd knows nobody.
    let (status, body) = get_as(server.port, &identd, None, Some("root"));
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("NO-USER"), "{body}");
    // Queries are "<client port>, <server port>".
    let queries = identd.queries.lock().unwrap().clone();
    assert_eq!(queries.len(), 4, "{queries:?}");
    assert!(
        queries
            .iter()
            .all(|q| q.ends_with(&format!(", {}", server.port))),
        "{queries:?}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kaconsole_on_a_cluster_without_console_command_is_forbidden() {
    let dir = setup("noconsole");
    let conf = config_copy(&dir, false);
    let cluster = conf.join("sim-cluster.conf");
    let text = std::fs::read_to_string(&cluster).expect("cluster file");
    let start = text.find("  console:\n").expect("console section");
    let end = start + text[start..].find("localops:").expect("next section");
    std::fs::write(&cluster, format!("{}{}", &text[..start], &text[end..])).expect("write");
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    let root = super::harness::Http::new(server.port, "root");
    super::harness::seed_catalog(&root);
    let r = root.send("POST", "/console", &serde_json::json!({"node": "node-1"}));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        r.text(),
        "Forbidden -- This feature is disabled: no console command is given in configuration file.\n"
    );
    let conf_line = format!(
        "default: t\nservers:\n  - {{name: t, hostname: 127.0.0.1, port: {}, secure: false}}\n",
        server.port
    );
    std::fs::write(dir.join("client.conf"), conf_line).expect("client.conf");
    let env = ClientEnv {
        config_dir: dir.clone(),
        user: "root".into(),
    };
    // Kadeploy's exit code for an HTTP status other than 400/404/500.
    let code = kadeploy_clients::console::kaconsole(&["-m".into(), "node-1".into()], &env);
    assert_eq!(code, 2);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

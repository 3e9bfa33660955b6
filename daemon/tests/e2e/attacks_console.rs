//! Attacks on node consoles (security issue, item 7), against the real `kadeploy3d`: another connector
//! (no secret, a wrong one, the right one from another address, a second use of it) is refused and reads
//! nothing of the console; a console nobody attaches to expires; `limits/max_consoles` bounds them. At
//! commit f72496d the first connector, whoever it was, got the console, consoles lived until deleted, and
//! their number was unbounded (300 `POST /console` reached EMFILE), so each test below failed there.

use super::attacks_conn::server_with;
use super::harness::Http;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// What the console relay of a refused connector reads.
const REFUSED: &str = "[Kaconsole] refused";

fn grant_root(h: &Http) {
    let r = h.send(
        "POST",
        "/rights",
        &json!({"nodes": ["*"], "partitions": ["*"], "username": "root"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

fn open_console(h: &Http, node: &str) -> Value {
    let r = h.send("POST", "/console", &json!({"node": node}));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn port_of(created: &Value) -> u16 {
    let uri = created["resources"]["console"]
        .as_str()
        .expect("console uri");
    uri.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {uri}"))
}

/// Connects from `source` (a loopback address) to the console at `port`, sends `first`, and returns all
/// it reads until the server closes (at most 15 s).
fn connect_from(source: &str, port: u16, first: &[u8]) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tcp = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(format!("{source}:0").parse().expect("address"))
            .expect("bind");
        let addr = format!("127.0.0.1:{port}").parse().expect("address");
        socket.connect(addr).await.expect("connect")
    });
    let mut tcp = tcp.into_std().expect("std stream");
    tcp.set_nonblocking(false).expect("blocking");
    read_after(&mut tcp, first)
}

/// Sends `first` on `tcp`, then reads until the server closes (at most 15 s).
fn read_after(tcp: &mut TcpStream, first: &[u8]) -> String {
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let _ = tcp.write_all(first);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        match tcp.read(&mut buf) {
            Ok(0) => return String::from_utf8_lossy(&got).into_owned(),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return String::from_utf8_lossy(&got).into_owned(),
        }
    }
    panic!(
        "the console connection stayed open; it read {:?}",
        String::from_utf8_lossy(&got)
    );
}

/// Reads from `s` until the text read contains `needle` (panics after 10 s).
fn read_until(s: &mut TcpStream, needle: &str) -> String {
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains(needle) {
        match s.read(&mut buf) {
            Ok(0) => panic!(
                "closed before {needle:?}: {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("no {needle:?} ({e}): {:?}", String::from_utf8_lossy(&got)),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The server with a 2 s wait for the secret.
fn console_server(name: &str) -> (std::path::PathBuf, super::harness::Server) {
    server_with(name, false, "limits:\n  header_timeout: 2\n", &[])
}

#[test]
fn console_refuses_connectors_without_its_secret() {
    let (dir, server) = console_server("console-secret");
    let root = Http::new(server.port, "root");
    grant_root(&root);
    let created = open_console(&root, "node-1");
    let id = created["wid"].as_str().expect("wid").to_string();
    let port = port_of(&created);

    // Connectors without the secret read the refusal and nothing of the console.
    let none = connect_from("127.0.0.1", port, b"");
    assert!(
        none.starts_with(REFUSED) && !none.contains("login"),
        "{none:?}"
    );
    let typed = connect_from("127.0.0.1", port, b"root\n");
    assert!(
        typed.starts_with(REFUSED) && !typed.contains("login"),
        "{typed:?}"
    );
    let wrong = connect_from(
        "127.0.0.1",
        port,
        format!("{}\n", "0".repeat(64)).as_bytes(),
    );
    assert!(
        wrong.starts_with(REFUSED) && !wrong.contains("login"),
        "{wrong:?}"
    );

    // The secret is in the POST reply only.
    let secret = created["secret"]
        .as_str()
        .expect("the reply carries the secret");
    assert_eq!(secret.len(), 64, "{created}");
    let seen = root.get(&format!("/console/{id}")).text();
    assert!(!seen.contains(secret), "{seen}");
    let listed = root.get("/console").text();
    assert!(!listed.contains(secret), "{listed}");

    // The requester's client, with the secret, gets the console.
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.write_all(format!("{secret}\n").as_bytes())
        .expect("secret");
    let banner = read_until(&mut tcp, "login: ");
    assert!(banner.contains("node-1"), "{banner}");
    tcp.write_all(b"hello console\n").expect("write");
    read_until(&mut tcp, "hello console\n");
    // The secret works once.
    let again = connect_from("127.0.0.1", port, format!("{secret}\n").as_bytes());
    assert!(
        again.starts_with(REFUSED) && !again.contains("login"),
        "{again:?}"
    );
    let r = root.request("DELETE", &format!("/console/{id}"), &[], None);
    assert_eq!(r.status, 200, "{}", r.text());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn console_refuses_other_addresses() {
    let (dir, server) = console_server("console-address");
    let root = Http::new(server.port, "root");
    grant_root(&root);
    let created = open_console(&root, "node-1");
    let port = port_of(&created);
    // Another host (127.0.0.2 on loopback), even with the secret, is closed at once and reads nothing.
    let secret = created["secret"].as_str().unwrap_or_default();
    let elsewhere = connect_from("127.0.0.2", port, format!("{secret}\n").as_bytes());
    assert!(elsewhere.is_empty(), "{elsewhere:?}");
    // The requester still can attach.
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.write_all(format!("{secret}\n").as_bytes())
        .expect("secret");
    read_until(&mut tcp, "login: ");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unattached_consoles_expire() {
    let (dir, server) = server_with(
        "console-expire",
        false,
        "limits:\n  console_timeout: 1\n",
        &[],
    );
    let root = Http::new(server.port, "root");
    grant_root(&root);
    let created = open_console(&root, "node-1");
    let id = created["wid"].as_str().expect("wid").to_string();
    let port = port_of(&created);
    let start = Instant::now();
    loop {
        let r = root.get(&format!("/console/{id}"));
        if r.status == 400 {
            assert_eq!(r.code(), Some(1), "{}", r.text());
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the unattached console did not expire"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(root.get("/console").json(), json!([]));
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the expired console still listens"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn consoles_beyond_max_consoles_are_refused() {
    let (dir, server) = server_with("console-max", false, "limits:\n  max_consoles: 3\n", &[]);
    let root = Http::new(server.port, "root");
    grant_root(&root);
    let ids: Vec<String> = (1..=3)
        .map(|i| {
            open_console(&root, &format!("node-{i}"))["wid"]
                .as_str()
                .expect("wid")
                .to_string()
        })
        .collect();
    let r = root.send("POST", "/console", &json!({"node": "node-4"}));
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("max_consoles"), "{}", r.text());
    assert_eq!(
        root.get("/console").json().as_array().map(Vec::len),
        Some(3)
    );
    let r = root.request("DELETE", &format!("/console/{}", ids[0]), &[], None);
    assert_eq!(r.status, 200, "{}", r.text());
    open_console(&root, "node-4");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

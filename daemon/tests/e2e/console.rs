//! Consoles (spec §3.8, §2.8): `POST /console` on a simulated node, the TCP relay (banner, echo) after
//! the console's secret, the console objects, `DELETE`, rights (error 6), unknown nodes (error 2), and
//! `kaconsole3`'s session.

use super::harness::{Http, Server, config_copy, setup};
use kadeploy_clients::{ClientEnv, console};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Reads from `s` until the text read contains `needle` (panics after 10 s).
fn read_until(s: &mut TcpStream, needle: &str) -> String {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains(needle) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no {needle:?} in {:?}",
            String::from_utf8_lossy(&got)
        );
        match s.read(&mut buf) {
            Ok(0) => panic!(
                "closed before {needle:?}: {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading the console: {e}"),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn port_of(uri: &str) -> u16 {
    uri.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {uri}"))
}

#[test]
fn console_relays_the_node_console_over_tcp() {
    let dir = setup("console");
    let conf = config_copy(&dir, false);
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    let root = Http::new(server.port, "root");
    let r = root.send(
        "POST",
        "/rights",
        &json!({"nodes": ["*"], "partitions": ["*"], "username": "root"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    let r = root.send("POST", "/console", &json!({"node": "node-1"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let created = r.json();
    let id = created["wid"].as_str().expect("wid").to_string();
    assert!(id.starts_with("C-"), "{created}");
    assert_eq!(created["resources"]["resource"], format!("/console/{id}/"));
    assert_eq!(
        created["resources"]["error"],
        format!("/console/{id}/error")
    );
    let uri = created["resources"]["console"].as_str().expect("console");
    assert!(uri.starts_with("tcp://"), "{uri}");
    let secret = created["secret"].as_str().expect("secret");

    // The client sends the console's secret first (see attacks_console for the refusals).
    let mut tcp = TcpStream::connect(("127.0.0.1", port_of(uri))).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    tcp.write_all(format!("{secret}\n").as_bytes())
        .expect("secret");
    let banner = read_until(&mut tcp, "login: ");
    assert!(banner.contains("node-1"), "{banner}");
    tcp.write_all(b"hello console\n").expect("write");
    read_until(&mut tcp, "hello console\n");

    // A second client is turned away while the first is attached: the secret was for one use.
    let mut second = TcpStream::connect(("127.0.0.1", port_of(uri))).expect("connect");
    second
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    second
        .write_all(format!("{secret}\n").as_bytes())
        .expect("secret");
    read_until(&mut second, "[Kaconsole] refused");

    let list = root.get("/console").json();
    let item = list
        .as_array()
        .and_then(|l| l.iter().find(|c| c["id"] == id.as_str()))
        .unwrap_or_else(|| panic!("{id} not in {list}"));
    assert_eq!(item["node"], "node-1.sim.kadeploy");
    assert_eq!(item["user"], "root");
    assert_eq!(item["attached"], true);
    assert_eq!(item["error"], false);
    assert_eq!(item["console_uri"], uri);
    let one = root.get(&format!("/console/{id}"));
    assert_eq!(one.status, 200, "{}", one.text());
    assert_eq!(one.json()["id"], id.as_str());
    let err = root.get(&format!("/console/{id}/error"));
    assert_eq!(err.status, 200, "{}", err.text());

    // Others see the reduced object and cannot close it.
    let bob = Http::new(server.port, "bob");
    let seen = bob.get(&format!("/console/{id}")).json();
    assert!(seen.get("console_uri").is_none(), "{seen}");
    assert_eq!(
        bob.request("DELETE", &format!("/console/{id}"), &[], None)
            .status,
        403
    );

    let r = root.request("DELETE", &format!("/console/{id}"), &[], None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"wid": id}));
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest);
    let gone = root.get(&format!("/console/{id}"));
    assert_eq!(
        (gone.status, gone.code()),
        (400, Some(1)),
        "{}",
        gone.text()
    );
    assert_eq!(root.get("/console").json(), json!([]));

    // Rights and node names.
    let r = bob.send("POST", "/console", &json!({"node": "node-1"}));
    assert_eq!((r.status, r.code()), (400, Some(6)), "{}", r.text());
    let r = root.send("POST", "/console", &json!({"node": "nosuchnode-1"}));
    assert_eq!((r.status, r.code()), (400, Some(2)), "{}", r.text());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kaconsole_session_pipes_input_and_closes_the_console() {
    let dir = setup("kaconsole");
    let conf = config_copy(&dir, false);
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    let root = Http::new(server.port, "root");
    let r = root.send(
        "POST",
        "/rights",
        &json!({"nodes": ["*"], "partitions": ["*"], "username": "root"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = format!(
        "default: t\nservers:\n  - {{name: t, hostname: 127.0.0.1, port: {}, secure: false}}\n",
        server.port
    );
    std::fs::write(dir.join("client.conf"), text).expect("client.conf");
    let env = ClientEnv {
        config_dir: dir.clone(),
        user: "root".into(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut out = Vec::new();
    let result = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(30),
            console::session(&env, None, "node-2", &b"echo me\n"[..], &mut out),
        )
        .await
    });
    assert!(
        matches!(result, Ok(Ok(()))),
        "{result:?}: {}",
        String::from_utf8_lossy(&out)
    );
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("node-2 login: "), "{out}");
    assert!(out.contains("echo me\n"), "{out}");
    assert_eq!(
        root.get("/console").json(),
        json!([]),
        "the console is closed"
    );
    let env = ClientEnv {
        config_dir: dir.clone(),
        user: "bob".into(),
    };
    let r = rt.block_on(console::session(&env, None, "node-2", &b""[..], Vec::new()));
    assert_eq!(r.map_err(|e| e.code()).err(), Some(6));
    let _ = std::fs::remove_dir_all(&dir);
}

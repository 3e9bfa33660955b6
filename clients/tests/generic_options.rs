//! The generic options that only read the server (`-v`, `-I`, `-M`, `-H`) run through the real client
//! binaries against a small loopback HTTP server: their output is Kadeploy's.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

/// Serves `/version` and `/info` (one request per connection) until the test process ends.
fn fake_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(&conn);
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let (kind, body) = if first.starts_with("GET /info") {
                (
                    "application/json",
                    r#"{"pxe":"PXElinux","automata":{"c1":{"BroadcastEnv":[{"name":"BroadcastEnvKastafior","retries":1,"timeout":200}]}},"supported_fs":{"c1":["ext4"]},"vars":["KADEPLOY_CLUSTER"]}"#.to_string(),
                )
            } else {
                ("text/plain", "3.3.11\n".to_string())
            };
            let _ = write!(
                &conn,
                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// A configuration directory naming server `a` (the fake) and `b` (nobody listens).
fn config(port: u16) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kadeploy-generic-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let dead = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    std::fs::write(
        dir.join("client.conf"),
        format!(
            "default: a\nservers:\n  - {{name: a, hostname: 127.0.0.1, port: {port}, secure: false, auth_headers_prefix: X-Kadeploy-}}\n  \
             - {{name: b, hostname: localhost, port: {dead}, secure: false, auth_headers_prefix: X-Kadeploy-}}\n"
        ),
    )
    .expect("client.conf");
    dir
}

fn run(bin: &str, dir: &PathBuf, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin)
        .args(args)
        .env("KADEPLOY3_CONFIG_DIR", dir)
        .env_remove("KADEPLOY3_VERSION")
        .output()
        .expect("client runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Before: `-v` was a workflow-client option only, `-I`, `-M` and `-H` did not exist (exit 1).
#[test]
fn version_info_multi_server_and_http_debug() {
    let port = fake_server();
    let dir = config(port);
    let (code, out, err) = run(env!("CARGO_BIN_EXE_kaenv3"), &dir, &["-v"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "Kadeploy version: 3.3.11\n"),
        "{err}"
    );
    let (code, out, _) = run(env!("CARGO_BIN_EXE_kastat3"), &dir, &["-I"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "Kadeploy server configuration:\n  Custom PXE boot method: PXElinux\n  Automata configuration:\n    c1:\n      \
         BroadcastEnv: BroadcastEnvKastafior,1,200\n  Deployment environment:\n    Supported file systems:\n      c1: ext4\n    \
         Variables exported to custom scripts:\n      KADEPLOY_CLUSTER\n"
    );
    let (code, out, _) = run(env!("CARGO_BIN_EXE_kapower3"), &dir, &["-M", "-v"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "The localhost server is unreachable\n(127.0.0.1) Kadeploy version: 3.3.11\n"
    );
    let (code, _, err) = run(env!("CARGO_BIN_EXE_kanodes3"), &dir, &["-S", "b", "-v"]);
    assert_eq!(
        (code, err.trim()),
        (1, "The localhost server is unreachable")
    );
    let (code, out, _) = run(env!("CARGO_BIN_EXE_karights3"), &dir, &["-H", "-v"]);
    assert_eq!(code, 0);
    assert!(out.contains("<- \"GET /version HTTP/1.1\\r\\n"), "{out}");
    assert!(
        out.contains("x-kadeploy-user: ") || out.contains("X-Kadeploy-User: "),
        "{out}"
    );
    assert!(out.contains("-> \"HTTP/1.1 200 OK\\r\\n\""), "{out}");
    assert!(out.contains("-> \"3.3.11\\n\"\nread 7 bytes\n"), "{out}");
    assert!(out.ends_with("Kadeploy version: 3.3.11\n"), "{out}");
    let (_, out, _) = run(
        env!("CARGO_BIN_EXE_karights3"),
        &dir,
        &["-H", "--no-debug-http", "-v"],
    );
    assert_eq!(out, "Kadeploy version: 3.3.11\n");
    let _ = std::fs::remove_dir_all(&dir);
}

//! Kadeploy 3.3's generic and workflow client options against the real `kadeploy3d`: `--dry-run` (the
//! server's empty text/plain answer), Ctrl-C deleting the running workflow, `-M` on every server of
//! client.conf, and `--password` (HTTP Basic).

use super::auth::set_authentication;
use super::harness::{Server, config_copy, setup};
use super::{client, get, lines, s, start};
use kadeploy_clients::workflow::{self, Interrupt};
use kadeploy_clients::{ClientEnv, tools};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Grants root every right and records `debian12` on the server of `env`.
fn prepare(dir: &Path, root: &ClientEnv, extra: &[&str]) {
    let mut args = extra.to_vec();
    args.extend(["-a", "-u", "root", "-m", "*", "-p", "*"]);
    assert_eq!(tools::karights(&s(&args), root), 0);
    let env = env_file(dir, "debian12");
    let mut args = extra.to_vec();
    args.extend(["-a", env.to_str().unwrap_or_default()]);
    assert_eq!(tools::kaenv(&s(&args), root), 0);
}

fn env_file(dir: &Path, name: &str) -> PathBuf {
    let env = dir.join(format!("{name}.yml"));
    std::fs::write(
        &env,
        format!(
            "name: {name}\nversion: 1\nvisibility: shared\nos: linux\nfilesystem: ext4\n\
        image: {{file: '{}', kind: tar, compression: gzip}}\nboot: {{kernel: /vmlinuz}}\n",
            crate::harness::image_ref()
        ),
    )
    .expect("env");
    env
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Before: the clients had no `--dry-run` handling and failed with "invalid JSON from the server: EOF"
/// (exit 1) on the server's empty text/plain answer.
#[test]
fn dry_run_is_checked_by_the_server_and_changes_nothing() {
    let dir = setup("dryrun");
    let server = start(&dir);
    let root = client(&dir, server.port, "root");
    prepare(&dir, &root, &[]);
    let rt = runtime();
    assert_eq!(
        workflow::deploy(&s(&["--dry-run", "-e", "debian12", "-m", "node-1"]), &root),
        0
    );
    assert_eq!(
        workflow::power(&s(&["--dry-run", "--on", "-m", "node-2"]), &root),
        0
    );
    let (status, list) = rt.block_on(get(server.port, "root", "/deployment"));
    assert_eq!(
        (status, list.trim()),
        (200, "[]"),
        "no deployment was started"
    );
    let (_, states) = rt.block_on(get(server.port, "root", "/nodes?nodes=node-1.sim.kadeploy"));
    assert!(!states.contains("deployed"), "{states}");
    // The server still checks the request: an unknown node is error 2.
    assert_eq!(
        workflow::deploy(
            &s(&["--dry-run", "-e", "debian12", "-m", "nosuchnode"]),
            &root
        ),
        2
    );
    // --no-dry-run undoes it.
    let env = env_file(&dir, "debian13");
    let path = env.to_str().unwrap_or_default();
    assert_eq!(tools::kaenv(&s(&["--dry-run", "-a", path]), &root), 0);
    assert_ne!(
        rt.block_on(get(server.port, "root", "/environments?name=debian13"))
            .0,
        200,
        "a dry run adds nothing"
    );
    assert_eq!(
        tools::kaenv(&s(&["--dry-run", "--no-dry-run", "-a", path]), &root),
        0
    );
    assert_eq!(
        rt.block_on(get(server.port, "root", "/environments?name=debian13"))
            .0,
        200
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Resolves once `path` exists (what a user pressing Ctrl-C after the workflow started does).
fn when_exists(path: PathBuf) -> Interrupt {
    Box::pin(async move {
        let start = Instant::now();
        while !path.exists() && start.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// Before: Ctrl-C killed the client and left the workflow running on the server (no DELETE); in-process
/// there was no interruption at all and the client waited for the end (exit 0, every node in `-o`).
#[test]
fn ctrl_c_deletes_the_running_workflow() {
    let dir = setup("ctrlc");
    let server = start(&dir);
    let root = client(&dir, server.port, "root");
    prepare(&dir, &root, &[]);
    let nodes = dir.join("nodes");
    let all: Vec<String> = (1..=300)
        .map(|i| format!("node-{i}.sim.kadeploy"))
        .collect();
    std::fs::write(&nodes, all.join("\n")).expect("nodes");
    let (ok, wid) = (dir.join("ok"), dir.join("wid"));
    let args = s(&[
        "-e",
        "debian12",
        "-f",
        nodes.to_str().unwrap_or_default(),
        "-o",
        ok.to_str().unwrap_or_default(),
        "--write-workflow-id",
        wid.to_str().unwrap_or_default(),
    ]);
    assert_eq!(
        workflow::deploy_with(&args, &root, when_exists(wid.clone())),
        1
    );
    assert!(lines(&ok).is_empty(), "the client stopped before the end");
    let wid = std::fs::read_to_string(&wid).expect("wid");
    let rt = runtime();
    let (status, _) = rt.block_on(get(server.port, "root", &format!("/deployment/{wid}")));
    assert_ne!(status, 200, "the workflow was deleted");
    let (_, list) = rt.block_on(get(server.port, "root", "/deployment"));
    assert!(!list.contains(&wid), "{list}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Before: `-M` was an unknown option (exit 1).
#[test]
fn multi_server_runs_on_every_server_of_client_conf() {
    let (da, db) = (setup("multi-a"), setup("multi-b"));
    let (a, b) = (start(&da), start(&db));
    // A third server nobody listens on: dropped with "The 127.0.0.1 server is unreachable".
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = closed.local_addr().expect("addr").port();
    drop(closed);
    let conf = format!(
        "default: a\nservers:\n  - {{name: a, hostname: 127.0.0.1, port: {}, secure: true}}\n  \
         - {{name: b, hostname: 127.0.0.1, port: {}, secure: true}}\n  \
         - {{name: c, hostname: 127.0.0.1, port: {dead}, secure: true}}\n",
        a.port, b.port
    );
    std::fs::write(da.join("client.conf"), conf).expect("client.conf");
    let root = ClientEnv {
        config_dir: da.clone(),
        user: "root".into(),
    };
    prepare(&da, &root, &["-M"]);
    let rt = runtime();
    for port in [a.port, b.port] {
        let (status, rights) = rt.block_on(get(port, "root", "/rights/root"));
        assert_eq!(status, 200, "rights on the server of port {port}: {rights}");
        let (status, _) = rt.block_on(get(port, "root", "/environments?name=debian12"));
        assert_eq!(status, 200, "the environment on the server of port {port}");
    }
    assert_eq!(tools::kaenv(&s(&["-M", "-v"]), &root), 0);
    // Both servers know node-1: the first one takes it.
    assert_eq!(
        workflow::deploy(
            &s(&["-M", "-e", "debian12", "-m", "node-1.sim.kadeploy"]),
            &root
        ),
        0
    );
    let state = |port| {
        rt.block_on(get(port, "root", "/nodes?nodes=node-1.sim.kadeploy"))
            .1
    };
    assert!(state(a.port).contains("deployed"), "{}", state(a.port));
    assert!(!state(b.port).contains("deployed"), "{}", state(b.port));
    // A node no server knows.
    assert_eq!(
        workflow::deploy(&s(&["-M", "-e", "debian12", "-m", "nosuchnode"]), &root),
        1
    );
    drop((a, b));
    let _ = std::fs::remove_dir_all(&da);
    let _ = std::fs::remove_dir_all(&db);
}

/// Before: no client could send credentials: a server with HTTP Basic only answered 401 (exit 2).
#[test]
fn password_is_sent_as_http_basic_credentials() {
    let dir = setup("basic");
    let conf = config_copy(&dir, true);
    set_authentication(
        &conf,
        "authentication:\n  http_basic:\n    dbfile: htpasswd\n    whitelist:\n      - 127.0.0.1\n",
    );
    std::fs::write(conf.join("htpasswd"), "alice:s3cret\n").expect("htpasswd");
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    let alice = client(&dir, server.port, "alice");
    assert_eq!(
        tools::kaenv(&s(&["-l"]), &alice),
        2,
        "401 without credentials"
    );
    assert_eq!(tools::kaenv(&s(&["-l", "--password", "wrong"]), &alice), 2);
    assert_eq!(tools::kaenv(&s(&["-l", "--password", "s3cret"]), &alice), 0);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Attacks on `kadeploy3d`'s SQLite store (security issue, items 2 and 3), against the real server: a
//! second server on a database in use, database files made immutable, removed or replaced under a running
//! server. Each test says what happened at commit f72496d.
//!
//! `KADEPLOY3D_BIN` runs them against another build of `kadeploy3d` (e.g. the one of f72496d, to see them
//! fail there). The immutable-file test needs root and `chattr` (e2fsprogs) on a filesystem supporting it.

use super::harness::{Http, config_copy, debian12, seed_catalog, setup};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The server binary under test.
fn bin() -> PathBuf {
    std::env::var_os("KADEPLOY3D_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kadeploy3d")))
}

/// A `kadeploy3d` whose output (its log is on stdout) is collected line by line; SIGKILLed on drop.
struct Logged {
    child: Child,
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Logged {
    fn start(conf: &Path, db: &Path, extra: &[&str]) -> Logged {
        let mut child = Command::new(bin())
            .arg("-c")
            .arg(conf)
            .args(["--bind", "127.0.0.1:0", "--database"])
            .arg(db)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kadeploy3d starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        for stream in [
            Box::new(out) as Box<dyn std::io::Read + Send>,
            Box::new(err),
        ] {
            let (lines, port_tx) = (lines.clone(), port_tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if line.contains("listening on") {
                        let port = line.trim().rsplit(':').next().and_then(|p| p.parse().ok());
                        let _ = port_tx.send(port);
                    }
                    lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        match port_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(port)) => Logged { child, port, lines },
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "kadeploy3d did not start: {:?}",
                    lines.lock().map(|l| l.clone())
                );
            }
        }
    }

    /// Output lines containing `needle`.
    fn count(&self, needle: &str) -> usize {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits at most `limit` for `n` lines containing `needle`.
    fn wait_for(&self, needle: &str, n: usize, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.count(needle) >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn output(&self) -> String {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Files made immutable with `chattr +i`; made mutable again on drop, also when the test fails.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn set(paths: Vec<PathBuf>) -> Immutable {
        let mut guard = Immutable(Vec::new());
        for p in paths {
            let out = Command::new("chattr").arg("+i").arg(&p).output();
            match out {
                Ok(o) if o.status.success() => guard.0.push(p),
                Ok(o) => panic!(
                    "chattr +i {}: {} (this test needs root and a filesystem with the immutable flag)",
                    p.display(),
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
                Err(e) => panic!("cannot run chattr ({e}): install e2fsprogs"),
            }
        }
        guard
    }

    fn clear(&mut self) {
        for p in self.0.drain(..) {
            let _ = Command::new("chattr").arg("-i").arg(&p).status();
        }
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The description of a small environment called `name`.
fn env(name: &str) -> Value {
    let mut e = debian12();
    e["name"] = json!(name);
    e
}

fn add_env(h: &Http, name: &str) -> super::harness::Resp {
    h.send("POST", "/environments", &json!({"environment": env(name)}))
}

/// `add_env`, with the server's fate in the failure when no answer comes.
fn add_env_or_death(server: &mut Logged, name: &str) -> super::harness::Resp {
    let (port, name) = (server.port, name.to_string());
    match std::thread::spawn(move || add_env(&Http::new(port, "root"), &name)).join() {
        Ok(r) => r,
        Err(_) => {
            std::thread::sleep(Duration::from_millis(500));
            let fate = match server.child.try_wait() {
                Ok(Some(status)) => format!("it ended ({status})"),
                _ => "it still runs".to_string(),
            };
            panic!(
                "no answer from the server: {fate}; its output: {}",
                server.output()
            )
        }
    }
}

/// Names of the environments the server lists.
fn env_names(h: &Http) -> Vec<String> {
    let r = h.get("/environments");
    assert_eq!(r.status, 200, "{}", r.text());
    let mut names: Vec<String> = r
        .json()
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The database files that exist among `db`, `db-wal`, `db-shm`.
fn db_files(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|s| PathBuf::from(format!("{}{s}", db.display())))
        .filter(|p| p.exists())
        .collect()
}

/// Item 2: a second `kadeploy3d` on the database of a running one refuses to start, naming the first
/// one's pid, and the first one's deployment is untouched (its nodes stay `deploying`, it ends `done`
/// with no `Aborted` log row).
///
/// At f72496d the second server started: it recorded the first one's running workflow and its nodes as
/// `aborted` (one failed log row per node) and would accept a deployment of those nodes.
#[test]
fn second_server_on_a_database_in_use_refuses_to_start() {
    let dir = setup("store-second");
    let conf = config_copy(&dir, false);
    let db = dir.join("db.sqlite");
    let first = Logged::start(&conf, &db, &["--time-scale", "20"]);
    let h = Http::new(first.port, "root");
    seed_catalog(&h);
    let r = h.send(
        "POST",
        "/deployment",
        &json!({"environment": {"kind": "database", "user": "root", "name": "debian12", "version": 1},
                "nodes": super::harness::nodes(1..=300)}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let wid = r.json()["wid"].as_str().expect("wid").to_string();
    let resource = format!("/deployment/{wid}");
    let before = h.get("/nodes?nodes=node-1.sim.kadeploy").text();
    assert!(before.contains("deploying"), "{before}");

    let started = Instant::now();
    let mut second = Command::new(bin())
        .arg("-c")
        .arg(&conf)
        .args(["--bind", "127.0.0.1:0", "--database"])
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the second kadeploy3d runs");
    let status = loop {
        if let Ok(Some(s)) = second.try_wait() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = second.kill();
            let _ = second.wait();
            panic!("the second kadeploy3d on the same database is still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut e) = second.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    assert!(!status.success(), "the second server must fail: {stderr}");
    assert!(
        stderr.contains("is in use by another process")
            && stderr.contains(&format!("(pid {})", first.child.id())),
        "the message names the database and the first server: {stderr}"
    );

    let w = h.get(&resource).json();
    assert_eq!(
        w["done"], false,
        "the deployment ended before the second server was tried: {w}"
    );
    assert_eq!(
        h.get("/nodes?nodes=node-1.sim.kadeploy").text(),
        before,
        "the first server's node state is untouched"
    );
    let w = h.wait_done(&resource, Duration::from_secs(300));
    assert_eq!(w["error"], false, "{w}");
    let csv = h
        .get(&format!("/stats?wid={wid}&fields=hostname&fields=success"))
        .text();
    assert_eq!(
        csv.lines().count(),
        300,
        "one log row per node, no aborted rows: {csv}"
    );
    assert!(csv.lines().all(|l| l.ends_with(",true")), "{csv}");
    drop(first);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 3: the database files made immutable while the server runs: a write is a logged error (one line
/// naming the database and the system's reason) and a failed request (500, error 20), the server stays up
/// and keeps answering reads, writes work again once the files are writable, and a restart shows exactly
/// the writes that were acknowledged.
///
/// At f72496d the server died by SIGBUS on the write (the WAL index is a shared memory mapping of the
/// `-shm` file), with nothing logged.
#[test]
fn immutable_database_files_fail_requests_with_a_logged_error() {
    let dir = setup("store-immutable");
    let conf = config_copy(&dir, false);
    let db = dir.join("db.sqlite");
    let mut server = Logged::start(&conf, &db, &[]);
    let h = Http::new(server.port, "root");
    seed_catalog(&h);

    let mut frozen = Immutable::set(db_files(&db));
    let r = add_env_or_death(&mut server, "refused");
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.code(), Some(20), "DATABASE_ERROR");
    let text = r.text();
    assert!(
        text.contains(&db.display().to_string()) && text.contains("Operation not permitted"),
        "the answer names the database and the reason: {text}"
    );
    assert!(
        server.wait_for("ERROR", 1, Duration::from_secs(10)),
        "logged: {}",
        server.output()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server.count("ERROR"),
        1,
        "one log line: {}",
        server.output()
    );
    assert!(server.alive(), "the server survives: {}", server.output());
    assert_eq!(h.get("/version").status, 200);
    assert_eq!(env_names(&h), ["debian12"], "reads still work");

    frozen.clear();
    let r = add_env(&h, "accepted");
    assert_eq!(r.status, 200, "writable again: {}", r.text());
    server.kill();

    let server = Logged::start(&conf, &db, &[]);
    let h = Http::new(server.port, "root");
    assert_eq!(env_names(&h), ["accepted", "debian12"]);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 3: the database files removed while the server runs: the periodic check logs it without any
/// request, then every request touching the database fails (500, error 20, "was removed") instead of
/// writing to a file nobody will ever read again.
///
/// At f72496d the writes "succeeded" (200) into the deleted files and were gone at the next start, with
/// nothing logged.
#[test]
fn removed_database_is_reported_and_writes_fail() {
    let dir = setup("store-removed");
    let conf = config_copy(&dir, false);
    let db = dir.join("db.sqlite");
    let mut server = Logged::start(&conf, &db, &[]);
    let h = Http::new(server.port, "root");
    seed_catalog(&h);
    for f in db_files(&db) {
        std::fs::remove_file(&f).expect("remove");
    }
    assert!(
        server.wait_for("was removed", 1, Duration::from_secs(30)),
        "the periodic check reports it: {}",
        server.output()
    );
    let r = add_env(&h, "lost");
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.code(), Some(20));
    assert!(r.text().contains("was removed"), "{}", r.text());
    assert_eq!(h.get("/environments").status, 500, "reads fail too");
    assert!(
        server.wait_for("was removed", 3, Duration::from_secs(10)),
        "{}",
        server.output()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server.count("was removed"),
        3,
        "one line from the check, one per request: {}",
        server.output()
    );
    assert!(server.alive());
    server.kill();

    let server = Logged::start(&conf, &db, &[]);
    let h = Http::new(server.port, "root");
    assert!(
        !env_names(&h).contains(&"lost".to_string()),
        "the refused write is nowhere"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 3: the database file replaced (renamed over) while the server runs: writes fail with "was
/// replaced", and the replacement is what the next start reads.
///
/// At f72496d the server kept writing to the old, unlinked file and answered 200: the next start read the
/// replacement, without the acknowledged write.
#[test]
fn replaced_database_is_reported_and_writes_fail() {
    let dir = setup("store-replaced");
    let conf = config_copy(&dir, false);
    let db = dir.join("db.sqlite");
    let mut server = Logged::start(&conf, &db, &[]);
    let h = Http::new(server.port, "root");
    seed_catalog(&h);
    let other = dir.join("other.sqlite");
    std::fs::copy(&db, &other).expect("copy");
    std::fs::rename(&other, &db).expect("rename over the database");
    let r = add_env(&h, "lost");
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.code(), Some(20));
    assert!(r.text().contains("was replaced"), "{}", r.text());
    assert!(
        server.wait_for("was replaced", 1, Duration::from_secs(10)),
        "{}",
        server.output()
    );
    assert!(server.alive());
    server.kill();

    let server = Logged::start(&conf, &db, &[]);
    let h = Http::new(server.port, "root");
    assert!(!env_names(&h).contains(&"lost".to_string()));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Signals of the real process. SIGHUP reloads `server.conf`, `clusters.conf` and the cluster files (a bad
//! configuration is refused and the running one stays) and reopens the log files; SIGTERM refuses new
//! workflows with 503, lets running ones end within `--shutdown-grace`, cancels the others, and exits 0
//! with nothing left `running` in the database. Before, SIGHUP killed the server, SIGTERM killed it
//! leaving its workflows `running` until the next start, there was no PID file, and `logs/logfile` and
//! `logs/debugfile` were never written.

use super::harness::{Http, nodes, seed_catalog};
use super::process::{Daemon, config, edit, wait_for};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

fn deploy(h: &Http, list: Vec<String>) -> (String, String) {
    let r = h.send(
        "POST",
        "/deployment",
        &json!({"environment": {"kind": "database", "user": "root", "name": "debian12", "version": 1},
                "nodes": list}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let wid = r.json()["wid"].as_str().expect("wid").to_string();
    let resource = r.json()["resources"]["resource"]
        .as_str()
        .expect("resource")
        .to_string();
    (wid, resource)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Kadeploy's log file record of a deployed node (`Debug::Logger#dump_to_file`).
fn assert_record(line: &str, wid: &str) {
    let f: Vec<&str> = line.split(',').collect();
    assert_eq!(f.len(), 21, "{line}");
    assert_eq!(f[0], wid);
    assert!(
        f[1].starts_with("node-") && f[1].ends_with(".sim.kadeploy"),
        "{line}"
    );
    assert_eq!(f[2], "root");
    assert!(f[3].starts_with("SetDeploymentEnv"), "{line}");
    assert!(f[4].starts_with("BroadcastEnv"), "{line}");
    assert!(f[5].starts_with("BootNewEnv"), "{line}");
    assert!(f[6..12].iter().all(|n| n.parse::<u32>().is_ok()), "{line}");
    assert!(
        f[12].parse::<i64>().is_ok_and(|s| s > 1_600_000_000),
        "{line}"
    );
    assert!(f[13..16].iter().all(|n| n.parse::<u32>().is_ok()), "{line}");
    // Kadeploy's field order; `md5` is the image's checksum (empty before checksums were computed).
    let md5 = image_md5();
    assert_eq!(
        &f[16..21],
        ["debian12:1", "false", md5.as_str(), "true", ""],
        "{line}"
    );
}

/// The MD5 of the sample image (`md5sum`).
fn image_md5() -> String {
    let image = super::harness::image_dir().join("debian12.tgz");
    let out = std::process::Command::new("md5sum")
        .arg(&image)
        .output()
        .expect("md5sum");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn sighup_reloads_the_configuration_and_reopens_the_log_files() {
    let (dir, conf) = config("hup");
    let pidfile = dir.join("kadeploy3d.pid");
    let mut d = Daemon::start(
        &dir,
        &conf,
        &["-p", pidfile.to_str().unwrap_or_default()],
        false,
    );
    assert_eq!(
        std::fs::read_to_string(&pidfile).expect("pid file").trim(),
        d.pid().to_string()
    );
    let root = Http::new(d.port, "root");
    let alice = Http::new(d.port, "alice");
    seed_catalog(&root);
    let (wid, resource) = deploy(&root, nodes(1..=5));
    let w = root.wait_done(&resource, Duration::from_secs(60));
    assert_eq!(w["nodes"]["ok"].as_array().map(Vec::len), Some(5), "{w}");
    let log = dir.join("kadeploy.log");
    let records = lines(&log);
    assert_eq!(records.len(), 5, "{records:?}");
    for r in &records {
        assert_record(r, &wid);
    }
    let debug = lines(&dir.join("kadeploy.debug"));
    let prefix = format!("{wid}|root -> ");
    assert!(
        debug
            .iter()
            .any(|l| l == &format!("{prefix}Launching a deployment on node-[1-5].sim.kadeploy")),
        "{debug:?}"
    );
    assert!(debug.iter().all(|l| l.starts_with(&prefix)), "{debug:?}");

    // A changed server.conf (almighty users) and clusters.conf (fewer nodes), the log file moved away.
    assert_eq!(alice.get("/rights/root").status, 403);
    assert_eq!(
        root.get("/nodes?list").json().as_array().map(Vec::len),
        Some(300)
    );
    edit(&conf.join("server.conf"), |t| {
        t.replace(
            "almighty_users: root,kadeploy",
            "almighty_users: root,kadeploy,alice",
        )
    });
    edit(&conf.join("clusters.conf"), |t| {
        t.replace("node-[251-300].sim.kadeploy", "node-[251-290].sim.kadeploy")
            .replace("10.16.1.[1-50]", "10.16.1.[1-40]")
    });
    std::fs::rename(&log, dir.join("kadeploy.log.1")).expect("rotate");
    d.signal(libc::SIGHUP);
    d.wait_log("configuration reloaded", Duration::from_secs(30));
    assert_eq!(
        alice.get("/rights/root").status,
        200,
        "alice is almighty now"
    );
    assert_eq!(
        root.get("/nodes?list").json().as_array().map(Vec::len),
        Some(290)
    );
    assert!(log.exists(), "the log file is created anew on SIGHUP");
    let (wid2, resource) = deploy(&root, nodes(6..=7));
    root.wait_done(&resource, Duration::from_secs(60));
    let records = lines(&log);
    assert_eq!(records.len(), 2, "{records:?}");
    records.iter().for_each(|r| assert_record(r, &wid2));
    assert_eq!(
        lines(&dir.join("kadeploy.log.1")).len(),
        5,
        "the old file is left alone"
    );
    let w: Value = root.get(&format!("/deployment/{wid}")).json();
    assert_eq!(w["wid"], wid.as_str(), "workflows survive a reload");

    // A broken configuration is refused: the running one stays.
    edit(&conf.join("server.conf"), |t| {
        t.replace("  logs: 4\n", "  logs: 9\n")
    });
    d.signal(libc::SIGHUP);
    d.wait_log(
        "configuration reload failed, the running configuration stays",
        Duration::from_secs(30),
    );
    assert!(d.log().contains("verbosity/logs"), "{}", d.log());
    assert_eq!(alice.get("/rights/root").status, 200);
    assert_eq!(root.get("/version").status, 200);

    d.signal(libc::SIGTERM);
    assert!(d.wait(Duration::from_secs(30)).success());
    assert!(!pidfile.exists(), "the PID file is removed at exit");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Workflows still `running` in the database.
fn running(db: &Path) -> i64 {
    let store = kadeploy_server::store::Store::open(db).expect("database");
    store
        .transaction(|tx| {
            Ok(tx.query_row(
                "SELECT count(*) FROM workflows WHERE state = 'running'",
                [],
                |r| r.get(0),
            )?)
        })
        .expect("query")
}

/// Starts a 300-node deployment paced at `pace`× real time, waits until it runs, sends SIGTERM, and
/// checks the 503 of new submissions; returns the daemon and the workflow id.
fn terminate_during_deployment(
    name: &str,
    pace: &str,
    grace: &str,
) -> (Daemon, String, std::path::PathBuf) {
    let (dir, conf) = config(name);
    let d = Daemon::start(
        &dir,
        &conf,
        &["--time-scale", pace, "--shutdown-grace", grace],
        false,
    );
    let h = Http::new(d.port, "root");
    seed_catalog(&h);
    let (wid, resource) = deploy(&h, nodes(1..=300));
    wait_for(
        Duration::from_secs(30),
        || {
            h.get(&format!("/deployment/{wid}/status"))
                .json()
                .get("sim")
                .is_some_and(|m| m.as_object().is_some_and(|m| !m.is_empty()))
        },
        || "the deployment never ran".into(),
    );
    d.signal(libc::SIGTERM);
    // New submissions are refused while the server stops (an empty body: 400 when not refused).
    wait_for(
        Duration::from_secs(10),
        || {
            h.request(
                "POST",
                "/deployment",
                &[],
                Some(("application/json", &b"{}"[..])),
            )
            .status
                == 503
        },
        || "no 503 after SIGTERM".into(),
    );
    let r = h.request(
        "POST",
        "/deployment",
        &[],
        Some(("application/json", &b"{}"[..])),
    );
    assert!(
        r.text().contains("The service is being shutdown"),
        "{}",
        r.text()
    );
    assert_eq!(
        h.get(&resource).status,
        200,
        "running workflows can still be followed"
    );
    (d, wid, dir)
}

#[test]
fn sigterm_cancels_what_outlasts_the_grace_time_and_leaves_nothing_running() {
    let (mut d, wid, dir) = terminate_during_deployment("term-abort", "5", "1");
    assert!(d.wait(Duration::from_secs(60)).success(), "{}", d.log());
    assert!(
        d.log().contains("still running at shutdown: cancelled"),
        "{}",
        d.log()
    );
    let db = dir.join("db.sqlite");
    assert_eq!(running(&db), 0);
    let store = kadeploy_server::store::Store::open(&db).expect("database");
    let row = store.workflow_get(&wid).expect("query").expect("recorded");
    assert_eq!(row.state, "aborted");
    drop(store);
    // Restarted: nothing to recover, no node left deploying.
    let conf = dir.join("conf");
    let d = Daemon::start(&dir, &conf, &[], false);
    assert!(
        !d.log().contains("was running when the server stopped"),
        "{}",
        d.log()
    );
    let states = Http::new(d.port, "root").get("/nodes").json();
    let states = states.as_object().expect("node map");
    assert_eq!(states.len(), 300);
    assert!(
        states.values().all(|n| n["state"] != "deploying"),
        "{states:?}"
    );
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_lets_a_deployment_end_within_the_grace_time() {
    let (mut d, wid, dir) = terminate_during_deployment("term-drain", "30", "300");
    assert!(d.wait(Duration::from_secs(300)).success(), "{}", d.log());
    assert!(
        !d.log().contains("still running at shutdown"),
        "{}",
        d.log()
    );
    let db = dir.join("db.sqlite");
    assert_eq!(running(&db), 0);
    let store = kadeploy_server::store::Store::open(&db).expect("database");
    assert_eq!(
        store.workflow_get(&wid).expect("query").expect("row").state,
        "done"
    );
    assert_eq!(lines(&dir.join("kadeploy.log")).len(), 300);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

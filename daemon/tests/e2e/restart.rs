//! Acceptance 3: `kadeploy3d` SIGKILLed during a paced 300-node deployment and restarted on the same
//! database records the workflow as aborted, leaves no node `deploying`, keeps environments and rights,
//! and deploys again.

use super::harness::{Http, Server, config_copy, nodes, seed_catalog, setup};
use serde_json::json;
use std::time::{Duration, Instant};

/// Virtual seconds per real second while the first server runs: a 300-node deployment then lasts several
/// real seconds, long enough to kill the server in the middle.
const PACE: &str = "20";

#[test]
fn kill_during_deployment_then_restart() {
    let dir = setup("restart");
    let conf = config_copy(&dir, false);
    let db = dir.join("db.sqlite");
    let mut server = Server::start(&conf, &db, &["--time-scale", PACE]);
    let h = Http::new(server.port, "root");
    seed_catalog(&h);
    let envs_before = h.get("/environments").json();
    let rights_before = h.get("/rights/root").json();
    let all = nodes(1..=300);
    let r = h.send(
        "POST",
        "/deployment",
        &json!({"environment": {"kind": "database", "user": "root", "name": "debian12", "version": 1},
                "nodes": all}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let wid = r.json()["wid"].as_str().expect("wid").to_string();
    let resource = r.json()["resources"]["resource"]
        .as_str()
        .expect("resource")
        .to_string();

    // Running: not done, nodes processing, the engine has reached a micro-step, the database says deploying.
    let start = Instant::now();
    loop {
        let w = h.get(&resource).json();
        assert_eq!(
            w["done"], false,
            "the deployment ended before the kill: {w}"
        );
        let status = h.get(&format!("/deployment/{wid}/status")).json();
        let processing = w["nodes"]["processing"].as_array().map_or(0, Vec::len);
        if processing == 300 && status["sim"].as_object().is_some_and(|m| !m.is_empty()) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never running: {w}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let states = h.get("/nodes").json();
    let states = states.as_object().expect("node map");
    assert!(
        states.values().all(|n| n["state"] == "deploying"),
        "{states:?}"
    );
    let pid = server.pid();
    server.kill();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} is gone"
    );

    // Restarted on the same database, with virtual time as fast as possible for the new deployment.
    let server = Server::start(&conf, &db, &["--time-scale", "0"]);
    let h = Http::new(server.port, "root");
    let r = h.get(&resource);
    assert_eq!(r.status, 400, "an unknown workflow: {}", r.text());
    assert_eq!(r.code(), Some(1), "INVALID_WORKFLOW_ID");
    assert_eq!(h.get("/deployment").json(), json!([]));

    let states = h.get("/nodes").json();
    let states = states.as_object().expect("node map");
    assert_eq!(states.len(), 300);
    assert!(
        states
            .values()
            .all(|n| n["state"] == "aborted" && n["environment"]["name"] == "debian12"),
        "every node aborted: {states:?}"
    );
    let csv = h
        .get(&format!(
            "/stats?wid={wid}&fields=hostname&fields=success&fields=error"
        ))
        .text();
    assert_eq!(csv.lines().count(), 300);
    assert!(
        csv.lines()
            .all(|l| l.ends_with(",false,Aborted: the server stopped during the operation")),
        "{csv}"
    );
    assert_eq!(h.get("/environments").json(), envs_before);
    assert_eq!(h.get("/rights/root").json(), rights_before);

    // A new deployment on aborted nodes works without `force`.
    let r = h.send(
        "POST",
        "/deployment",
        &json!({"environment": {"kind": "database", "user": "root", "name": "debian12", "version": 1},
                "nodes": nodes(1..=10)}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let resource = r.json()["resources"]["resource"]
        .as_str()
        .expect("resource")
        .to_string();
    let w = h.wait_done(&resource, Duration::from_secs(60));
    assert_eq!(w["error"], false, "{w}");
    assert_eq!(w["nodes"]["ok"].as_array().map(Vec::len), Some(10), "{w}");
    let n = h.get("/nodes/node-1.sim.kadeploy").json();
    assert_eq!(n["state"], "deployed", "{n}");
    assert_eq!(
        h.get("/nodes/node-11.sim.kadeploy").json()["state"],
        "aborted"
    );
    drop(server);

    // The server holds the database while it runs: it is read once the server is gone.
    let store = kadeploy_server::store::Store::open(&db).expect("the database opens");
    let integrity = store
        .transaction(
            |tx| Ok(tx.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))?),
        )
        .expect("integrity check");
    assert_eq!(integrity, "ok");
    let row = store.workflow_get(&wid).expect("query").expect("recorded");
    assert_eq!(row.state, "aborted");
    assert_eq!(row.nodes.len(), 300);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

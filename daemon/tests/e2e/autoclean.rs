//! Autoclean (security issue, item 12), against the real `kadeploy3d` paced at real time with
//! `autoclean_threshold: 0.1` (6 s): finished workflows answer as unknown ids once the threshold has
//! passed, running ones stay, and the workflow table shrinks back after a burst. At commit f72496d the
//! threshold was parsed but never applied: finished workflows stayed forever (150 deployments: +44 MB).

use super::attacks_conn::server_with;
use super::harness::Http;
use serde_json::json;
use std::time::{Duration, Instant};

fn start(h: &Http, path: &str) -> String {
    let r = h.get(path);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["wid"].as_str().expect("wid").to_string()
}

/// Waits until every id of `wids` answers `GET /power/<wid>` as an unknown workflow (error 1).
fn wait_forgotten(h: &Http, wids: &[String], limit: Duration) {
    let begin = Instant::now();
    for wid in wids {
        loop {
            let r = h.get(&format!("/power/{wid}"));
            if r.status == 400 {
                assert_eq!(r.code(), Some(1), "{}", r.text());
                break;
            }
            assert_eq!(r.status, 200, "{}", r.text());
            assert!(
                begin.elapsed() < limit,
                "{wid} still known after {limit:?}: {}",
                r.text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn finished_workflows_are_forgotten_after_autoclean_threshold() {
    let (dir, server) = server_with(
        "autoclean",
        false,
        "autoclean_threshold: 0.1\n",
        &["--time-scale", "1"],
    );
    let root = Http::new(server.port, "root");
    let r = root.send(
        "POST",
        "/rights",
        &json!({"nodes": ["*"], "partitions": ["*"], "username": "root"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // A reboot runs for tens of seconds at real-time pace (firmware, PXE, kernel).
    let r = root.send(
        "POST",
        "/reboot",
        &json!({"nodes": ["node-1.sim.kadeploy"], "kind": "simple"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let running = r.json()["wid"].as_str().expect("wid").to_string();
    // Power status workflows end in about 1.5 s; they are still there right after.
    let quick: Vec<String> = (2..=6)
        .map(|i| start(&root, &format!("/power?nodes=node-{i}.sim.kadeploy")))
        .collect();
    for wid in &quick {
        root.wait_done(&format!("/power/{wid}/"), Duration::from_secs(60));
    }
    wait_forgotten(&root, &quick, Duration::from_secs(40));
    assert_eq!(root.get("/power").json(), json!([]));
    let w = root.get(&format!("/reboot/{running}"));
    assert_eq!(
        w.status,
        200,
        "the running reboot was dropped: {}",
        w.text()
    );
    assert_eq!(w.json()["done"], false, "{}", w.text());
    let list = root.get("/reboot").json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    // A burst of workflows: the table shrinks back once they are old enough.
    let burst: Vec<String> = (10..40)
        .map(|i| start(&root, &format!("/power?nodes=node-{i}.sim.kadeploy")))
        .collect();
    wait_forgotten(&root, &burst, Duration::from_secs(60));
    assert_eq!(root.get("/power").json(), json!([]));
    let r = root.request("DELETE", &format!("/reboot/{running}"), &[], None);
    assert_eq!(r.status, 200, "{}", r.text());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

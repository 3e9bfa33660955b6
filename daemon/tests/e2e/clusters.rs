//! Workflows spanning two clusters: each part runs on its own cluster and takes that cluster's values
//! (spec §3.7, §4.3), through the real server.

use super::harness::{Http, Server, config_copy, debian12, seed_catalog, setup};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

/// The sample configuration plus a second cluster, `sim2` (`other-1.sim2.kadeploy`,
/// `other-2.sim2.kadeploy`), whose production partition is 4 instead of 2.
fn two_clusters(dir: &Path) -> std::path::PathBuf {
    let conf = config_copy(dir, false);
    let cluster = std::fs::read_to_string(conf.join("sim-cluster.conf")).expect("cluster file");
    assert!(
        cluster.contains("    prod: 2\n"),
        "the sample's prod partition"
    );
    let second = cluster.replace("    prod: 2\n", "    prod: 4\n");
    std::fs::write(conf.join("sim2-cluster.conf"), second).expect("second cluster file");
    let mut clusters = std::fs::read_to_string(conf.join("clusters.conf")).expect("clusters.conf");
    clusters.push_str(
        "  - name: sim2\n    prefix: sim2\n    conf_file: sim2-cluster.conf\n    nodes:\n      \
         - name: other-[1-2].sim2.kadeploy\n        address: 10.17.0.[1-2]\n",
    );
    std::fs::write(conf.join("clusters.conf"), clusters).expect("clusters.conf");
    conf
}

fn state(h: &Http, node: &str) -> Value {
    let r = h.get(&format!("/nodes/{node}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["state"].clone()
}

/// A `recorded_env` reboot of nodes of both clusters with `deploy_partition` 4: the second cluster's
/// nodes are in their production environment (`prod_env`), the first cluster's are not
/// (`recorded_env`). Before the typed submissions (commit 1b9a000), every part compared the partition
/// with the first cluster's production partition (2): both were `recorded_env`.
#[test]
fn a_reboot_over_two_clusters_uses_each_clusters_production_partition() {
    let dir = setup("two-clusters");
    let conf = two_clusters(&dir);
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    let h = Http::new(server.port, "root");
    let clusters = h.get("/clusters");
    assert_eq!(clusters.json(), json!(["sim", "sim2"]));
    seed_catalog(&h);
    let r = h.send(
        "POST",
        "/reboot",
        &json!({"nodes": ["node-1", "other-1"], "kind": "recorded_env", "deploy_partition": "4",
            "environment": {"name": debian12()["name"]}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let logs = r.json()["resources"]["logs"].clone();
    assert!(
        logs.get("sim").is_some() && logs.get("sim2").is_some(),
        "one part per cluster: {logs}"
    );
    let resource = r.json()["resources"]["resource"]
        .as_str()
        .expect("resource")
        .to_string();
    let w = h.wait_done(&resource, LIMIT);
    assert_eq!(w["error"], false, "{w}");
    assert_eq!(state(&h, "node-1.sim.kadeploy"), "recorded_env");
    assert_eq!(
        state(&h, "other-1.sim2.kadeploy"),
        "prod_env",
        "partition 4 is sim2's production partition"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `logs/<cluster>` returns only that cluster's lines, and consumes only them (Kadeploy's `work_get_logs`);
/// `logs` then returns the other cluster's. Before, `logs/<cluster>` returned (and consumed) every line.
#[test]
fn logs_of_one_cluster_are_that_clusters_lines() {
    let dir = setup("two-clusters-logs");
    let conf = two_clusters(&dir);
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    let h = Http::new(server.port, "root");
    seed_catalog(&h);
    let r = h.send(
        "POST",
        "/deployment",
        &json!({"nodes": ["node-1", "other-1"], "environment": {"name": debian12()["name"]}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let res = r.json()["resources"].clone();
    let w = h.wait_done(res["resource"].as_str().expect("resource"), LIMIT);
    assert_eq!(w["error"], false, "{w}");
    let base = res["log"].as_str().expect("log").to_string();
    let sim2 = h.get(&format!("{base}/sim2")).text();
    assert!(!sim2.trim().is_empty(), "sim2 has lines");
    assert!(
        sim2.lines().all(|l| l.contains("|[sim2")),
        "only sim2's lines:\n{sim2}"
    );
    let rest = h.get(&base).text();
    assert!(rest.contains("node-1.sim.kadeploy"), "{rest}");
    assert!(
        !rest.contains("|[sim2"),
        "sim2's lines were consumed:\n{rest}"
    );
    assert_eq!(h.get(&format!("{base}/nope")).status, 404);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

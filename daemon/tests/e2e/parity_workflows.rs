//! Kadeploy 3.3's workflow behaviours: the destructive check of reboots, `recorded_env` reboots, debug
//! traces (`-d`), `/info`'s PXE method, error details, and nodes another workflow uses.

use super::harness::{Http, Server, config_copy, debian12, image_ref, seed_catalog, setup};
use crate::{plain_client as client, s};
use base64::Engine as _;
use kadeploy_clients::{tools, workflow};
use serde_json::{Value, json};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn node_row(h: &Http, node: &str) -> Value {
    let r = h.get(&format!("/nodes/{node}.sim.kadeploy"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Submits `body` to `path` and waits for the end: (workflow object, resources).
fn run(h: &Http, method: &str, path: &str, body: &Value) -> (Value, Value) {
    let r = h.send(method, path, body);
    assert_eq!(r.status, 200, "{}", r.text());
    let resources = r.json()["resources"].clone();
    let resource = resources["resource"].as_str().expect("resource");
    (h.wait_done(resource, LIMIT), resources)
}

/// `kareboot3 -c` checks the destructive tag for `recorded_env` reboots only (a simple reboot after a
/// destructive deployment goes on; before, it was refused with error 30), and `recorded_env` records
/// the environment it was given.
#[test]
fn the_destructive_check_is_for_recorded_env_reboots() {
    let dir = setup("parity-destructive");
    let server = Server::start(&config_copy(&dir, false), &dir.join("db.sqlite"), &[]);
    let root = client(&dir, server.port, "root");
    let h = Http::new(server.port, "root");
    seed_catalog(&h);
    let wipe = dir.join("wipe.yml");
    std::fs::write(
        &wipe,
        format!(
            "name: wipe\nversion: 1\ndestructive: true\nos: linux\nfilesystem: ext4\nboot: {{kernel: /vmlinuz}}\n\
             image: {{file: '{}', kind: tar, compression: gzip}}\n",
            image_ref()
        ),
    )
    .expect("env");
    assert_eq!(
        tools::kaenv(&s(&["-a", wipe.to_str().unwrap_or_default()]), &root),
        0
    );
    assert_eq!(
        workflow::deploy(&s(&["-e", "wipe", "-m", "node-7"]), &root),
        0
    );
    let recorded = [
        "-r",
        "recorded_env",
        "-e",
        "debian12",
        "-p",
        "3",
        "-m",
        "node-7",
    ];
    let mut checked = s(&recorded);
    checked.push("-c".into());
    assert_eq!(workflow::reboot(&checked, &root), 30);
    // (A reboot records no environment for the node, as Kadeploy's `rebooting` rows: checked first.)
    assert_eq!(
        workflow::reboot(&s(&["-r", "simple", "-c", "-m", "node-7"]), &root),
        0,
        "simple reboots are not checked"
    );
    assert_eq!(workflow::reboot(&s(&recorded), &root), 0);
    let row = node_row(&h, "node-7");
    assert_eq!(row["state"], "recorded_env", "{row}");
    assert_eq!(row["environment"]["name"], "debian12", "{row}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Ruby client's `kareboot3 -r recorded_env -e debian12 -u root -b /dev/sdb -p 5 -m node-8 -d`
/// request, replayed: the nodes boot the requested device and partition (the debug traces show the boot
/// profile written), and the workflow's `debugs` resource carries Kadeploy's per-node blocks. Before,
/// `recorded_env` booted the cluster's deploy partition and `debugs` was always empty.
#[test]
fn recorded_env_boots_the_requested_partition_and_debug_traces_show_it() {
    let dir = setup("parity-recorded");
    let server = Server::start(&config_copy(&dir, false), &dir.join("db.sqlite"), &[]);
    let h = Http::new(server.port, "root");
    seed_catalog(&h);
    let body = json!({"nodes": ["node-8.sim.kadeploy"], "kind": "recorded_env", "level": "soft",
        "deploy_partition": "5", "block_device": "/dev/sdb", "debug": true,
        "environment": {"kind": "database", "user": "root", "name": "debian12", "version": 1}});
    let (w, res) = run(&h, "POST", "/reboot", &body);
    assert_eq!(w["error"], false, "{w}");
    assert_eq!(w["debugs"], true, "unread debug lines: {w}");
    let node = res["debugs"]["node-8.sim.kadeploy"]
        .as_str()
        .expect("a per-node debug resource");
    let text = h.get(node).text();
    for want in [
        "|NODE: node-8.sim.kadeploy",
        "|COMMAND: switch_pxe: SetProfile(LocalDisk { device: \"/dev/sdb\", partition: 5, ",
        "|STATUS: 0",
    ] {
        assert!(text.contains(want), "{want} in:\n{text}");
    }
    let debug = res["debug"].as_str().expect("debug resource");
    assert_eq!(h.get(debug).text().trim(), "", "consumed on read");
    assert_eq!(node_row(&h, "node-8")["state"], "recorded_env");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `GET /info` reports the configured DHCP PXE method (before: always `PXElinux`), and the rights error
/// of a deployment keeps Kadeploy's detail "-- deployment on partition /dev/sda5" (before: no detail).
#[test]
fn info_reports_the_pxe_method_and_rights_errors_their_partition() {
    let dir = setup("parity-info");
    let conf = config_copy(&dir, false);
    let file = conf.join("server.conf");
    let text = std::fs::read_to_string(&file).expect("server.conf");
    assert!(text.contains("  dhcp:\n    method: PXElinux\n"));
    let text = text.replace(
        "  dhcp:\n    method: PXElinux\n",
        "  dhcp:\n    method: IPXE\n",
    );
    std::fs::write(&file, text).expect("server.conf");
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    let h = Http::new(server.port, "root");
    seed_catalog(&h);
    assert_eq!(h.get("/info").json()["pxe"], "IPXE");
    let r = h.send(
        "POST",
        "/rights",
        &json!({"username": "bob", "nodes": ["node-1.sim.kadeploy"], "partitions": ["/dev/sda3"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let bob = Http::new(server.port, "bob");
    let env = json!({"kind": "database", "user": "root", "name": debian12()["name"], "version": 1});
    let r = bob.send(
        "POST",
        "/deployment",
        &json!({"nodes": ["node-1.sim.kadeploy"], "environment": env, "deploy_partition": "5"}),
    );
    assert_eq!((r.status, r.code()), (400, Some(6)), "{}", r.text());
    let want = "You do not have sufficient rights to perform the operation on all the nodes -- \
                deployment on partition /dev/sda5";
    assert_eq!(r.text().trim_end(), want);
    let info = r.header("x-application-error-info").unwrap_or_default();
    let info = base64::engine::general_purpose::STANDARD
        .decode(info)
        .expect("base64");
    assert_eq!(String::from_utf8_lossy(&info), want);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Nodes another workflow uses are reported in the workflow, as Kadeploy's `Workflow#start!`: the
/// submission is accepted, the output says "The nodes … are already involved in deployment, let's discard
/// them", `state` shows them `discarded`, and when no node is left the workflow fails with error 14
/// (what `GET error` answers). Before, the submission itself was refused (error 14) or the busy nodes
/// silently dropped.
#[test]
fn busy_nodes_are_discarded_in_the_workflow() {
    let dir = setup("parity-busy");
    let conf = config_copy(&dir, false);
    let file = conf.join("server.conf");
    let text = std::fs::read_to_string(&file).expect("server.conf");
    // Workflows paced at real time: the first deployment runs for minutes.
    std::fs::write(&file, text.replace("time_scale: 0", "time_scale: 1")).expect("server.conf");
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    let h = Http::new(server.port, "root");
    seed_catalog(&h);
    let env = json!({"kind": "database", "user": "root", "name": "debian12", "version": 1});
    let deploy = |nodes: &[&str]| {
        let nodes: Vec<String> = nodes.iter().map(|n| format!("{n}.sim.kadeploy")).collect();
        let r = h.send(
            "POST",
            "/deployment",
            &json!({"nodes": nodes, "environment": env}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["resources"].clone()
    };
    let first = deploy(&["node-1", "node-2"]);
    let all_busy = deploy(&["node-1"]);
    let w = h.wait_done(all_busy["resource"].as_str().expect("resource"), LIMIT);
    assert_eq!(w["error"], true, "{w}");
    let r = h.get(all_busy["error"].as_str().expect("error"));
    assert_eq!((r.status, r.code()), (400, Some(14)), "{}", r.text());
    assert!(r.text().contains("All the nodes have been discarded"));

    let some_busy = deploy(&["node-2", "node-3"]);
    let logs = h.get(some_busy["log"].as_str().expect("log")).text();
    assert!(
        logs.contains(
            "|The nodes node-2.sim.kadeploy are already involved in deployment, let's discard them"
        ),
        "{logs}"
    );
    let state = h.get(some_busy["state"].as_str().expect("state")).json();
    assert_eq!(
        state["node-2.sim.kadeploy"]["state"], "discarded",
        "{state}"
    );
    assert_ne!(
        state["node-3.sim.kadeploy"]["state"], "discarded",
        "{state}"
    );
    for res in [&first, &some_busy] {
        let r = h.request(
            "DELETE",
            res["resource"].as_str().expect("resource"),
            &[],
            None,
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

//! `/metrics` (`metrics/listen`): after a simulated deployment through the real `kadeploy3d`, the
//! exposition passes Prometheus' own `promtool check metrics` and its counters match the deployment.
//! Before, there was no metrics endpoint, and nothing said at start that the server drove the simulated
//! cluster when `backend/kind` was left out. Each configuration warning is logged once at start.

use super::harness::{Http, nodes, raw, seed_catalog};
use super::process::{Daemon, config, edit};
use serde_json::json;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `promtool`, which CI installs (Debian package `prometheus`).
fn promtool() -> String {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("promtool"))
        .chain([std::path::PathBuf::from("/usr/bin/promtool")])
        .find(|p| p.is_file());
    match found {
        Some(p) => p.display().to_string(),
        None => panic!("promtool is missing: apt-get install --no-install-recommends prometheus"),
    }
}

/// The value of the sample `series` (name and labels exactly as exposed).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

#[test]
fn metrics_pass_promtool_and_count_the_deployment() {
    let (dir, conf) = config("metrics");
    edit(&conf.join("server.conf"), |t| {
        t.replace("  kind: simulated\n", "") + "metrics:\n  listen: 127.0.0.1:0\nfrobnicate: 1\n"
    });
    let d = Daemon::start(&dir, &conf, &[], true);
    let log = d.log();
    for warning in [
        "server.conf has no backend/kind: kadeploy3d drives the SIMULATED cluster",
        "Unused field frobnicate in server.conf",
    ] {
        assert_eq!(
            log.matches(warning).count(),
            1,
            "a server left on the simulated backend says so at start, with each warning once: {log}"
        );
    }
    let h = Http::new(d.port, "root");
    seed_catalog(&h);
    let r = h.send(
        "POST",
        "/deployment",
        &json!({"environment": {"kind": "database", "user": "root", "name": "debian12", "version": 1},
                "nodes": nodes(1..=40)}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let resource = r.json()["resources"]["resource"]
        .as_str()
        .expect("resource")
        .to_string();
    let w = h.wait_done(&resource, Duration::from_secs(60));
    let ok = w["nodes"]["ok"].as_array().map_or(0, Vec::len);
    assert_eq!(ok, 40, "{w}");

    let port: u16 = d
        .metrics
        .as_deref()
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("metrics port");
    let resp = raw(
        port,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = resp.text();

    let mut check = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = check.wait_with_output().expect("promtool ends");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {out:?}\n{text}"
    );

    assert_eq!(
        value(
            &text,
            "kadeploy_workflows_total{kind=\"deploy\",state=\"done\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "kadeploy_nodes_total{kind=\"deploy\",outcome=\"ok\",macro_step=\"\",micro_step=\"\",error=\"\"}"
        ),
        ok as f64
    );
    assert_eq!(
        value(&text, "kadeploy_workflows_running{kind=\"deploy\"}"),
        0.0
    );
    assert_eq!(
        value(
            &text,
            "kadeploy_workflow_duration_seconds_count{kind=\"deploy\"}"
        ),
        1.0
    );
    assert!(
        value(
            &text,
            "kadeploy_workflow_duration_seconds_sum{kind=\"deploy\"}"
        ) > 0.0
    );
    let reboots: f64 = text
        .lines()
        .filter(|l| l.starts_with("kadeploy_power_commands_total{action=\"reboot\""))
        .filter(|l| l.contains("outcome=\"ok\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        reboots >= ok as f64,
        "every node rebooted at least once: {reboots}"
    );
    let bytes: f64 = text
        .lines()
        .filter(|l| l.starts_with("kadeploy_broadcast_bytes_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        bytes >= ok as f64 * 1e6,
        "the image reached every node: {bytes}"
    );
    assert!(value(&text, "kadeploy_database_operation_duration_seconds_count") > 0.0);
    assert!(text.contains("# TYPE kadeploy_macro_step_duration_seconds histogram"));

    // Nothing but GET /metrics.
    let other = raw(
        port,
        b"GET /deployment HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(other.status, 404);
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

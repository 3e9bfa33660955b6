//! The `kasim` command end to end, in separate processes: determinism across processes, and a
//! deployment with faults injected where every healthy node ends OK and every faulty one KO with
//! Kadeploy's macro-step, micro-step and message.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/sim300");

/// Runs `kasim deploy` with `args`; returns stdout and the parsed JSON summary (its last line).
fn kasim(args: &[&str]) -> (String, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_kasim"))
        .arg("deploy")
        .args(args)
        .arg("--json")
        .output()
        .expect("kasim runs");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
    let last = stdout.lines().last().unwrap_or_default();
    let json: Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is JSON ({e}): {last}"));
    (stdout, json)
}

/// A copy of the sample configuration directory with `simulation` as its simulation.conf.
struct ConfigDir(PathBuf);

impl ConfigDir {
    fn new(name: &str, simulation: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("kasim-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for entry in std::fs::read_dir(SAMPLE).expect("sample dir") {
            let path = entry.expect("entry").path();
            if path.is_file() {
                std::fs::copy(&path, dir.join(path.file_name().expect("file name"))).expect("copy");
            }
        }
        std::fs::write(dir.join("simulation.conf"), simulation).expect("write simulation.conf");
        ConfigDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_str().expect("string").to_string())
        .collect()
}

#[test]
fn same_seed_gives_identical_output_in_two_processes_and_other_seeds_change_timings() {
    let (a, ja) = kasim(&["--nodes", "120", "--seed", "7", "-V", "5"]);
    let (b, _) = kasim(&["--nodes", "120", "--seed", "7", "-V", "5"]);
    assert_eq!(a, b, "two runs with seed 7 differ");
    let (c, jc) = kasim(&["--nodes", "120", "--seed", "8", "-V", "5"]);
    assert_ne!(a, c, "seeds 7 and 8 give the same output");
    assert_ne!(
        ja["virtual_seconds"], jc["virtual_seconds"],
        "seeds 7 and 8 give the same virtual time"
    );
    assert_eq!(names(&ja["nodes_ok"]).len(), 120);
}

#[test]
fn faulty_nodes_end_ko_where_kadeploy_reports_them_and_healthy_nodes_end_ok() {
    // 5% of 300 nodes never come back from their first reboot; 2 others die mid-broadcast.
    let never: Vec<String> = (0..15)
        .map(|i| format!("node-{}.sim.kadeploy", 7 + i * 19))
        .collect();
    let dying = ["node-50.sim.kadeploy", "node-200.sim.kadeploy"];
    let simulation = format!(
        "seed: 3\nfailures:\n  never_boot: {{nodes: [{}]}}\n  die_during_broadcast: {{nodes: [{}], at_fraction: 0.5}}\n",
        never.join(", "),
        dying.join(", ")
    );
    let dir = ConfigDir::new("faults", &simulation);
    let (_, json) = kasim(&[
        "--nodes",
        "300",
        "--config",
        dir.path().to_str().expect("utf-8 path"),
    ]);

    let ok = names(&json["nodes_ok"]);
    let ko = json["nodes_ko"].as_array().expect("nodes_ko");
    assert_eq!(ok.len(), 300 - 17, "healthy nodes must all end OK");
    assert_eq!(ko.len(), 17);
    for entry in ko {
        let node = entry["node"].as_str().expect("node");
        if never.iter().any(|n| n == node) {
            assert_eq!(entry["macro"], "SetDeploymentEnvUntrusted", "{entry}");
            assert_eq!(entry["micro"], "wait_reboot", "{entry}");
            assert_eq!(entry["error"], "Unreachable after the reboot", "{entry}");
        } else {
            assert!(dying.contains(&node), "unexpected KO node {entry}");
            assert_eq!(entry["macro"], "BroadcastEnvKascade", "{entry}");
            assert_eq!(entry["micro"], "send_environment", "{entry}");
        }
    }
    // Nothing waits past its timeouts: SetDeploymentEnvUntrusted has 3 tries of at most 400 s each,
    // and the never-booting nodes are the last to finish.
    let t = json["virtual_seconds"].as_f64().expect("virtual_seconds");
    assert!(
        t <= 3.0 * 400.0,
        "the deployment took {t} s, more than its timeouts allow"
    );
    let steps = json["macro_steps"].as_array().expect("macro_steps");
    let broadcast = steps
        .iter()
        .find(|s| s["name"] == "BroadcastEnvKascade")
        .expect("broadcast step");
    assert!(broadcast["seconds"].as_f64().expect("seconds") <= 3.0 * 600.0);
}

#[test]
fn the_shipped_failure_example_reports_each_fault_at_its_step() {
    let (_, json) = kasim(&["--config", &format!("{SAMPLE}/failures.conf")]);
    let ko = json["nodes_ko"].as_array().expect("nodes_ko");
    assert!(!ko.is_empty() && ko.len() < 40, "{} KO nodes", ko.len());
    for entry in ko {
        let at = (
            entry["macro"].as_str().expect("macro"),
            entry["micro"].as_str().expect("micro"),
        );
        assert!(
            at == ("SetDeploymentEnvUntrusted", "wait_reboot")
                || at == ("BroadcastEnvKascade", "send_environment"),
            "{entry}"
        );
    }
    assert_eq!(names(&json["nodes_ok"]).len() + ko.len(), 300);
}

#[test]
fn bad_configuration_is_a_clear_error_not_a_panic() {
    let dir = ConfigDir::new("bad", "network: {bandwidth: -1}\n");
    let out = Command::new(env!("CARGO_BIN_EXE_kasim"))
        .args([
            "deploy",
            "--config",
            dir.path().to_str().expect("utf-8 path"),
        ])
        .output()
        .expect("kasim runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("network.bandwidth"), "stderr: {stderr}");
}

//! The fault campaign (`kasim campaign`) as CI runs it: 1,000 seeded scenarios on 1 to 300 nodes
//! (another seed than the documented run), where every invariant must hold; and the refusal of a
//! command timeout that would let a hung node take its whole group down.

use serde_json::Value;
use std::process::Command;

fn campaign(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kasim"))
        .arg("campaign")
        .args(args)
        .output()
        .expect("kasim runs");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_invariant_holds_in_a_seeded_matrix_of_faulty_deployments() {
    let (status, stdout, stderr) = campaign(&["--scenarios", "1000", "--seed", "5", "--json"]);
    assert!(status.success(), "campaign failed:\n{stdout}\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    let t: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("JSON ({e}): {last}"));
    assert_eq!(t["scenarios"], 1000);
    assert_eq!(t["violations"], 0, "{stdout}");
    assert_eq!(t["panics"], 0, "{stdout}");
    assert_eq!(t["healthy"], t["healthy_ok"], "{stdout}");
    for kind in [
        "never_boot",
        "hang",
        "die_during_broadcast",
        "power_command_fails",
        "disk_write_error",
    ] {
        assert!(
            t["by_fault"][kind].as_u64().unwrap_or(0) > 0,
            "no scenario injects {kind}: {stdout}"
        );
    }
    assert!(
        t["faulty_ko_as_expected"].as_u64().unwrap_or(0) > 1000,
        "{stdout}"
    );
    assert!(
        t["faulty_ok_as_expected"].as_u64().unwrap_or(0) > 0,
        "{stdout}"
    );
    assert_eq!(
        t["max_nodes"], 300,
        "the largest scenarios deploy every node"
    );
    let longest = t["longest_virtual_seconds"].as_f64().expect("longest");
    let bound = t["timeout_bound_seconds"].as_f64().expect("bound");
    assert!(longest > 0.0 && longest <= bound, "{longest} s > {bound} s");
}

#[test]
fn a_command_timeout_above_a_macro_step_timeout_is_refused() {
    let (status, _, stderr) = campaign(&["--scenarios", "1", "--command-timeout", "600"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--command-timeout"), "{stderr}");
}

//! Pins what seeded deployments of the sample produce, byte for byte: every output line at every
//! level (with its virtual time), each node's final state and statistics record (kastat's fields),
//! and the macro-step durations. A change meant only to make the engine or the simulator faster must
//! leave these digests as they are; a change of behaviour updates them on purpose.

use clap::Parser;
use kadeploy::engine::Report;
use kadeploy::output::LogLine;
use simulator::kasim::{self, Cli, Command, setup};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// FNV-1a, 64 bits: enough to notice any changed byte, and no dependency.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Runs `kasim deploy ARGS` in this process; returns the text the digest is taken of.
fn transcript(args: &[&str]) -> String {
    let cli = Cli::parse_from(["kasim", "deploy"].iter().chain(args));
    let Command::Deploy(args) = cli.command else {
        panic!("not a deploy command");
    };
    let setup = setup::load(&args).expect("the sample loads");
    let lines: Arc<Mutex<Vec<LogLine>>> = Arc::default();
    let kept = lines.clone();
    let sink = Box::new(move |l: &LogLine| kept.lock().expect("lines").push(l.clone()));
    let report: Report = kasim::simulate(&setup, &args, sink).expect("the deployment runs");
    let mut text = String::new();
    for l in lines.lock().expect("lines").iter() {
        let _ = writeln!(text, "{:?} {} {}", l.time, l.level, l.text);
    }
    for ((node, status), log) in report.nodes.iter().zip(&report.logs) {
        let name = &setup.cluster.nodes[node.index()].name;
        let _ = writeln!(text, "{name} {status:?} {log:?}");
    }
    let _ = writeln!(
        text,
        "{:?} {:?} {}",
        report.seconds, report.macro_durations, report.aborted
    );
    text
}

/// Checks the digest of `args`' transcript, printing it when it differs.
fn check(args: &[&str], expected: u64) {
    let text = transcript(args);
    let got = fnv1a(text.as_bytes());
    assert_eq!(
        got,
        expected,
        "kasim deploy {args:?}: digest {got:#018x} ({} lines)",
        text.lines().count()
    );
}

#[test]
fn a_seeded_300_node_deployment_is_pinned() {
    check(&["--seed", "1"], 0xfd54_5006_ebe1_f828);
}

#[test]
fn a_seeded_300_node_deployment_with_faults_is_pinned() {
    let failures = format!("{}/failures.conf", setup::SAMPLE_DIR);
    check(&["--config", &failures], 0xf500_8e31_9d3c_ebb0);
}

#[test]
fn a_seeded_300_node_deployment_stopped_at_a_breakpoint_is_pinned() {
    check(
        &["--seed", "2", "--breakpoint", "BroadcastEnvKascade"],
        0x06b0_3a99_7b65_566f,
    );
}

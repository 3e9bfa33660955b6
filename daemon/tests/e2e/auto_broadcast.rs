//! BroadcastEnvAuto through the real `kadeploy3d` (issue 14, item 8): the sample cluster with `Auto` as its
//! BroadcastEnv deploys 24 nodes of the simulated backend, on a network-bound `simulation.conf` (fast
//! disks, 20 ms links); the deployment's log says which strategy and chunk size the planner chose and
//! what it predicted, then the measured time. The broadcast really ran the chosen configuration: the
//! simulated backend's measured time is the prediction of that strategy and chunk size (computed here with
//! the simulator's own models on the same `simulation.conf`) and no other strategy's. With 5 % multicast
//! loss in `simulation.conf` the choice changes. Before, `Auto` was refused as an unknown BroadcastEnv type
//! when the configuration was loaded.

use super::harness::{Http, Server, config_copy, debian12, nodes, seed_catalog, setup};
use hal::Strategy;
use serde_json::json;
use simulator::auto::{self, Candidate};
use simulator::params::SimParams;
use std::path::Path;
use std::time::Duration;

const NODES: u32 = 24;
const LIMIT: Duration = Duration::from_secs(300);

/// The sample configuration with `Auto` instead of `Kascade` as the cluster's BroadcastEnv, disks that
/// never limit the broadcast, 20 ms links, and `simulation.conf` then passed through `sim`.
fn auto_config(dir: &Path, sim: impl Fn(String) -> String) -> std::path::PathBuf {
    let conf = config_copy(dir, false);
    let cluster = conf.join("sim-cluster.conf");
    let text = std::fs::read_to_string(&cluster).expect("cluster file");
    assert!(
        text.contains("      - type: Kascade\n"),
        "the sample's BroadcastEnv"
    );
    let text = text.replace("      - type: Kascade\n", "      - type: Auto\n");
    std::fs::write(&cluster, text).expect("cluster file");
    let simulation = conf.join("simulation.conf");
    let text = std::fs::read_to_string(&simulation).expect("simulation.conf");
    let edits = [
        ("  latency: 0.0001 ", "  latency: 0.02 "),
        ("  write_rate: 150.0e6 ", "  write_rate: 1.5e12 "),
        ("  write_rate_sd: 10.0e6", "  write_rate_sd: 0.0"),
        ("  decompress_rate: 400.0e6 ", "  decompress_rate: 4.0e12 "),
    ];
    let text = edits.iter().fold(text, |t, (from, to)| {
        assert!(t.contains(from), "the sample's {from:?}");
        t.replace(from, to)
    });
    std::fs::write(&simulation, sim(text)).expect("simulation.conf");
    conf
}

/// The planner's lines of a deployment's log: (strategy, chunk, predicted s) and the measured seconds.
fn auto_lines(log: &str) -> ((String, String, f64), f64) {
    let chose = log
        .lines()
        .find_map(|l| {
            l.split_once("auto: chose ")
                .map(|(_, rest)| rest.to_string())
        })
        .unwrap_or_else(|| panic!("no 'auto: chose' line:\n{log}"));
    let (strategy, rest) = chose.split_once(" with chunk ").expect("with chunk");
    let (chunk, rest) = rest.split_once(", predicted ").expect("predicted");
    let predicted: f64 = rest.trim_end_matches(" s").parse().expect("seconds");
    let measured = log
        .lines()
        .find_map(|l| {
            l.split_once("auto: measured ")
                .map(|(_, rest)| rest.to_string())
        })
        .unwrap_or_else(|| panic!("no 'auto: measured' line:\n{log}"));
    let (seconds, prediction) = measured
        .split_once(" s (predicted ")
        .expect("measured line");
    assert_eq!(
        prediction
            .trim_end_matches(" s)")
            .parse::<f64>()
            .expect("seconds"),
        predicted
    );
    (
        (strategy.to_string(), chunk.to_string(), predicted),
        seconds.parse().expect("measured seconds"),
    )
}

/// Deploys the first [`NODES`] nodes with `conf`: the whole log and the per-node BroadcastEnv column
/// of the statistics.
fn deploy(dir: &Path, conf: &Path) -> (String, String) {
    let server = Server::start(conf, &dir.join("db.sqlite"), &[]);
    let h = Http::new(server.port, "root");
    seed_catalog(&h);
    let r = h.send(
        "POST",
        "/deployment",
        &json!({"nodes": nodes(1..=NODES), "environment": {"name": debian12()["name"]}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let res = r.json()["resources"].clone();
    let w = h.wait_done(res["resource"].as_str().expect("resource"), LIMIT);
    assert_eq!(w["error"], false, "{w}");
    let wid = r.json()["wid"].as_str().expect("wid").to_string();
    let log = h.get(res["log"].as_str().expect("log")).text();
    let stats = h
        .get(&format!(
            "/stats?wid={wid}&fields=hostname&fields=step2&fields=success"
        ))
        .text();
    drop(server);
    (log, stats)
}

/// The simulation parameters of the configuration `conf`.
fn params(conf: &Path) -> SimParams {
    let text = std::fs::read_to_string(conf.join("simulation.conf")).expect("simulation.conf");
    SimParams::parse(&text, "simulation.conf").expect("simulation.conf parses")
}

/// Checks the log of a deployment with `params`: the choice is the simulator's best for the first
/// [`NODES`] nodes, and the measured time is that candidate's prediction and no other strategy's.
/// Returns the chosen strategy.
fn check_choice(params: &SimParams, log: &str) -> Strategy {
    let ((strategy, chunk, predicted), measured) = auto_lines(log);
    let choice = auto::choose(
        params,
        NODES as usize,
        params.image.size,
        params.image.ratio,
    );
    let best = choice.best;
    assert_eq!(strategy, best.strategy.to_string(), "{log}");
    assert_eq!(chunk, auto::show_bytes(best.chunk), "{log}");
    assert!(
        (predicted - best.seconds).abs() < 0.05,
        "{predicted} vs {best:?}"
    );
    assert!(
        (measured - best.seconds).abs() <= 0.05 + best.seconds * 1e-3,
        "the broadcast ran the chosen strategy and chunk: measured {measured} s, predicted {best:?}"
    );
    let twins = |a: Strategy, b: Strategy| {
        let chains = [Strategy::Chain, Strategy::FaultTolerantChain];
        a == b || (chains.contains(&a) && chains.contains(&b))
    };
    let other: Vec<&Candidate> = choice
        .predicted
        .iter()
        .filter(|c| !twins(c.strategy, best.strategy))
        .filter(|c| (c.seconds - measured).abs() <= 0.05)
        .collect();
    assert!(other.is_empty(), "measured {measured} s is also {other:?}");
    best.strategy
}

#[test]
fn broadcast_env_auto_runs_the_strategy_the_simulator_predicts_fastest() {
    let dir = setup("auto-broadcast");
    let conf = auto_config(&dir, |t| t);
    let (log, stats) = deploy(&dir, &conf);
    let chosen = check_choice(&params(&conf), &log);
    assert_eq!(chosen, Strategy::Multicast, "a lossless LAN: {log}");
    assert_eq!(stats.lines().count(), NODES as usize, "{stats}");
    assert!(
        stats.lines().all(|l| l.ends_with(",BroadcastEnvAuto,true")),
        "every node's statistics name BroadcastEnvAuto:\n{stats}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_lossy_network_in_simulation_conf_changes_the_choice() {
    let dir = setup("auto-broadcast-lossy");
    let conf = auto_config(&dir, |t| {
        assert!(t.contains("  loss: 0.0 "), "the sample's loss key");
        t.replace("  loss: 0.0 ", "  loss: 0.05 ")
    });
    let (log, _) = deploy(&dir, &conf);
    let chosen = check_choice(&params(&conf), &log);
    assert_ne!(chosen, Strategy::Multicast, "5 % loss: {log}");
    let _ = std::fs::remove_dir_all(&dir);
}

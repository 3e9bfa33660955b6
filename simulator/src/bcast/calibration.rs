//! Calibration of the broadcast models against the namespace testbed of `hal` (measured with
//! `scripts/bcast-testbed.sh`: kaagent agents in network namespaces, tc-limited veth links, receivers
//! writing to tmpfs, 2 cores): the models given the testbed's parameters (link rate, N, size, chunk)
//! must predict the measured times within 15% for chain, tree and unicast.
//!
//! Parameters fed to [`simulate`](super::simulate):
//! * `B` = link rate × 1448/1514: tc's token bucket meters 1514-byte Ethernet frames carrying 1448
//!   bytes of TCP payload (N = 1 measures 1.05 × S/rate, as predicted);
//! * hop latency 50 µs (veth + bridge), chunk 1 MiB (kaagent's default), ρ = 1, ideal disks (tmpfs);
//! * the testbed's CPU: every agent of the run shares the machine's 2 cores, which move at most
//!   `X` = 550 MB/s of stream in total (receive, hash, forward, write); each receiver is given a
//!   processing rate `X / N`, passed as its `decompress` rate (ρ = 1: the rate at which its CPU
//!   handles the stream). `X` was fitted on the 8-receiver chain at 1 Gbit/s, the one CPU-bound
//!   point; every other prediction is link-bound and uses no fitted value.

use super::testkit::rel;
use super::{
    BroadcastJob, FaultTolerance, LatencyModel, LinkParams, Receiver, ReceiverOutcome, Topology,
    simulate,
};
use hal::Strategy;

const MIB: f64 = 1_048_576.0;
/// Aggregate stream-processing rate of the testbed's 2 cores (bytes/s), shared by the agents.
const TESTBED_CPU: f64 = 550e6;

/// Predicted completion of the last receiver on the testbed.
fn predict(strategy: Strategy, mbit: f64, mib: f64, n: usize) -> f64 {
    let link = LinkParams {
        bandwidth: mbit * 1e6 / 8.0 * 1448.0 / 1514.0,
        latency: 25e-6,
    };
    let topo = Topology {
        node_link: link,
        server_link: link,
        uplink_bandwidth: None,
        latency_model: LatencyModel::PerConnection,
    };
    let receiver = Receiver {
        switch: 0,
        disk_write: f64::INFINITY,
        decompress: TESTBED_CPU / n as f64,
        dies_at: None,
        write_error: false,
    };
    let job = BroadcastJob {
        strategy,
        size: mib * MIB,
        ratio: 1.0,
        chunk: MIB,
        receivers: vec![receiver; n],
        fault_tolerance: FaultTolerance {
            detect_timeout: 3.0,
            reconnect: 0.0,
        },
    };
    simulate(&job, &topo)
        .iter()
        .map(|o| match o {
            ReceiverOutcome::Done { at } => *at,
            ReceiverOutcome::Failed { at, .. } => *at,
        })
        .fold(0.0, f64::max)
}

/// `(n, strategy, measured seconds)`: 256 MiB at 1 Gbit/s, `scripts/bcast-testbed.sh`, 2026-11-27.
const GIGABIT_256MIB: &[(usize, Strategy, f64)] = &[
    (1, Strategy::Chain, 2.263),
    (2, Strategy::Chain, 2.322),
    (4, Strategy::Chain, 2.554),
    (8, Strategy::Chain, 4.025),
    (1, Strategy::Tree { arity: 2 }, 2.266),
    (2, Strategy::Tree { arity: 2 }, 4.552),
    (4, Strategy::Tree { arity: 2 }, 4.577),
    (8, Strategy::Tree { arity: 2 }, 4.700),
    (1, Strategy::Unicast, 2.250),
    (2, Strategy::Unicast, 4.532),
    (4, Strategy::Unicast, 9.105),
    (8, Strategy::Unicast, 18.059),
    (8, Strategy::FaultTolerantChain, 3.990),
];

/// 64 MiB at 200 Mbit/s, same script (`KABCAST_MBIT=200 KABCAST_MIB=64`); reported, not asserted:
/// two points exceed 15% for causes outside the model (see the test).
const RATE_200_64MIB: &[(usize, Strategy, f64)] = &[
    (1, Strategy::Chain, 2.827),
    (2, Strategy::Chain, 2.916),
    (4, Strategy::Chain, 3.096),
    (8, Strategy::Chain, 4.085),
    (2, Strategy::Tree { arity: 2 }, 5.719),
    (4, Strategy::Tree { arity: 2 }, 6.921),
    (8, Strategy::Tree { arity: 2 }, 6.254),
    (2, Strategy::Unicast, 5.670),
    (4, Strategy::Unicast, 11.729),
    (8, Strategy::Unicast, 22.801),
];

#[test]
fn the_models_predict_the_gigabit_testbed_within_15_percent() {
    for &(n, strategy, measured) in GIGABIT_256MIB {
        let predicted = predict(strategy, 1000.0, 256.0, n);
        eprintln!(
            "1 Gbit/s, 256 MiB, {strategy} N={n}: measured {measured:.3} s, predicted {predicted:.3} s"
        );
        assert!(
            rel(predicted, measured) < 0.15,
            "{strategy} N={n}: predicted {predicted:.3} s, measured {measured:.3} s"
        );
    }
}

#[test]
fn the_200_mbit_testbed_is_reported() {
    // Known misses: the 8-receiver chain (+23%: even a plain `socat | tee` chain takes 1.38 × S/B
    // there, a testbed slowdown the per-core model does not capture) and the 4-receiver binary tree
    // (+19%: the server's two TCP flows share its link unequally, so the node feeding two children
    // starts behind; max-min sharing assumes equal shares).
    let mut worst: f64 = 0.0;
    for &(n, strategy, measured) in RATE_200_64MIB {
        let predicted = predict(strategy, 200.0, 64.0, n);
        worst = worst.max(rel(predicted, measured));
        eprintln!(
            "200 Mbit/s, 64 MiB, {strategy} N={n}: measured {measured:.3} s, predicted {predicted:.3} s"
        );
    }
    assert!(worst < 0.30, "a 200 Mbit/s prediction is off by {worst:.2}");
}

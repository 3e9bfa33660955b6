//! Calibration of the broadcast models against the namespace testbed of `hal` (measured with
//! `scripts/bcast-testbed.sh`: kaagent agents in network namespaces, tc-limited veth links, receivers
//! writing to tmpfs, 2 cores): the models given the testbed's parameters (link rate, N, size, chunk)
//! must predict the measured times within 15% for chain, tree and unicast.
//!
//! Parameters fed to [`simulate`](super::simulate), none fitted:
//! * `B` = link rate × 1448/1514: tc's token bucket meters 1514-byte Ethernet frames carrying 1448
//!   bytes of TCP payload (N = 1 measures 1.046 × S/rate, as predicted);
//! * hop latency 50 µs (veth + bridge), chunk 1 MiB (kaagent's default), ρ = 1, ideal disks (tmpfs).
//!
//! The testbed's token buckets let a 64 KiB TSO frame through whole; with smaller buckets (before
//! 2026-11-27) tbf cut every frame into 1514-byte packets in software and the 2 cores, not the
//! links, bounded the 8-receiver chain, which then needed a fitted CPU rate in the model.

use super::testkit::rel;
use super::{
    BroadcastJob, FaultTolerance, LatencyModel, LinkParams, Receiver, ReceiverOutcome, SwarmParams,
    Topology, simulate,
};
use hal::Strategy;

const MIB: f64 = 1_048_576.0;

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
        loss: 0.0,
    };
    let receiver = Receiver {
        switch: 0,
        disk_write: f64::INFINITY,
        decompress: f64::INFINITY,
        dies_at: None,
        write_error: false,
        link: None,
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
        swarm: SwarmParams::default(),
        fec: None,
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
    (1, Strategy::Chain, 2.247),
    (2, Strategy::Chain, 2.259),
    (4, Strategy::Chain, 2.282),
    (8, Strategy::Chain, 2.389),
    (1, Strategy::Tree { arity: 2 }, 2.246),
    (2, Strategy::Tree { arity: 2 }, 4.492),
    (4, Strategy::Tree { arity: 2 }, 4.540),
    (8, Strategy::Tree { arity: 2 }, 4.572),
    (1, Strategy::Unicast, 2.246),
    (2, Strategy::Unicast, 4.492),
    (4, Strategy::Unicast, 8.983),
    (8, Strategy::Unicast, 17.966),
    (8, Strategy::FaultTolerantChain, 2.370),
];

/// 64 MiB at 200 Mbit/s, same script and day (`KABCAST_MBIT=200 KABCAST_MIB=64`).
const RATE_200_64MIB: &[(usize, Strategy, f64)] = &[
    (1, Strategy::Chain, 2.804),
    (2, Strategy::Chain, 2.849),
    (4, Strategy::Chain, 2.931),
    (8, Strategy::Chain, 3.110),
    (2, Strategy::Tree { arity: 2 }, 5.611),
    (4, Strategy::Tree { arity: 2 }, 6.715),
    (8, Strategy::Tree { arity: 2 }, 6.397),
    (2, Strategy::Unicast, 5.611),
    (4, Strategy::Unicast, 11.225),
    (8, Strategy::Unicast, 22.454),
    (8, Strategy::FaultTolerantChain, 3.139),
];

fn check(mbit: f64, mib: f64, points: &[(usize, Strategy, f64)]) {
    for &(n, strategy, measured) in points {
        let predicted = predict(strategy, mbit, mib, n);
        eprintln!(
            "{mbit} Mbit/s, {mib} MiB, {strategy} N={n}: measured {measured:.3} s, predicted {predicted:.3} s ({:+.1}%)",
            (predicted / measured - 1.0) * 100.0
        );
        assert!(
            rel(predicted, measured) < 0.15,
            "{mbit} Mbit/s {strategy} N={n}: predicted {predicted:.3} s, measured {measured:.3} s"
        );
    }
}

#[test]
fn the_models_predict_the_gigabit_testbed_within_15_percent() {
    check(1000.0, 256.0, GIGABIT_256MIB);
}

#[test]
fn the_models_predict_the_200_mbit_testbed_within_15_percent() {
    check(200.0, 64.0, RATE_200_64MIB);
}

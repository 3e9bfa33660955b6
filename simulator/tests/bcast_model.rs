//! Broadcast model scenarios: oversubscribed uplinks, physical bounds, degenerate inputs, determinism
//! and scale (10,000 receivers).

use std::time::Instant;

use hal::Strategy;
use proptest::prelude::*;
use proptest::strategy::Strategy as _;
use simulator::bcast::{
    BroadcastJob, FailureReason, FaultTolerance, LatencyModel, LinkParams, Receiver,
    ReceiverOutcome, SwarmParams, Topology, simulate,
};

const B: f64 = 117.7e6;
const L: f64 = 100e-6;
const MIB: f64 = 1_048_576.0;

fn topo(uplink: Option<f64>, server_bw: f64) -> Topology {
    Topology {
        node_link: LinkParams {
            bandwidth: B,
            latency: L / 2.0,
        },
        server_link: LinkParams {
            bandwidth: server_bw,
            latency: L / 2.0,
        },
        uplink_bandwidth: uplink,
        latency_model: LatencyModel::PerConnection,
        loss: 0.0,
    }
}

fn receiver(switch: usize) -> Receiver {
    Receiver {
        switch,
        disk_write: f64::INFINITY,
        decompress: f64::INFINITY,
        dies_at: None,
        write_error: false,
        link: None,
    }
}

fn job(strategy: Strategy, switches: &[usize], size: f64) -> BroadcastJob {
    BroadcastJob {
        strategy,
        size,
        ratio: 1.0,
        chunk: MIB,
        receivers: switches.iter().map(|&s| receiver(s)).collect(),
        fault_tolerance: FaultTolerance {
            detect_timeout: 3.0,
            reconnect: 1.0,
        },
        swarm: SwarmParams::default(),
        fec: None,
    }
}

fn last(out: &[ReceiverOutcome]) -> f64 {
    out.iter()
        .map(|o| match o {
            ReceiverOutcome::Done { at } => *at,
            other => panic!("expected Done, got {other:?}"),
        })
        .fold(0.0, f64::max)
}

const STRATEGIES: [Strategy; 7] = [
    Strategy::Chain,
    Strategy::Tree { arity: 2 },
    Strategy::Tree { arity: 3 },
    Strategy::FaultTolerantChain,
    Strategy::Unicast,
    Strategy::Multicast,
    Strategy::Swarm,
];

#[test]
fn oversubscribed_uplinks_slow_trees_and_unicast_but_not_a_switch_ordered_chain() {
    // 4 switches of 25 nodes, uplinks of 2 Gb/s (12.5:1 oversubscription), a 10 GbE server.
    let sorted: Vec<usize> = (0..100).map(|i| 1 + i / 25).collect();
    let shuffled: Vec<usize> = (0..100).map(|i| 1 + i % 4).collect();
    let (fat, thin) = (topo(None, 10.0 * B), topo(Some(2.0 * B), 10.0 * B));
    let s = 200.0 * MIB;
    let time = |st: Strategy, sw: &[usize], t: &Topology| last(&simulate(&job(st, sw, s), t));
    assert_eq!(
        time(Strategy::Chain, &sorted, &thin),
        time(Strategy::Chain, &sorted, &fat)
    );
    assert!(time(Strategy::Chain, &shuffled, &thin) > 10.0 * time(Strategy::Chain, &sorted, &thin));
    let tree = Strategy::Tree { arity: 2 };
    assert!(time(tree, &sorted, &thin) > 2.0 * time(tree, &sorted, &fat));
    // Unicast: 25 streams per 2 Gb/s uplink instead of 100 streams on the 10 Gb/s server link.
    let (u_fat, u_thin) = (
        time(Strategy::Unicast, &sorted, &fat),
        time(Strategy::Unicast, &sorted, &thin),
    );
    assert!((u_fat - 100.0 * (s + MIB) / (10.0 * B) - L).abs() < 1e-9 * u_fat);
    assert!((u_thin - 25.0 * (s + MIB) / (2.0 * B) - L).abs() < 1e-9 * u_thin);
}

#[test]
fn degenerate_inputs_never_panic() {
    let t = topo(None, B);
    for st in STRATEGIES {
        assert!(simulate(&job(st, &[], 1e9), &t).is_empty());
        let out = simulate(&job(st, &[0, 0, 0], 0.0), &t);
        assert!(
            out.iter()
                .all(|o| matches!(o, ReceiverOutcome::Done { at } if *at > 0.0 && *at < 1e-3)),
            "{out:?}"
        );
        let mut bad = job(st, &[0, 7, usize::MAX], f64::NAN);
        bad.ratio = f64::NAN;
        bad.chunk = f64::NEG_INFINITY;
        bad.receivers[0].dies_at = Some(f64::NAN);
        bad.receivers[1].disk_write = f64::NAN;
        bad.receivers[2].write_error = true;
        bad.fault_tolerance.detect_timeout = f64::NAN;
        let nan_topo = Topology {
            uplink_bandwidth: Some(f64::NAN),
            ..topo(None, f64::NAN)
        };
        assert_eq!(simulate(&bad, &nan_topo).len(), 3);
        let mut huge = job(st, &[0, 1], f64::INFINITY);
        huge.receivers[1].dies_at = Some(5.0);
        let out = simulate(&huge, &t);
        assert_eq!(out[0], ReceiverOutcome::Done { at: f64::INFINITY });
        assert!(matches!(
            out[1],
            ReceiverOutcome::Failed {
                at: 5.0,
                reason: FailureReason::Died
            }
        ));
    }
}

#[test]
fn same_input_same_output_bitwise() {
    let switches: Vec<usize> = (0..200).map(|i| (i * 7) % 5).collect();
    for st in STRATEGIES {
        let mut j = job(st, &switches, 300.0 * MIB);
        j.ratio = 2.5;
        for (i, r) in j.receivers.iter_mut().enumerate() {
            r.disk_write = 40.0 * MIB + (i % 13) as f64 * 7.0 * MIB;
            r.dies_at = (i % 37 == 5).then_some(0.1 * i as f64);
            r.write_error = i % 53 == 9;
        }
        let t = topo(Some(3.0 * B), 4.0 * B);
        let bits = |o: &[ReceiverOutcome]| -> Vec<u64> {
            o.iter()
                .map(|x| match x {
                    ReceiverOutcome::Done { at } | ReceiverOutcome::Failed { at, .. } => {
                        at.to_bits()
                    }
                })
                .collect()
        };
        let (a, b) = (simulate(&j, &t), simulate(&j, &t));
        assert_eq!(a, b);
        assert_eq!(bits(&a), bits(&b));
    }
}

#[test]
fn ten_thousand_receivers() {
    let switches: Vec<usize> = (0..10_000).map(|i| i / 48).collect();
    let t = topo(Some(10.0 * B), 10.0 * B);
    // The swarm's piece-level model is exercised at this scale in release builds (kasim sweep).
    for st in STRATEGIES.into_iter().filter(|s| *s != Strategy::Swarm) {
        let mut j = job(st, &switches, 1e9);
        for k in 1..=10 {
            j.receivers[k * 997].dies_at = Some(k as f64);
        }
        let start = Instant::now();
        let out = simulate(&j, &t);
        eprintln!(
            "{st:?}: 10,000 receivers simulated in {:?}",
            start.elapsed()
        );
        assert_eq!(out.len(), 10_000);
        let failed = out
            .iter()
            .filter(|o| matches!(o, ReceiverOutcome::Failed { .. }))
            .count();
        if matches!(
            st,
            Strategy::FaultTolerantChain | Strategy::Unicast | Strategy::Multicast
        ) {
            assert_eq!(failed, 10);
        }
    }
}

fn any_strategy() -> impl proptest::strategy::Strategy<Value = Strategy> {
    prop_oneof![
        Just(Strategy::Chain),
        (0u32..5).prop_map(|arity| Strategy::Tree { arity }),
        Just(Strategy::FaultTolerantChain),
        Just(Strategy::Unicast),
        Just(Strategy::Multicast),
        Just(Strategy::Swarm),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every receiver that finishes respects `T ≥ max(S/B, S·ρ/W, S·ρ/D) + L`.
    #[test]
    fn physical_lower_bound_holds(
        st in any_strategy(),
        n in 1usize..40,
        size in 1e3f64..1e9,
        ratio in 1.0f64..4.0,
        chunk in 1e3f64..1e7,
        disk in 1e7f64..1e9,
        uplink in prop::option::of(1e7f64..1e9),
        per_chunk in any::<bool>(),
        deaths in prop::collection::vec(prop::option::of(0.0f64..20.0), 40),
    ) {
        let mut j = job(st, &(0..n).map(|i| i % 3).collect::<Vec<_>>(), size);
        j.ratio = ratio;
        j.chunk = chunk;
        for (r, d) in j.receivers.iter_mut().zip(&deaths) {
            r.disk_write = disk;
            r.dies_at = *d;
        }
        let mut t = topo(uplink, B);
        if per_chunk {
            t.latency_model = LatencyModel::PerChunk;
        }
        let bound = (size / B).max(size * ratio / disk) + L;
        for o in simulate(&j, &t) {
            match o {
                ReceiverOutcome::Done { at } => prop_assert!(at >= bound * (1.0 - 1e-12), "{at} < {bound}"),
                ReceiverOutcome::Failed { at, .. } => prop_assert!(at >= 0.0),
            }
        }
    }
}

//! The swarm model's scenarios: near S/B, losses of peers, and the slow-link case of issue 14.
use super::*;
use crate::bcast::testkit::{B, MIB, done_at, gige, job, last};
use crate::bcast::{LatencyModel, simulate as run};
use hal::Strategy;

#[test]
fn every_receiver_gets_the_image_near_s_over_b() {
    let s = 256.0 * MIB;
    for n in [1, 2, 16, 200] {
        let t = last(&run(
            &job(Strategy::Swarm, n, s, MIB),
            &gige(LatencyModel::PerConnection),
        ));
        assert!(t >= s / B, "n={n}: {t}");
        assert!(t < 1.6 * s / B, "n={n}: {t} vs S/B {}", s / B);
    }
}

#[test]
fn a_dead_peer_loses_capacity_not_receivers() {
    let mut j = job(Strategy::Swarm, 20, 64.0 * MIB, MIB);
    j.receivers[3].dies_at = Some(0.1);
    j.receivers[7].write_error = true;
    let out = run(&j, &gige(LatencyModel::PerConnection));
    assert_eq!(
        out[3],
        ReceiverOutcome::Failed {
            at: 0.1,
            reason: FailureReason::Died
        }
    );
    assert!(matches!(
        out[7],
        ReceiverOutcome::Failed {
            reason: FailureReason::WriteError,
            ..
        }
    ));
    let others: Vec<_> = out
        .iter()
        .enumerate()
        .filter(|(i, _)| ![3, 7].contains(i))
        .map(|(_, o)| o.clone())
        .collect();
    assert!(done_at(&others).iter().all(|t| t.is_finite()));
}

/// Issue 14: with one receiver's link at a tenth of the others', a chain runs everybody at the slow
/// link's rate; the swarm does not (only the slow node itself is slow).
#[test]
fn the_swarm_beats_a_chain_when_one_link_is_a_tenth() {
    let (n, s) = (16, 128.0 * MIB);
    let topo = gige(LatencyModel::PerConnection);
    let slow = 5;
    let with_slow = |strategy| {
        let mut j = job(strategy, n, s, MIB);
        j.receivers[slow].link = Some((B / 10.0, B / 10.0));
        done_at(&run(&j, &topo))
    };
    let chain = with_slow(Strategy::Chain);
    let swarm = with_slow(Strategy::Swarm);
    let fast = |t: &[f64]| {
        t.iter()
            .enumerate()
            .filter(|(i, _)| *i != slow)
            .map(|(_, &x)| x)
            .fold(0.0, f64::max)
    };
    // The chain: everybody at B/10.
    assert!(fast(&chain) > 9.0 * s / B, "chain {chain:?}");
    // The swarm: every fast node within 1.5 S/B (1.03–1.27 here), the slow one no later than in the chain.
    assert!(fast(&swarm) < 1.5 * s / B, "swarm {swarm:?}");
    assert!(
        swarm[slow] <= chain[slow] * 1.01,
        "{} vs {}",
        swarm[slow],
        chain[slow]
    );
    let mean = |t: &[f64]| t.iter().sum::<f64>() / t.len() as f64;
    assert!(mean(&swarm) * 3.0 < mean(&chain));
}

//! Fault-tolerant chain (Kascade): a pipelined chain whose nodes detect a dead or stalled successor and
//! reconnect to the next live node, which resumes from the bytes it holds. Only failed nodes fail.
//!
//! When receiver `d` dies at `t` (or its disk refuses its first chunk), every unfinished successor is
//! paused until `t + detect_timeout + reconnect`; then the nearest live predecessor (or the server)
//! feeds the next live node and the stream goes on without `d`'s resources (so its rate may change).
//! Upstream nodes are not delayed. Paused nodes keep their bytes, so, at constant rate, each death
//! delays its successors by exactly `detect_timeout + reconnect`. A node dying while itself paused is
//! noticed when the stream resumes towards it, so its successors wait another `detect + reconnect`
//! from then; pauses never shorten one another. The replay buffer is assumed large enough to hold what upstream received meanwhile.
//! Without failures it is exactly [`super::chain`].

use super::pipeline::{self, Recovery};
use super::resources::non_negative;
use super::{BroadcastJob, ReceiverOutcome, Topology, chain};

/// Simulates a fault-tolerant chain broadcast; one outcome per receiver.
pub(crate) fn simulate(job: &BroadcastJob, topo: &Topology) -> Vec<ReceiverOutcome> {
    let ft = job.fault_tolerance;
    let resume_after = non_negative(ft.detect_timeout) + non_negative(ft.reconnect);
    pipeline::run(
        job,
        topo,
        &chain::parents(job.receivers.len()),
        Recovery::Reroute { resume_after },
    )
}

#[cfg(test)]
mod tests {
    use crate::bcast::closed_form::stream_per_connection;
    use crate::bcast::testkit::{B, L, MIB, done_at, gige, job, rel};
    use crate::bcast::{FailureReason, LatencyModel, ReceiverOutcome, simulate as run};
    use hal::Strategy;

    const S: f64 = 200.0 * MIB;

    fn ideal(i: usize) -> f64 {
        stream_per_connection(S, MIB, B, i as u32 + 1, L)
    }

    #[test]
    fn without_failures_it_is_the_chain() {
        let topo = gige(LatencyModel::PerChunk);
        let a = run(&job(Strategy::FaultTolerantChain, 9, S, MIB), &topo);
        let b = run(&job(Strategy::Chain, 9, S, MIB), &topo);
        assert_eq!(a, b);
    }

    #[test]
    fn two_deaths_cost_detect_plus_reconnect_each() {
        let mut j = job(Strategy::FaultTolerantChain, 10, S, MIB);
        j.receivers[2].dies_at = Some(0.5);
        j.receivers[6].dies_at = Some(5.0);
        let pause = j.fault_tolerance.detect_timeout + j.fault_tolerance.reconnect;
        let out = run(&j, &gige(LatencyModel::PerConnection));
        assert_eq!(
            out[2],
            ReceiverOutcome::Failed {
                at: 0.5,
                reason: FailureReason::Died
            }
        );
        assert_eq!(
            out[6],
            ReceiverOutcome::Failed {
                at: 5.0,
                reason: FailureReason::Died
            }
        );
        for (i, o) in out.iter().enumerate().filter(|(i, _)| ![2, 6].contains(i)) {
            let ReceiverOutcome::Done { at } = *o else {
                panic!("{i}: {o:?}")
            };
            let deaths_upstream = [2, 6].iter().filter(|&&d| d < i).count() as f64;
            assert!(
                rel(at, ideal(i) + deaths_upstream * pause) < 1e-9,
                "{i}: {at}"
            );
        }
    }

    #[test]
    fn a_death_during_a_pause_is_noticed_at_resumption() {
        let mut j = job(Strategy::FaultTolerantChain, 10, S, MIB);
        j.receivers[2].dies_at = Some(0.5);
        j.receivers[6].dies_at = Some(1.0);
        let out = run(&j, &gige(LatencyModel::PerConnection));
        let t = done_at(&out[7..]);
        assert!(
            rel(t[0], ideal(7) + 8.0) < 1e-9,
            "paused 0.5 → 4.5, then 4.5 → 8.5: {t:?}"
        );
        assert!(
            rel(done_at(&out[..2])[1], ideal(1)) < 1e-9,
            "upstream undelayed"
        );
    }

    #[test]
    fn overlapping_failures_merge_and_write_errors_are_removed() {
        let mut j = job(Strategy::FaultTolerantChain, 6, S, MIB);
        j.receivers[0].dies_at = Some(0.0);
        j.receivers[1].dies_at = Some(2.0);
        j.receivers[3].write_error = true;
        j.receivers[5].dies_at = Some(f64::NAN);
        let out = run(&j, &gige(LatencyModel::PerConnection));
        assert!(matches!(
            out[3],
            ReceiverOutcome::Failed {
                reason: FailureReason::WriteError,
                ..
            }
        ));
        let t = done_at(&[out[2].clone(), out[4].clone(), out[5].clone()]);
        // Node 0's death pauses everybody until 4; node 1 dies at 2 while paused, which is noticed
        // at 4: node 2 starts at 8.
        assert!(rel(t[0], 8.0 + ideal(2)) < 1e-9, "{t:?}");
        assert!(t[1] > t[0] + 4.0 && t[2] > t[1]);
    }
}

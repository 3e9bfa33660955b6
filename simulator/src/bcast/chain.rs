//! Pipelined chain (Kastafior, TakTuk chain): server → r0 → r1 → … as ONE stream at the max-min rate
//! of every link, disk and CPU of the chain. A dead node (or one whose disk refuses the write) cuts
//! all its successors off at the same time.
//!
//! Receiver `i` (0-based) is `i + 1` hops from the server. Idealised (homogeneous links `B`, hop latency
//! `L`, infinite disks), with `c` the chunk and `K = ⌈S/c⌉`:
//!
//! * PerConnection: `T_i = S/B + (i + 1)·(c/B + L)`; last receiver `S/B + N·(c/B + L)`.
//! * PerChunk: `T_i = (K + i)·(c/B + L)`; last receiver `(K + N − 1)·(c/B + L)` (the textbook form).

use super::pipeline::{self, Recovery};
use super::{BroadcastJob, ReceiverOutcome, Topology};

/// The forwarding structure of a chain: receiver `i` is fed by `i − 1`, receiver 0 by the server.
pub(crate) fn parents(n: usize) -> Vec<Option<usize>> {
    (0..n).map(|i| i.checked_sub(1)).collect()
}

/// Simulates a chain broadcast; one outcome per receiver.
pub(crate) fn simulate(job: &BroadcastJob, topo: &Topology) -> Vec<ReceiverOutcome> {
    pipeline::run(job, topo, &parents(job.receivers.len()), Recovery::CutOff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bcast::closed_form::{chain_store_and_forward, stream_per_connection};
    use crate::bcast::testkit::{B, L, MIB, done_at, gige, job, last, rel};
    use crate::bcast::{FailureReason, LatencyModel, simulate as run};
    use hal::Strategy;

    #[test]
    fn idealised_chain_matches_the_closed_forms() {
        let (s, c) = (256.0 * MIB, MIB);
        for n in [1, 2, 17, 100] {
            let j = job(Strategy::Chain, n, s, c);
            let t = done_at(&run(&j, &gige(LatencyModel::PerChunk)));
            assert!(
                rel(t[n - 1], chain_store_and_forward(s, c, n, B, L)) < 1e-9,
                "n={n}"
            );
            assert!(
                rel(t[0], 256.0 * (c / B + L)) < 1e-9,
                "K = 256 chunks, 1 hop"
            );
            let t = done_at(&run(&j, &gige(LatencyModel::PerConnection)));
            for (i, &ti) in t.iter().enumerate() {
                assert!(
                    rel(ti, stream_per_connection(s, c, B, i as u32 + 1, L)) < 1e-9,
                    "n={n} i={i}"
                );
            }
        }
    }

    #[test]
    fn one_gigabyte_at_1gbe_is_s_over_b_plus_pipeline_fill() {
        let (s, c) = (1e9, MIB);
        for n in [1, 10, 25, 1000, 10_000] {
            let t = last(&run(
                &job(Strategy::Chain, n, s, c),
                &gige(LatencyModel::PerConnection),
            ));
            assert!(t >= s / B);
            assert!(rel(t, s / B + n as f64 * (c / B + L)) < 1e-9, "n={n}");
            if n <= 25 {
                assert!(t / (s / B) < 1.03, "flat in N: n={n} t={t}");
            }
        }
    }

    #[test]
    fn a_slow_disk_throttles_everybody() {
        let mut j = job(Strategy::Chain, 20, 400e6, MIB);
        j.ratio = 2.5;
        for r in &mut j.receivers {
            r.disk_write = 50.0 * MIB;
        }
        let t = last(&run(&j, &gige(LatencyModel::PerConnection)));
        let disk_bound = 400e6 * 2.5 / (50.0 * MIB);
        assert!(t >= disk_bound && rel(t, disk_bound) < 0.06, "t={t}");
        // Exactly S/r + N·(c/r + L) with r = W/ρ: the pipeline fills at the disk's pace.
        assert!(
            rel(
                t,
                stream_per_connection(400e6, MIB, 50.0 * MIB / 2.5, 20, L)
            ) < 1e-9
        );
        // One slow node among fast ones is enough.
        let mut j = job(Strategy::Chain, 20, 400e6, MIB);
        j.receivers[13].decompress = 20e6;
        let t = done_at(&run(&j, &gige(LatencyModel::PerConnection)));
        assert!(t[0] > 400e6 / 20e6, "upstream is throttled too");
    }

    #[test]
    fn a_death_cuts_the_successors_off() {
        let mut j = job(Strategy::Chain, 8, 100.0 * MIB, MIB);
        j.receivers[3].dies_at = Some(0.2);
        j.receivers[6].dies_at = Some(0.1);
        j.receivers[1].dies_at = Some(100.0);
        let out = run(&j, &gige(LatencyModel::PerConnection));
        let expect = stream_per_connection(100.0 * MIB, MIB, B, 3, L);
        assert!(
            rel(done_at(&out[..3])[2], expect) < 1e-9,
            "upstream unaffected; late death ignored"
        );
        assert_eq!(
            out[3],
            ReceiverOutcome::Failed {
                at: 0.2,
                reason: FailureReason::Died
            }
        );
        for o in &out[4..6] {
            assert_eq!(
                o,
                &ReceiverOutcome::Failed {
                    at: 0.2,
                    reason: FailureReason::CutOff { by: 3 }
                }
            );
        }
        assert_eq!(
            out[6],
            ReceiverOutcome::Failed {
                at: 0.1,
                reason: FailureReason::Died
            }
        );
        assert_eq!(
            out[7],
            ReceiverOutcome::Failed {
                at: 0.1,
                reason: FailureReason::CutOff { by: 6 }
            }
        );
    }

    #[test]
    fn a_write_error_fails_at_the_first_chunk_and_stops_forwarding() {
        let mut j = job(Strategy::Chain, 4, 10.0 * MIB, MIB);
        j.receivers[2].write_error = true;
        let out = run(&j, &gige(LatencyModel::PerConnection));
        // Receiver 2 (3 hops) writes its first chunk at progress (3 + 1)·c.
        let at = 4.0 * MIB / B + 3.0 * L;
        let ReceiverOutcome::Failed {
            at: t,
            reason: FailureReason::WriteError,
        } = out[2]
        else {
            panic!("{:?}", out[2])
        };
        assert!(rel(t, at) < 1e-9);
        assert_eq!(
            out[3],
            ReceiverOutcome::Failed {
                at: t,
                reason: FailureReason::CutOff { by: 2 }
            }
        );
        assert_eq!(done_at(&out[..2]).len(), 2);
    }
}

//! Unicast: one stream from the server to every receiver, all at once, sharing the server's up link
//! (and uplinks) max-min fairly. Each stream is one flow with one hop (see [`Timing`] for its latency).
//!
//! Idealised (homogeneous, infinite disks, `B_server = B`): PerConnection `T = N·(S + c)/B + L`, i.e.
//! `N·S/B + L` plus one chunk of store-and-forward at the shared rate; PerChunk `T = K·(N·c/B + L)`,
//! `= N·S/B + K·L` when `c` divides `S`. A receiver that dies (or hits a write error at its first chunk)
//! stops its stream, which frees its share for the others.

use std::collections::BTreeSet;

use super::resources::{Net, Sender, Timing, death_times};
use super::{BroadcastJob, FailureReason, ReceiverOutcome, Topology};
use crate::net::Key;

const DEATH: u8 = 0;
const WRITE_ERROR: u8 = 1;

/// Simulates a unicast broadcast; one outcome per receiver.
pub(crate) fn simulate(job: &BroadcastJob, topo: &Topology) -> Vec<ReceiverOutcome> {
    let n = job.receivers.len();
    let mut net = Net::new(job, topo);
    let timing = Timing::new(job, topo.latency_model);
    let latency = net.hop_latency(Sender::Server);
    let mut fail_at = death_times(job);
    let mut out: Vec<Option<ReceiverOutcome>> = vec![None; n];
    let mut timed: BTreeSet<(Key, u8, usize)> = BTreeSet::new();
    let mut terms = Vec::new();
    // Flow i is receiver i's stream; a write-error receiver's stream stops at its first chunk.
    let flows: Vec<_> = (0..n)
        .map(|i| {
            terms.clear();
            net.push_receive_terms(Sender::Server, i, &mut terms);
            let work = if job.receivers[i].write_error {
                timing.first_write_at(1.0)
            } else {
                timing.done_at(1.0)
            };
            let id = net.fluid.add_flow(work, &terms);
            net.fluid.set_overhead(id, timing.overhead(latency));
            id
        })
        .collect();
    for (i, &t) in fail_at.iter().enumerate().filter(|(_, t)| t.is_finite()) {
        timed.insert((Key(t), DEATH, i));
    }
    let shift = timing.shift(latency);
    loop {
        let t_c = net.fluid.next_completion().unwrap_or(f64::INFINITY);
        let t_e = timed.first().map_or(f64::INFINITY, |&(Key(t), _, _)| t);
        if t_c.min(t_e) == f64::INFINITY {
            break;
        }
        if t_c <= t_e {
            for id in net.fluid.pop_completions() {
                let i = id.0;
                let at = net.fluid.now() + shift;
                if at >= fail_at[i] {
                    continue;
                }
                if job.receivers[i].write_error {
                    fail_at[i] = at;
                    timed.insert((Key(at), WRITE_ERROR, i));
                } else {
                    out[i] = Some(ReceiverOutcome::Done { at });
                }
            }
        } else {
            net.fluid.advance_to(t_e);
            while let Some(&(Key(t), kind, i)) = timed.first() {
                if t > t_e {
                    break;
                }
                timed.pop_first();
                if fail_at[i] != t || out[i].is_some() {
                    continue;
                }
                let reason = if kind == WRITE_ERROR {
                    FailureReason::WriteError
                } else {
                    FailureReason::Died
                };
                out[i] = Some(ReceiverOutcome::Failed { at: t, reason });
                net.fluid.set_active(flows[i], false);
            }
        }
    }
    out.into_iter()
        .map(|o| o.unwrap_or(ReceiverOutcome::Done { at: f64::INFINITY }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bcast::testkit::{B, L, MIB, done_at, gige, job, rel};
    use crate::bcast::{LatencyModel, simulate as run};
    use hal::Strategy;

    #[test]
    fn idealised_unicast_is_n_s_over_b() {
        let (s, c) = (64.0 * MIB, MIB);
        for n in [1, 7, 300] {
            let j = job(Strategy::Unicast, n, s, c);
            let t = done_at(&run(&j, &gige(LatencyModel::PerConnection)));
            let nf = n as f64;
            assert!(rel(t[n - 1], nf * (s + c) / B + L) < 1e-9, "n={n}");
            let t = done_at(&run(&j, &gige(LatencyModel::PerChunk)));
            assert!(rel(t[n - 1], nf * s / B + 64.0 * L) < 1e-9, "n={n}");
            assert!(t.iter().all(|&x| x == t[0]), "all finish together");
        }
    }

    #[test]
    fn a_dead_receiver_frees_its_share() {
        let mut j = job(Strategy::Unicast, 4, 100.0 * MIB, 0.0);
        j.receivers[0].dies_at = Some(0.0);
        j.receivers[1].write_error = true;
        let out = run(&j, &gige(LatencyModel::PerConnection));
        assert_eq!(
            out[0],
            ReceiverOutcome::Failed {
                at: 0.0,
                reason: FailureReason::Died
            }
        );
        let ReceiverOutcome::Failed {
            at,
            reason: FailureReason::WriteError,
        } = out[1]
        else {
            panic!("{:?}", out[1])
        };
        // First chunk = whole image (c = 0): the write error comes when it is received, at 3 streams.
        let s = 100.0 * MIB;
        assert!(rel(at, 3.0 * 2.0 * s / B + L) < 1e-9);
        let t = done_at(&out[2..]);
        assert!(
            rel(t[0], 3.0 * 2.0 * s / B + L) < 1e-9,
            "two full-image chunks, 3 streams"
        );
    }
}

//! Rate-controlled IP multicast with NAK-based repair (udpcast, Frisbee): the server sends every packet
//! once to the group, at the rate of the slowest live receiver; lost packets are re-sent to the group
//! when receivers ask for them; every receiver verifies each chunk before writing it.
//!
//! The stream crosses the server's up link once, each switch's down uplink once (switches replicate the
//! packets), and every receiver's down link, disk (ρ) and decompression (ρ), so its rate is
//! `r = min(B_server, U_down, min_i r_i)`. With iid loss `p` per packet and receiver, and `N` live
//! receivers, a packet is sent `E = Σ_{k≥0} [1 − (1 − p^k)^N]` times on average (simulation.md §2.2),
//! so the image advances at `r/E`. Like the chain's first hop, a receiver is done when `S + c` bytes of
//! image went by (one chunk held for verification), plus the hop latency ([`Timing`]).
//!
//! With forward error correction (`job.fec`, `m` repairs per block of `k`, as kaagent sends them) the
//! stream is `(k+m)/k` longer, and a receiver asks only for what its block's repairs cannot rebuild:
//! `q = E[max(0, L − m)] / k` of the data, `L ~ Binomial(k+m, p)` the block's losses. Requested
//! packets go to the group again, each lost with `p`: the repair rounds cost
//! `R = Σ_{j≥1} [1 − (1 − q·p^{j−1})^N]` per data packet, and the image advances at
//! `r / ((k+m)/k + R)`. Without it `q = p`, and `1 + R` is `E` above. FEC pays where `R(p)` exceeds
//! `m/k + R(q)`: many receivers or high loss.
//!
//! A receiver that dies stops answering: the sender stalls for `fault_tolerance.detect_timeout`, then
//! drops it and goes on at the rate (and repair cost) of the others. A receiver whose disk refuses its
//! first chunk says so and leaves at once. Everybody else finishes at the same instant.

use super::resources::{Timing, death_times, non_negative};
use super::{BroadcastJob, FailureReason, ReceiverOutcome, Topology};
use hal::broadcast::mcast_fec::Fec;
use std::collections::BTreeSet;

/// Expected transmissions of one packet to `n` receivers, each losing it with probability `p`
/// (independently), when every loss is repaired by a multicast retransmission.
pub(crate) fn expected_transmissions(p: f64, n: usize) -> f64 {
    if p.is_nan() || p <= 0.0 || n == 0 {
        return 1.0;
    }
    let p = p.min(0.999);
    let n = n as i32;
    let mut total = 0.0;
    let mut pk: f64 = 1.0;
    // Terms fall geometrically (about N·p^k); 10,000 terms bound even p = 0.999.
    for _ in 0..10_000 {
        let term = 1.0 - (1.0 - pk).powi(n);
        total += term;
        if term < 1e-12 {
            break;
        }
        pk *= p;
    }
    total
}

/// Repair retransmissions per data packet when each of `n` receivers needs it again with probability
/// `q` after its first sending, and each retransmission is lost with probability `p`:
/// `Σ_{j≥1} [1 − (1 − q·p^{j−1})^n]`.
pub(crate) fn requested_transmissions(q: f64, p: f64, n: usize) -> f64 {
    if q.is_nan() || q <= 0.0 || n == 0 {
        return 0.0;
    }
    let (q, p) = (
        q.min(0.999),
        if p.is_nan() { 0.0 } else { p.clamp(0.0, 0.999) },
    );
    let n = n as i32;
    let mut total = 0.0;
    let mut need = q;
    for _ in 0..10_000 {
        let term = 1.0 - (1.0 - need).powi(n);
        total += term;
        if term < 1e-12 {
            break;
        }
        need *= p;
    }
    total
}

/// The share of the data a receiver still asks for after forward error correction `fec` rebuilt
/// what it could, with iid loss `p`: `E[max(0, L − m)] / k`, `L ~ Binomial(k+m, p)`.
pub(crate) fn residual_loss(p: f64, fec: Fec) -> f64 {
    if p.is_nan() || p <= 0.0 {
        return 0.0;
    }
    let p = p.min(1.0);
    let (k, m) = (u32::from(fec.k.max(1)), u32::from(fec.m));
    let total = k + m;
    let mut binom = 1.0f64;
    let mut expected = 0.0;
    for lost in 0..=total {
        if lost > m {
            let pr = binom * p.powi(lost as i32) * (1.0 - p).powi((total - lost) as i32);
            expected += f64::from(lost - m) * pr;
        }
        binom = binom * f64::from(total - lost) / f64::from(lost + 1);
    }
    expected / f64::from(k)
}

/// Packets on the wire per data packet of the image, with loss `p`, `n` live receivers and forward
/// error correction `fec`: the FEC overhead plus the repair rounds.
pub(crate) fn wire_cost(p: f64, n: usize, fec: Option<Fec>) -> f64 {
    match fec {
        None => expected_transmissions(p, n),
        Some(f) => {
            let overhead = f64::from(f.k + f.m) / f64::from(f.k.max(1));
            overhead + requested_transmissions(residual_loss(p, f), p, n)
        }
    }
}

/// The rate a receiver can take the stream at (link, disk and decompression, in compressed bytes/s).
fn receiver_rate(job: &BroadcastJob, topo: &Topology, i: usize, ratio: f64) -> f64 {
    let r = &job.receivers[i];
    let down = r.link.map_or(topo.node_link.bandwidth, |(_, d)| d);
    non_negative(down)
        .min(non_negative(r.disk_write) / ratio)
        .min(non_negative(r.decompress) / ratio)
}

/// The stream's rate with the receivers of `live`.
fn stream_rate(job: &BroadcastJob, topo: &Topology, live: &[bool], ratio: f64) -> f64 {
    let mut rate = non_negative(topo.server_link.bandwidth);
    let mut switches: BTreeSet<usize> = BTreeSet::new();
    for (i, _) in live.iter().enumerate().filter(|(_, l)| **l) {
        rate = rate.min(receiver_rate(job, topo, i, ratio));
        switches.insert(job.receivers[i].switch);
    }
    if let Some(u) = topo.uplink_bandwidth
        && switches.iter().any(|&s| s != 0)
    {
        rate = rate.min(non_negative(u));
    }
    rate
}

/// Simulates a multicast broadcast; one outcome per receiver.
pub(crate) fn simulate(job: &BroadcastJob, topo: &Topology) -> Vec<ReceiverOutcome> {
    let n = job.receivers.len();
    let ratio = if job.ratio.is_finite() && job.ratio > 0.0 {
        job.ratio
    } else {
        1.0
    };
    let timing = Timing::new(job, topo.latency_model);
    let hop = non_negative(topo.server_link.latency) + non_negative(topo.node_link.latency);
    // One stream: the hop latency is paid once, in both latency models.
    let shift = hop;
    let done_x = timing.done_at(1.0);
    let first_x = timing.first_write_at(1.0);
    let stall = non_negative(job.fault_tolerance.detect_timeout);
    let loss = if topo.loss.is_finite() {
        topo.loss.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let deaths = death_times(job);
    let mut out: Vec<Option<ReceiverOutcome>> = vec![None; n];
    let mut live = vec![true; n];
    // Failures in time order: (time, receiver, reason); write errors come at the first chunk.
    let mut pending: Vec<(f64, usize)> = deaths
        .iter()
        .enumerate()
        .filter(|(_, t)| t.is_finite())
        .map(|(i, &t)| (t, i))
        .collect();
    pending.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut pending = pending.into_iter().peekable();
    let (mut t, mut x, mut first_written) = (0.0f64, 0.0f64, false);
    loop {
        let count = live.iter().filter(|l| **l).count();
        if count == 0 {
            break;
        }
        let speed = stream_rate(job, topo, &live, ratio) / wire_cost(loss, count, job.fec);
        let target = if first_written { done_x } else { first_x };
        let t_reach = if x >= target {
            t
        } else if speed > 0.0 {
            t + (target - x) / speed
        } else {
            f64::INFINITY
        };
        let t_death = pending.peek().map_or(f64::INFINITY, |p| p.0);
        if t_reach == f64::INFINITY && t_death == f64::INFINITY {
            break;
        }
        if t_reach <= t_death {
            x = target;
            t = t_reach;
            if !first_written {
                first_written = true;
                let refusing: Vec<usize> = (0..n)
                    .filter(|&i| live[i] && job.receivers[i].write_error)
                    .collect();
                for i in refusing {
                    out[i] = Some(ReceiverOutcome::Failed {
                        at: t + shift,
                        reason: FailureReason::WriteError,
                    });
                    live[i] = false;
                }
                continue;
            }
            for (o, _) in out.iter_mut().zip(&live).filter(|(_, l)| **l) {
                *o = Some(ReceiverOutcome::Done { at: t + shift });
            }
            break;
        }
        let Some((td, i)) = pending.next() else {
            break;
        };
        if !live[i] {
            continue;
        }
        x += speed * (td - t).max(0.0);
        t = td.max(t);
        out[i] = Some(ReceiverOutcome::Failed {
            at: td,
            reason: FailureReason::Died,
        });
        live[i] = false;
        // The sender waits for the dead receiver's acknowledgements, then drops it.
        t += stall;
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
    fn lossless_multicast_is_s_over_b_whatever_n() {
        let (s, c) = (256.0 * MIB, MIB);
        for n in [1, 8, 300, 10_000] {
            let t = done_at(&run(
                &job(Strategy::Multicast, n, s, c),
                &gige(LatencyModel::PerConnection),
            ));
            assert!(t.iter().all(|&x| x == t[0]), "everybody at once");
            assert!(rel(t[0], (s + c) / B + L) < 1e-9, "n={n}: {}", t[0]);
        }
    }

    #[test]
    fn repair_cost_follows_the_nak_formula() {
        // simulation.md §2.2: p = 1e-3 gives E = 1.26 at N = 300, 1.63 at N = 1,000.
        assert!((expected_transmissions(1e-3, 300) - 1.26).abs() < 0.01);
        assert!((expected_transmissions(1e-3, 1000) - 1.63).abs() < 0.01);
        assert_eq!(expected_transmissions(0.0, 1000), 1.0);
        let mut topo = gige(LatencyModel::PerConnection);
        topo.loss = 1e-3;
        let (s, c) = (100.0 * MIB, MIB);
        let t = done_at(&run(&job(Strategy::Multicast, 300, s, c), &topo));
        let e = expected_transmissions(1e-3, 300);
        assert!(rel(t[0], e * (s + c) / B + L) < 1e-9);
    }

    #[test]
    fn the_slowest_receiver_sets_the_pace() {
        let (s, c) = (100.0 * MIB, MIB);
        let mut j = job(Strategy::Multicast, 8, s, c);
        j.receivers[5].link = Some((B, B / 10.0));
        let t = done_at(&run(&j, &gige(LatencyModel::PerConnection)));
        assert!(t.iter().all(|&x| rel(x, 10.0 * (s + c) / B + L) < 1e-9));
    }

    #[test]
    fn a_dead_receiver_stalls_the_sender_then_is_dropped() {
        let (s, c) = (100.0 * MIB, MIB);
        let mut j = job(Strategy::Multicast, 4, s, c);
        j.receivers[1].dies_at = Some(0.2);
        j.receivers[2].write_error = true;
        let out = run(&j, &gige(LatencyModel::PerConnection));
        assert_eq!(
            out[1],
            ReceiverOutcome::Failed {
                at: 0.2,
                reason: FailureReason::Died
            }
        );
        assert!(matches!(
            out[2],
            ReceiverOutcome::Failed {
                reason: FailureReason::WriteError,
                ..
            }
        ));
        let stall = j.fault_tolerance.detect_timeout;
        let t = done_at(&[out[0].clone(), out[3].clone()]);
        assert!(rel(t[0], (s + c) / B + L + stall) < 1e-9, "{t:?}");
    }

    fn fec(k: u16, m: u16) -> Option<Fec> {
        Some(Fec::new(k, m).expect("fec"))
    }

    #[test]
    fn fec_costs_its_overhead_on_a_clean_link() {
        let (s, c) = (64.0 * MIB, MIB);
        let mut j = job(Strategy::Multicast, 4, s, c);
        j.fec = fec(16, 4);
        let t = done_at(&run(&j, &gige(LatencyModel::PerConnection)));
        assert!(rel(t[0], 1.25 * (s + c) / B + L) < 1e-9, "{}", t[0]);
    }

    #[test]
    fn without_fec_the_repair_rounds_are_the_nak_formula() {
        for (p, n) in [(1e-3, 300), (0.05, 4), (0.2, 16)] {
            let e = expected_transmissions(p, n);
            assert!(rel(wire_cost(p, n, None), e) < 1e-12);
            assert!(
                rel(1.0 + requested_transmissions(p, p, n), e) < 1e-9,
                "{p} {n}"
            );
        }
        // A code that rebuilds every block leaves nothing to ask for: residual 0 when m ≥ k+m losses
        // are impossible, and the residual falls fast with m.
        assert_eq!(residual_loss(0.0, Fec::new(16, 4).unwrap()), 0.0);
        let r1 = residual_loss(0.05, Fec::new(16, 1).unwrap());
        let r4 = residual_loss(0.05, Fec::new(16, 4).unwrap());
        assert!(r4 < r1 / 20.0 && r1 < 0.05, "{r1} {r4}");
    }

    #[test]
    fn fec_pays_with_many_receivers_or_high_loss() {
        // 1% loss to 4 receivers: a NAK costs less than 32/2's 6% overhead.
        assert!(wire_cost(0.01, 4, fec(32, 2)) > wire_cost(0.01, 4, None));
        // The same loss to 300 receivers: nearly every packet is lost by someone.
        assert!(wire_cost(0.01, 300, fec(32, 2)) < 0.7 * wire_cost(0.01, 300, None));
        // 5% loss to 4 receivers: 32/2 pays.
        assert!(wire_cost(0.05, 4, fec(32, 2)) < wire_cost(0.05, 4, None));
        let mut topo = gige(LatencyModel::PerConnection);
        topo.loss = 0.01;
        let (s, c) = (64.0 * MIB, MIB);
        let plain = done_at(&run(&job(Strategy::Multicast, 300, s, c), &topo))[0];
        let mut j = job(Strategy::Multicast, 300, s, c);
        j.fec = fec(32, 2);
        let coded = done_at(&run(&j, &topo))[0];
        assert!(coded < 0.7 * plain, "{coded} {plain}");
    }

    /// The testbed's FEC runs (docs/PERFORMANCE.md: 200 Mbit/s, 64 MiB, N = 4, `fec::measure_fec`):
    /// (loss, k/m, seconds without FEC, seconds with). The model's time ratio must fall on the same
    /// side of 1 as the testbed's, and within 5% of it.
    #[test]
    fn fec_gain_matches_the_testbed_direction() {
        let measured = [
            (0.0, (32, 2), 2.822, 2.996),
            (0.0, (16, 4), 2.822, 3.531),
            (0.01, (32, 2), 2.941, 2.998),
            (0.05, (32, 2), 3.417, 3.164),
            (0.05, (16, 4), 3.417, 3.536),
        ];
        let (s, c) = (64.0 * MIB, MIB);
        for (loss, (k, m), plain_s, fec_s) in measured {
            let mut topo = gige(LatencyModel::PerConnection);
            topo.loss = loss;
            let plain = done_at(&run(&job(Strategy::Multicast, 4, s, c), &topo))[0];
            let mut j = job(Strategy::Multicast, 4, s, c);
            j.fec = fec(k, m);
            let coded = done_at(&run(&j, &topo))[0];
            let (model, testbed) = (coded / plain, fec_s / plain_s);
            assert_eq!(
                model > 1.0,
                testbed > 1.0,
                "loss {loss}, {k}/{m}: model {model:.3}, testbed {testbed:.3}"
            );
            assert!(
                rel(model, testbed) < 0.05,
                "loss {loss}, {k}/{m}: model {model:.3}, testbed {testbed:.3}"
            );
        }
    }
}

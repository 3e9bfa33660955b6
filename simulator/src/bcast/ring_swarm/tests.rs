//! The ring swarm model's tests.

use super::*;
use crate::bcast::LatencyModel;
use crate::bcast::testkit::{MIB, gige, job};
use hal::Strategy;

/// 200 Mbit/s-like links (25 MB/s), 1 MiB chunks, one switch.
fn one_switch(n: usize, size: f64) -> RingOutcome {
    let j = job(Strategy::Swarm, n, size, MIB);
    let mut t = gige(LatencyModel::PerConnection);
    t.node_link.bandwidth = 25e6;
    t.server_link.bandwidth = 25e6;
    simulate(&j, &t, RingSwarm::default())
}

#[test]
fn every_node_gets_every_chunk_and_no_faster_than_its_link() {
    for n in [1, 2, 3, 4, 8] {
        let size = 16.0 * MIB;
        let out = one_switch(n, size);
        assert_eq!(out.done_at.len(), n);
        for &t in &out.done_at {
            assert!(t.is_finite() && t >= size / 25e6, "{n}: {t}");
        }
        // Each node receives the image at least once.
        assert!(out.bytes >= n as f64 * size - 1.0, "{n}: {}", out.bytes);
    }
}

/// Node 0 on a tenth of the others' rate: its complete peers serve it what they keep (before:
/// nothing was asked of them), and at its link's rate: its 4 requests arrive late together, so
/// none is asked again elsewhere (asked again after 400 ms whatever arrived: 7.8 s, not 6.7).
#[test]
fn complete_nodes_serve_the_chunks_they_keep() {
    let size = 16.0 * MIB;
    let mut j = job(Strategy::Swarm, 4, size, MIB);
    j.receivers[0].link = Some((2.5e6, 2.5e6));
    let mut t = gige(LatencyModel::PerConnection);
    t.node_link.bandwidth = 25e6;
    t.server_link.bandwidth = 25e6;
    let out = simulate(&j, &t, RingSwarm::default());
    let slow = out.done_at[0];
    let fast = out.done_at[1..].iter().copied().fold(0.0, f64::max);
    assert!(fast < slow / 2.0, "{fast} {slow}");
    assert!(slow >= size / 2.5e6 && slow < 1.03 * size / 2.5e6, "{slow}");
    assert!(
        out.asked_of_complete >= 2.0 * MIB,
        "{}",
        out.asked_of_complete
    );
}

#[test]
fn the_seed_sends_duplicates_when_the_ring_is_wider_than_a_neighbourhood() {
    // 16 nodes see 4 peers each: several neighbourhoods ask the seed for the same chunks, so
    // the server's link carries the image more than once and the swarm is far from S/B.
    let size = 64.0 * MIB;
    let wide = one_switch(16, size);
    let last = wide.done_at.iter().copied().fold(0.0, f64::max);
    assert!(last > 2.0 * size / 25e6, "{last}");
    let narrow = one_switch(2, size);
    let last2 = narrow.done_at.iter().copied().fold(0.0, f64::max);
    assert!(last2 < last, "{last2} {last}");
}

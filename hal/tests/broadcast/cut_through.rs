//! Cut-through forwarding: every node forwards a chunk's bytes as they arrive, before the chunk is
//! verified, and each receiver still verifies every chunk before keeping it.

use crate::harness::*;
use hal::Strategy;
use hal::broadcast::deployer::Options;
use std::time::Duration;

const MIB: usize = 1 << 20;

fn options() -> Options {
    let mut o = Options {
        chunk_size: 256 << 10,
        ..Options::default()
    };
    // Generous: a loaded CI machine must not look like a stalled node.
    o.tuning.upstream_timeout_ms = 10_000;
    o.report_timeout = Duration::from_secs(20);
    o
}

/// Broadcasts a 4 MiB image to 4 agents with chunk 5 corrupted by the server alone; the chunks
/// re-fetched in total, after checking every node wrote the right data.
fn corrupted_at_the_source(strategy: Strategy, cut_through: bool) -> u64 {
    let scratch = Scratch::new(&format!("cut-{}-{cut_through}", strategy.name()));
    let data = random_bytes(4 * MIB + 777, 11);
    let image = scratch.0.join("image.raw");
    std::fs::write(&image, &data).expect("image");
    let agents = start_agents(4, &scratch.0);
    let mut o = options();
    o.tuning.cut_through = cut_through;
    o.source_corrupt_chunk = Some(5);
    // Paced links (4 MiB/s each, a chunk every 62 ms): every node keeps up with its upstream, as on
    // a real network, rather than finding each chunk complete when it gets to it (loopback outruns
    // any forwarder).
    o.tuning.pace = Some(4 << 20);
    let (b, nodes) = backend(&agents, o);
    let report = b.run(
        &dd_image(&image, "none", data.len() as u64),
        &target("/disk.img".as_ref(), "/mnt".as_ref()),
        strategy,
        &nodes,
    );
    assert!(
        report.outcomes.failures().is_empty(),
        "{strategy}: {:?}",
        report.outcomes
    );
    let want = blake3::hash(&data).to_hex().to_string();
    for i in 0..4 {
        assert_eq!(
            file_hash(&scratch.0.join(format!("node-{i}/disk.img"))),
            want,
            "{strategy} node {i}"
        );
    }
    report.refetched
}

/// The server corrupts chunk 5 once. Cut through, the first node forwards the damaged bytes before
/// it can know they are damaged, so every receiver of the chain gets them, finds the hash wrong,
/// keeps and writes nothing of it, and fetches it again: 4 re-fetches, and every image is right.
/// (At f72496d each node stored and verified a whole chunk before forwarding it: only the first
/// node ever saw the damage.)
#[test]
fn a_chunk_corrupted_at_the_source_is_caught_by_every_receiver() {
    assert_eq!(corrupted_at_the_source(Strategy::Chain, true), 4);
    assert_eq!(
        corrupted_at_the_source(Strategy::FaultTolerantChain, true),
        4
    );
}

/// Store-and-forward is still there (`cut_through: false`): the first node stops the damage.
#[test]
fn store_and_forward_stops_the_damage_at_the_first_node() {
    assert_eq!(corrupted_at_the_source(Strategy::Chain, false), 1);
}

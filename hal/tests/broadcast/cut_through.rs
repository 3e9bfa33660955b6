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

/// Broadcasts a 2 MiB image to 4 agents with chunk 5 corrupted by the server alone; the chunks
/// re-fetched in total, after checking every node wrote the right data.
fn corrupted_at_the_source(strategy: Strategy, cut_through: bool) -> u64 {
    let scratch = Scratch::new(&format!("cut-{}-{cut_through}", strategy.name()));
    let data = random_bytes(2 * MIB + 777, 11);
    let image = scratch.0.join("image.raw");
    std::fs::write(&image, &data).expect("image");
    let agents = start_agents(4, &scratch.0);
    let mut o = options();
    o.tuning.cut_through = cut_through;
    o.source_corrupt_chunk = Some(5);
    // A paced source (1 MiB/s, a chunk every 250 ms): every node keeps up with its upstream, as on
    // a real network, rather than finding each chunk complete when it gets to it (loopback outruns
    // any forwarder), also on a loaded machine.
    o.source_pace = Some(1 << 20);
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
/// it can know they are damaged, so the receivers after it get them too, find the hash wrong, keep
/// and write nothing of it, and fetch it again; every image is right. (At f72496d each node stored
/// and verified a whole chunk before forwarding it: only the first node ever saw the damage.) All 4
/// receivers see the damage when each forwarder keeps up with its upstream; on a loaded machine a
/// late forwarder could find the good copy already there, so at least the second one must.
#[test]
fn a_chunk_corrupted_at_the_source_is_caught_by_every_receiver() {
    for strategy in [Strategy::Chain, Strategy::FaultTolerantChain] {
        let refetched = corrupted_at_the_source(strategy, true);
        eprintln!("{strategy}: {refetched} receivers caught the damage");
        assert!((2..=4).contains(&refetched), "{strategy}: {refetched}");
    }
}

/// Store-and-forward is still there (`cut_through: false`): the first node stops the damage.
#[test]
fn store_and_forward_stops_the_damage_at_the_first_node() {
    assert_eq!(corrupted_at_the_source(Strategy::Chain, false), 1);
}

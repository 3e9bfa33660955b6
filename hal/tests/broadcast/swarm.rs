//! The swarm strategy: verified images on loopback, and on the namespace testbed, nodes on fast links
//! not held back by one node on a link ten times slower (as they are in a chain).

use crate::harness::*;
use crate::netns::Testbed;
use crate::testbed::{fast_median, make_image, run};
use hal::Strategy;
use hal::broadcast::deployer::Options;
use std::time::Duration;

const MIB: usize = 1 << 20;

#[test]
fn swarm_delivers_verified_images() {
    let scratch = Scratch::new("swarm");
    let data = random_bytes(6 * MIB + 4321, 31);
    let image = scratch.0.join("image.raw");
    std::fs::write(&image, &data).expect("image");
    let agents = start_agents(5, &scratch.0);
    let mut o = Options {
        chunk_size: 256 << 10,
        ..Options::default()
    };
    o.tuning.upstream_timeout_ms = 10_000;
    o.report_timeout = Duration::from_secs(20);
    let (b, nodes) = backend(&agents, o);
    let report = b.run(
        &dd_image(&image, "none", data.len() as u64),
        &target("/disk.img".as_ref(), "/mnt".as_ref()),
        Strategy::Swarm,
        &nodes,
    );
    assert!(
        report.outcomes.failures().is_empty(),
        "{:?}",
        report.outcomes
    );
    let want = blake3::hash(&data).to_hex().to_string();
    for i in 0..5 {
        assert_eq!(
            file_hash(&scratch.0.join(format!("node-{i}/disk.img"))),
            want,
            "node {i}"
        );
    }
}

/// Host 1's link runs at 20 Mbit/s, the others' at 200: in a chain every node after host 1 gets the
/// image at 20 Mbit/s (and the ones before it stall once their window is full); in the swarm the
/// other nodes get it from the server and from each other at their own rate.
#[test]
fn swarm_nodes_are_not_held_back_by_a_slow_link() {
    let tb = Testbed::with_slow_hosts(4, 200, &[(1, 20)]);
    let (image, want) = make_image(&tb, 16);
    let agents = tb.start_agents();
    let chain = run(&tb, &agents, 4, &image, &want, Strategy::Chain);
    assert!(chain.outcomes.failures().is_empty(), "{:?}", chain.outcomes);
    let swarm = run(&tb, &agents, 4, &image, &want, Strategy::Swarm);
    assert!(swarm.outcomes.failures().is_empty(), "{:?}", swarm.outcomes);
    let (chain_fast, swarm_fast) = (fast_median(&chain, 1), fast_median(&swarm, 1));
    eprintln!("median of the fast nodes: chain {chain_fast:.2} s, swarm {swarm_fast:.2} s");
    // 16 MiB at 20 Mbit/s is 6.7 s, at 200 Mbit/s 0.67 s: a wide margin on a loaded machine.
    assert!(
        swarm_fast * 2.0 < chain_fast,
        "swarm {swarm_fast:.2} s against chain {chain_fast:.2} s"
    );
}

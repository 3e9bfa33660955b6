//! The conformance suite (`hal::testing::conformance`) against the kaagent broadcast on loopback: three
//! agents receive a dd image with every strategy, a fourth node id has no agent.

use crate::harness::{Scratch, backend, dd_image, random_bytes, start_agents, target};
use hal::Strategy;
use hal::broadcast::deployer::Options;
use hal::testing::conformance::{BroadcastSubject, Nodes, check_broadcast};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn kaagent_broadcast_conforms() {
    let scratch = Scratch::new("conformance");
    let data = random_bytes(3 << 20, 9);
    let image = scratch.0.join("image.raw");
    std::fs::write(&image, &data).expect("image");
    let agents = start_agents(3, &scratch.0);
    let mut options = Options {
        chunk_size: 256 << 10,
        ..Options::default()
    };
    // Generous: a loaded CI machine must not look like a stalled node.
    options.tuning.stall_timeout_ms = 3000;
    options.tuning.upstream_timeout_ms = 10_000;
    options.report_timeout = Duration::from_secs(20);
    let (broadcast, _) = backend(&agents, options);
    let subject = BroadcastSubject {
        nodes: Nodes::table(3),
        image: dd_image(&image, "none", data.len() as u64),
        target: target("/disk.img".as_ref(), "/mnt".as_ref()),
        strategies: vec![
            Strategy::Chain,
            Strategy::Tree { arity: 2 },
            Strategy::FaultTolerantChain,
            Strategy::Unicast,
        ],
    };
    check_broadcast(&broadcast, &subject).await.unwrap();
    let want = blake3::hash(&data);
    for i in 0..3 {
        let got =
            std::fs::read(scratch.0.join(format!("node-{i}/disk.img"))).expect("written image");
        assert_eq!(blake3::hash(&got), want, "node {i} wrote other data");
    }
}

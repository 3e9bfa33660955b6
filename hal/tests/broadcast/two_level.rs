//! The two-level testbed (leaf switches joined to the server's core switch by rate-limited uplinks):
//! every strategy's data arrives whole, and the chain in topology order (nodes of one switch
//! adjacent, as kaagent orders nodes whose switch it knows) beats the switch-oblivious order, whose
//! every hop crosses an uplink.

use crate::netns::Testbed;
use crate::testbed::{Order, last_written, make_image, options, run_ordered};
use crate::topology::Topology;
use hal::Strategy;

#[test]
fn two_level_chain_in_topology_order_beats_the_switch_oblivious_order() {
    let topology = Topology::TwoLevel {
        switches: 2,
        uplink_mbit: 200,
    };
    let tb = Testbed::build(4, 200, &[], topology);
    let (image, want) = make_image(&tb, 16);
    let agents = tb.start_agents();
    let mut times = Vec::new();
    for how in [
        (Strategy::Chain, Order::TopologyAware),
        (Strategy::Chain, Order::SwitchOblivious),
        (Strategy::Tree { arity: 2 }, Order::TopologyAware),
        (Strategy::Multicast, Order::TopologyAware),
        (Strategy::Swarm, Order::TopologyAware),
    ] {
        let r = run_ordered(&tb, &agents, 4, &image, &want, how, options());
        assert!(
            r.outcomes.failures().is_empty(),
            "{how:?}: {:?}",
            r.outcomes
        );
        times.push(last_written(&r));
    }
    let plain = tb.plain_chain(&image, 4).as_secs_f64();
    for i in 0..4 {
        let got = crate::harness::file_hash(&tb.host_dir(i).join("plain.img"));
        assert_eq!(got, want, "plain chain, host {i}");
    }
    eprintln!(
        "two-level, 2 leaves, 200 Mbit/s links and uplinks, 16 MiB, N=4: plain {plain:.2} s, chain/oblivious/tree/multicast/swarm {times:.2?} s"
    );
    // Two of the oblivious chain's hops share each down uplink: half the rate (2×), where the
    // topology-aware chain crosses each uplink once.
    assert!(
        times[1] > 1.3 * times[0],
        "oblivious {:.2} s against topology order {:.2} s",
        times[1],
        times[0]
    );
}

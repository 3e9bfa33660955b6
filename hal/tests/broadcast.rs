//! Broadcast integration tests: `kaagent` processes on loopback (127.0.0.x) and, for the network
//! tests, network namespaces with `tc`-limited veth links (root, iproute2 needed).

#[path = "broadcast/chain_gap.rs"]
mod chain_gap;
#[path = "broadcast/conformance.rs"]
mod conformance;
#[path = "broadcast/cut_through.rs"]
mod cut_through;
#[path = "broadcast/fec.rs"]
mod fec;
#[path = "broadcast/harness.rs"]
mod harness;
#[path = "broadcast/hop_meter.rs"]
mod hop_meter;
#[path = "broadcast/measure.rs"]
mod measure;
#[path = "broadcast/memory.rs"]
mod memory;
#[path = "broadcast/multicast.rs"]
mod multicast;
#[path = "broadcast/netns.rs"]
mod netns;
#[path = "broadcast/readings.rs"]
mod readings;
#[path = "broadcast/security.rs"]
mod security;
#[path = "broadcast/strategies.rs"]
mod strategies;
#[path = "broadcast/swarm.rs"]
mod swarm;
#[path = "broadcast/swarm_timeline.rs"]
mod swarm_timeline;
#[path = "broadcast/testbed.rs"]
mod testbed;
#[path = "broadcast/tool_meter.rs"]
mod tool_meter;
#[path = "broadcast/topology.rs"]
mod topology;
#[path = "broadcast/two_level.rs"]
mod two_level;
#[path = "broadcast/udpcast.rs"]
mod udpcast;

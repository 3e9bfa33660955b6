//! Predictions of the namespace testbed's runs (`hal`'s `scripts/bcast-testbed.sh`) from the testbed's
//! own parameters only: link rate, uplink rate and switches, N, image size, each tool's framing and
//! forwarding unit, and the host's speed through one namespace hop and through each tool measured
//! before each N.
//!
//! Two bounds, the larger wins:
//! * **links**: [`simulate`] on the testbed's topology. Goodput is the tc rate times the payload share
//!   of a 1514-byte frame (tbf meters whole frames): 1448 bytes for TCP with timestamps, 1445 for
//!   kaagent's multicast datagrams, 1456 for udpcast's blocks. Hop latency 50 µs (veth + bridge).
//!   Forwarding unit: 8 KiB for the socat chain (socat's buffer), kaagent's smallest cut-through
//!   piece (8 KiB: a hop forwards what has arrived) for chain, fault-tolerant chain, tree and
//!   unicast, 64 KiB for multicast, a 1456-byte block for udpcast.
//!   The swarm is kaagent's own exchange ([`ring_swarm`]: a ring of 2 peers each way, 2 requests
//!   per connection and 4 per node, 1 MiB chunks, rarest first, the server's seed a peer holding
//!   everything), the mean of eight races for free request slots. Two-level: the server alone on
//!   switch 0 (the core), host `i` on switch `1 + i % switches`, every uplink direction at the
//!   uplink rate.
//! * **CPU**: every byte the testbed moves through a namespace hop costs the host CPU time (copies,
//!   veth, bridge, TCP or UDP stack, the write to tmpfs). Before each N the script measures the
//!   host's aggregate speed through such hops with no tc: `C` bytes/s with as many concurrent
//!   one-hop copies as cores, and `C_u` with each copy crossing one uplink (a veth pair and a
//!   bridge more). A run whose strategy makes `h` hops and `u` uplink traversals per image byte
//!   needs at least `T ≥ S·(h/C + u·(1/C_u − 1/C))`. kaagent's chains, tree and unicast deliver the
//!   image once to each of its N receivers through one hop (`h = N`; a hop from the server to a
//!   leaf crosses one uplink, a hop between two leaves two); the swarm moves what its simulation
//!   moved (duplicates included). Multicast, udpcast and the plain chain cost the host more than
//!   their TCP hops (a datagram crosses the namespaces alone and the bridge copies it to every
//!   receiver; `tee` copies every byte through two more pipes), and kaagent's own hops cost less
//!   than the meter's `socat` copies (its cut-through forwarding since stop 15: its N = 16 chains
//!   moved their copies faster than any hop-meter reading): before each N the script also
//!   measures each of them and kaagent's chain (tc at a rate they never reach) with a small and a
//!   large number of receivers ([`ToolSpeed`]), and their `S·h/C` becomes `S·c(h)`, `c` the host
//!   seconds per image byte on the line through the two measurements (a datagram tool crosses
//!   each leaf's uplink once; kaagent's chain's speed stands for its planned strategies, chain,
//!   fault-tolerant chain, tree and unicast, whose nodes receive, check, write and forward alike;
//!   the swarm's own exchange keeps the hop meter). Old CSVs without those columns are predicted
//!   as before.
//!
//! **udpcast's window against its receivers' buffers.** On the testbed's veth links `udp-sender`
//! runs in full-duplex mode (it asks the interface; veth says full duplex): fixed slices of 112
//! blocks, a slice sent while the one before waits for every receiver's acknowledgement, so up to
//! two slices ([`UDPCAST_WINDOW`] datagrams with their acknowledgement requests) may sit unread in
//! a receiver's socket. Nothing in the protocol paces the sender below the link: a receiver off the
//! processor while the link delivers fills its socket, and what its buffer cannot hold is dropped
//! there and sent again to every receiver after the next acknowledgement round. The buffer holds
//! `rcvbuf / 2,315` datagrams (the kernel charges each 1,472-byte datagram 2,315 bytes, measured):
//! 92 with the kernel's default 212,992 bytes, under the window's 226. Then the loss, 9–35% of the
//! blocks at 1 Gbit/s on this machine, depends on how long the receivers wait for a core, which no
//! testbed parameter says: such a run is [`udpcast_overruns`], and its prediction (the loss-free
//! bounds) only a lower bound. The testbed now gives udpcast's receivers a buffer that holds the
//! window (the `udpcast_rcvbuf` column: 8 MiB), so no datagram can be dropped there and the
//! loss-free bounds are the model (CSVs without that column had the default buffer).
//!
//! Nothing here is fitted to the measured times.

use super::ring_swarm::{self, RingSwarm};
use super::{
    BroadcastJob, FaultTolerance, LatencyModel, LinkParams, Receiver, ReceiverOutcome, SwarmParams,
    Topology, simulate,
};
use hal::Strategy;

/// One mebibyte.
const MIB: f64 = 1_048_576.0;
/// Bytes of an Ethernet frame tc meters (no FCS).
const FRAME: f64 = 1514.0;
/// Races of kaagent's swarm averaged per prediction.
const SWARM_RACES: u64 = 8;
/// Datagrams `udp-sender` may have unacknowledged in full-duplex mode: two slices of 112 blocks and
/// their two acknowledgement requests.
pub const UDPCAST_WINDOW: f64 = 2.0 * 112.0 + 2.0;
/// Bytes a receiving socket is charged for one of udpcast's datagrams (1,472 bytes of UDP payload
/// in a 1,514-byte frame): 92 of them fill the kernel's default 212,992-byte buffer (measured).
pub const DATAGRAM_TRUESIZE: f64 = 2_315.0;
/// The kernel's default socket receive buffer (`net.core.rmem_default`), bytes: what udpcast's
/// receivers had before the testbed asked for more (CSVs without `udpcast_rcvbuf`).
pub const DEFAULT_RCVBUF: f64 = 212_992.0;

/// What ran on the testbed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestbedTool {
    /// The plain `socat | tee` chain in topology order.
    PlainChain,
    /// udpcast's `udp-sender` / `udp-receiver`.
    Udpcast,
    /// kaagent with a strategy; `oblivious`: the chain order ignores the switches (index order).
    Kaagent {
        /// The strategy.
        strategy: Strategy,
        /// Nodes in index order rather than grouped by switch.
        oblivious: bool,
    },
}

impl TestbedTool {
    /// The tool of a row of the testbed's CSV (`plain-socat-chain`, `udpcast`, `chain`,
    /// `chain-oblivious`, `ft-chain`, `tree`, `unicast`, `multicast`, `swarm`).
    pub fn parse(name: &str) -> Option<TestbedTool> {
        let kaagent = |strategy, oblivious| {
            Some(TestbedTool::Kaagent {
                strategy,
                oblivious,
            })
        };
        match name {
            "plain-socat-chain" => Some(TestbedTool::PlainChain),
            "udpcast" => Some(TestbedTool::Udpcast),
            "chain" => kaagent(Strategy::Chain, false),
            "chain-oblivious" => kaagent(Strategy::Chain, true),
            "ft-chain" => kaagent(Strategy::FaultTolerantChain, false),
            "tree" => kaagent(Strategy::Tree { arity: 2 }, false),
            "unicast" => kaagent(Strategy::Unicast, false),
            "multicast" => kaagent(Strategy::Multicast, false),
            "swarm" => kaagent(Strategy::Swarm, false),
            _ => None,
        }
    }
}

/// One testbed run's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TestbedRun {
    /// What ran.
    pub tool: TestbedTool,
    /// Node link rate (tc), Mbit/s.
    pub mbit: f64,
    /// Image size, MiB.
    pub mib: f64,
    /// Receivers.
    pub n: usize,
    /// Leaf switches and their uplink rate (Mbit/s) on the two-level topology; `None`: flat.
    pub two_level: Option<(usize, f64)>,
    /// The host's aggregate speed through namespace hops without tc, bytes/s: plain hops, and hops
    /// crossing one uplink; `None`: links only.
    pub cpu: Option<(f64, f64)>,
    /// The host's own speed through this run's tool (multicast, udpcast, the plain chain; kaagent's
    /// chain for its chain, fault-tolerant chain, tree and unicast), measured without tc at two
    /// receiver counts; `None`: the tool costs what the hop meter's `socat` hops do.
    pub tool_cpu: Option<ToolSpeed>,
    /// udpcast's receivers' socket buffer, bytes; `None`: the kernel's default ([`DEFAULT_RCVBUF`]).
    pub udpcast_rcvbuf: Option<f64>,
    /// Host seconds per image byte that the testbed's hosts cost beyond the tool meter's bed's,
    /// receivers or not (udpcast: see [`per_host_cost`]); 0 for the other tools.
    pub bed_cost: f64,
    /// Whether kaagent's swarm asked the seed for each node's stripe (since stop 18; the testbed's
    /// `swarm_seed` column) rather than for any chunk its peers lacked ([`RingSwarm::striped`]).
    pub swarm_striped: bool,
}

/// Host seconds per image byte that each host of a bed costs udpcast whether it receives or not: its
/// datagrams cross the bridge to every port (each a copy, a queue, a stack that drops it; kaagent's
/// multicast crosses it once per 44-datagram run). From the meter: its small count's speed on the
/// meter's bed (the large count's hosts) and on a bed of only its own hosts (`alone`, delivered
/// bytes/s); 0 when unusable.
pub fn per_host_cost(speed: &ToolSpeed, alone: f64) -> f64 {
    let ((k1, d1), (k2, _)) = (speed.small, speed.large);
    if !(alone.is_finite() && alone > 0.0 && d1.is_finite() && d1 > 0.0 && k2 > k1) {
        return 0.0;
    }
    ((k1 / d1 - k1 / alone) / (k2 - k1)).max(0.0)
}

/// Whether udpcast's receivers' sockets hold fewer datagrams than the sender's window
/// ([`UDPCAST_WINDOW`]): a receiver off the processor then loses what its buffer cannot hold, and
/// the prediction (loss-free) is only a lower bound. `false` for every other tool.
pub fn udpcast_overruns(run: &TestbedRun) -> bool {
    let buffer = run
        .udpcast_rcvbuf
        .filter(|b| b.is_finite() && *b > 0.0)
        .unwrap_or(DEFAULT_RCVBUF);
    run.tool == TestbedTool::Udpcast && (buffer / DATAGRAM_TRUESIZE).floor() < UDPCAST_WINDOW
}

/// A tool's measured speed: `(receivers, bytes delivered per second)` at a small and a large
/// receiver count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ToolSpeed {
    /// The smaller count and its speed.
    pub small: (f64, f64),
    /// The larger count and its speed.
    pub large: (f64, f64),
}

impl ToolSpeed {
    /// Host seconds per image byte for `n` receivers: `k / speed(k)` at both measured counts, and
    /// the line through them (the sender's share once, each receiver's share `n` times); `None`
    /// when the measurements are unusable.
    pub fn seconds_per_byte(&self, n: f64) -> Option<f64> {
        let ((k1, d1), (k2, d2)) = (self.small, self.large);
        let usable = |k: f64, d: f64| k >= 1.0 && d.is_finite() && d > 0.0;
        if !usable(k1, d1) || !usable(k2, d2) || k2 <= k1 {
            return None;
        }
        let (c1, c2) = (k1 / d1, k2 / d2);
        let per_receiver = ((c2 - c1) / (k2 - k1)).max(0.0);
        Some((c1 + (n - k1) * per_receiver).max(per_receiver * n))
    }
}

/// The predicted time to the last receiver, seconds.
pub fn predict(run: &TestbedRun) -> f64 {
    let (links, h, u) = links_bound(run);
    let size = run.mib * MIB;
    let per_uplink = match run.cpu {
        Some((hop_rate, uplink_rate)) if hop_rate > 0.0 && uplink_rate > 0.0 => {
            Some((hop_rate, (1.0 / uplink_rate - 1.0 / hop_rate).max(0.0)))
        }
        _ => None,
    };
    // The measured tool's cost for the N hops this run makes.
    let tool = run.tool_cpu.and_then(|t| t.seconds_per_byte(h));
    let uplinks = per_uplink.map_or(0.0, |(_, p)| u * p);
    match (tool, per_uplink) {
        (Some(per_byte), _) => links.max(size * ((per_byte + run.bed_cost).max(0.0) + uplinks)),
        (None, Some((hop_rate, _))) => links.max(size * (h / hop_rate + uplinks)),
        (None, None) => links,
    }
}

/// The switch of host `i` (0 on the flat testbed).
fn switch_of(run: &TestbedRun, i: usize) -> usize {
    match run.two_level {
        Some((switches, _)) => 1 + i % switches.max(1),
        None => 0,
    }
}

/// The receivers' hosts in chain order: grouped by switch (first appearance), or index order.
fn order(run: &TestbedRun) -> Vec<usize> {
    let mut hosts: Vec<usize> = (0..run.n).collect();
    let oblivious = matches!(
        run.tool,
        TestbedTool::Kaagent {
            oblivious: true,
            ..
        }
    );
    if !oblivious {
        hosts.sort_by_key(|&i| {
            let s = switch_of(run, i);
            (0..run.n).position(|h| switch_of(run, h) == s)
        });
    }
    hosts
}

/// Namespace hops the image makes, and uplinks it crosses (see the module's CPU bound). A datagram
/// tool's copy crosses each leaf's uplink once (the leaf's bridge makes the receivers' copies).
fn hops(run: &TestbedRun) -> (f64, f64) {
    let order = order(run);
    let datagrams = matches!(
        run.tool,
        TestbedTool::Udpcast
            | TestbedTool::Kaagent {
                strategy: Strategy::Multicast,
                ..
            }
    );
    if datagrams {
        let leaves: std::collections::BTreeSet<usize> = order
            .iter()
            .map(|&h| switch_of(run, h))
            .filter(|&s| s != 0)
            .collect();
        return (run.n as f64, leaves.len() as f64);
    }
    let star = matches!(
        run.tool,
        TestbedTool::Udpcast
            | TestbedTool::Kaagent {
                strategy: Strategy::Unicast | Strategy::Multicast | Strategy::Swarm,
                ..
            }
    );
    let parent_switch = |k: usize| -> usize {
        match run.tool {
            _ if star || k == 0 => 0,
            TestbedTool::Kaagent {
                strategy: Strategy::Tree { arity },
                ..
            } => {
                let a = arity.max(1) as usize;
                if k < a {
                    0
                } else {
                    switch_of(run, order[k / a - 1])
                }
            }
            _ => switch_of(run, order[k - 1]),
        }
    };
    let uplinks: usize = order
        .iter()
        .enumerate()
        .map(|(k, &h)| {
            let (from, to) = (parent_switch(k), switch_of(run, h));
            if from == to {
                0
            } else {
                usize::from(from != 0) + usize::from(to != 0)
            }
        })
        .sum();
    (run.n as f64, uplinks as f64)
}

/// The link-bound time (the simulator's model of the strategy on the testbed's topology), and the
/// namespace hops and uplink traversals the image makes (see the module's CPU bound).
fn links_bound(run: &TestbedRun) -> (f64, f64, f64) {
    let (job, topo) = testbed_job(run);
    let size = job.size;
    if job.strategy == Strategy::Swarm {
        // Which connection takes a freed request slot is the threads' race: the mean of
        // `SWARM_RACES` races.
        let (mut last, mut bytes, mut uplink_bytes) = (0.0, 0.0, 0.0);
        for race in 1..=SWARM_RACES {
            let knobs = RingSwarm {
                race,
                striped: run.swarm_striped,
                ..RingSwarm::default()
            };
            let out = ring_swarm::simulate(&job, &topo, knobs);
            last += out.done_at.iter().copied().fold(0.0, f64::max);
            bytes += out.bytes;
            uplink_bytes += out.uplink_bytes;
        }
        let runs = SWARM_RACES as f64;
        return (last / runs, bytes / runs / size, uplink_bytes / runs / size);
    }
    let last = simulate(&job, &topo)
        .iter()
        .map(|o| match o {
            ReceiverOutcome::Done { at } | ReceiverOutcome::Failed { at, .. } => *at,
        })
        .fold(0.0, f64::max);
    let (h, u) = hops(run);
    (last, h, u)
}

/// The simulator's job and topology for a testbed run (tc goodput, hop latency, the tool's
/// forwarding unit, the receivers in the tool's order).
fn testbed_job(run: &TestbedRun) -> (BroadcastJob, Topology) {
    let payload = match run.tool {
        TestbedTool::Udpcast => 1456.0,
        TestbedTool::Kaagent {
            strategy: Strategy::Multicast,
            ..
        } => 1445.0,
        _ => 1448.0,
    };
    let goodput = |mbit: f64| mbit * 1e6 / 8.0 * payload / FRAME;
    let link = LinkParams {
        bandwidth: goodput(run.mbit),
        latency: 25e-6,
    };
    let topo = Topology {
        node_link: link,
        server_link: link,
        uplink_bandwidth: run.two_level.map(|(_, up)| goodput(up)),
        latency_model: LatencyModel::PerConnection,
        loss: 0.0,
    };
    let (strategy, chunk) = match run.tool {
        TestbedTool::PlainChain => (Strategy::Chain, 8.0 * 1024.0),
        TestbedTool::Udpcast => (Strategy::Multicast, 1456.0),
        TestbedTool::Kaagent {
            strategy: Strategy::Swarm,
            ..
        } => (Strategy::Swarm, MIB),
        TestbedTool::Kaagent {
            strategy: Strategy::Multicast,
            ..
        } => (Strategy::Multicast, 64.0 * 1024.0),
        // A hop forwards what has arrived once it holds the smallest cut-through piece.
        TestbedTool::Kaagent { strategy, .. } => {
            (strategy, hal::broadcast::wire::CUT_THROUGH_MIN_PIECE as f64)
        }
    };
    let receivers = order(run)
        .into_iter()
        .map(|h| Receiver {
            switch: switch_of(run, h),
            disk_write: f64::INFINITY,
            decompress: f64::INFINITY,
            dies_at: None,
            write_error: false,
            link: None,
        })
        .collect();
    let size = run.mib * MIB;
    let job = BroadcastJob {
        strategy,
        size,
        ratio: 1.0,
        chunk,
        receivers,
        fault_tolerance: FaultTolerance {
            detect_timeout: 3.0,
            reconnect: 0.0,
        },
        swarm: SwarmParams {
            max_pieces: (size / MIB).ceil().max(1.0) as u32,
            upload_slots: 8,
            download_slots: 4,
            neighbours: 4,
            seed: 1,
        },
        fec: None,
    };
    (job, topo)
}

#[cfg(test)]
#[path = "testbed_tests.rs"]
mod tests;

//! Broadcast models: chain, k-ary tree, fault-tolerant chain and unicast as flows over a max-min shared
//! network with per-receiver disk and decompression rates, latency paid once per connection.
//!
//! The entry point is [`simulate`]: given a job and a topology it returns, for each receiver, the virtual
//! time (seconds after the start of the broadcast) at which it finished or failed.
//!
//! Chain, tree and fault-tolerant chain are ONE pipelined stream (one max-min variable crossing every
//! link, uplink, disk and CPU of the structure; a node feeding `k` children crosses its up link with
//! coefficient `k`, disks and decompression with coefficient ρ); unicast is one flow per receiver.
//! Idealised (homogeneous links `B`, hop latency `L`, infinite disks, non-blocking switch), a receiver
//! `h` hops from the server finishes at, with `r` the stream rate (`B` for a chain, `B/k` for a k-ary
//! tree, `B_server/N` for unicast) and `K = ⌈S/c⌉`:
//!
//! | | PerConnection (default) | PerChunk |
//! |---|---|---|
//! | chain, receiver `i` (`h = i + 1`) | `S/B + (i + 1)·(c/B + L)` | `(K + i)·(c/B + L)` |
//! | k-ary tree, depth `d` | `k·S/B + d·(k·c/B + L)` | `(K + d − 1)·(k·c/B + L)` |
//! | unicast | `N·(S + c)/B + L` | `K·(N·c/B + L)` |
//!
//! The last chain receiver in PerChunk is the textbook `(K + N − 1)(c/B + L)` and the tree in
//! PerConnection is simulation.md's `k·S/B + depth·(k·c/B + L)`; see [`closed_form`].

use hal::Strategy;

#[cfg(test)]
mod calibration;
mod chain;
pub mod closed_form;
mod ft_chain;
mod multicast;
mod pipeline;
mod resources;
pub mod ring_swarm;
mod swarm;
pub mod testbed;
#[cfg(test)]
mod testkit;
mod tree;
mod unicast;

/// One direction of a full-duplex link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkParams {
    /// Goodput in bytes per second, per direction.
    pub bandwidth: f64,
    /// One-way latency in seconds.
    pub latency: f64,
}

/// How latency is charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LatencyModel {
    /// Streaming TCP: each hop pays its latency once, when its connection opens, plus one chunk of
    /// store-and-forward delay (realistic; the default).
    #[default]
    PerConnection,
    /// Chunked store-and-forward: every chunk pays the latency at every hop (the textbook closed form
    /// `(k + N − 1)(c/B + L)`).
    PerChunk,
}

/// The network the broadcast runs on.
///
/// A hop's latency is the sum of its two links' latencies (sender's + receiver's, as SimGrid's route
/// latency): with `server_link.latency = node_link.latency = L/2` every hop costs `L`.
#[derive(Clone, Debug, PartialEq)]
pub struct Topology {
    /// Each node's link to its switch.
    pub node_link: LinkParams,
    /// The server's link to its switch (the source of every broadcast).
    pub server_link: LinkParams,
    /// Switch uplink capacity in bytes/s per direction; `None` = one non-blocking switch for everybody.
    pub uplink_bandwidth: Option<f64>,
    /// Latency model.
    pub latency_model: LatencyModel,
    /// Probability that a multicast packet is lost on its way to one receiver (iid; repaired by NAKs).
    pub loss: f64,
}

/// One receiving node.
#[derive(Clone, Debug, PartialEq)]
pub struct Receiver {
    /// Index of the switch the node hangs off (the server is on switch 0).
    pub switch: usize,
    /// Disk write rate in bytes/s of decompressed output; `f64::INFINITY` = not a bottleneck.
    pub disk_write: f64,
    /// Decompression rate in bytes/s of output; `f64::INFINITY` = not a bottleneck.
    pub decompress: f64,
    /// The node dies this many seconds after the broadcast starts.
    pub dies_at: Option<f64>,
    /// The node's disk refuses the write: it fails when its first chunk is written.
    pub write_error: bool,
    /// This node's own link goodput (up, down) in bytes/s, when it differs from the topology's node link.
    pub link: Option<(f64, f64)>,
}

/// Fault-tolerance parameters of the fault-tolerant chain (Kascade's defaults: 3 s detection, 10 tries).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultTolerance {
    /// Time for a node to notice its successor is dead or stalled.
    pub detect_timeout: f64,
    /// Time to connect to the next live node and resume.
    pub reconnect: f64,
}

/// A broadcast to run.
#[derive(Clone, Debug, PartialEq)]
pub struct BroadcastJob {
    /// How the image travels.
    pub strategy: Strategy,
    /// Compressed bytes sent to each receiver (S).
    pub size: f64,
    /// Decompressed / compressed size ratio (ρ ≥ 1 for compressed images).
    pub ratio: f64,
    /// Chunk size in bytes (c): the store-and-forward unit; 0 (or not finite) = the whole image.
    pub chunk: f64,
    /// Receivers, in chain order; for a k-ary tree, heap order (receivers `0 … k−1` are fed by the
    /// server, receiver `i ≥ k` by receiver `i/k − 1`).
    pub receivers: Vec<Receiver>,
    /// Fault tolerance of [`Strategy::FaultTolerantChain`] (and the stall detection of multicast).
    pub fault_tolerance: FaultTolerance,
    /// Knobs of [`Strategy::Swarm`].
    pub swarm: SwarmParams,
    /// Forward error correction of [`Strategy::Multicast`] (`m` repairs per block of `k`; `None`: off).
    pub fec: Option<hal::broadcast::mcast_fec::Fec>,
}

/// Knobs of the swarm: pieces, transfer slots and neighbours (BitTorrent's usual orders of magnitude).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SwarmParams {
    /// At most this many pieces: a piece is the larger of the chunk and `size / max_pieces`.
    pub max_pieces: u32,
    /// Concurrent uploads of a node (and of the server); each gets an equal share of the up link.
    pub upload_slots: u32,
    /// Concurrent downloads of a node; each gets an equal share of its down link.
    pub download_slots: u32,
    /// Peers each node exchanges with (random, symmetric), besides the server.
    pub neighbours: u32,
    /// Seed of the neighbour choice.
    pub seed: u64,
}

impl Default for SwarmParams {
    fn default() -> Self {
        SwarmParams {
            max_pieces: 128,
            upload_slots: 4,
            download_slots: 4,
            neighbours: 8,
            seed: 1,
        }
    }
}

/// Why a receiver did not get the image.
#[derive(Clone, Debug, PartialEq)]
pub enum FailureReason {
    /// The node itself died.
    Died,
    /// An upstream node died (chain, tree): index of that receiver.
    CutOff {
        /// Receiver whose death cut this one off.
        by: usize,
    },
    /// The node's disk refused the write.
    WriteError,
}

/// What happened to one receiver.
#[derive(Clone, Debug, PartialEq)]
pub enum ReceiverOutcome {
    /// Received, decompressed and wrote the whole image at `at` seconds.
    Done {
        /// Completion time in seconds after the start.
        at: f64,
    },
    /// Failed at `at` seconds.
    Failed {
        /// Failure time in seconds after the start.
        at: f64,
        /// Why.
        reason: FailureReason,
    },
}

/// Simulates `job` on `topo` and returns one outcome per receiver, in the order of `job.receivers`.
///
/// Never panics: empty receivers give an empty vector; a NaN or negative size, chunk, latency or time
/// counts as 0 (a NaN `dies_at` as no death), a NaN or non-positive ratio as 1, a NaN or negative
/// bandwidth as 0. An empty image is done after each receiver's path latency. A receiver that can never
/// finish (a zero-bandwidth link, an infinite size) is `Done { at: f64::INFINITY }`. Deterministic:
/// the same input gives bitwise the same output.
pub fn simulate(job: &BroadcastJob, topo: &Topology) -> Vec<ReceiverOutcome> {
    if job.receivers.is_empty() {
        return Vec::new();
    }
    match job.strategy {
        Strategy::Chain => chain::simulate(job, topo),
        Strategy::Tree { arity } => tree::simulate(job, topo, arity),
        Strategy::FaultTolerantChain => ft_chain::simulate(job, topo),
        Strategy::Unicast => unicast::simulate(job, topo),
        Strategy::Multicast => multicast::simulate(job, topo),
        Strategy::Swarm => swarm::simulate(job, topo),
    }
}

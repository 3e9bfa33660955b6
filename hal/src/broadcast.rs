//! Broadcast: deliver an image stream to a node set with a named strategy and write it on every node.
//!
//! A real backend streams the image from the server through the nodes (a pipelined chain, a k-ary tree,
//! a fault-tolerant chain that reconnects around dead nodes, or plain unicast), each node forwarding what
//! it receives as it arrives (cut-through) while decompressing and writing it to `target`, and verifying
//! every chunk before it keeps or writes it; or sends it once to an IP multicast group with repairs on
//! request (multicast), or lets the nodes exchange verified chunks among themselves (swarm). A node whose
//! data could not be delivered or written gets its own failed outcome; the others go on when the strategy
//! allows it. The simulator models the same strategies as flows over a max-min shared network, with disk
//! and decompression rates, connection latencies and nodes dying mid-transfer.
//!
//! The two ends of the real backend: [`deployer`] is the deployer's side ([`deployer::KaagentBroadcast`],
//! the [`Broadcast`] backend that plans the transfer and feeds the image), [`node_agent`] is the agent
//! running on every node (the `kaagent` binary). With the `ssh` feature, `over_ssh` hands each
//! broadcast's token (and, if asked, the agent itself) to the nodes over SSH before the deployer runs.

pub mod cast;
pub mod confine;
pub mod deployer;
pub mod forward;
pub mod handshake;
pub mod mcast_fec;
pub mod mcast_io;
pub mod mcast_recv;
pub mod mcast_send;
pub mod mcast_wire;
pub mod node_agent;
#[cfg(feature = "ssh")]
pub mod over_ssh;
pub mod plan;
pub mod receive;
pub mod store;
pub mod swarm;
pub mod swarm_node;
pub mod swarm_wire;
mod tally;
pub mod token;
pub mod wire;
pub mod write;

use crate::node::NodeId;
use crate::outcome::Outcomes;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How an image travels to the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// A pipelined chain: server → n1 → n2 → … (Kastafior, TakTuk chain). A dead node cuts its successors off.
    Chain,
    /// A pipelined k-ary tree; a dead node cuts its subtree off.
    Tree {
        /// Children per node.
        arity: u32,
    },
    /// A pipelined chain that detects a dead or stalled successor and reconnects to the next live node,
    /// resuming from the last chunk that node holds (Kascade).
    FaultTolerantChain,
    /// One stream from the server to each node.
    Unicast,
    /// IP multicast from the server to every node at once, rate-controlled, lost pieces repaired on
    /// the receivers' negative acknowledgements, each chunk verified (as udpcast and Frisbee do).
    Multicast,
    /// A BitTorrent-like exchange: every node fetches verified chunks from the server and from its
    /// peers, and serves the chunks it holds to them.
    Swarm,
}

impl Strategy {
    /// The strategy's name as used on command lines (`chain`, `tree`, `ft-chain`, `unicast`,
    /// `multicast`, `swarm`).
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Chain => "chain",
            Strategy::Tree { .. } => "tree",
            Strategy::FaultTolerantChain => "ft-chain",
            Strategy::Unicast => "unicast",
            Strategy::Multicast => "multicast",
            Strategy::Swarm => "swarm",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Tree { arity } => write!(f, "tree({arity})"),
            other => f.write_str(other.name()),
        }
    }
}

/// How an image is laid out once decompressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageKind {
    /// A tar archive extracted into a mounted file system.
    Tar,
    /// A raw disk or partition image written with `dd`.
    Dd,
    /// An fsarchiver archive restored to a partition.
    Fsa,
}

/// The image to broadcast.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSpec {
    /// Where the server reads the image (a path in its cache).
    pub path: String,
    /// Layout of the decompressed image.
    pub kind: ImageKind,
    /// Compression (`gzip`, `bzip2`, `xz`, `zstd` or `none`).
    pub compression: String,
    /// Size of the compressed stream in bytes.
    pub size: u64,
    /// Size once decompressed, when known (models use it for disk time).
    pub uncompressed_size: Option<u64>,
}

/// Where each node writes the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteTarget {
    /// Partition or whole device receiving the data (`/dev/sda3`).
    pub device: String,
    /// Mount point to extract a tar image into.
    pub extraction_dir: String,
}

/// Delivers images to node sets.
#[async_trait]
pub trait Broadcast: Send + Sync {
    /// Sends `image` to every node of `nodes` with `strategy` and writes it to `target`;
    /// one outcome per node, in order: every receiver is reported, also one cut off by another's failure.
    /// The order of `nodes` is the order of the chain.
    async fn broadcast(
        &self,
        image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        nodes: &[NodeId],
    ) -> Outcomes;

    /// [`Broadcast::broadcast`] in chunks of `chunk` bytes instead of the backend's own size (the
    /// deployer's automatic choice, BroadcastEnvAuto); a backend without a chunk size ignores it.
    async fn broadcast_chunked(
        &self,
        image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        chunk: u32,
        nodes: &[NodeId],
    ) -> Outcomes {
        let _ = chunk;
        self.broadcast(image, target, strategy, nodes).await
    }
}

//! What every connection to the simulated nodes shares: the cluster, each node's files (replayed from
//! the simulator's journal on demand), the configured keys, the server configuration and the bound on
//! connections.

use crate::archive::ArchiveCache;
use crate::node_fs::NodeFs;
use hal::NodeId;
use russh::keys::PublicKey;
use russh::server::Config;
use simulator::cluster::SimCluster;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// One node's endpoint state.
pub(crate) struct SimNode {
    /// Its name (FQDN).
    pub name: String,
    /// Its sshd address.
    pub addr: SocketAddr,
    /// Its files.
    pub(crate) fs: Mutex<NodeFs>,
    /// Bumped when the node goes down: its connections close.
    pub down: watch::Sender<u64>,
}

/// What every connection shares.
pub(crate) struct Shared {
    pub sim: Arc<SimCluster>,
    pub nodes: Vec<SimNode>,
    pub cache: ArchiveCache,
    /// Keys every node accepts (`ssh.authorized_keys`).
    pub extra_keys: Vec<PublicKey>,
    pub config: Arc<Config>,
    pub permits: Arc<Semaphore>,
    pub idle: Duration,
}

impl Shared {
    /// Node `index`'s files, brought up to date with what the simulator recorded.
    pub fn node_fs(&self, index: usize) -> Option<MutexGuard<'_, NodeFs>> {
        let node = self.nodes.get(index)?;
        let taken = self.sim.take_events(NodeId(index as u32));
        let mut fs = node.fs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(taken) = taken {
            fs.lost_events += taken.dropped;
            for event in &taken.events {
                crate::replay::apply(&mut fs, event, &self.cache);
            }
        }
        Some(fs)
    }
}

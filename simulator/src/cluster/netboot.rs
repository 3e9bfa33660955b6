//! Network boot of simulated nodes: the profile is recorded per node and the node's next boot follows
//! it (deploy kernel → deploy environment, local disk → deployed environment, custom → up with sshd).
//! Writing a profile is a server-side file write: it takes no virtual time and cannot fail.

use super::SimCluster;
use super::state::NextBoot;
use async_trait::async_trait;
use hal::{BootProfile, NetBoot, NodeId, Outcomes};
use tracing::debug;

#[async_trait]
impl NetBoot for SimCluster {
    async fn set_profile(&self, nodes: &[NodeId], profile: &BootProfile) -> Outcomes {
        let next = NextBoot::from_profile(profile);
        let mut st = self.lock();
        let outcomes = Outcomes::from_fn(nodes, |node| {
            let i = self.index(node)?;
            st[i].next_boot = next;
            Ok(())
        });
        drop(st);
        debug!(profile = ?next, nodes = nodes.len(), "simulated boot profile");
        outcomes
    }
}

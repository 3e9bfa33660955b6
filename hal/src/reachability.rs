//! Reachability probes: Kadeploy's `wait_reboot` port checks.
//!
//! A real backend connects to each TCP port with a short timeout: ports in `up` must accept, ports in
//! `down` must refuse (this is how Kadeploy tells the deploy environment, which listens on 25300, from
//! the deployed one). The simulator answers from each node's boot state at the current virtual time.

pub mod tcp;

use crate::node::NodeId;
use crate::outcome::Outcomes;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Ports that must accept and ports that must refuse connections.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortCheck {
    /// Ports that must accept a TCP connection.
    pub up: Vec<u16>,
    /// Ports that must refuse a TCP connection.
    pub down: Vec<u16>,
}

/// Probes node sets.
#[async_trait]
pub trait Reachability: Send + Sync {
    /// Probes every node of `nodes` once; one outcome per node, in order. A node passes when every check
    /// holds; a failing node gets [`crate::ErrorKind::Unreachable`]. A check without any port says nothing
    /// of the node: a prober passes it, a model that knows the node is down fails it.
    async fn probe(&self, nodes: &[NodeId], check: &PortCheck) -> Outcomes;
}

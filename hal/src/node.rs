//! Node identities: a compact index into the cluster's node table, plus the facts a backend needs.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// Index of a node in the cluster's node table (the order of the configuration file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The index as a `usize`, for table look-ups.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a backend knows of a node: its fully qualified name and its address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Fully qualified host name, unique in the cluster (`graphene-1.nancy.grid5000.fr`).
    pub name: String,
    /// Address used to reach the node (Kadeploy's `address`).
    pub address: IpAddr,
}

impl NodeInfo {
    /// The host name without its domain (`HOSTNAME_SHORT`).
    pub fn short_name(&self) -> &str {
        self.name.split('.').next().unwrap_or(&self.name)
    }
}

//! Wire structs: serde mirrors of Kadeploy's YAML keys, with the defaults of `server/config.rb`.
//!
//! A mandatory field without a default is an `Option` here; the conversion to the typed configuration reports it
//! missing with its file and key path. Unknown keys are reported as warnings by the YAML reader.

mod automata;
mod cluster;
mod external;
mod pxe;
mod server;

pub use automata::*;
pub use cluster::*;
pub use external::*;
pub use pxe::*;
pub use server::*;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `clusters.conf` (`ClustersConfig#load`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ClustersFile {
    /// `clusters`: mandatory, in order.
    pub clusters: Option<Vec<ClusterEntry>>,
}

/// One item of `clusters`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ClusterEntry {
    /// `name`: mandatory.
    pub name: Option<String>,
    /// `prefix`: optional display prefix.
    pub prefix: Option<String>,
    /// `conf_file`: mandatory, relative to the configuration directory.
    pub conf_file: Option<String>,
    /// `nodes`: mandatory, not empty.
    pub nodes: Option<Vec<NodeEntry>>,
}

/// One item of `clusters[i]/nodes`: a name and an address, or two ranges of the same length.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct NodeEntry {
    /// `name`: a host name or a range (`griffon-[1-92].nancy.grid5000.fr`).
    pub name: Option<String>,
    /// `address`: an IP address or a range (`10.0.65.[1-92]`).
    pub address: Option<String>,
    /// New key `mac`: the node's boot interface, for the embedded DHCP server's reservations (single
    /// nodes only, not ranges).
    pub mac: Option<String>,
    /// New key `switch`: the name of the switch the node (or every node of the range) hangs off;
    /// broadcast chains keep the nodes of one switch adjacent.
    pub switch: Option<String>,
}

/// `command.conf` (`CommandsConfig#load`): per-node command overrides, by host name then by command key.
pub type CommandsFile = BTreeMap<String, BTreeMap<String, String>>;

/// The keys allowed in a node's entry of `command.conf` (the power backend's table).
pub use hal::power::command::COMMAND_KEYS;

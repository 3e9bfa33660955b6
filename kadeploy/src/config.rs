//! Configuration: wire structs mirroring Kadeploy's YAML keys, then validated typed configuration.
//!
//! [`load_dir`] reads a configuration directory once, for the engine, the server's settings and the backends
//! ([`Loaded`]); [`parse_server`], [`parse_server_conf`], [`parse_clusters`], [`parse_cluster_specific`] and
//! [`parse_commands`] read single files from text. Errors name the file and the key path ([`ConfigError`]);
//! unknown keys give warnings (`Unused field <path> in <file>`).

mod automata;
mod backend;
mod cluster;
mod clusters;
pub mod connector;
mod drivers;
mod error;
mod files;
mod load;
mod oob;
mod server;
mod server_conf;
mod types;
mod values;
pub mod wire;
mod yaml;

pub use automata::{
    BOOT_NEW_ENV_TYPES, BROADCAST_ENV_TYPES, SET_DEPLOYMENT_ENV_TYPES, default_automata,
};
pub use backend::{BackendKeys, DEFAULT_BACKEND, IpmiKeys, SITE_BACKEND, SiteKeys};
pub use cluster::{ClusterSpecific, ReadFile, RemoteOp, RemoteOps};
pub use clusters::ClusterEntry;
pub use drivers::SshKeys;
pub use error::ConfigError;
pub use load::*;
pub use oob::{PduKeys, PduV3Keys, RedfishKeys};
pub use server_conf::{CaFile, CaSource, ServerConf};
pub use types::*;

//! The deployer: Kadeploy-compatible configuration, the workflow engine with Kadeploy 3.3 semantics
//! (Deploy, Reboot, Power), and Kadeploy's outputs.

pub mod client;
pub mod config;
pub mod engine;
pub mod envdesc;
pub mod environment;
pub mod error;
pub mod expr;
pub mod metrics;
pub mod migrate;
pub mod nodelist;
pub mod output;
pub mod server;
pub mod site;
pub mod store;

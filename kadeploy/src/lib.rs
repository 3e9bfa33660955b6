//! The deployer: Kadeploy-compatible configuration, the workflow engine with Kadeploy 3.3 semantics
//! (Deploy, Reboot, Power), and Kadeploy's outputs.

pub mod config;
pub mod engine;
pub mod environment;
pub mod error;
pub mod expr;
pub mod nodelist;
pub mod output;

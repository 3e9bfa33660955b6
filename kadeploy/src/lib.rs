//! The deployer: Kadeploy-compatible configuration, the workflow engine with Kadeploy 3.3 semantics
//! (Deploy, Reboot, Power), Kadeploy's outputs, and what the server and its clients share on the wire.
//! It holds no server, database or real driver: those are `kadeploy-server`, `kadeploy-clients`, `hal`.

pub mod config;
pub mod engine;
pub mod envdesc;
pub mod environment;
pub mod error;
pub mod expr;
pub mod metrics;
pub mod nodelist;
pub mod output;
pub mod wire;

/// The version `GET /version` answers.
pub const VERSION: &str = "3.3.11.rust";

//! SSH endpoints for the simulated cluster (Kadeploy's vagrant-mock, without VMs): every simulated node
//! answers SSH on its own loopback address, as root with public keys only, and its shell, `scp` and
//! `sftp` work on the node's simulated files, rebuilt from what the simulated deployment did (keys,
//! image files, pre/post-install archives and their scripts). No host command ever runs: the shell is
//! an interpreter. The deploy environment's port 25300 is open only while the node runs the deploy
//! kernel.

pub mod archive;
pub mod endpoints;
pub mod error;
pub mod keys;
pub mod node_fs;
pub mod replay;
pub mod scp;
mod session;
pub mod sftp;
mod shared;
pub mod shell;
pub mod vfs;

pub use endpoints::{Clock, ClockFuture, Endpoints, LOGIN_GRACE, ssh_config, start};
pub use error::SshError;

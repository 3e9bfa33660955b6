//! Node operations, soft power and file transfer over SSH (russh), compatible with Kadeploy deploy kernels.
//!
//! Every call opens one SSH connection per node (public-key authentication, host keys not checked since
//! nodes are reinstalled), runs one command through the node's shell and closes the connection. Commands
//! only use POSIX shell and busybox tools, so they work on deploy kernels as on full systems.

mod archive;
mod client;
mod config;
mod nodeops;
mod power;
mod script;

pub use client::ExecOutput;
pub use config::{SshConfig, SshError};
pub use nodeops::{DEFAULT_CONCURRENCY, SshNodeOps};
pub use power::SshPower;

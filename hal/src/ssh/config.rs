//! SSH connection settings and the errors of building an SSH backend.

use std::path::PathBuf;
use std::time::Duration;

/// How the SSH backends connect to the nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshConfig {
    /// Remote user (`root` on deploy kernels).
    pub user: String,
    /// TCP port of the nodes' SSH servers.
    pub port: u16,
    /// OpenSSH private key file (ed25519, ECDSA or RSA, without passphrase).
    pub key: PathBuf,
    /// Bound on TCP connect, handshake and authentication.
    pub connect_timeout: Duration,
    /// Bound on one command, including its input transfer.
    pub command_timeout: Duration,
}

impl SshConfig {
    /// `root` on port 22 with `key`, 10 s to connect and 10 min per command.
    pub fn new(key: impl Into<PathBuf>) -> Self {
        SshConfig {
            user: "root".into(),
            port: 22,
            key: key.into(),
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(600),
        }
    }
}

/// Why an SSH backend could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The private key file could not be read or parsed.
    #[error("cannot load SSH key {path}: {message}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

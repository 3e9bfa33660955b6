//! Why the SSH endpoints could not start.

/// A start-up failure of the endpoints; each variant is a kind.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The configured `authorized_keys` file could not be read.
    #[error("cannot read the authorized keys {path}: {source}")]
    Keys {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configured `authorized_keys` file holds no key.
    #[error("{path} holds no public key")]
    NoKey {
        /// The file.
        path: String,
    },
    /// The host key could not be made (no system randomness).
    #[error("cannot generate the host key: {0}")]
    HostKey(String),
    /// A node has no endpoint address (a `loopback` layout ran out of addresses).
    #[error("node {name}: no endpoint address left")]
    NoAddress {
        /// The node.
        name: String,
    },
    /// The OpenSSH client configuration could not be written.
    #[error("cannot write {path}: {source}")]
    SshConfig {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

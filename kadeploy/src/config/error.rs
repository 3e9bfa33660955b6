//! Configuration errors: each names the file and the key path (`clusters.conf: clusters[0]/nodes: ...`).

use std::io;
use std::path::PathBuf;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A configuration file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A file is not valid YAML, or a value has the wrong type (the message gives the line and column).
    #[error("{file}: {message}")]
    Yaml {
        /// The configuration file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// A mandatory field is missing.
    #[error("{file}: {key}: mandatory field is missing")]
    Missing {
        /// The configuration file.
        file: String,
        /// Path of the missing key (`pxe/dhcp/repository`).
        key: String,
    },
    /// A field has an invalid value.
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The configuration file.
        file: String,
        /// Path of the key (`clusters[0]/nodes[1]/address`).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A file named by a field (a script) cannot be read.
    #[error("{file}: {key}: cannot read {}: {source}", path.display())]
    File {
        /// The configuration file.
        file: String,
        /// Path of the key naming the file (`partitioning/script`).
        key: String,
        /// The file that cannot be read.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

impl ConfigError {
    /// The key path the error is about, when it is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Missing { key, .. }
            | ConfigError::Invalid { key, .. }
            | ConfigError::File { key, .. } => Some(key),
            ConfigError::Io { .. } | ConfigError::Yaml { .. } => None,
        }
    }
}

/// The file being converted, to build errors that name it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx<'a> {
    /// File name used in messages.
    pub file: &'a str,
}

impl Ctx<'_> {
    /// A missing mandatory field.
    pub fn missing(self, key: impl Into<String>) -> ConfigError {
        ConfigError::Missing {
            file: self.file.into(),
            key: key.into(),
        }
    }

    /// An invalid value.
    pub fn invalid(self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.into(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// The value of a mandatory field.
    pub fn required<T>(self, value: Option<T>, key: &str) -> Result<T, ConfigError> {
        value.ok_or_else(|| self.missing(key))
    }

    /// Checks that `value` is one of `allowed`.
    pub fn one_of(self, value: &str, allowed: &[&str], key: &str) -> Result<(), ConfigError> {
        if allowed.contains(&value) {
            Ok(())
        } else {
            Err(self.invalid(
                key,
                format!(
                    "invalid value `{value}` (expected one of {})",
                    allowed.join(", ")
                ),
            ))
        }
    }
}

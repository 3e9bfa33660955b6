//! The real [`NetBoot`](crate::NetBoot) backend: writes Kadeploy's PXElinux, GPXElinux, iPXE and GrubPXE
//! profiles into the TFTP/HTTP tree (spec §7), atomically, with chaining between methods.

pub mod config;
pub mod render;
mod writer;

pub use config::{ExportKind, FileNaming, Headers, PxeConfig, PxeMethod, Syntax};
pub use render::{Boot, disk_number, render};
pub use writer::{PxeWriter, profile_file_name};

use crate::outcome::ErrorKind;

/// Why a profile could not be written.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PxeError {
    /// The PXE configuration is invalid or does not fit this node.
    #[error("pxe configuration: {0}")]
    Config(String),
    /// Writing the profile file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl PxeError {
    /// The kind the engine decides on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PxeError::Config(_) => ErrorKind::Config,
            PxeError::Io { .. } => ErrorKind::CommandFailed,
        }
    }
}

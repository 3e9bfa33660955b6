//! Errors of the image pipeline (stream format, decompression, writers), with a small kind to decide on.

use crate::outcome::{ErrorKind, NodeError};
use std::fmt;

/// What went wrong in the image pipeline.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageErrorKind {
    /// Bytes that do not follow the stream format (bad magic, impossible length, truncated frame).
    Format,
    /// A chunk or the whole image does not match its hash.
    Integrity,
    /// The compressed stream could not be decompressed, or the archive could not be parsed.
    Decompress,
    /// Reading the source or the network failed.
    Io,
    /// Writing to the target (device, partition, file system) failed.
    Write,
    /// The image layout or compression is not supported by this agent.
    Unsupported,
}

impl ImageErrorKind {
    /// A stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageErrorKind::Format => "format",
            ImageErrorKind::Integrity => "integrity",
            ImageErrorKind::Decompress => "decompress",
            ImageErrorKind::Io => "io",
            ImageErrorKind::Write => "write",
            ImageErrorKind::Unsupported => "unsupported",
        }
    }

    /// The node-outcome kind the engine decides on.
    pub fn node_kind(self) -> ErrorKind {
        match self {
            ImageErrorKind::Format | ImageErrorKind::Io => ErrorKind::Transfer,
            ImageErrorKind::Integrity | ImageErrorKind::Decompress => ErrorKind::Integrity,
            ImageErrorKind::Write => ErrorKind::Disk,
            ImageErrorKind::Unsupported => ErrorKind::NotSupported,
        }
    }
}

impl fmt::Display for ImageErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An image pipeline error: its kind and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ImageError {
    /// What went wrong, for decisions.
    pub kind: ImageErrorKind,
    /// What went wrong, for people.
    pub message: String,
}

impl ImageError {
    /// A new error of `kind`.
    pub fn new(kind: ImageErrorKind, message: impl Into<String>) -> Self {
        ImageError {
            kind,
            message: message.into(),
        }
    }

    /// An I/O error of `kind` with context.
    pub fn io(kind: ImageErrorKind, context: &str, err: &std::io::Error) -> Self {
        ImageError::new(kind, format!("{context}: {err}"))
    }
}

impl From<ImageError> for NodeError {
    fn from(e: ImageError) -> Self {
        NodeError::new(e.kind.node_kind(), e.to_string())
    }
}

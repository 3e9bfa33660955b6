//! The image pipeline on a node: the chunked verified stream format, decompression and writers.
//!
//! An image travels as a [`Manifest`] (chunk hashes and the whole-image hash, sent by the server to
//! every node) and a stream of [`frame`]s (chunks, verified against the manifest before they are
//! written or forwarded). See `hal::broadcast` for the engine that moves them.

pub mod decompress;
pub mod error;
pub mod frame;
pub mod manifest;
pub mod writer;

pub use decompress::Compression;
pub use error::{ImageError, ImageErrorKind};
pub use manifest::{DEFAULT_CHUNK_SIZE, Digest, ImageVerifier, MAX_CHUNK_SIZE, Manifest};
pub use writer::Sink;

//! The server-side files a deployment sends (tar images, pre/post-install archives, plain files), read
//! into file trees with bounds: what a simulated node "received".

use crate::vfs::{Entry, FileTree, FsError, MAX_ENTRIES, normalize};
use hal::image::Compression;
use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Largest server file read (compressed), in bytes.
pub const MAX_SOURCE_BYTES: u64 = 512 << 20;
/// Decompressed bytes read from one archive before giving up.
pub const MAX_DECODED_BYTES: u64 = 2 << 30;
/// Largest file of an archive whose content is kept (larger ones keep only their size).
pub const MAX_KEPT_FILE: u64 = 256 << 10;
/// Archives kept in the cache.
const CACHE_SLOTS: usize = 16;

/// Cached trees by (path, compression): the file's size and modification time when read, and the tree.
type Slots = BTreeMap<(String, String), (u64, Option<SystemTime>, Arc<FileTree>)>;

/// Why a server file could not be read into a tree.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Opening or reading the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is over [`MAX_SOURCE_BYTES`], or decodes to more than [`MAX_DECODED_BYTES`].
    #[error("{path}: too large to simulate")]
    TooLarge {
        /// The file.
        path: String,
    },
    /// Unknown compression or a broken archive.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The tree is full.
    #[error("{path}: {source}")]
    Tree {
        /// The file.
        path: String,
        /// The tree's error.
        source: FsError,
    },
}

/// A reader that fails once more than `left` bytes went through.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::FileTooLarge, "archive over its bound")
        })?;
        Ok(n)
    }
}

/// Opens `path`, checking its size.
fn open(path: &str) -> Result<std::fs::File, ArchiveError> {
    let io = |source| ArchiveError::Io {
        path: path.to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    if meta.len() > MAX_SOURCE_BYTES {
        return Err(ArchiveError::TooLarge {
            path: path.to_string(),
        });
    }
    Ok(file)
}

/// Reads a plain server file (a `SendFile`), at most [`MAX_KEPT_FILE`] bytes of content kept.
pub fn read_file(path: &str) -> Result<Entry, ArchiveError> {
    let file = open(path)?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX_KEPT_FILE {
        return Ok(Entry::Opaque(len));
    }
    let mut data = Vec::new();
    file.take(MAX_KEPT_FILE)
        .read_to_end(&mut data)
        .map_err(|source| ArchiveError::Io {
            path: path.to_string(),
            source,
        })?;
    Ok(Entry::File(Arc::new(data)))
}

/// Reads the tar archive `path`, compressed with `compression` (Kadeploy's names), into a tree.
pub fn read_tar(path: &str, compression: &str) -> Result<FileTree, ArchiveError> {
    let format = |message: String| ArchiveError::Format {
        path: path.to_string(),
        message,
    };
    let compression: Compression = compression.parse().map_err(|e| format(format!("{e}")))?;
    let file = open(path)?;
    let decoded = compression
        .decoder(BufReader::new(file))
        .map_err(|e| format(format!("{e}")))?;
    let capped = Capped {
        inner: decoded,
        left: MAX_DECODED_BYTES,
    };
    let mut archive = tar::Archive::new(capped);
    let mut tree = FileTree::default();
    let entries = archive.entries().map_err(|e| format(e.to_string()))?;
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ENTRIES {
            return Err(ArchiveError::TooLarge {
                path: path.to_string(),
            });
        }
        let mut entry = entry.map_err(|e| too_large_or(path, e))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Ok(rel) = normalize("", &name) else {
            continue;
        };
        if rel.is_empty() {
            continue;
        }
        let tree_err = |source| ArchiveError::Tree {
            path: path.to_string(),
            source,
        };
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            tree.mkdir(&rel, true).map_err(tree_err)?;
        } else if kind.is_file() {
            let size = entry.size();
            let content = if size <= MAX_KEPT_FILE {
                let mut data = Vec::new();
                (&mut entry)
                    .take(MAX_KEPT_FILE)
                    .read_to_end(&mut data)
                    .map_err(|e| too_large_or(path, e))?;
                Entry::File(Arc::new(data))
            } else {
                Entry::Opaque(size)
            };
            tree.mkdir(crate::vfs::parent(&rel), true)
                .map_err(tree_err)?;
            tree.insert(&rel, content).map_err(tree_err)?;
        }
    }
    Ok(tree)
}

/// A read error: over the decoded bound, or a broken archive.
fn too_large_or(path: &str, e: std::io::Error) -> ArchiveError {
    if e.kind() == std::io::ErrorKind::FileTooLarge {
        ArchiveError::TooLarge {
            path: path.to_string(),
        }
    } else {
        ArchiveError::Format {
            path: path.to_string(),
            message: e.to_string(),
        }
    }
}

/// The compression of `path` from its first bytes (pre/post-install archives carry no compression in
/// the operation): gzip, bzip2, xz, zstd or none.
pub fn sniff(path: &str) -> &'static str {
    let mut magic = [0u8; 6];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .unwrap_or(0);
    match &magic[..n] {
        [0x1f, 0x8b, ..] => "gzip",
        [b'B', b'Z', b'h', ..] => "bzip2",
        [0xfd, b'7', b'z', b'X', b'Z', 0] => "xz",
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "zstd",
        _ => "none",
    }
}

/// Trees of archives already read, by path, size and modification time (50 nodes deploying the same
/// image read it once).
#[derive(Default)]
pub struct ArchiveCache {
    slots: Mutex<Slots>,
}

impl ArchiveCache {
    /// The tree of tar archive `path` compressed with `compression`, read once per version of the file.
    pub fn tar(&self, path: &str, compression: &str) -> Result<Arc<FileTree>, ArchiveError> {
        let meta = std::fs::metadata(Path::new(path)).map_err(|source| ArchiveError::Io {
            path: path.to_string(),
            source,
        })?;
        let stamp = (meta.len(), meta.modified().ok());
        let key = (path.to_string(), compression.to_string());
        if let Some((len, modified, tree)) = self.lock().get(&key)
            && (*len, *modified) == stamp
        {
            return Ok(tree.clone());
        }
        let tree = Arc::new(read_tar(path, compression)?);
        let mut slots = self.lock();
        if slots.len() >= CACHE_SLOTS {
            slots.clear();
        }
        slots.insert(key, (stamp.0, stamp.1, tree.clone()));
        Ok(tree)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}

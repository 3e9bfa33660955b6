//! Pre/post-install archives: read on the server and decompressed there, so nodes only need `tar`.

use crate::image::Compression;
use crate::outcome::{ErrorKind, NodeError, Outcome};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The compression of `head` (the first bytes of a file) from its magic number, else from `path`'s
/// extension (`tgz`, `tbz2`, `txz`, `tzst`, `.gz`...), else none.
pub(crate) fn detect(head: &[u8], path: &Path) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        return Compression::Gzip;
    }
    if head.starts_with(b"BZh") {
        return Compression::Bzip2;
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Compression::Xz;
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Compression::Zstd;
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "tgz" | "gz" => Compression::Gzip,
        "tbz2" | "tbz" | "bz2" => Compression::Bzip2,
        "txz" | "xz" => Compression::Xz,
        "tzst" | "zst" => Compression::Zstd,
        _ => Compression::None,
    }
}

/// Reads the archive at `path` and returns it as a plain tar stream.
pub(crate) async fn load_tar(path: &str) -> Outcome<Vec<u8>> {
    let path = PathBuf::from(path);
    let shown = path.display().to_string();
    tokio::task::spawn_blocking(move || decompress(&path))
        .await
        .map_err(|e| NodeError::new(ErrorKind::Transfer, format!("reading {shown}: {e}")))?
}

fn decompress(path: &Path) -> Outcome<Vec<u8>> {
    let fail = |e: String| {
        NodeError::new(
            ErrorKind::Transfer,
            format!("cannot read archive {}: {e}", path.display()),
        )
    };
    let data = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let compression = detect(&data[..data.len().min(6)], path);
    let mut out = Vec::with_capacity(data.len() * 3);
    compression
        .decoder(&data[..])
        .map_err(|e| fail(e.to_string()))?
        .read_to_end(&mut out)
        .map_err(|e| fail(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_magic_before_extension() {
        let p = Path::new("/x/post.tgz");
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0], p), Compression::Gzip);
        assert_eq!(detect(b"BZh91A", p), Compression::Bzip2);
        assert_eq!(
            detect(&[0xfd, b'7', b'z', b'X', b'Z', 0], p),
            Compression::Xz
        );
        assert_eq!(
            detect(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0], p),
            Compression::Zstd
        );
        assert_eq!(detect(b"plain.", p), Compression::Gzip);
        assert_eq!(detect(b"plain.", Path::new("a.tar")), Compression::None);
        assert_eq!(detect(b"", Path::new("a.txz")), Compression::Xz);
    }
}

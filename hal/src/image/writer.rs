//! Writers of a decompressed image: extract a tar archive into a mounted file system, or write a raw
//! (`dd`) image to a block device, a partition or a file.

use super::error::{ImageError, ImageErrorKind};
use crate::broadcast::ImageKind;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Where a decompressed image goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink<'a> {
    /// Extract a tar archive into this directory (a mounted partition).
    Tar(&'a Path),
    /// Write raw bytes to this device, partition or file.
    Dd(&'a Path),
}

impl<'a> Sink<'a> {
    /// The sink for an image of `kind`: the extraction directory for tar, the device for dd.
    pub fn for_kind(
        kind: ImageKind,
        device: &'a Path,
        extraction_dir: &'a Path,
    ) -> Result<Self, ImageError> {
        match kind {
            ImageKind::Tar => Ok(Sink::Tar(extraction_dir)),
            ImageKind::Dd => Ok(Sink::Dd(device)),
            ImageKind::Fsa => Err(ImageError::new(
                ImageErrorKind::Unsupported,
                "fsarchiver images are restored by the fsarchiver command, not by the agent",
            )),
        }
    }

    /// Consumes `input` to its end and writes it; returns the decompressed bytes written.
    ///
    /// The input is always read to its end (a tar archive's trailing padding included) so that every
    /// chunk of the stream is received and verified.
    pub fn write(&self, input: impl BufRead) -> Result<u64, ImageError> {
        match self {
            Sink::Tar(dir) => extract_tar(input, dir),
            Sink::Dd(path) => write_dd(input, path),
        }
    }
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

fn decompress_err(context: &str, e: &io::Error) -> ImageError {
    // Errors of the network/stream layer travel as io::ErrorKind::Other with an ImageError inside.
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<ImageError>()) {
        return inner.clone();
    }
    ImageError::io(ImageErrorKind::Decompress, context, e)
}

fn extract_tar(input: impl Read, dir: &Path) -> Result<u64, ImageError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        ImageError::io(
            ImageErrorKind::Write,
            &format!("creating {}", dir.display()),
            &e,
        )
    })?;
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    let mut archive = tar::Archive::new(Counting {
        inner: input,
        count: 0,
    });
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(root);
    archive.set_overwrite(true);
    archive.set_unpack_xattrs(false);
    if let Err(e) = archive.unpack(dir) {
        // tar wraps the reader's errors; a write error has no ImageError inside.
        let src = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<io::Error>())
            .and_then(|io| io.get_ref())
            .and_then(|i| i.downcast_ref::<ImageError>())
            .cloned();
        let cause = std::error::Error::source(&e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        return Err(src.unwrap_or_else(|| {
            ImageError::new(
                ImageErrorKind::Write,
                format!("extracting into {}: {e}{cause}", dir.display()),
            )
        }));
    }
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink())
        .map_err(|e| decompress_err("reading past the archive", &e))?;
    Ok(rest.count)
}

fn write_dd(mut input: impl BufRead, path: &Path) -> Result<u64, ImageError> {
    let regular = match std::fs::metadata(path) {
        Ok(m) => m.is_file(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(e) => {
            return Err(ImageError::io(
                ImageErrorKind::Write,
                &format!("stat {}", path.display()),
                &e,
            ));
        }
    };
    // Devices are written in place; regular files are replaced.
    let mut file: File = OpenOptions::new()
        .write(true)
        .create(regular)
        .truncate(regular)
        .open(path)
        .map_err(|e| {
            ImageError::io(
                ImageErrorKind::Write,
                &format!("opening {}", path.display()),
                &e,
            )
        })?;
    // Whatever the input buffers (a chunk of the window, a decoder's output) is written from there.
    let mut total = 0u64;
    loop {
        let n = match input.fill_buf() {
            Ok([]) => break,
            Ok(buf) => {
                file.write_all(buf).map_err(|e| {
                    ImageError::io(
                        ImageErrorKind::Write,
                        &format!("writing {}", path.display()),
                        &e,
                    )
                })?;
                buf.len()
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(decompress_err("decompressing", &e)),
        };
        input.consume(n);
        total += n as u64;
    }
    // fsync fails on character devices such as /dev/null: only block devices and files need it.
    if let Ok(m) = file.metadata()
        && (m.is_file() || std::os::unix::fs::FileTypeExt::is_block_device(&m.file_type()))
    {
        file.sync_all().map_err(|e| {
            ImageError::io(
                ImageErrorKind::Write,
                &format!("syncing {}", path.display()),
                &e,
            )
        })?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::super::decompress::{Compression, tests::compress};
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("hal-writer-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn extracts_compressed_tar_in_every_format() {
        let archive = tar_of(&[("etc/hostname", b"node-1\n"), ("big", &[7u8; 100_000])]);
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Bzip2,
            Compression::Xz,
            Compression::Zstd,
        ] {
            let dir = tmp(c.name());
            let packed = compress(c, &archive);
            let n = Sink::Tar(&dir)
                .write(c.decoder(&packed[..]).unwrap())
                .unwrap();
            assert_eq!(n, archive.len() as u64);
            assert_eq!(
                std::fs::read(dir.join("etc/hostname")).unwrap(),
                b"node-1\n"
            );
            assert_eq!(std::fs::read(dir.join("big")).unwrap().len(), 100_000);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn writes_dd_images_to_files_and_dev_null() {
        let dir = tmp("dd");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let packed = compress(Compression::Zstd, &data);
        let out = dir.join("part");
        std::fs::write(&out, vec![1u8; 1_000_000]).unwrap();
        Sink::Dd(&out)
            .write(Compression::Zstd.decoder(&packed[..]).unwrap())
            .unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), data);
        Sink::Dd(Path::new("/dev/null")).write(&data[..]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_archives_and_targets_are_errors() {
        let dir = tmp("bad");
        let err = Sink::Tar(&dir)
            .write(Compression::Gzip.decoder(&b"garbage"[..]).unwrap())
            .unwrap_err();
        assert!(
            matches!(err.kind, ImageErrorKind::Write | ImageErrorKind::Decompress),
            "{err}"
        );
        let err = Sink::Dd(&dir.join("no/such/dir/x"))
            .write(&b"x"[..])
            .unwrap_err();
        assert_eq!(err.kind, ImageErrorKind::Write);
        assert!(Sink::for_kind(ImageKind::Fsa, &dir, &dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

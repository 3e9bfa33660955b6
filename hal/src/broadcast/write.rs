//! A node's writer: the verified chunks of its window read in order as one stream, decompressed,
//! and written, extracted or restored to the job's target, the whole image checked at the end.

use super::store::{ChunkSource, ChunkStore};
use super::wire::NodePlan;
use crate::image::{Compression, ImageError, ImageVerifier, Manifest, Sink};
use std::io::{self, BufRead, Read};
use std::path::Path;
use std::time::Duration;

/// Reads the verified chunks of `store` in order, as one byte stream, checking the whole image at the end.
struct StoreReader<'a> {
    store: &'a ChunkStore,
    manifest: &'a Manifest,
    verifier: ImageVerifier,
    next: u64,
    chunk: Option<super::store::Chunk>,
    pos: usize,
}

impl BufRead for StoreReader<'_> {
    /// The rest of the current chunk, straight from the window (no copy).
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        loop {
            if self.chunk.as_ref().is_some_and(|c| self.pos < c.len()) {
                break;
            }
            if self.chunk.take().is_some() {
                self.store.release(0, self.next);
            }
            if self.next >= self.manifest.chunk_count() {
                self.verifier
                    .finish(self.manifest)
                    .map_err(io::Error::other)?;
                self.store.mark_verified();
                return Ok(&[]);
            }
            let c = loop {
                match self.store.get(self.next, Duration::from_secs(1)) {
                    Ok(Some(c)) => break c,
                    Ok(None) => continue,
                    Err(e) => return Err(io::Error::other(e)),
                }
            };
            let digest = self.manifest.chunks[self.next as usize];
            self.verifier
                .push(self.next, c.len(), &digest)
                .map_err(io::Error::other)?;
            self.next += 1;
            self.chunk = Some(c);
            self.pos = 0;
        }
        Ok(self.chunk.as_ref().map_or(&[][..], |c| &c[self.pos..]))
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
    }
}

impl Read for StoreReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = buf.len().min(avail.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// Writes the job's image from the verified chunks of `store`; the bytes written.
pub fn write_image(
    plan: &NodePlan,
    manifest: &Manifest,
    store: &ChunkStore,
) -> Result<u64, ImageError> {
    let compression: Compression = plan.compression.parse()?;
    let sink = Sink::for_kind(
        plan.kind,
        Path::new(&plan.device),
        Path::new(&plan.extraction_dir),
    )?;
    let reader = StoreReader {
        store,
        manifest,
        verifier: ImageVerifier::new(manifest),
        next: 0,
        chunk: None,
        pos: 0,
    };
    sink.write(compression.decoder(reader)?)
}

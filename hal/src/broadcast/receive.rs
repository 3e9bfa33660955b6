//! The receiving side of a node: take chunks from the upstream link in pieces (published as they
//! arrive for cut-through forwarding), verify each chunk against the manifest before keeping it
//! (asking for a corrupted one again), keep them in the node's window, and acknowledge what this node
//! and its successor hold; in a fault-tolerant chain, accept a new upstream after losing one.

use super::store::ChunkStore;
use super::wire::{self, CUT_THROUGH_MIN_PIECE, CUT_THROUGH_PIECE, Reply, Tuning};
use crate::image::frame::{self, Feedback, FrameHeader};
use crate::image::{Digest, ImageError, ImageErrorKind, Manifest};
use std::io::Read;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the receiver shares with the agent's connection handler and the node's forwarders.
pub struct Upstream {
    /// New upstream connections for this job.
    pub incoming: Receiver<TcpStream>,
    /// The connection being read, so that a newer upstream can cut it off.
    pub current: Arc<Mutex<Option<TcpStream>>>,
    /// Chunks held by each successor (`u64::MAX`: none).
    pub successors: Vec<Arc<AtomicU64>>,
    /// Wait for another upstream after losing one.
    pub fault_tolerant: bool,
    /// Corrupted chunks detected and asked for again.
    pub refetched: Arc<AtomicU64>,
}

impl Upstream {
    fn child_have(&self, have: u64) -> u64 {
        child_have(&self.successors, have)
    }
}

/// What the successors hold (the least of them), or `have` when there is no live successor.
fn child_have(successors: &[Arc<AtomicU64>], have: u64) -> u64 {
    let min = successors
        .iter()
        .map(|s| s.load(Ordering::SeqCst))
        .min()
        .unwrap_or(u64::MAX);
    if min == u64::MAX { have } else { min }
}

/// Receives the whole image into `store`; an error means it never will (the store is then failed).
pub fn receive(
    manifest: &Manifest,
    store: &ChunkStore,
    up: &Upstream,
    tuning: &Tuning,
) -> Result<(), ImageError> {
    let total = manifest.chunk_count();
    let wait = Duration::from_millis(tuning.upstream_timeout_ms.max(1));
    loop {
        let stream = up.incoming.recv_timeout(wait).map_err(|_| {
            ImageError::new(
                ImageErrorKind::Io,
                format!(
                    "no upstream for {} ms with {} of {total} chunks",
                    wait.as_millis(),
                    store.have()
                ),
            )
        })?;
        super::forward::tune(&stream, tuning);
        if let Ok(clone) = stream.try_clone() {
            *up.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(clone);
        }
        let result = serve(manifest, store, up, stream, tuning.cut_through);
        if store.have() >= total {
            return Ok(());
        }
        match result {
            Ok(()) => return Ok(()),
            Err(e) if up.fault_tolerant => {
                tracing::warn!(have = store.have(), error = %e, "upstream lost, waiting for another");
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sends acknowledgements whenever what this node or its successor holds changes (and at least every
/// 500 ms as a keep-alive), until `stop`: the upstream learns the successor's progress even while this
/// node waits for data, so its window never waits on a stale acknowledgement.
fn acknowledge(
    w: &Mutex<TcpStream>,
    store: &ChunkStore,
    successors: &[Arc<AtomicU64>],
    stop: &AtomicBool,
) {
    let mut last: Option<(u64, u64)> = None;
    let mut sent_at = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let have = store.have();
        let now = (have, child_have(successors, have));
        if last != Some(now) || sent_at.elapsed() > Duration::from_millis(500) {
            let ack = Feedback::Ack {
                have: now.0,
                child_have: now.1,
            };
            if frame::write_feedback(&mut *lock(w), ack).is_err() {
                return;
            }
            last = Some(now);
            sent_at = Instant::now();
        }
        store.wait_change(Duration::from_millis(50));
    }
}

fn lock(w: &Mutex<TcpStream>) -> std::sync::MutexGuard<'_, TcpStream> {
    w.lock().unwrap_or_else(|p| p.into_inner())
}

fn serve(
    manifest: &Manifest,
    store: &ChunkStore,
    up: &Upstream,
    mut stream: TcpStream,
    cut_through: bool,
) -> Result<(), ImageError> {
    wire::send(&mut stream, &Reply::Data { have: store.have() })
        .map_err(|e| ImageError::io(ImageErrorKind::Io, "answering upstream", &e))?;
    let read_half = stream
        .try_clone()
        .map_err(|e| ImageError::io(ImageErrorKind::Io, "clone", &e))?;
    let writer = Mutex::new(stream);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let successors = &up.successors[..];
        s.spawn(|| acknowledge(&writer, store, successors, &stop));
        let r = read_chunks(manifest, store, up, read_half, &writer, cut_through);
        stop.store(true, Ordering::SeqCst);
        r
    })
}

fn read_chunks(
    manifest: &Manifest,
    store: &ChunkStore,
    up: &Upstream,
    mut reader: TcpStream,
    writer: &Mutex<TcpStream>,
    cut_through: bool,
) -> Result<(), ImageError> {
    let total = manifest.chunk_count();
    let mut nacked = None;
    // Every damaged copy is asked for again (the sender goes back once per request); the count
    // is of chunks fetched again.
    let nack = |index: u64, nacked: &mut Option<u64>| -> Result<(), ImageError> {
        tracing::warn!(index, "corrupted chunk: asking for it again");
        frame::write_feedback(&mut *lock(writer), Feedback::Nack { index })
            .map_err(|e| ImageError::io(ImageErrorKind::Io, "re-fetch request", &e))?;
        if *nacked != Some(index) {
            *nacked = Some(index);
            up.refetched.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    };
    loop {
        match frame::read_header(&mut reader, manifest.chunk_size)? {
            FrameHeader::Chunk { index, len } => {
                let wanted = index == store.have();
                if !wanted || manifest.chunk_len(index) != Some(len) {
                    // A duplicate, a chunk sent before our re-fetch request arrived, or a wrong length.
                    discard(&mut reader, len)?;
                    if wanted {
                        nack(index, &mut nacked)?;
                    }
                    continue;
                }
                match receive_chunk(manifest, store, &mut reader, index, len, cut_through)? {
                    true => nacked = None,
                    false => nack(index, &mut nacked)?,
                }
            }
            FrameHeader::End { count } => {
                if count != total {
                    return Err(ImageError::new(
                        ImageErrorKind::Format,
                        format!("end after {count} chunks, expected {total}"),
                    ));
                }
                if store.have() < total {
                    continue; // chunks re-sent after a re-fetch request follow
                }
                // Stay until our successors hold everything (the acknowledger reports it), then
                // until upstream closes.
                while up.child_have(total) < total {
                    store.wait_change(Duration::from_millis(100));
                }
                let _ = reader.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = reader.read(&mut [0u8; 1]);
                return Ok(());
            }
        }
    }
}

/// Reads and drops `len` bytes of a frame.
fn discard(reader: &mut TcpStream, len: u32) -> Result<(), ImageError> {
    let copied = std::io::copy(&mut reader.take(u64::from(len)), &mut std::io::sink())
        .map_err(|e| ImageError::io(ImageErrorKind::Io, "reading a chunk", &e))?;
    if copied < u64::from(len) {
        return Err(ImageError::new(
            ImageErrorKind::Io,
            "upstream closed inside a chunk",
        ));
    }
    Ok(())
}

/// Reads the next piece of a chunk into `buffer`: what the socket holds once it holds at least
/// `least` bytes, at most `most` (and the buffer's length). An upstream that closes first is an error.
fn read_piece<'b>(
    reader: &mut TcpStream,
    buffer: &'b mut [u8],
    least: usize,
    most: usize,
) -> Result<&'b [u8], ImageError> {
    let most = most.min(buffer.len());
    let mut filled = 0usize;
    while filled < least.min(most) {
        match reader.read(&mut buffer[filled..most]) {
            Ok(0) => {
                return Err(ImageError::new(
                    ImageErrorKind::Io,
                    "upstream closed inside a chunk",
                ));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ImageError::io(ImageErrorKind::Io, "reading a chunk", &e)),
        }
    }
    Ok(&buffer[..filled])
}

/// Ends a reception as discarded unless it was ended otherwise (an error, a panic).
struct Reception<'a> {
    store: &'a ChunkStore,
    seq: Option<u64>,
}

impl Drop for Reception<'_> {
    fn drop(&mut self) {
        if let Some(seq) = self.seq.take() {
            self.store.end_partial(seq, None);
        }
    }
}

/// Receives chunk `index` (the next one, `len` bytes, as the manifest says) in pieces, hashing as it
/// goes; with `cut_through`, each piece is published for the forwarders as it arrives. Keeps the
/// chunk if it matches the manifest and says whether it did (a mismatch is to be fetched again).
fn receive_chunk(
    manifest: &Manifest,
    store: &ChunkStore,
    reader: &mut TcpStream,
    index: u64,
    len: u32,
    cut_through: bool,
) -> Result<bool, ImageError> {
    let mut reception = Reception { store, seq: None };
    if cut_through {
        // Room for the chunk first: a full window is backpressure (the acknowledger keeps telling
        // upstream we live).
        reception.seq = loop {
            if let Some(seq) = store.begin_partial(index, len, Duration::from_millis(200)) {
                break Some(seq);
            }
        };
    }
    let mut hasher = blake3::Hasher::new();
    let mut data = store.spare_buffer();
    data.clear();
    data.reserve(len as usize);
    let mut buffer = vec![0u8; CUT_THROUGH_PIECE];
    let mut got = 0usize;
    while got < len as usize {
        let rest = len as usize - got;
        let piece = read_piece(reader, &mut buffer, rest.min(CUT_THROUGH_MIN_PIECE), rest)?;
        hasher.update(piece);
        data.extend_from_slice(piece);
        got += piece.len();
        if let Some(seq) = reception.seq {
            store.add_piece(seq, Arc::new(piece.to_vec()));
        }
    }
    let good = manifest.chunks.get(index as usize) == Some(&Digest(*hasher.finalize().as_bytes()));
    let chunk = good.then(|| Arc::new(data));
    match (reception.seq.take(), chunk) {
        (Some(seq), chunk) => store.end_partial(seq, chunk),
        (None, Some(chunk)) => while !store.push(Arc::clone(&chunk), Duration::from_millis(200)) {},
        (None, None) => {}
    }
    Ok(good)
}

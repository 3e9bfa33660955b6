//! The receiving side of a node: take chunks from the upstream link, verify each against the manifest
//! (asking for a corrupted one again), keep them in the node's window, and acknowledge what this node
//! and its successor hold; in a fault-tolerant chain, accept a new upstream after losing one.

use super::store::ChunkStore;
use super::wire::{self, Reply, Tuning};
use crate::image::frame::{self, DataFrame, Feedback};
use crate::image::{ImageError, ImageErrorKind, Manifest};
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
        let result = serve(manifest, store, up, stream);
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
        let r = read_chunks(manifest, store, up, read_half, &writer);
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
) -> Result<(), ImageError> {
    let total = manifest.chunk_count();
    let mut nacked = None;
    loop {
        // Unbuffered: a chunk is read straight into its buffer, the header costs one small read.
        match frame::read_frame_into(&mut reader, manifest.chunk_size, store.spare_buffer())? {
            DataFrame::Chunk { index, data } => {
                if index != store.have() {
                    continue; // a duplicate, or a chunk sent before our re-fetch request arrived
                }
                if let Err(e) = manifest.verify_chunk(index, &data) {
                    if nacked != Some(index) {
                        tracing::warn!(index, error = %e, "corrupted chunk: asking for it again");
                        frame::write_feedback(&mut *lock(writer), Feedback::Nack { index })
                            .map_err(|e| {
                                ImageError::io(ImageErrorKind::Io, "re-fetch request", &e)
                            })?;
                        nacked = Some(index);
                        up.refetched.fetch_add(1, Ordering::SeqCst);
                    }
                    continue;
                }
                nacked = None;
                let chunk = Arc::new(data);
                // A full window is backpressure (the acknowledger keeps telling upstream we live).
                while !store.push(Arc::clone(&chunk), Duration::from_millis(200)) {}
            }
            DataFrame::End { count } => {
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

//! Where a sender takes chunks from: a node's bounded in-memory window of verified chunks (and the
//! chunk being received, piece by piece, for cut-through forwarding), or the server's image file.

use crate::image::{ImageError, ImageErrorKind, Manifest};
use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A chunk's bytes, shared without copying between the writer and the forwarders.
pub type Chunk = Arc<Vec<u8>>;

/// A piece of the chunk being received (cut-through forwarding sends pieces as they arrive).
pub type Piece = Arc<Vec<u8>>;

/// What a sender can send of chunk `index` now.
#[derive(Clone, Debug)]
pub enum Fetch {
    /// The whole verified chunk.
    Whole(Chunk),
    /// The chunk is being received: its pieces can be streamed (see [`ChunkSource::pieces`]) before
    /// it is verified; `seq` names this reception, `len` is the chunk's length.
    Streaming {
        /// The reception's generation.
        seq: u64,
        /// The chunk's length in bytes.
        len: u32,
    },
    /// Nothing yet.
    Pending,
}

/// How the reception of a streamed chunk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartialEnd {
    /// Every byte arrived and the chunk matched the manifest.
    Verified,
    /// The chunk failed its hash, or its upstream broke off; or a newer reception replaced it.
    Discarded,
}

/// Pieces of a streamed chunk from a given piece on, and whether its reception ended.
#[derive(Clone, Debug, Default)]
pub struct Pieces {
    /// The pieces, in order.
    pub pieces: Vec<Piece>,
    /// How the reception ended, once it did.
    pub end: Option<PartialEnd>,
}

/// The chunk being received.
struct Partial {
    index: u64,
    seq: u64,
    len: u32,
    pieces: Vec<Piece>,
    end: Option<PartialEnd>,
}

/// A source of chunks for forwarders.
pub trait ChunkSource: Send + Sync {
    /// Chunk `index`, waiting up to `wait` for it to arrive; `Ok(None)` if it has not arrived yet.
    /// An error means it never will (evicted, or the upstream failed).
    fn get(&self, index: u64, wait: Duration) -> Result<Option<Chunk>, ImageError>;
    /// Consumer `consumer` no longer needs chunks below `upto`.
    fn release(&self, consumer: usize, upto: u64);
    /// Consumer `consumer` needs nothing more.
    fn drop_consumer(&self, consumer: usize);
    /// The lowest chunk index still available.
    fn first_available(&self) -> u64;
    /// Chunk `index` whole, or the handle of its latest reception (in progress, or ended without
    /// the chunk: its bytes arrived all the same) unless that is reception `skip` (already sent),
    /// waiting up to `wait` for either. An error means it will never come.
    fn fetch(&self, index: u64, skip: Option<u64>, wait: Duration) -> Result<Fetch, ImageError> {
        let _ = skip;
        Ok(match self.get(index, wait)? {
            Some(c) => Fetch::Whole(c),
            None => Fetch::Pending,
        })
    }
    /// The pieces of reception `seq` from piece `from` on, waiting up to `wait` for a new one or the end.
    fn pieces(&self, seq: u64, from: usize, wait: Duration) -> Pieces {
        let _ = (seq, from, wait);
        Pieces {
            pieces: Vec::new(),
            end: Some(PartialEnd::Discarded),
        }
    }
}

struct State {
    base: u64,
    chunks: VecDeque<Chunk>,
    marks: Vec<Option<u64>>,
    failed: Option<ImageError>,
    /// Buffers of evicted chunks nobody else holds, for the receiver to read the next chunks into
    /// (no allocation, zeroing or page faults per chunk).
    spare: Vec<Vec<u8>>,
    /// The chunk being received (cut-through forwarding), if any.
    partial: Option<Partial>,
    /// The generation of the next reception.
    next_gen: u64,
    /// When the first and the latest chunk were kept, and the whole image verified (the timeline).
    times: ChunkTimes,
}

/// When a node kept its first and its latest verified chunk, and verified its whole image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkTimes {
    /// The first chunk kept (its first byte received and verified).
    pub first: Option<Instant>,
    /// The latest chunk kept (the last byte, once the store is complete).
    pub last: Option<Instant>,
    /// The whole image checked against the manifest.
    pub verified: Option<Instant>,
}

/// How many evicted buffers are kept for reuse.
const SPARE_BUFFERS: usize = 4;

impl State {
    /// Keeps the next verified chunk and notes when.
    fn keep(&mut self, chunk: Chunk) {
        self.chunks.push_back(chunk);
        let now = Instant::now();
        self.times.first.get_or_insert(now);
        self.times.last = Some(now);
    }

    fn have(&self) -> u64 {
        self.base + self.chunks.len() as u64
    }

    fn evict(&mut self) {
        let have = self.have();
        let low = self
            .marks
            .iter()
            .flatten()
            .copied()
            .min()
            .unwrap_or(have)
            .min(have);
        while self.base < low {
            if let Some(chunk) = self.chunks.pop_front()
                && self.spare.len() < SPARE_BUFFERS
                && let Ok(buffer) = Arc::try_unwrap(chunk)
            {
                self.spare.push(buffer);
            }
            self.base += 1;
        }
    }
}

/// A node's window of verified chunks `base..have`: a chunk stays until every consumer (the writer,
/// each forwarder) has released it, and at most `capacity` chunks are held, so memory is bounded by
/// `capacity × chunk size` whatever the image size.
pub struct ChunkStore {
    state: Mutex<State>,
    changed: Condvar,
    /// Signalled when a piece of the chunk being received arrives (or its reception ends): only the
    /// cut-through senders wait on it, so pieces do not wake every waiter of the store.
    piece_added: Condvar,
    capacity: usize,
}

impl ChunkStore {
    /// An empty store of `capacity` chunks with `consumers` consumers, all at chunk 0.
    pub fn new(capacity: usize, consumers: usize) -> Self {
        ChunkStore {
            state: Mutex::new(State {
                base: 0,
                chunks: VecDeque::new(),
                marks: vec![Some(0); consumers],
                failed: None,
                spare: Vec::new(),
                partial: None,
                next_gen: 0,
                times: ChunkTimes::default(),
            }),
            changed: Condvar::new(),
            piece_added: Condvar::new(),
            capacity: capacity.max(2),
        }
    }

    /// The state once there is room for one more chunk (old chunks evicted), waiting up to `wait`;
    /// `None` if there was none in time.
    fn lock_with_room(&self, wait: Duration) -> Option<MutexGuard<'_, State>> {
        let mut s = self.lock();
        s.evict();
        if s.chunks.len() >= self.capacity {
            s = self
                .changed
                .wait_timeout_while(s, wait, |s| {
                    s.evict();
                    s.chunks.len() >= self.capacity
                })
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        (s.chunks.len() < self.capacity).then_some(s)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Chunks held in order (`0..have` have all been received and verified).
    pub fn have(&self) -> u64 {
        self.lock().have()
    }

    /// A buffer of an evicted chunk to read the next one into, or a new empty one.
    pub fn spare_buffer(&self) -> Vec<u8> {
        self.lock().spare.pop().unwrap_or_default()
    }

    /// Appends the next chunk, waiting up to `wait` for room; `false` if there was none in time.
    pub fn push(&self, chunk: Chunk, wait: Duration) -> bool {
        let Some(mut s) = self.lock_with_room(wait) else {
            return false;
        };
        s.keep(chunk);
        drop(s);
        self.changed.notify_all();
        true
    }

    /// Whether the next chunk can be pushed without waiting.
    pub fn has_room(&self) -> bool {
        let mut s = self.lock();
        s.evict();
        s.chunks.len() < self.capacity
    }

    /// Starts receiving chunk `index` (the next one, `len` bytes) piece by piece, waiting up to
    /// `wait` for room to keep it once verified; its generation, or `None` if there was no room in time.
    pub fn begin_partial(&self, index: u64, len: u32, wait: Duration) -> Option<u64> {
        let mut s = self.lock_with_room(wait)?;
        let seq = s.next_gen;
        s.next_gen += 1;
        s.partial = Some(Partial {
            index,
            seq,
            len,
            pieces: Vec::new(),
            end: None,
        });
        drop(s);
        self.changed.notify_all();
        self.piece_added.notify_all();
        Some(seq)
    }

    /// Appends a piece to reception `seq` (ignored once it ended or was replaced).
    pub fn add_piece(&self, seq: u64, piece: Piece) {
        let mut s = self.lock();
        if let Some(p) = s
            .partial
            .as_mut()
            .filter(|p| p.seq == seq && p.end.is_none())
        {
            p.pieces.push(piece);
            drop(s);
            self.piece_added.notify_all();
        }
    }

    /// Ends reception `seq`: with its verified chunk, kept as the next chunk (room was made when the
    /// reception began), or discarded.
    pub fn end_partial(&self, seq: u64, verified: Option<Chunk>) {
        let mut s = self.lock();
        let Some(p) = s
            .partial
            .as_mut()
            .filter(|p| p.seq == seq && p.end.is_none())
        else {
            return;
        };
        let index = p.index;
        p.end = Some(if verified.is_some() {
            PartialEnd::Verified
        } else {
            PartialEnd::Discarded
        });
        if let Some(chunk) = verified
            && index == s.have()
        {
            s.keep(chunk);
        }
        drop(s);
        self.changed.notify_all();
        self.piece_added.notify_all();
    }

    /// No more chunks will come: consumers waiting for missing ones get `err`.
    pub fn fail(&self, err: ImageError) {
        self.lock().failed.get_or_insert(err);
        self.changed.notify_all();
    }

    /// Notes that the whole image was checked against the manifest.
    pub fn mark_verified(&self) {
        self.lock().times.verified.get_or_insert_with(Instant::now);
    }

    /// When the first and latest chunks were kept and the image verified.
    pub fn times(&self) -> ChunkTimes {
        self.lock().times
    }

    /// Waits up to `wait` for any change.
    pub fn wait_change(&self, wait: Duration) {
        let s = self.lock();
        let _unused = self.changed.wait_timeout(s, wait);
    }
}

impl ChunkSource for ChunkStore {
    fn get(&self, index: u64, wait: Duration) -> Result<Option<Chunk>, ImageError> {
        let mut s = self.lock();
        if index >= s.have() && s.failed.is_none() {
            s = self
                .changed
                .wait_timeout_while(s, wait, |s| index >= s.have() && s.failed.is_none())
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        if index < s.base {
            return Err(ImageError::new(
                ImageErrorKind::Io,
                format!("chunk {index} left the window (first is {})", s.base),
            ));
        }
        if index < s.have() {
            return Ok(Some(Arc::clone(&s.chunks[(index - s.base) as usize])));
        }
        match &s.failed {
            Some(e) => Err(e.clone()),
            None => Ok(None),
        }
    }

    fn release(&self, consumer: usize, upto: u64) {
        let mut s = self.lock();
        if let Some(Some(m)) = s.marks.get_mut(consumer) {
            *m = (*m).max(upto);
        }
        s.evict();
        drop(s);
        self.changed.notify_all();
    }

    fn drop_consumer(&self, consumer: usize) {
        let mut s = self.lock();
        if let Some(m) = s.marks.get_mut(consumer) {
            *m = None;
        }
        s.evict();
        drop(s);
        self.changed.notify_all();
    }

    fn first_available(&self) -> u64 {
        self.lock().base
    }

    fn fetch(&self, index: u64, skip: Option<u64>, wait: Duration) -> Result<Fetch, ImageError> {
        let streaming = |s: &State| {
            s.partial
                .as_ref()
                .filter(|p| p.index == index && p.end != Some(PartialEnd::Verified))
                .filter(|p| Some(p.seq) != skip)
                .map(|p| (p.seq, p.len))
        };
        let mut s = self.lock();
        if index >= s.have() && s.failed.is_none() && streaming(&s).is_none() {
            s = self
                .changed
                .wait_timeout_while(s, wait, |s| {
                    index >= s.have() && s.failed.is_none() && streaming(s).is_none()
                })
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        if index < s.base {
            return Err(ImageError::new(
                ImageErrorKind::Io,
                format!("chunk {index} left the window (first is {})", s.base),
            ));
        }
        if index < s.have() {
            return Ok(Fetch::Whole(Arc::clone(
                &s.chunks[(index - s.base) as usize],
            )));
        }
        if let Some((seq, len)) = streaming(&s) {
            return Ok(Fetch::Streaming { seq, len });
        }
        match &s.failed {
            Some(e) => Err(e.clone()),
            None => Ok(Fetch::Pending),
        }
    }

    fn pieces(&self, seq: u64, from: usize, wait: Duration) -> Pieces {
        let news = |s: &State| match &s.partial {
            Some(p) if p.seq == seq => p.end.is_some() || p.pieces.len() > from,
            _ => true,
        };
        let mut s = self.lock();
        if !news(&s) {
            s = self
                .piece_added
                .wait_timeout_while(s, wait, |s| !news(s))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        match &s.partial {
            Some(p) if p.seq == seq => Pieces {
                pieces: p.pieces.get(from..).unwrap_or_default().to_vec(),
                end: p.end,
            },
            _ => Pieces {
                pieces: Vec::new(),
                end: Some(PartialEnd::Discarded),
            },
        }
    }
}

/// The server's side: chunks read from the image file on demand (any chunk, any time).
pub struct FileSource {
    file: File,
    manifest: Arc<Manifest>,
}

impl FileSource {
    /// Chunks of `file`, cut as `manifest` says.
    pub fn new(file: File, manifest: Arc<Manifest>) -> Self {
        FileSource { file, manifest }
    }
}

impl ChunkSource for FileSource {
    fn get(&self, index: u64, _wait: Duration) -> Result<Option<Chunk>, ImageError> {
        let len = self.manifest.chunk_len(index).ok_or_else(|| {
            ImageError::new(
                ImageErrorKind::Format,
                format!("chunk {index} past the end"),
            )
        })?;
        let mut buf = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut buf, self.manifest.chunk_offset(index))
            .map_err(|e| ImageError::io(ImageErrorKind::Io, "reading the image", &e))?;
        Ok(Some(Arc::new(buf)))
    }

    fn release(&self, _consumer: usize, _upto: u64) {}

    fn drop_consumer(&self, _consumer: usize) {}

    fn first_available(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_millis(20);

    fn c(b: u8) -> Chunk {
        Arc::new(vec![b; 4])
    }

    #[test]
    fn window_is_bounded_until_every_consumer_releases() {
        let s = ChunkStore::new(2, 2);
        assert!(s.push(c(0), W) && s.push(c(1), W));
        assert!(!s.push(c(2), W), "full until released");
        s.release(0, 1);
        assert!(!s.push(c(2), W), "consumer 1 still needs chunk 0");
        s.release(1, 2);
        assert!(s.push(c(2), W));
        assert_eq!(s.have(), 3);
        assert_eq!(s.first_available(), 1);
        assert!(s.get(0, W).is_err());
        assert_eq!(s.get(2, W).unwrap().unwrap()[0], 2);
        assert_eq!(s.get(3, W).unwrap(), None);
        s.drop_consumer(1);
        s.release(0, 3);
        assert_eq!(s.first_available(), 3);
    }

    #[test]
    fn evicted_buffers_are_reused_unless_still_held() {
        let s = ChunkStore::new(4, 1);
        let held = c(0);
        assert!(s.push(Arc::clone(&held), W) && s.push(c(1), W));
        s.release(0, 2);
        assert_eq!(s.spare_buffer(), vec![1; 4], "chunk 1's buffer comes back");
        assert!(
            s.spare_buffer().is_empty(),
            "chunk 0 is still held elsewhere"
        );
        drop(held);
    }

    #[test]
    fn a_chunk_being_received_streams_piece_by_piece() {
        let s = ChunkStore::new(4, 1);
        assert!(matches!(s.fetch(0, None, W).unwrap(), Fetch::Pending));
        let seq = s.begin_partial(0, 8, W).unwrap();
        let Fetch::Streaming { seq: g, len: 8 } = s.fetch(0, None, W).unwrap() else {
            panic!("not streaming");
        };
        assert_eq!(g, seq);
        s.add_piece(seq, Arc::new(vec![1; 4]));
        let got = s.pieces(seq, 0, W);
        assert_eq!((got.pieces.len(), got.end), (1, None));
        s.add_piece(seq, Arc::new(vec![2; 4]));
        s.end_partial(seq, Some(Arc::new(vec![1, 1, 1, 1, 2, 2, 2, 2])));
        let got = s.pieces(seq, 1, W);
        assert_eq!(got.pieces, vec![Arc::new(vec![2; 4])]);
        assert_eq!(got.end, Some(PartialEnd::Verified));
        assert_eq!(s.have(), 1);
        assert!(matches!(s.fetch(0, None, W).unwrap(), Fetch::Whole(_)));
        // A discarded reception keeps nothing, but its bytes can still be sent (once per sender);
        // a newer one replaces it for the senders.
        let seq = s.begin_partial(1, 8, W).unwrap();
        s.add_piece(seq, Arc::new(vec![9; 4]));
        s.end_partial(seq, None);
        assert_eq!(s.have(), 1);
        assert!(matches!(
            s.fetch(1, None, W).unwrap(),
            Fetch::Streaming { .. }
        ));
        assert!(matches!(s.fetch(1, Some(seq), W).unwrap(), Fetch::Pending));
        let newer = s.begin_partial(1, 8, W).unwrap();
        assert_eq!(s.pieces(seq, 0, W).end, Some(PartialEnd::Discarded));
        assert!(s.pieces(newer, 0, W).pieces.is_empty());
    }

    #[test]
    fn failure_wakes_waiting_consumers() {
        let s = Arc::new(ChunkStore::new(4, 1));
        let s2 = Arc::clone(&s);
        let t = std::thread::spawn(move || s2.get(0, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(30));
        s.fail(ImageError::new(ImageErrorKind::Io, "upstream lost"));
        assert!(t.join().unwrap().is_err());
    }
}

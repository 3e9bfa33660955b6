//! The sending side of a multicast broadcast (the deployer): the image goes to the group once, in
//! sealed pieces, paced; receivers' status datagrams say what each holds and which pieces it missed.
//!
//! Timing, for models of it: new pieces go out in order at the pacing rate (`max_rate`, or as fast as
//! the sender's link takes them when 0; with a rate, it is cut by a quarter in each 100 ms epoch
//! where more than 5% of the pieces sent were asked for again, and grows back by a twentieth of the
//! maximum per clean epoch). Repairs go first, to the whole group, each piece at most once per
//! hold-off (four status intervals, at least 50 ms), so that N receivers missing the same piece cost one resend. New
//! data never runs more than `window` chunks ahead of the slowest live receiver (flow control, and
//! each receiver's memory bound); a receiver silent for the stall timeout is dropped from it.
//!
//! With forward error correction (`fec: k/m`, see [`super::mcast_fec`]), the `m` repair pieces of
//! each block of `k` go right after the block's data, paced like it (the stream is `(k+m)/k` longer);
//! the progress announced in heartbeats reaches a block's last piece only once its repairs are sent,
//! so that receivers ask for its losses only when the repairs could not rebuild them.
//!
//! Datagrams leave in runs of up to [`GSO_SEGMENTS`] per system call (UDP segmentation offload, see
//! [`super::mcast_io`]; about a millisecond's worth when paced); unpaced, the socket's default send
//! buffer holds the sender to its link's rate.

use super::mcast_fec::{self, Fec};
use super::mcast_io::{BatchSender, GSO_SEGMENTS};
use super::mcast_wire::{self, Datagram, JobTag, MAX_DATAGRAM, PIECE_LEN};
use super::store::{Chunk, ChunkSource};
use super::token::{AgentToken, DatagramKey};
use crate::image::Manifest;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Settings of the multicast sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McastOptions {
    /// Group and port of the broadcast.
    pub group: SocketAddrV4,
    /// Highest sending rate (bytes/s of datagrams); 0: as fast as the sender's link takes them.
    pub max_rate: u64,
    /// Multicast hops (1: the local network).
    pub ttl: u32,
    /// Forward error correction: `m` repair pieces after each block of `k` (`None`: off).
    pub fec: Option<Fec>,
}

impl Default for McastOptions {
    fn default() -> Self {
        McastOptions {
            group: SocketAddrV4::new(Ipv4Addr::new(239, 255, 25, 31), 25302),
            max_rate: 0,
            ttl: 1,
            fec: None,
        }
    }
}

/// The receivers' multicast status interval for `n` receivers (ms): 10 ms, longer for large sets so
/// that the sender reads about 4,000 status datagrams a second at most.
pub fn status_interval(n: usize) -> u64 {
    10u64.max(n as u64 / 4)
}

/// Opens the sender's socket on `local`, the address facing the nodes (receivers send their status
/// to it).
pub fn bind(local: Ipv4Addr, options: &McastOptions) -> std::io::Result<UdpSocket> {
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    sock.bind(&SockAddr::from(SocketAddrV4::new(local, 0)))?;
    sock.set_multicast_if_v4(&local)?;
    sock.set_multicast_ttl_v4(options.ttl)?;
    sock.set_multicast_loop_v4(false)?;
    let _ = sock.set_recv_buffer_size(4 << 20);
    // The send buffer stays the system's default: unpaced, it is what holds the sender back to
    // its link's speed (a run waits for room while the link's queue holds the buffer's worth);
    // one larger than that queue makes the queue drop whole runs instead.
    Ok(sock.into())
}

/// What the sender reports when it ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct McastResult {
    /// Pieces sent again on request.
    pub repaired: u64,
    /// Forward error correction pieces sent.
    pub fec_sent: u64,
    /// Receivers dropped (silent for the stall timeout), with why.
    pub lost: Vec<(u32, String)>,
}

/// One multicast broadcast's sender.
pub struct McastSender {
    /// The socket made by [`bind`].
    pub socket: UdpSocket,
    /// Settings.
    pub options: McastOptions,
    /// The job's id (its datagrams' tag).
    pub job: String,
    /// The broadcast's token.
    pub token: AgentToken,
    /// The image's manifest.
    pub manifest: Arc<Manifest>,
    /// The image's chunks.
    pub source: Arc<dyn ChunkSource>,
    /// The receivers taking part, by their index in status datagrams (`false`: that index left
    /// before the start).
    pub receivers: Vec<bool>,
    /// Chunks new data may run ahead of the slowest live receiver.
    pub window: u64,
    /// The receivers' status interval.
    pub status_every: Duration,
    /// A receiver silent for this long is dropped.
    pub stall: Duration,
}

/// What the status listener and the sending loop share.
struct Board {
    have: Vec<u64>,
    heard: Vec<Instant>,
    dead: Vec<bool>,
    /// Pieces asked for again, by chunk.
    repair: BTreeMap<u64, BTreeSet<u16>>,
    /// When each piece was last sent again (for the hold-off).
    repaired_at: BTreeMap<(u64, u16), Instant>,
    /// Last new piece sent.
    sent: Option<(u64, u16)>,
    /// Pieces newly asked for again in this epoch.
    asked: u64,
    /// Chunks every live receiver holds.
    low: u64,
}

struct Shared {
    board: Mutex<Board>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|p| p.into_inner())
    }
}

enum Next {
    Send(u64, u16, bool),
    /// Forward error correction: repair `index` of block `block` of a chunk.
    Repair(u64, usize, usize),
    Idle,
    Done,
}

/// Where the new data stands: the next piece, or the next repair of the block just sent.
#[derive(Clone, Copy)]
struct Cursor {
    chunk: u64,
    piece: usize,
    /// The index of the next repair of the block ending at `piece - 1`.
    repair: Option<usize>,
}

/// Paces datagrams at a rate that adapts to the losses the receivers report.
struct Pacer {
    max: u64,
    rate: u64,
    due: Instant,
    epoch: Instant,
    sent_in_epoch: u64,
}

impl Pacer {
    /// Waits for the turn of `count` datagrams of `bytes` in all.
    fn wait(&mut self, bytes: usize, count: usize) {
        self.sent_in_epoch += count as u64;
        if self.rate == 0 {
            return;
        }
        let now = Instant::now();
        // At most 10 ms of credit: a pause never turns into a burst.
        if let Some(floor) = now.checked_sub(Duration::from_millis(10)) {
            self.due = self.due.max(floor);
        }
        self.due += Duration::from_secs_f64((bytes + 28 * count) as f64 / self.rate as f64);
        if let Some(ahead) = self.due.checked_duration_since(now)
            && ahead > Duration::from_micros(500)
        {
            std::thread::sleep(ahead);
        }
    }

    /// Datagrams of `len` bytes one send may carry at the current rate: all [`GSO_SEGMENTS`]
    /// unpaced, else about a millisecond's worth (at least one), so that pacing stays smooth.
    fn run_limit(&self, len: usize) -> usize {
        if self.rate == 0 {
            return GSO_SEGMENTS;
        }
        let per_ms = self.rate / 1000 / (len.max(1) as u64 + 28);
        (per_ms as usize).clamp(1, GSO_SEGMENTS)
    }

    fn adapt(&mut self, asked: u64) {
        if self.max == 0 || self.epoch.elapsed() < Duration::from_millis(100) {
            return;
        }
        if asked * 20 > self.sent_in_epoch {
            self.rate = (self.rate / 4 * 3).max(self.max / 32).max(1);
        } else {
            self.rate = (self.rate + self.max / 20).min(self.max);
        }
        self.epoch = Instant::now();
        self.sent_in_epoch = 0;
    }
}

/// Datagrams built one after the other for one send (see [`super::mcast_io`]): up to
/// [`GSO_SEGMENTS`] of the first one's length, the last of which may be shorter.
struct Run {
    buf: Vec<u8>,
    count: usize,
    segment: usize,
    /// The last datagram is shorter than the others: nothing may follow it in this run.
    closed: bool,
}

impl Run {
    fn new() -> Run {
        Run {
            buf: Vec::with_capacity(GSO_SEGMENTS * MAX_DATAGRAM),
            count: 0,
            segment: 0,
            closed: false,
        }
    }

    /// Whether a datagram of `len` bytes may join the run of at most `limit` datagrams.
    fn fits(&self, len: usize, limit: usize) -> bool {
        self.count == 0 || (!self.closed && len <= self.segment && self.count < limit)
    }

    /// Records the datagram just appended from `start`.
    fn pushed(&mut self, start: usize) {
        let len = self.buf.len() - start;
        if self.count == 0 {
            self.segment = len;
        }
        self.closed |= len < self.segment;
        self.count += 1;
    }

    fn full(&self, limit: usize) -> bool {
        self.closed || self.count >= limit
    }
}

impl McastSender {
    /// Sends the image until every live receiver holds it; what happened.
    pub fn run(self) -> McastResult {
        let Some(key) = DatagramKey::new(&self.token) else {
            return McastResult::default();
        };
        let tag = mcast_wire::job_tag(&self.job);
        let now = Instant::now();
        let n = self.receivers.len();
        let shared = Shared {
            board: Mutex::new(Board {
                have: vec![0; n],
                heard: vec![now; n],
                dead: self.receivers.iter().map(|&r| !r).collect(),
                repair: BTreeMap::new(),
                repaired_at: BTreeMap::new(),
                sent: None,
                asked: 0,
                low: 0,
            }),
            changed: Condvar::new(),
        };
        let stop = AtomicBool::new(false);
        let mut result = McastResult::default();
        std::thread::scope(|s| {
            s.spawn(|| self.listen(&key, &tag, &shared, &stop));
            self.send_loop(&key, &tag, &shared, &mut result);
            stop.store(true, Ordering::SeqCst);
        });
        tracing::info!(job = %self.job, repaired = result.repaired, lost = result.lost.len(), "multicast sent");
        result
    }

    fn pieces(&self, chunk: u64) -> usize {
        self.manifest
            .chunk_len(chunk)
            .map_or(0, |l| (l as usize).div_ceil(PIECE_LEN))
    }

    /// Reads the receivers' status datagrams until `stop`.
    fn listen(&self, key: &DatagramKey, tag: &JobTag, shared: &Shared, stop: &AtomicBool) {
        let Ok(socket) = self.socket.try_clone() else {
            return;
        };
        let _ = socket.set_read_timeout(Some(Duration::from_millis(50)));
        let total = self.manifest.chunk_count();
        let holdoff = (self.status_every * 4).max(Duration::from_millis(50));
        let mut buf = [0u8; MAX_DATAGRAM + 1];
        while !stop.load(Ordering::SeqCst) {
            let Ok(n) = socket.recv(&mut buf) else {
                continue;
            };
            let Some(Datagram::Status { node, have, naks }) =
                mcast_wire::open(key, tag, buf.get(..n).unwrap_or_default())
            else {
                continue;
            };
            let node = node as usize;
            let mut b = shared.lock();
            if node >= b.have.len() || b.dead[node] {
                continue;
            }
            b.heard[node] = Instant::now();
            b.have[node] = b.have[node].max(have.min(total));
            let sent = b.sent;
            for r in naks {
                let chunk = u64::from(r.chunk);
                let pieces = self.pieces(chunk);
                let Some((sent_chunk, sent_piece)) = sent else {
                    break;
                };
                if chunk < b.have[node] || chunk > sent_chunk {
                    continue;
                }
                let last = if chunk == sent_chunk {
                    usize::from(sent_piece) + 1
                } else {
                    pieces
                };
                let end = (usize::from(r.first) + usize::from(r.count)).min(last);
                for piece in usize::from(r.first)..end {
                    let piece = piece as u16;
                    let recent = b
                        .repaired_at
                        .get(&(chunk, piece))
                        .is_some_and(|t| t.elapsed() < holdoff);
                    if !recent && b.repair.entry(chunk).or_default().insert(piece) {
                        b.asked += 1;
                    }
                }
            }
            drop(b);
            shared.changed.notify_all();
        }
    }

    /// What to send next: a repair first, else new data within the window; or idle, or done.
    fn next(&self, b: &mut Board, cursor: Cursor, result: &mut McastResult) -> Next {
        let total = self.manifest.chunk_count();
        let now = Instant::now();
        for i in 0..b.have.len() {
            if !b.dead[i]
                && b.have[i] < total
                && now.saturating_duration_since(b.heard[i]) > self.stall
            {
                b.dead[i] = true;
                let why = format!("no status for {} ms", self.stall.as_millis());
                tracing::warn!(job = %self.job, receiver = i, %why, "receiver dropped");
                result.lost.push((i as u32, why));
            }
        }
        let low = (0..b.have.len())
            .filter(|&i| !b.dead[i])
            .map(|i| b.have[i])
            .min();
        let Some(low) = low.filter(|&l| l < total) else {
            return Next::Done;
        };
        if low > b.low {
            b.low = low;
            b.repair = b.repair.split_off(&low);
            b.repaired_at = b.repaired_at.split_off(&(low, 0));
        }
        if let Some(mut first) = b.repair.first_entry() {
            let chunk = *first.key();
            if let Some(piece) = first.get_mut().pop_first() {
                if first.get().is_empty() {
                    first.remove();
                }
                b.repaired_at.insert((chunk, piece), now);
                return Next::Send(chunk, piece, true);
            }
            first.remove();
        }
        if cursor.chunk < total && cursor.chunk < low + self.window {
            return match (cursor.repair, self.fec()) {
                (Some(index), Some(fec)) => Next::Repair(
                    cursor.chunk,
                    cursor.piece.saturating_sub(1) / usize::from(fec.k),
                    index,
                ),
                _ => Next::Send(cursor.chunk, cursor.piece as u16, false),
            };
        }
        Next::Idle
    }

    fn send_loop(
        &self,
        key: &DatagramKey,
        tag: &JobTag,
        shared: &Shared,
        result: &mut McastResult,
    ) {
        let total = self.manifest.chunk_count();
        let total32 = u32::try_from(total).unwrap_or(u32::MAX);
        let mut pacer = Pacer {
            max: self.options.max_rate,
            rate: self.options.max_rate,
            due: Instant::now(),
            epoch: Instant::now(),
            sent_in_epoch: 0,
        };
        let mut cache: BTreeMap<u64, Chunk> = BTreeMap::new();
        let mut cursor = Cursor {
            chunk: 0,
            piece: 0,
            repair: None,
        };
        let io = BatchSender::default();
        let mut run = Run::new();
        let mut beat_at = Instant::now();
        loop {
            let next = {
                let mut b = shared.lock();
                pacer.adapt(std::mem::take(&mut b.asked));
                let next = self.next(&mut b, cursor, result);
                if matches!(next, Next::Idle) && run.count == 0 {
                    let _unused = shared.changed.wait_timeout(b, self.status_every);
                }
                next
            };
            match next {
                Next::Done => break,
                Next::Idle => self.flush(&io, &mut run, &mut pacer),
                Next::Send(chunk, piece, repair) => {
                    let Some(data) = self.chunk(&mut cache, chunk) else {
                        break;
                    };
                    let offset = usize::from(piece) * PIECE_LEN;
                    let Some(payload) = data.get(offset..(offset + PIECE_LEN).min(data.len()))
                    else {
                        continue;
                    };
                    let len = mcast_wire::piece_datagram_len(payload.len());
                    if !run.fits(len, pacer.run_limit(len)) {
                        self.flush(&io, &mut run, &mut pacer);
                    }
                    let start = run.buf.len();
                    mcast_wire::append_data(&mut run.buf, key, tag, (chunk as u32, piece), payload);
                    run.pushed(start);
                    if repair {
                        result.repaired += 1;
                    } else {
                        self.advance(&mut cursor, shared, &mut cache);
                    }
                }
                Next::Repair(chunk, block, index) => {
                    let Some(data) = self.chunk(&mut cache, chunk) else {
                        break;
                    };
                    if let Some(payload) = self.repair_payload(&data, block, index) {
                        let len = mcast_wire::piece_datagram_len(payload.len());
                        if !run.fits(len, pacer.run_limit(len)) {
                            self.flush(&io, &mut run, &mut pacer);
                        }
                        if let Some(code) = self.fec().and_then(|f| f.code(block, index)) {
                            let start = run.buf.len();
                            mcast_wire::append_repair(
                                &mut run.buf,
                                key,
                                tag,
                                (chunk as u32, code),
                                &payload,
                            );
                            run.pushed(start);
                            result.fec_sent += 1;
                        }
                    }
                    self.advance(&mut cursor, shared, &mut cache);
                }
            }
            if run.full(pacer.run_limit(run.segment)) {
                self.flush(&io, &mut run, &mut pacer);
            }
            if beat_at.elapsed() >= self.status_every {
                // The progress announced covers the run built so far: send it first.
                self.flush(&io, &mut run, &mut pacer);
                self.heartbeat(key, tag, total32, shared, false);
                beat_at = Instant::now();
            }
        }
        self.flush(&io, &mut run, &mut pacer);
        for _ in 0..3 {
            self.heartbeat(key, tag, total32, shared, true);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The forward error correction setting, if on and valid.
    fn fec(&self) -> Option<Fec> {
        self.options.fec.and_then(|f| f.checked().ok())
    }

    /// Moves the cursor past the new piece or repair just sent, and announces the progress (a
    /// block's last piece only once its repairs are sent).
    fn advance(&self, cursor: &mut Cursor, shared: &Shared, cache: &mut BTreeMap<u64, Chunk>) {
        let pieces = self.pieces(cursor.chunk);
        let fec = self.fec();
        match (cursor.repair, fec) {
            (Some(index), Some(fec)) if index + 1 < usize::from(fec.m) => {
                cursor.repair = Some(index + 1);
                return;
            }
            (Some(_), _) => cursor.repair = None,
            (None, _) => {
                cursor.piece += 1;
                let closes = fec.filter(|f| {
                    cursor.piece.is_multiple_of(usize::from(f.k)) || cursor.piece >= pieces
                });
                if closes.is_some() {
                    cursor.repair = Some(0);
                    return;
                }
            }
        }
        shared.lock().sent = Some((cursor.chunk, cursor.piece.saturating_sub(1) as u16));
        if cursor.piece >= pieces {
            *cursor = Cursor {
                chunk: cursor.chunk + 1,
                piece: 0,
                repair: None,
            };
            let low = shared.lock().low;
            *cache = cache.split_off(&low);
        }
    }

    /// Sends the run built so far (paced), and empties it.
    fn flush(&self, io: &BatchSender, run: &mut Run, pacer: &mut Pacer) {
        if run.count == 0 {
            return;
        }
        pacer.wait(run.buf.len(), run.count);
        if let Err(e) = io.send(&self.socket, self.options.group, &run.buf, run.segment) {
            tracing::trace!(error = %e, "multicast send failed (the receivers ask again)");
        }
        run.buf.clear();
        run.count = 0;
        run.closed = false;
    }

    /// The bytes of repair `index` of block `block` of a chunk (bytes `data`).
    fn repair_payload(&self, data: &[u8], block: usize, index: usize) -> Option<Vec<u8>> {
        let fec = self.fec()?;
        let pieces: Vec<&[u8]> = data.chunks(PIECE_LEN).collect();
        let range = fec.block_range(block, pieces.len());
        Some(mcast_fec::encode(pieces.get(range)?, index))
    }

    fn heartbeat(
        &self,
        key: &DatagramKey,
        tag: &JobTag,
        total: u32,
        shared: &Shared,
        finished: bool,
    ) {
        let sent = shared.lock().sent;
        let Some((chunk, piece)) = sent else {
            return;
        };
        let d = mcast_wire::heartbeat(key, tag, total, (chunk as u32, piece), finished);
        let _ = self.socket.send_to(&d, self.options.group);
    }

    /// Chunk `index` from the cache or the source.
    fn chunk(&self, cache: &mut BTreeMap<u64, Chunk>, index: u64) -> Option<Chunk> {
        if let Some(c) = cache.get(&index) {
            return Some(Arc::clone(c));
        }
        match self.source.get(index, Duration::ZERO) {
            Ok(Some(c)) => {
                cache.insert(index, Arc::clone(&c));
                Some(c)
            }
            Ok(None) | Err(_) => {
                tracing::warn!(job = %self.job, index, "image chunk unreadable");
                None
            }
        }
    }
}

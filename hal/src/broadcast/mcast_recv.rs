//! The receiving side of a multicast broadcast on a node: join the group, check every datagram's
//! MAC and job, put pieces together into chunks (at most `window` chunks ahead of what the node
//! holds), verify each chunk against the manifest before keeping it (a corrupted one is asked for
//! again whole), and tell the sender, every status interval, what the node holds and which pieces
//! it misses below the sender's progress (negative acknowledgements).
//!
//! With forward error correction (the plan's `fec`), repair pieces are kept per block (at most `m`
//! of each, each checked for its block, index and length) and a block is rebuilt as soon as it has
//! as many repairs as lost pieces; the node asks only for the pieces its repairs cannot make up,
//! and only for blocks whose repairs the sender has sent.

use super::mcast_fec::{self, Fec};
use super::mcast_io::{self, BatchReceiver};
use super::mcast_wire::{self, Datagram, JobTag, MAX_NAK_RANGES, PIECE_LEN, PieceRange};
use super::store::ChunkStore;
use super::token::{AgentToken, DatagramKey};
use super::wire::{MulticastPlan, Tuning};
use crate::image::{Digest, ImageError, ImageErrorKind, Manifest};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Receive buffer asked for the group socket (bytes; root may exceed the system's maximum): the
/// sender's default window (32 chunks of 1 MiB), so that a receiver short of processor time
/// queues what the window lets the sender send ahead instead of losing it (with 8 MiB, 16
/// receivers on 2 cores at 1 Gbit/s had 83,000 of 186,000 pieces sent again).
const RECEIVE_BUFFER: usize = 32 << 20;
/// How long a complete receiver keeps answering the sender's heartbeats before it stops.
const LINGER: Duration = Duration::from_secs(5);

/// Opens the group's socket on the interface of `local` and joins the group: done before the node
/// says it is ready, so that no datagram is sent before it listens.
pub fn join(plan: &MulticastPlan, local: Ipv4Addr) -> std::io::Result<UdpSocket> {
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_reuse_address(true)?;
    let bind = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, plan.group.port());
    sock.bind(&SockAddr::from(bind))?;
    sock.join_multicast_v4(plan.group.ip(), &local)?;
    let sock: UdpSocket = sock.into();
    tune(&sock);
    Ok(sock)
}

/// Sets up a receiving socket: a large buffer (the sender's runs come whole), and runs of
/// datagrams in one call where the kernel coalesces them (each still checked alone).
fn tune(sock: &UdpSocket) {
    force_receive_buffer(&socket2::SockRef::from(sock));
    mcast_io::enable_receive_offload(sock);
}

/// A large receive buffer: as root beyond `net.core.rmem_max` (SO_RCVBUFFORCE), else as large as allowed.
fn force_receive_buffer(sock: &Socket) {
    use std::os::fd::AsRawFd;
    let size = RECEIVE_BUFFER as libc::c_int;
    // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int and its size.
    let forced = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if forced != 0 {
        let _ = sock.set_recv_buffer_size(RECEIVE_BUFFER);
    }
}

/// A chunk being put together.
struct Slot {
    data: Vec<u8>,
    got: Vec<bool>,
    missing: usize,
    /// Forward error correction: the repairs held for each block (index, bytes); empty when off.
    repairs: Vec<Vec<(usize, Vec<u8>)>>,
}

impl Slot {
    fn new(len: usize, mut buffer: Vec<u8>, fec: Option<Fec>) -> Slot {
        let pieces = len.div_ceil(PIECE_LEN);
        buffer.clear();
        buffer.resize(len, 0);
        Slot {
            data: buffer,
            got: vec![false; pieces],
            missing: pieces,
            repairs: vec![Vec::new(); fec.map_or(0, |f| f.blocks(pieces))],
        }
    }

    /// The missing pieces of the first `limit`, as ranges appended to `out` (up to its capacity):
    /// in each block of `block` pieces, only as many as the repairs held there cannot make up.
    fn missing_ranges(&self, chunk: u32, limit: usize, block: usize, out: &mut Vec<PieceRange>) {
        let limit = limit.min(self.got.len());
        let block = block.max(1);
        let mut start = 0;
        while start < limit && out.len() < MAX_NAK_RANGES {
            let end = start.saturating_add(block).min(limit);
            let held = self.repairs.get(start / block).map_or(0, Vec::len);
            let lost = self.got[start..end].iter().filter(|g| !**g).count();
            let mut needed = lost.saturating_sub(held);
            let mut i = start;
            while i < end && needed > 0 && out.len() < MAX_NAK_RANGES {
                if self.got[i] {
                    i += 1;
                    continue;
                }
                let first = i;
                while i < end && !self.got[i] && needed > 0 && i - first < usize::from(u16::MAX) {
                    i += 1;
                    needed -= 1;
                }
                out.push(PieceRange {
                    chunk,
                    first: first as u16,
                    count: (i - first) as u16,
                });
            }
            start = end;
        }
    }

    /// Rebuilds the lost pieces of block `block` (pieces `range`) if it holds enough repairs;
    /// whether it did.
    fn recover(&mut self, block: usize, range: std::ops::Range<usize>) -> bool {
        let Some(held) = self.repairs.get_mut(block) else {
            return false;
        };
        let Some(got) = self.got.get_mut(range.clone()) else {
            return false;
        };
        let lost = got.iter().filter(|g| !**g).count();
        if lost == 0 || held.len() < lost {
            return false;
        }
        let bytes = range.start * PIECE_LEN..(range.end * PIECE_LEN).min(self.data.len());
        let Some(data) = self.data.get_mut(bytes) else {
            return false;
        };
        let mut pieces: Vec<&mut [u8]> = data.chunks_mut(PIECE_LEN).collect();
        let repairs: Vec<(usize, &[u8])> = held.iter().map(|(j, r)| (*j, &r[..])).collect();
        let rebuilt = mcast_fec::recover(&mut pieces, got, &repairs);
        held.clear();
        if let Err(e) = rebuilt {
            tracing::debug!(block, error = %e, "block not rebuilt");
            return false;
        }
        got.iter_mut().for_each(|g| *g = true);
        self.missing -= lost;
        true
    }

    /// Forgets everything (a corrupted chunk, asked for again whole).
    fn reset(&mut self) {
        self.got.iter_mut().for_each(|g| *g = false);
        self.missing = self.got.len();
        self.repairs.iter_mut().for_each(Vec::clear);
    }
}

/// What a multicast receiver needs.
pub struct McastReceiver<'a> {
    /// The node's part in the job.
    pub plan: &'a MulticastPlan,
    /// The group's socket (see [`join`]).
    pub socket: UdpSocket,
    /// The job's id (its datagrams' tag).
    pub job: &'a str,
    /// The image's manifest.
    pub manifest: &'a Manifest,
    /// Where verified chunks go, in order.
    pub store: &'a ChunkStore,
    /// Window and timeouts.
    pub tuning: &'a Tuning,
    /// The broadcast's token.
    pub token: &'a AgentToken,
    /// Corrupted chunks detected and asked for again.
    pub refetched: Arc<AtomicU64>,
}

/// Where the receiver is.
struct Progress {
    slots: BTreeMap<u64, Slot>,
    /// Chunks pushed to the store.
    next: u64,
    /// The sender's progress: the pieces of this chunk below this one may be asked for again.
    sent: Option<(u64, usize)>,
    finished: bool,
}

impl McastReceiver<'_> {
    /// Receives the whole image into the store; an error means it never will.
    pub fn run(self) -> Result<(), ImageError> {
        let key = DatagramKey::new(self.token)
            .ok_or_else(|| ImageError::new(ImageErrorKind::Io, "no key for the datagrams"))?;
        if let Some(fec) = self.plan.fec {
            fec.checked()
                .map_err(|e| ImageError::new(ImageErrorKind::Format, e.to_string()))?;
        }
        let tag = mcast_wire::job_tag(self.job);
        let total = self.manifest.chunk_count();
        let status_every = Duration::from_millis(self.plan.status_ms.clamp(1, 10_000));
        let silence = Duration::from_millis(self.tuning.upstream_timeout_ms.max(1));
        let mut p = Progress {
            slots: BTreeMap::new(),
            next: 0,
            sent: None,
            finished: false,
        };
        tune(&self.socket);
        let mut batch = BatchReceiver::default();
        let (mut heard, mut status_at) = (Instant::now(), Instant::now());
        let mut complete_at: Option<Instant> = None;
        let _ = self.socket.set_read_timeout(Some(status_every));
        let mut arrived = 0u64;
        loop {
            let mut completed = false;
            if batch.recv(&self.socket).is_ok() {
                let mut authentic = false;
                for datagram in batch.datagrams() {
                    arrived += 1;
                    let dropped = self
                        .tuning
                        .drop_one_in
                        .is_some_and(|k| k > 0 && arrived.is_multiple_of(u64::from(k)));
                    if dropped {
                        // Test hook: a lossy link.
                    } else if let Some(d) = mcast_wire::open(&key, &tag, datagram) {
                        authentic = true;
                        let (done, answer) = self.take(d, &mut p, total);
                        completed |= done;
                        if answer && complete_at.is_some() {
                            self.send_status(&key, &tag, &p, total);
                        }
                    } else {
                        tracing::trace!("datagram dropped: not of this job or forged");
                    }
                }
                if authentic {
                    heard = Instant::now();
                }
            }
            let due = status_at.elapsed() >= status_every;
            if completed || due {
                self.push_ready(&mut p);
            }
            if p.next >= total {
                let at = *complete_at.get_or_insert_with(Instant::now);
                if p.finished || at.elapsed() > LINGER {
                    self.send_status(&key, &tag, &p, total);
                    return Ok(());
                }
            } else if p.finished {
                return Err(ImageError::new(
                    ImageErrorKind::Io,
                    format!("the sender finished with {} of {total} chunks here", p.next),
                ));
            } else if heard.elapsed() > silence {
                return Err(ImageError::new(
                    ImageErrorKind::Io,
                    format!(
                        "no datagram from the sender for {} ms with {} of {total} chunks",
                        silence.as_millis(),
                        p.next
                    ),
                ));
            }
            if due {
                self.send_status(&key, &tag, &p, total);
                status_at = Instant::now();
            }
        }
    }

    /// Takes one authentic datagram; whether it completed a chunk, and whether it asks for an
    /// answer (a heartbeat).
    fn take(&self, d: Datagram<'_>, p: &mut Progress, total: u64) -> (bool, bool) {
        match d {
            Datagram::Data {
                chunk,
                piece,
                payload,
            } => (
                self.take_piece(p, u64::from(chunk), usize::from(piece), payload),
                false,
            ),
            Datagram::Repair {
                chunk,
                code,
                payload,
            } => (self.take_repair(p, u64::from(chunk), code, payload), false),
            Datagram::Heartbeat {
                chunk,
                piece,
                finished,
                ..
            } => {
                // The sender announces a block's last piece only once its repairs are sent.
                let chunk = u64::from(chunk).min(total);
                let piece = usize::from(piece);
                let closes = self.plan.fec.is_some_and(|f| {
                    (piece + 1).is_multiple_of(usize::from(f.k)) || piece + 1 >= self.pieces(chunk)
                });
                self.progress(p, chunk, piece, closes);
                p.finished |= finished;
                (false, true)
            }
            Datagram::Status { .. } => (false, false),
        }
    }

    /// Stores one piece; verifies its chunk once complete. Whether a chunk was completed.
    fn take_piece(&self, p: &mut Progress, chunk: u64, piece: usize, payload: &[u8]) -> bool {
        let window = u64::from(self.tuning.window.max(1));
        let Some(len) = self.manifest.chunk_len(chunk) else {
            return false;
        };
        if chunk < p.next || chunk >= p.next + window {
            return false; // held already, or beyond the window (asked for again later)
        }
        let len = len as usize;
        let offset = piece * PIECE_LEN;
        if offset >= len || payload.len() != (len - offset).min(PIECE_LEN) {
            return false;
        }
        self.progress(p, chunk, piece, false);
        let fec = self.plan.fec;
        let slot = p
            .slots
            .entry(chunk)
            .or_insert_with(|| Slot::new(len, self.store.spare_buffer(), fec));
        if slot.missing == 0 || slot.got[piece] {
            return false;
        }
        slot.data[offset..offset + payload.len()].copy_from_slice(payload);
        slot.got[piece] = true;
        slot.missing -= 1;
        if let Some(fec) = fec {
            let block = piece / usize::from(fec.k);
            slot.recover(block, fec.block_range(block, slot.got.len()));
        }
        self.verify_if_complete(slot, chunk)
    }

    /// Stores one repair piece (forward error correction) and rebuilds its block if it can.
    /// Whether a chunk was completed. Repairs of unknown blocks or indices, of another length, or
    /// beyond `m` per block are dropped before anything is kept.
    fn take_repair(&self, p: &mut Progress, chunk: u64, code: u16, payload: &[u8]) -> bool {
        let Some(fec) = self.plan.fec else {
            return false;
        };
        let window = u64::from(self.tuning.window.max(1));
        let Some(len) = self.manifest.chunk_len(chunk) else {
            return false;
        };
        if chunk < p.next || chunk >= p.next + window {
            return false;
        }
        let len = len as usize;
        let pieces = len.div_ceil(PIECE_LEN);
        let Some((block, index)) = fec.decode_code(code, pieces) else {
            return false;
        };
        let range = fec.block_range(block, pieces);
        let first = range.start * PIECE_LEN;
        if range.is_empty() || payload.len() != (len - first).min(PIECE_LEN) {
            return false;
        }
        // The block's other repairs may still be on their way: it is closed by the next block's
        // data or the sender's heartbeat.
        self.progress(p, chunk, range.start, false);
        let slot = p
            .slots
            .entry(chunk)
            .or_insert_with(|| Slot::new(len, self.store.spare_buffer(), Some(fec)));
        if slot.missing == 0 || slot.got[range.clone()].iter().all(|g| *g) {
            return false;
        }
        let Some(held) = slot.repairs.get_mut(block) else {
            return false;
        };
        if held.len() >= usize::from(fec.m) || held.iter().any(|(j, _)| *j == index) {
            return false;
        }
        held.push((index, payload.to_vec()));
        slot.recover(block, range) && self.verify_if_complete(slot, chunk)
    }

    /// Verifies a complete chunk against the manifest (a corrupted one is emptied, to be asked for
    /// again). Whether it is complete and right.
    fn verify_if_complete(&self, slot: &mut Slot, chunk: u64) -> bool {
        if slot.missing != 0 {
            return false;
        }
        let digest = Digest(*blake3::hash(&slot.data).as_bytes());
        if self.manifest.chunks.get(chunk as usize) != Some(&digest) {
            tracing::warn!(chunk, "corrupted chunk: asking for it again");
            self.refetched.fetch_add(1, Ordering::SeqCst);
            slot.reset();
            return false;
        }
        true
    }

    /// Pieces of chunk `chunk`.
    fn pieces(&self, chunk: u64) -> usize {
        self.manifest
            .chunk_len(chunk)
            .map_or(0, |l| (l as usize).div_ceil(PIECE_LEN))
    }

    /// Records the sender's progress at piece `piece` of `chunk`: the pieces below it may be asked
    /// for again; with forward error correction, only the blocks before its own, or its own too
    /// once its repairs were sent (`closed`).
    fn progress(&self, p: &mut Progress, chunk: u64, piece: usize, closed: bool) {
        let limit = match self.plan.fec {
            None => piece + 1,
            Some(f) => {
                let k = usize::from(f.k.max(1));
                let block = piece / k + usize::from(closed);
                (block * k).min(self.pieces(chunk))
            }
        };
        let at = (chunk, limit);
        p.sent = Some(p.sent.map_or(at, |s| s.max(at)));
    }

    /// Moves the complete chunks at the front into the store while it has room.
    fn push_ready(&self, p: &mut Progress) {
        while let Some(entry) = p.slots.first_entry() {
            if *entry.key() != p.next || entry.get().missing != 0 {
                return;
            }
            if self.store.have() != p.next || !self.store.has_room() {
                return;
            }
            let slot = entry.remove();
            if !self.store.push(Arc::new(slot.data), Duration::ZERO) {
                return;
            }
            p.next += 1;
        }
    }

    /// Sends what the node holds and the pieces it misses below the sender's progress.
    fn send_status(&self, key: &DatagramKey, tag: &JobTag, p: &Progress, total: u64) {
        let mut naks = Vec::new();
        if let Some((sent_chunk, sent_limit)) = p.sent {
            let block = self.plan.fec.map_or(usize::MAX, |f| usize::from(f.k));
            let window = u64::from(self.tuning.window.max(1));
            let end = (p.next + window).min(total).min(sent_chunk + 1);
            for c in p.next..end {
                if naks.len() >= MAX_NAK_RANGES {
                    break;
                }
                let Some(len) = self.manifest.chunk_len(c) else {
                    break;
                };
                let pieces = (len as usize).div_ceil(PIECE_LEN);
                let limit = if c == sent_chunk {
                    sent_limit.min(pieces)
                } else {
                    pieces
                };
                if limit == 0 {
                    continue;
                }
                match p.slots.get(&c) {
                    Some(slot) => slot.missing_ranges(c as u32, limit, block, &mut naks),
                    None => naks.push(PieceRange {
                        chunk: c as u32,
                        first: 0,
                        count: limit.min(pieces).min(usize::from(u16::MAX)) as u16,
                    }),
                }
            }
        }
        let d = mcast_wire::status(key, tag, self.plan.node, p.next, &naks);
        let _ = self.socket.send_to(&d, self.plan.sender);
    }
}

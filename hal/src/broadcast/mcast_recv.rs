//! The receiving side of a multicast broadcast on a node: join the group, check every datagram's
//! MAC and job, put pieces together into chunks (at most `window` chunks ahead of what the node
//! holds), verify each chunk against the manifest before keeping it (a corrupted one is asked for
//! again whole), and tell the sender, every status interval, what the node holds and which pieces
//! it misses below the sender's progress (negative acknowledgements).

use super::mcast_wire::{
    self, Datagram, JobTag, MAX_DATAGRAM, MAX_NAK_RANGES, PIECE_LEN, PieceRange,
};
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

/// Receive buffer asked for the group socket (bytes; root may exceed the system's maximum).
const RECEIVE_BUFFER: usize = 8 << 20;
/// How long a complete receiver keeps answering the sender's heartbeats before it stops.
const LINGER: Duration = Duration::from_secs(5);

/// Opens the group's socket on the interface of `local` and joins the group: done before the node
/// says it is ready, so that no datagram is sent before it listens.
pub fn join(plan: &MulticastPlan, local: Ipv4Addr) -> std::io::Result<UdpSocket> {
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_reuse_address(true)?;
    force_receive_buffer(&sock);
    let bind = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, plan.group.port());
    sock.bind(&SockAddr::from(bind))?;
    sock.join_multicast_v4(plan.group.ip(), &local)?;
    Ok(sock.into())
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
}

impl Slot {
    fn new(len: usize, mut buffer: Vec<u8>) -> Slot {
        let pieces = len.div_ceil(PIECE_LEN);
        buffer.clear();
        buffer.resize(len, 0);
        Slot {
            data: buffer,
            got: vec![false; pieces],
            missing: pieces,
        }
    }

    /// The missing pieces of the first `limit`, as ranges appended to `out` (up to its capacity).
    fn missing_ranges(&self, chunk: u32, limit: usize, out: &mut Vec<PieceRange>) {
        let mut i = 0;
        let limit = limit.min(self.got.len());
        while i < limit && out.len() < MAX_NAK_RANGES {
            if self.got[i] {
                i += 1;
                continue;
            }
            let first = i;
            while i < limit && !self.got[i] && i - first < usize::from(u16::MAX) {
                i += 1;
            }
            out.push(PieceRange {
                chunk,
                first: first as u16,
                count: (i - first) as u16,
            });
        }
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
    /// The sender's progress: new data sent up to this (chunk, piece).
    sent: Option<(u64, usize)>,
    finished: bool,
}

impl McastReceiver<'_> {
    /// Receives the whole image into the store; an error means it never will.
    pub fn run(self) -> Result<(), ImageError> {
        let key = DatagramKey::new(self.token)
            .ok_or_else(|| ImageError::new(ImageErrorKind::Io, "no key for the datagrams"))?;
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
        let mut buf = [0u8; MAX_DATAGRAM + 1];
        let (mut heard, mut status_at) = (Instant::now(), Instant::now());
        let mut complete_at: Option<Instant> = None;
        let _ = self.socket.set_read_timeout(Some(status_every));
        let mut arrived = 0u64;
        loop {
            let mut completed = false;
            if let Ok((n, from)) = self.socket.recv_from(&mut buf) {
                let datagram = buf.get(..n).unwrap_or_default();
                arrived += 1;
                let dropped = self
                    .tuning
                    .drop_one_in
                    .is_some_and(|k| k > 0 && arrived.is_multiple_of(u64::from(k)));
                if dropped {
                    // Test hook: a lossy link.
                } else if let Some(d) = mcast_wire::open(&key, &tag, datagram) {
                    heard = Instant::now();
                    let (done, answer) = self.take(d, &mut p, total);
                    completed = done;
                    if answer && complete_at.is_some() {
                        self.send_status(&key, &tag, &p, total);
                    }
                } else {
                    tracing::trace!(%from, "datagram dropped: not of this job or forged");
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
            Datagram::Heartbeat {
                chunk,
                piece,
                finished,
                ..
            } => {
                let at = (u64::from(chunk).min(total), usize::from(piece));
                p.sent = Some(p.sent.map_or(at, |s| s.max(at)));
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
        p.sent = Some(p.sent.map_or((chunk, piece), |s| s.max((chunk, piece))));
        let slot = p
            .slots
            .entry(chunk)
            .or_insert_with(|| Slot::new(len, self.store.spare_buffer()));
        if slot.missing == 0 || slot.got[piece] {
            return false;
        }
        slot.data[offset..offset + payload.len()].copy_from_slice(payload);
        slot.got[piece] = true;
        slot.missing -= 1;
        if slot.missing == 0 {
            let digest = Digest(*blake3::hash(&slot.data).as_bytes());
            if self.manifest.chunks.get(chunk as usize) != Some(&digest) {
                tracing::warn!(chunk, "corrupted chunk: asking for it again");
                self.refetched.fetch_add(1, Ordering::SeqCst);
                slot.got.iter_mut().for_each(|g| *g = false);
                slot.missing = slot.got.len();
                return false;
            }
            return true;
        }
        false
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
        if let Some((sent_chunk, sent_piece)) = p.sent {
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
                    sent_piece + 1
                } else {
                    pieces
                };
                match p.slots.get(&c) {
                    Some(slot) => slot.missing_ranges(c as u32, limit, &mut naks),
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

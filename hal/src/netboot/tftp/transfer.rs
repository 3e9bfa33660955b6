//! One read transfer: option negotiation (RFC 2347/2348/2349, RFC 7440 windowsize), then DATA blocks
//! sent a window at a time over a blocking connected socket, with timeouts, retries and block-number
//! roll-over. Runs on the transfer's own thread: no async scheduling and no allocation per block.

use super::TftpConfig;
use super::packet::{self, ErrorCode, Packet};
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::net::UdpSocket;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tracing::debug;

/// Largest block size of RFC 2348.
pub const MAX_BLKSIZE: u16 = 65464;

/// Bytes read from the file at once; blocks are then copied out of this buffer.
const CHUNK: usize = 256 * 1024;

/// A receive timeout longer than the time left by more than this is shortened before waiting.
const SLACK: Duration = Duration::from_millis(10);

/// What the transfer ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Every block was acknowledged.
    Done,
    /// The client gave up (ERROR, e.g. after a `tsize` probe) or vanished, or the server stopped.
    Aborted(&'static str),
}

/// Negotiated transfer parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Block size.
    pub blksize: usize,
    /// Blocks sent before waiting for an ACK.
    pub window: usize,
    /// Retransmission timeout.
    pub timeout: Duration,
    /// Options to echo in the OACK (empty: no OACK).
    pub oack: Vec<(&'static str, String)>,
}

/// Applies the server limits to the client's options; unknown or invalid options are ignored.
pub fn negotiate(cfg: &TftpConfig, options: &[(String, &str)], size: u64) -> Params {
    let mut p = Params {
        blksize: 512,
        window: 1,
        timeout: Duration::from_millis(cfg.timeout_ms.max(1)),
        oack: Vec::new(),
    };
    for (name, value) in options {
        let Ok(n) = value.parse::<u64>() else {
            continue;
        };
        match name.as_str() {
            "blksize" if (8..=u64::from(MAX_BLKSIZE)).contains(&n) => {
                let b = n.min(u64::from(cfg.max_blksize.clamp(8, MAX_BLKSIZE)));
                p.blksize = b as usize;
                p.oack.push(("blksize", b.to_string()));
            }
            "tsize" => p.oack.push(("tsize", size.to_string())),
            // RFC 2349 allows up to 255 s; a client that never acknowledges would hold its slot
            // for `retries` times that, so larger values are refused (left out of the OACK).
            "timeout" if (1..=cfg.max_negotiated_timeout.min(255)).contains(&n) => {
                p.timeout = Duration::from_secs(n);
                p.oack.push(("timeout", n.to_string()));
            }
            "windowsize" if (1..=65535).contains(&n) => {
                let w = n.min(u64::from(cfg.max_window.max(1)));
                p.window = w as usize;
                p.oack.push(("windowsize", w.to_string()));
            }
            _ => {}
        }
    }
    p
}

/// Sequential reads of the file through a large buffer: one `pread` per [`CHUNK`], not per block.
struct Chunks<'f> {
    file: &'f File,
    buf: Vec<u8>,
    /// File offset of the next read.
    offset: u64,
    /// Valid bytes in `buf`, and how many of them were consumed.
    len: usize,
    at: usize,
}

impl<'f> Chunks<'f> {
    fn new(file: &'f File, size: u64) -> Self {
        // Small files (menus, configs) get a small buffer; a file growing meanwhile still reads fully.
        let cap = usize::try_from(size.saturating_add(1)).map_or(CHUNK, |s| s.clamp(512, CHUNK));
        Chunks {
            file,
            buf: vec![0; cap],
            offset: 0,
            len: 0,
            at: 0,
        }
    }

    /// Fills `out` with the next bytes of the file; fewer only at the end of the file.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < out.len() {
            if self.at == self.len {
                self.len = loop {
                    match self.file.read_at(&mut self.buf, self.offset) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        r => break r?,
                    }
                };
                self.at = 0;
                self.offset += self.len as u64;
                if self.len == 0 {
                    break;
                }
            }
            let n = (self.len - self.at).min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&self.buf[self.at..self.at + n]);
            self.at += n;
            filled += n;
        }
        Ok(filled)
    }
}

/// Serves `file` (`size` bytes) over `sock`, a blocking socket connected to the client. Returns early
/// (aborted) once `stop` is set.
pub fn send_file(
    sock: &UdpSocket,
    cfg: &TftpConfig,
    file: &File,
    size: u64,
    options: &[(String, &str)],
    stop: &AtomicBool,
) -> io::Result<End> {
    let p = negotiate(cfg, options, size);
    let mut link = Link {
        sock,
        timeout: p.timeout,
        stall: Duration::from_millis(cfg.stall_timeout_ms.max(1)),
        armed: None,
        retries: cfg.retries,
        stop,
        rx: [0; 1024],
    };
    if !p.oack.is_empty() {
        let oack = packet::oack(&p.oack);
        if link.exchange([&oack], None)?.is_none() {
            return Ok(End::Aborted("no ACK of OACK"));
        }
    }
    let mut chunks = Chunks::new(file, size);
    let mut window: VecDeque<Vec<u8>> = VecDeque::with_capacity(p.window);
    let mut spare: Vec<Vec<u8>> = Vec::with_capacity(p.window);
    let mut last_acked: u16 = 0;
    let mut next_block: u16 = 1;
    let mut read_all = false;
    loop {
        while window.len() < p.window && !read_all {
            let mut pkt = spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(4 + p.blksize));
            packet::data_header(&mut pkt, next_block);
            pkt.resize(4 + p.blksize, 0);
            let n = chunks.read(&mut pkt[4..])?;
            pkt.truncate(4 + n);
            read_all = n < p.blksize;
            next_block = next_block.wrapping_add(1);
            window.push_back(pkt);
        }
        if window.is_empty() {
            debug!(
                size,
                blksize = p.blksize,
                window = p.window,
                "transfer done"
            );
            return Ok(End::Done);
        }
        let Some(acked) = link.exchange(&window, Some(last_acked))? else {
            return Ok(End::Aborted("client stopped acknowledging"));
        };
        for _ in 0..acked.wrapping_sub(last_acked) {
            if let Some(pkt) = window.pop_front() {
                spare.push(pkt);
            }
        }
        last_acked = acked;
    }
}

/// The transfer's socket with its retransmission state.
struct Link<'a> {
    sock: &'a UdpSocket,
    timeout: Duration,
    /// Time allowed for one exchange, retransmissions included.
    stall: Duration,
    /// The receive timeout set on the socket (`SO_RCVTIMEO`), changed only when it must be.
    armed: Option<Duration>,
    retries: u32,
    stop: &'a AtomicBool,
    rx: [u8; 1024],
}

impl Link<'_> {
    /// Sends `packets` (the blocks after `last_acked`, or an OACK when `last_acked` is `None`) and
    /// waits for an ACK inside the window (block 0 for an OACK); retransmits them all on timeout, at
    /// most `retries` times and for `stall` in all. Returns the acknowledged block, or `None` when the
    /// client gave up or stalled, or the server stops.
    fn exchange<'p, P>(&mut self, packets: P, last_acked: Option<u16>) -> io::Result<Option<u16>>
    where
        P: IntoIterator<Item = &'p Vec<u8>> + Copy,
    {
        let in_flight = packets.into_iter().count().max(1) as u16;
        let give_up = Instant::now() + self.stall;
        for _attempt in 0..=self.retries {
            let now = Instant::now();
            if self.stop.load(Ordering::Relaxed) || now >= give_up {
                return Ok(None);
            }
            for pkt in packets {
                if let Err(e) = self.sock.send(pkt) {
                    debug!(error = %e, "send failed; aborting transfer");
                    return Ok(None);
                }
            }
            let deadline = (now + self.timeout).min(give_up);
            loop {
                let n = match self.recv(deadline) {
                    Ok(Some(n)) => n,
                    Ok(None) => break,
                    Err(e) => {
                        debug!(error = %e, "receive failed; aborting transfer");
                        return Ok(None);
                    }
                };
                match packet::parse(&self.rx[..n]) {
                    Ok(Packet::Ack { block }) => {
                        let valid = match last_acked {
                            None => block == 0,
                            Some(last) => (1..=in_flight).contains(&block.wrapping_sub(last)),
                        };
                        if valid {
                            return Ok(Some(block));
                        }
                    }
                    Ok(Packet::Error { code, message }) => {
                        debug!(code, message, "client aborted transfer");
                        return Ok(None);
                    }
                    Ok(_) => {}
                    Err(_) => {
                        let _ = self.sock.send(&packet::error(
                            ErrorCode::IllegalOperation,
                            "malformed packet",
                        ));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Receives one datagram before `deadline`: its length, or `None` on timeout; an error (ICMP port
    /// unreachable: the client is gone) is returned.
    fn recv(&mut self, deadline: Instant) -> io::Result<Option<usize>> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // Setting SO_RCVTIMEO is a syscall: keep the armed value while it ends near the deadline.
            if self
                .armed
                .is_none_or(|a| a + SLACK < left || a > left + SLACK)
            {
                self.sock.set_read_timeout(Some(left))?;
                self.armed = Some(left);
            }
            match self.sock.recv(&mut self.rx) {
                Ok(n) => return Ok(Some(n)),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests;

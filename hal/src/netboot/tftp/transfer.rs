//! One read transfer: option negotiation (RFC 2347/2348/2349, RFC 7440 windowsize), then DATA blocks
//! sent a window at a time from an ephemeral port, with timeouts, retries and block-number roll-over.

use super::TftpConfig;
use super::packet::{self, ErrorCode, Packet};
use std::collections::VecDeque;
use std::fs::File;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio::net::UdpSocket;
use tokio::time::{Instant, Sleep, sleep_until};
use tracing::debug;

/// Largest block size of RFC 2348.
pub const MAX_BLKSIZE: u16 = 65464;

/// What the transfer ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Every block was acknowledged.
    Done,
    /// The client gave up (ERROR, e.g. after a `tsize` probe) or vanished.
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
            "timeout" if (1..=255).contains(&n) => {
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

async fn read_block<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Serves `file` (`size` bytes) to `peer` over the connected socket `sock`.
pub async fn send_file(
    sock: &UdpSocket,
    cfg: &TftpConfig,
    file: File,
    size: u64,
    options: &[(String, &str)],
    peer: SocketAddr,
) -> std::io::Result<End> {
    let p = negotiate(cfg, options, size);
    let mut rx = vec![0u8; 1024];
    // One timer for the whole transfer, re-armed per exchange: creating one per block looked up the
    // runtime handle each time, a shared atomic that cost several percent under many transfers.
    let timer = sleep_until(Instant::now() + p.timeout);
    tokio::pin!(timer);
    if !p.oack.is_empty() {
        let oack = packet::oack(&p.oack);
        if exchange(sock, [&oack], None, &p, cfg, &mut rx, timer.as_mut())
            .await?
            .is_none()
        {
            return Ok(End::Aborted("no ACK of OACK"));
        }
    }
    let capacity = (256 * 1024).max(p.blksize * p.window);
    let mut reader = BufReader::with_capacity(capacity, tokio::fs::File::from_std(file));
    let mut window: VecDeque<Vec<u8>> = VecDeque::with_capacity(p.window);
    let mut spare: Vec<Vec<u8>> = Vec::new();
    let mut last_acked: u16 = 0;
    let mut next_block: u16 = 1;
    let mut read_all = false;
    loop {
        while window.len() < p.window && !read_all {
            let mut pkt = spare.pop().unwrap_or_default();
            packet::data_header(&mut pkt, next_block);
            pkt.resize(4 + p.blksize, 0);
            let n = read_block(&mut reader, &mut pkt[4..]).await?;
            pkt.truncate(4 + n);
            read_all = n < p.blksize;
            next_block = next_block.wrapping_add(1);
            window.push_back(pkt);
        }
        if window.is_empty() {
            debug!(%peer, size, blksize = p.blksize, window = p.window, "transfer done");
            return Ok(End::Done);
        }
        let exchanged = exchange(
            sock,
            &window,
            Some(last_acked),
            &p,
            cfg,
            &mut rx,
            timer.as_mut(),
        );
        let Some(acked) = exchanged.await? else {
            return Ok(End::Aborted("client stopped acknowledging"));
        };
        let count = usize::from(acked.wrapping_sub(last_acked));
        for _ in 0..count {
            if let Some(pkt) = window.pop_front() {
                spare.push(pkt);
            }
        }
        last_acked = acked;
    }
}

/// Sends `packets` (the blocks after `last_acked`, or an OACK when `last_acked` is `None`) and waits for
/// an ACK inside the window (block 0 for an OACK); retransmits on timeout. Returns the acknowledged
/// block, or `None` when the client gave up.
async fn exchange<'a, P>(
    sock: &UdpSocket,
    packets: P,
    last_acked: Option<u16>,
    p: &Params,
    cfg: &TftpConfig,
    rx: &mut [u8],
    mut timer: Pin<&mut Sleep>,
) -> std::io::Result<Option<u16>>
where
    P: IntoIterator<Item = &'a Vec<u8>> + Copy,
{
    let in_flight = packets.into_iter().count().max(1) as u16;
    for _attempt in 0..=cfg.retries {
        for pkt in packets {
            if let Err(e) = sock.send(pkt).await {
                debug!(error = %e, "send failed; aborting transfer");
                return Ok(None);
            }
        }
        timer.as_mut().reset(Instant::now() + p.timeout);
        loop {
            let received = tokio::select! {
                biased;
                r = sock.recv(rx) => r,
                () = timer.as_mut() => break,
            };
            let n = match received {
                Err(e) => {
                    debug!(error = %e, "receive failed; aborting transfer");
                    return Ok(None);
                }
                Ok(n) => n,
            };
            match packet::parse(&rx[..n]) {
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
                    let _ = sock
                        .send(&packet::error(
                            ErrorCode::IllegalOperation,
                            "malformed packet",
                        ))
                        .await;
                }
            }
        }
    }
    Ok(None)
}

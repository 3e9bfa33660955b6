//! TFTP load: `clients` threads each download one file again and again (RFC 2348 `blksize`,
//! lock-step ACKs as every TFTP ROM does) until the time is up; reports bytes per second.

use super::per_second;
use crate::netboot::tftp::packet::{self, Packet};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct TftpLoad {
    /// The server (`10.0.0.1:69`).
    pub server: SocketAddr,
    /// The file to fetch.
    pub file: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Block size asked for.
    pub blksize: u16,
    /// How long to run.
    pub duration: Duration,
}

/// What was measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TftpReport {
    /// Payload bytes received in order (also from unfinished transfers).
    pub bytes: u64,
    /// Transfers received completely.
    pub transfers: u64,
    /// Transfers that failed (error, or 5 timeouts in a row).
    pub failures: u64,
    /// Measured time.
    pub elapsed: Duration,
    /// Payload megabytes (10^6) per second.
    pub mb_per_second: f64,
}

#[derive(Default)]
struct Counters {
    bytes: AtomicU64,
    transfers: AtomicU64,
    failures: AtomicU64,
}

fn rrq(file: &str, blksize: u16) -> Vec<u8> {
    let mut out = vec![0, 1];
    for part in [file, "octet", "blksize", &blksize.to_string()] {
        out.extend_from_slice(part.as_bytes());
        out.push(0);
    }
    out
}

fn ack(block: u16) -> [u8; 4] {
    let b = block.to_be_bytes();
    [0, 4, b[0], b[1]]
}

/// One download; `Ok(true)` when complete, `Ok(false)` when it failed or time ran out.
fn download(load: &TftpLoad, stop: &AtomicBool, counters: &Counters) -> io::Result<bool> {
    let sock = UdpSocket::bind(SocketAddr::new(
        if load.server.is_ipv4() {
            [0u8; 4].into()
        } else {
            [0u16; 8].into()
        },
        0,
    ))?;
    sock.set_read_timeout(Some(Duration::from_millis(500)))?;
    sock.send_to(&rrq(&load.file, load.blksize), load.server)?;
    let mut buf = vec![0u8; usize::from(load.blksize) + 4];
    let mut blksize = 512usize;
    let mut expected: u16 = 1;
    let mut last_ack: Option<[u8; 4]> = None;
    let mut peer: Option<SocketAddr> = None;
    let mut misses = 0;
    while !stop.load(Ordering::Relaxed) {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                misses += 1;
                if misses > 5 {
                    return Ok(false);
                }
                match (peer, last_ack) {
                    (Some(p), Some(a)) => sock.send_to(&a, p)?,
                    _ => sock.send_to(&rrq(&load.file, load.blksize), load.server)?,
                };
                continue;
            }
            Err(e) => return Err(e),
        };
        if peer.is_some_and(|p| p != from) {
            continue;
        }
        misses = 0;
        match packet::parse(&buf[..n]) {
            Ok(Packet::Oack) if peer.is_none() => {
                blksize = usize::from(load.blksize);
                peer = Some(from);
                last_ack = Some(ack(0));
                sock.send_to(&ack(0), from)?;
            }
            Ok(Packet::Data { block, data }) => {
                peer = Some(from);
                if block == expected {
                    counters
                        .bytes
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                    let a = ack(block);
                    sock.send_to(&a, from)?;
                    last_ack = Some(a);
                    expected = expected.wrapping_add(1);
                    if data.len() < blksize {
                        return Ok(true);
                    }
                } else if let Some(a) = last_ack {
                    sock.send_to(&a, from)?;
                }
            }
            Ok(Packet::Error { .. }) => return Ok(false),
            _ => {}
        }
    }
    Ok(false)
}

/// Runs the load and reports.
pub fn run(load: &TftpLoad) -> io::Result<TftpReport> {
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let start = Instant::now();
    let mut threads = Vec::new();
    for _ in 0..load.clients.max(1) {
        let (load, stop, counters) = (load.clone(), stop.clone(), counters.clone());
        threads.push(std::thread::spawn(move || -> io::Result<()> {
            while !stop.load(Ordering::Relaxed) {
                match download(&load, &stop, &counters)? {
                    true => counters.transfers.fetch_add(1, Ordering::Relaxed),
                    false if !stop.load(Ordering::Relaxed) => {
                        counters.failures.fetch_add(1, Ordering::Relaxed)
                    }
                    false => 0,
                };
            }
            Ok(())
        }));
    }
    std::thread::sleep(load.duration);
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let mut first_error = None;
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(_) => {
                first_error = first_error.or(Some(io::Error::other("client thread panicked")))
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let bytes = counters.bytes.load(Ordering::Relaxed);
    Ok(TftpReport {
        bytes,
        transfers: counters.transfers.load(Ordering::Relaxed),
        failures: counters.failures.load(Ordering::Relaxed),
        elapsed,
        mb_per_second: per_second(bytes, elapsed) / 1e6,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_our_own_parser() {
        let bytes = rrq("kernel", 1468);
        match packet::parse(&bytes).unwrap() {
            Packet::Rrq {
                filename, options, ..
            } => {
                assert_eq!(filename, "kernel");
                assert_eq!(options, vec![("blksize".to_string(), "1468")]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            packet::parse(&ack(258)).unwrap(),
            Packet::Ack { block: 258 }
        );
    }
}

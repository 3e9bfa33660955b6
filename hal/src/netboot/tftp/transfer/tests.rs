//! Transfers against a scripted client on loopback: retransmission, windows, roll-over, aborts.

use super::*;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

/// A file with `content`, already unlinked (nothing to clean up).
fn file_with(content: &[u8]) -> File {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("tftp-transfer-{}-{n}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    f.write_all(content).unwrap();
    f
}

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

struct Setup {
    client: UdpSocket,
    server: JoinHandle<io::Result<End>>,
}

/// Starts `send_file` on a thread, its socket connected to the returned client socket.
fn start(data: &[u8], options: &[(&str, &str)], timeout_ms: u64, retries: u32) -> Setup {
    start_with(
        data,
        options,
        timeout_ms,
        retries,
        Arc::new(AtomicBool::new(false)),
    )
}

fn start_with(
    data: &[u8],
    options: &[(&str, &str)],
    timeout_ms: u64,
    retries: u32,
    stop: Arc<AtomicBool>,
) -> Setup {
    let cfg = TftpConfig {
        timeout_ms,
        retries,
        ..TftpConfig::default()
    };
    start_cfg(data, options, cfg, stop)
}

fn start_cfg(
    data: &[u8],
    options: &[(&str, &str)],
    cfg: TftpConfig,
    stop: Arc<AtomicBool>,
) -> Setup {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let client = UdpSocket::bind(loopback).unwrap();
    let sock = UdpSocket::bind(loopback).unwrap();
    sock.connect(client.local_addr().unwrap()).unwrap();
    client.connect(sock.local_addr().unwrap()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let file = file_with(data);
    let size = data.len() as u64;
    let options: Vec<(String, String)> = options
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let server = std::thread::spawn(move || {
        let opts: Vec<(String, &str)> = options
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str()))
            .collect();
        send_file(&sock, &cfg, &file, size, &opts, &stop)
    });
    Setup { client, server }
}

/// The next DATA packet: block number and payload (panics on anything else or a timeout).
fn data(client: &UdpSocket) -> (u16, Vec<u8>) {
    let mut buf = [0u8; 2048];
    let n = client.recv(&mut buf).expect("no packet from the server");
    match packet::parse(&buf[..n]).unwrap() {
        Packet::Data { block, data } => (block, data.to_vec()),
        other => panic!("expected DATA, got {other:?}"),
    }
}

fn oack(client: &UdpSocket) {
    let mut buf = [0u8; 512];
    let n = client.recv(&mut buf).expect("no OACK");
    assert_eq!(packet::parse(&buf[..n]).unwrap(), Packet::Oack);
}

fn ack(client: &UdpSocket, block: u16) {
    let b = block.to_be_bytes();
    client.send(&[0, 4, b[0], b[1]]).unwrap();
}

#[test]
fn a_lost_block_is_sent_again_after_the_timeout() {
    let file = content(20);
    let s = start(&file, &[("blksize", "8")], 100, 3);
    oack(&s.client);
    ack(&s.client, 0);
    let first = data(&s.client);
    let sent = Instant::now();
    // Not acknowledged: the same block comes again once the timeout has passed, and only then.
    assert_eq!(data(&s.client), first);
    assert!(
        sent.elapsed() >= Duration::from_millis(80),
        "{:?}",
        sent.elapsed()
    );
    let mut got = first.1;
    ack(&s.client, 1);
    for block in 2..=3u16 {
        let (n, payload) = data(&s.client);
        assert_eq!(n, block);
        got.extend_from_slice(&payload);
        ack(&s.client, block);
    }
    assert_eq!(got, file);
    assert_eq!(s.server.join().unwrap().unwrap(), End::Done);
}

#[test]
fn a_partial_window_ack_resends_from_the_next_block() {
    let file = content(8 * 8 + 1);
    let s = start(&file, &[("blksize", "8"), ("windowsize", "4")], 1000, 3);
    oack(&s.client);
    ack(&s.client, 0);
    let first: Vec<u16> = (0..4).map(|_| data(&s.client).0).collect();
    assert_eq!(first, [1, 2, 3, 4]);
    // Blocks 3 and 4 were "lost": the next window starts at 3, at once (no timeout).
    ack(&s.client, 2);
    let sent = Instant::now();
    let next: Vec<(u16, Vec<u8>)> = (0..4).map(|_| data(&s.client)).collect();
    assert!(sent.elapsed() < Duration::from_millis(500));
    assert_eq!(next.iter().map(|d| d.0).collect::<Vec<_>>(), [3, 4, 5, 6]);
    assert_eq!(next[0].1, file[16..24]);
    ack(&s.client, 6);
    let last: Vec<(u16, Vec<u8>)> = (0..3).map(|_| data(&s.client)).collect();
    assert_eq!(last.iter().map(|d| d.0).collect::<Vec<_>>(), [7, 8, 9]);
    assert_eq!(last[2].1, [file[64]]);
    ack(&s.client, 9);
    assert_eq!(s.server.join().unwrap().unwrap(), End::Done);
}

#[test]
fn the_transfer_gives_up_after_the_retries() {
    // No options: no OACK, DATA 1 at once, sent 1 + 2 times, then the server gives up.
    let s = start(&content(100), &[], 30, 2);
    for _ in 0..3 {
        assert_eq!(data(&s.client).0, 1);
    }
    assert_eq!(
        s.server.join().unwrap().unwrap(),
        End::Aborted("client stopped acknowledging")
    );
    s.client
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(
        s.client.recv(&mut [0u8; 600]).is_err(),
        "sent after giving up"
    );
}

#[test]
fn block_numbers_roll_over_past_65535() {
    let file = content(65536 * 8 + 5);
    let s = start(&file, &[("blksize", "8"), ("windowsize", "64")], 1000, 3);
    oack(&s.client);
    ack(&s.client, 0);
    let mut got = Vec::with_capacity(file.len());
    let mut expected: u16 = 1;
    loop {
        let (block, payload) = data(&s.client);
        assert_eq!(block, expected);
        let last = payload.len() < 8;
        got.extend_from_slice(&payload);
        if last || expected.is_multiple_of(64) {
            ack(&s.client, block);
        }
        expected = expected.wrapping_add(1);
        if last {
            break;
        }
    }
    assert_eq!(expected, 2, "65537 blocks end with block number 1");
    assert_eq!(got, file);
    assert_eq!(s.server.join().unwrap().unwrap(), End::Done);
}

#[test]
fn a_client_error_or_the_stop_flag_ends_the_transfer() {
    let s = start(&content(10), &[("tsize", "0")], 1000, 3);
    oack(&s.client);
    s.client
        .send(&packet::error(ErrorCode::OptionRefused, "tsize probe"))
        .unwrap();
    assert_eq!(
        s.server.join().unwrap().unwrap(),
        End::Aborted("no ACK of OACK")
    );
    let s = start_with(&content(10), &[], 1000, 3, Arc::new(AtomicBool::new(true)));
    assert_eq!(
        s.server.join().unwrap().unwrap(),
        End::Aborted("client stopped acknowledging")
    );
}

/// RFC 2349 lets a client ask for 255 s; before, the server accepted it, so a client that never
/// acknowledged held its transfer slot for 6 × 255 s. Larger than `max_negotiated_timeout`, the
/// option is now left out of the OACK and the server's own timeout applies.
#[test]
fn a_timeout_option_above_the_cap_is_ignored() {
    let cfg = TftpConfig::default();
    let p = negotiate(&cfg, &[("timeout".into(), "255"), ("tsize".into(), "0")], 7);
    assert_eq!(p.timeout, Duration::from_millis(cfg.timeout_ms));
    assert_eq!(p.oack, [("tsize", "7".to_string())]);
    let p = negotiate(&cfg, &[("timeout".into(), "10")], 7);
    assert_eq!(p.timeout, Duration::from_secs(10));
    assert_eq!(p.oack, [("timeout", "10".to_string())]);

    // Over a socket: the OACK of a `timeout=255` request comes again after the server's timeout.
    let s = start_cfg(
        &content(10),
        &[("timeout", "255"), ("tsize", "0")],
        TftpConfig {
            timeout_ms: 200,
            ..TftpConfig::default()
        },
        Arc::new(AtomicBool::new(false)),
    );
    oack(&s.client);
    let sent = Instant::now();
    oack(&s.client);
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "{:?}",
        sent.elapsed()
    );
    s.client
        .send(&packet::error(ErrorCode::OptionRefused, "done"))
        .unwrap();
    assert_eq!(
        s.server.join().unwrap().unwrap(),
        End::Aborted("no ACK of OACK")
    );
}

/// Before, an exchange lasted `(retries + 1) × timeout` whatever the settings; now `stall_timeout_ms`
/// bounds it: with 1000 retries of 100 ms the transfer still gives up after 600 ms.
#[test]
fn an_unacknowledged_transfer_gives_up_after_the_stall_timeout() {
    let started = Instant::now();
    let s = start_cfg(
        &content(100),
        &[],
        TftpConfig {
            timeout_ms: 100,
            retries: 1000,
            stall_timeout_ms: 600,
            ..TftpConfig::default()
        },
        Arc::new(AtomicBool::new(false)),
    );
    assert_eq!(
        s.server.join().unwrap().unwrap(),
        End::Aborted("client stopped acknowledging")
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(550) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    s.client
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut sends = 0;
    while s.client.recv(&mut [0u8; 600]).is_ok() {
        sends += 1;
    }
    assert!((2..=8).contains(&sends), "{sends} DATA packets");
}

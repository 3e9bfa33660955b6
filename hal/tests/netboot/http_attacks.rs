//! Attacks on kabootd's HTTP boot server from the client namespace: silent, slow and idle
//! connections, a client that never reads its response, and a request for several ranges.

use super::ns::{Net, SERVER_IP, require};
use super::tree;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

fn http_yaml(root: &Path, extra: &str) -> String {
    format!(
        "http:\n  listen: '0.0.0.0:80'\n  root: {}\n{extra}",
        root.display()
    )
}

/// A connection to the server from `local` (an address of the client side), optionally with a
/// small receive buffer.
fn connect_from(local: &str, recv_buffer: Option<usize>) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let local: SocketAddr = format!("{local}:0").parse().unwrap();
    socket.bind(&local.into()).expect("bind");
    let server: SocketAddr = format!("{SERVER_IP}:80").parse().unwrap();
    socket.connect(&server.into()).expect("connect");
    socket.into()
}

/// True once the server has closed `s` (end of stream or reset); reads pending data first.
fn closed(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// curl from the client's first address: HTTP status and body size.
fn curl(net: &Net, args: &[&str], url: &str, out: &Path) -> (String, u64) {
    let mut all = vec!["curl", "-sS", "--max-time", "30"];
    all.extend_from_slice(args);
    let out_s = out.display().to_string();
    all.extend_from_slice(&["-o", &out_s, "-w", "%{http_code} %{size_download}", url]);
    let r = net.exec(&net.client, &all);
    let text = String::from_utf8_lossy(&r.stdout).to_string();
    let (code, size) = text.split_once(' ').unwrap_or((&text, "0"));
    (code.to_string(), size.parse().unwrap_or(0))
}

/// With the defaults (header timeout 10 s, 32 connections per client): 40 silent connections from
/// one host, a "slowloris" trickling header lines from another, and a keep-alive connection left
/// idle after one request. Before: the server kept all of them forever (2,000 idle connections in
/// the security report). Now the 8 over the per-client cap are closed at once, the rest when their
/// header timeout passes, and a normal fetch works meanwhile.
#[test]
fn silent_slow_and_idle_http_connections_are_closed() {
    require("curl", "curl");
    let mut net = Net::new("httpidle");
    net.client_address("10.77.0.11/24");
    net.client_address("10.77.0.12/24");
    net.client_address("10.77.0.13/24");
    let root = tree(&net);
    net.start_kabootd(&http_yaml(&root, ""), "http");

    let (mut silent, mut slow, mut kept) = net.in_client(|| {
        let silent: Vec<TcpStream> = (0..40).map(|_| connect_from("10.77.0.12", None)).collect();
        let mut slow = connect_from("10.77.0.13", None);
        slow.write_all(b"GET /kernel HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let mut kept = connect_from("10.77.0.13", None);
        kept.write_all(b"GET /pxelinux.cfg/0A4D000B HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        (silent, slow, kept)
    });
    let started = Instant::now();
    let mut response = [0u8; 512];
    let n = kept.read(&mut response).unwrap();
    assert!(response[..n].starts_with(b"HTTP/1.1 200"), "{response:?}");

    let out = net.dir.join("fetched");
    let (code, size) = curl(&net, &[], &format!("http://{SERVER_IP}/kernel"), &out);
    assert_eq!((code.as_str(), size), ("200", 3_000_000));

    let mut closed_at: Vec<Option<Duration>> = vec![None; silent.len() + 2];
    let mut trickled = Instant::now();
    while started.elapsed() < Duration::from_secs(30) && closed_at.iter().any(Option::is_none) {
        let now = started.elapsed();
        for (i, s) in silent.iter_mut().chain([&mut slow, &mut kept]).enumerate() {
            if closed_at[i].is_none() && closed(s) {
                closed_at[i] = Some(now);
            }
        }
        if trickled.elapsed() >= Duration::from_secs(1) && closed_at[silent.len()].is_none() {
            // One more header line each second: never idle, never done.
            let _ = slow.write_all(b"X-Slow: 1\r\n");
            trickled = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("closed after (silent x40, slowloris, idle keep-alive): {closed_at:?}");
    let at_once = closed_at[..silent.len()]
        .iter()
        .filter(|t| t.is_some_and(|t| t < Duration::from_secs(3)))
        .count();
    assert_eq!(at_once, 8, "closed over the per-client cap: {closed_at:?}");
    assert!(
        closed_at
            .iter()
            .all(|t| t.is_some_and(|t| t < Duration::from_secs(25))),
        "still open after 25 s: {closed_at:?}"
    );
}

/// Explicit small limits: 6 connections in all, 2 per client, a 3 s header timeout and a 2 s idle
/// timeout. Three hosts fill every slot with silent connections: a normal fetch waits for the header
/// timeout to free a slot, then succeeds. A client that asks for a 32 MB file and never reads is cut
/// off after the idle timeout instead of holding its connection.
#[test]
fn a_fetch_still_works_at_the_connection_limit_and_a_stalled_reader_is_cut_off() {
    require("curl", "curl");
    let mut net = Net::new("httplimit");
    for a in ["10.77.0.11", "10.77.0.12", "10.77.0.13", "10.77.0.14"] {
        net.client_address(&format!("{a}/24"));
    }
    let root = tree(&net);
    let big = fs::File::create(root.join("big")).unwrap();
    big.set_len(32 << 20).unwrap();
    let extra = "  max_connections: 6\n  max_connections_per_client: 2\n  header_timeout: 3\n  idle_timeout: 2\n";
    net.start_kabootd(&http_yaml(&root, extra), "http");

    let silent = net.in_client(|| {
        ["10.77.0.12", "10.77.0.13", "10.77.0.14"]
            .iter()
            .flat_map(|a| [connect_from(a, None), connect_from(a, None)])
            .collect::<Vec<_>>()
    });
    let started = Instant::now();
    let out = net.dir.join("fetched");
    let (code, size) = curl(&net, &[], &format!("http://{SERVER_IP}/kernel"), &out);
    let waited = started.elapsed();
    eprintln!("fetch at the limit served after {waited:?}");
    assert_eq!(
        (code.as_str(), size),
        ("200", 3_000_000),
        "after {waited:?}"
    );
    assert!(waited < Duration::from_secs(15), "{waited:?}");
    drop(silent);

    let mut stalled = net.in_client(|| {
        let mut s = connect_from("10.77.0.12", Some(4096));
        s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        s
    });
    std::thread::sleep(Duration::from_secs(8));
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let ended = loop {
        match stalled.read(&mut buf) {
            Ok(0) => break "end of stream",
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                break "still open";
            }
            Err(_) => break "reset",
        }
    };
    eprintln!("stalled reader: {ended} after {total} bytes");
    assert!(
        ended != "still open" && total < 32 << 20,
        "{ended} after {total} bytes"
    );
}

/// Before: `Range: bytes=0-1,5-6` got 416 from tower-http, which a client cannot recover from.
/// RFC 9110 lets a server ignore Range: several ranges now get the whole file with 200, and a
/// single range still gets 206.
#[test]
fn several_ranges_get_the_whole_file() {
    require("curl", "curl");
    let mut net = Net::new("httprange");
    net.client_address("10.77.0.11/24");
    let root = tree(&net);
    net.start_kabootd(&http_yaml(&root, ""), "http");
    let url = format!("http://{SERVER_IP}/kernel");
    let out = net.dir.join("ranges");
    let kernel = fs::read(root.join("kernel")).unwrap();

    let (code, _) = curl(&net, &["-H", "Range: bytes=0-1,5-6"], &url, &out);
    assert_eq!(code, "200");
    assert_eq!(fs::read(&out).unwrap(), kernel);
    let (code, _) = curl(&net, &["-r", "0-1"], &url, &out);
    assert_eq!(code, "206");
    assert_eq!(fs::read(&out).unwrap(), kernel[..2]);
}

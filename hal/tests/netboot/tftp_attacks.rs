//! Attacks on kabootd's TFTP server from the client namespace: read requests that negotiate the
//! longest RFC 2349 timeout and are never acknowledged, to hold every transfer slot.

use super::ns::{Net, SERVER_IP, require};
use super::tree;
use hal::netboot::tftp::packet::{self, Packet};
use std::fs;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// The attacker's address, a second address of the client side (the real client uses the first).
const ATTACKER_IP: &str = "10.77.0.12";

fn rrq(file: &str, options: &[(&str, &str)]) -> Vec<u8> {
    let mut p = vec![0, 1];
    for part in [file, "octet"]
        .into_iter()
        .chain(options.iter().flat_map(|(k, v)| [*k, *v]))
    {
        p.extend_from_slice(part.as_bytes());
        p.push(0);
    }
    p
}

/// What the server first answered to one request.
#[derive(Debug, PartialEq)]
enum Answer {
    /// An OACK, with its option names and values.
    Oack(Vec<String>),
    /// An ERROR, with its message.
    Error(String),
    Nothing,
}

fn answer(buf: &[u8]) -> Answer {
    match packet::parse(buf) {
        Ok(Packet::Oack) => Answer::Oack(
            buf[2..]
                .split(|&b| b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
        ),
        Ok(Packet::Error { message, .. }) => Answer::Error(message.to_string()),
        other => panic!("unexpected answer {other:?}"),
    }
}

/// The options of the attack: the longest timeout RFC 2349 allows, and `tsize` for an OACK.
const TIMEOUT_255: &[(&str, &str)] = &[("timeout", "255"), ("tsize", "0")];

/// Sends one request with `options` per socket and never acknowledges; returns the sockets and the
/// server's first answer on each.
fn unacknowledged_requests(n: usize, options: &[(&str, &str)]) -> Vec<(UdpSocket, Answer)> {
    let server = format!("{SERVER_IP}:69");
    let request = rrq("kernel", options);
    let socks: Vec<UdpSocket> = (0..n)
        .map(|_| {
            let s = UdpSocket::bind((ATTACKER_IP, 0)).expect("attacker socket");
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            s.send_to(&request, &server).expect("send RRQ");
            s
        })
        .collect();
    socks
        .into_iter()
        .map(|s| {
            let mut buf = [0u8; 1024];
            let a = match s.recv(&mut buf) {
                Ok(len) => answer(&buf[..len]),
                Err(_) => Answer::Nothing,
            };
            (s, a)
        })
        .collect()
}

/// Counts the packets each socket receives until `until`.
fn retransmissions(socks: &[UdpSocket], until: Instant) -> Vec<(usize, Option<Duration>)> {
    let start = Instant::now();
    let mut out = vec![(0usize, None); socks.len()];
    for s in socks {
        s.set_nonblocking(true).unwrap();
    }
    while Instant::now() < until {
        for (i, s) in socks.iter().enumerate() {
            while s.recv(&mut [0u8; 1024]).is_ok() {
                out[i].0 += 1;
                out[i].1 = Some(start.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    out
}

fn tftp_yaml(net: &Net, root: &std::path::Path, extra: &str) -> String {
    format!(
        "tftp:\n  interface: {}\n  root: {}\n{extra}",
        net.server_if,
        root.display()
    )
}

/// Real client fetch (tftp-hpa) from the client's first address.
fn fetch(net: &Net, root: &std::path::Path) {
    let out = net.dir.join("fetched").display().to_string();
    let _ = fs::remove_file(&out);
    let r = net.exec(
        &net.client,
        &[
            "tftp",
            "-m",
            "binary",
            SERVER_IP,
            "-c",
            "get",
            "pxelinux.cfg/0A4D000B",
            &out,
        ],
    );
    assert_eq!(
        fs::read(&out).ok(),
        fs::read(root.join("pxelinux.cfg/0A4D000B")).ok(),
        "tftp-hpa could not fetch during the attack: {}{}\nserver log:\n{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr),
        super::tail(&net.log("tftp"), 3000)
    );
}

/// 20 read requests from one host, each asking `timeout=255` and never acknowledging, against a
/// server with 16 transfer slots. Before: all 16 slots went to the attacker, each for 6 × 255 s
/// (the OACK echoed `timeout 255` and was retransmitted every 255 s), and tftp-hpa on another
/// address got "server busy". Now one host holds at most `max_transfers_per_client` (8) slots, the
/// 255 s timeout is refused (absent from the OACK, the server's 1 s applies) and the attacker's
/// transfers give up within seconds, freeing their slots.
#[test]
fn never_acknowledged_timeout_255_requests_cannot_take_every_tftp_slot() {
    require("tftp", "tftp-hpa");
    let mut net = Net::new("tftpslot");
    net.client_address("10.77.0.11/24");
    net.client_address(&format!("{ATTACKER_IP}/24"));
    let root = tree(&net);
    let yaml = tftp_yaml(&net, &root, "  max_transfers: 16\n");
    net.start_kabootd(&yaml, "tftp");

    let (socks, answers): (Vec<UdpSocket>, Vec<Answer>) = net
        .in_client(|| unacknowledged_requests(20, TIMEOUT_255))
        .into_iter()
        .unzip();
    let oacks: Vec<&Vec<String>> = answers
        .iter()
        .filter_map(|a| match a {
            Answer::Oack(o) => Some(o),
            _ => None,
        })
        .collect();
    assert_eq!(oacks.len(), 8, "transfers granted to one host: {answers:?}");
    assert!(
        oacks.iter().all(|o| !o.iter().any(|k| k == "timeout")),
        "timeout=255 accepted: {oacks:?}"
    );
    assert_eq!(
        answers
            .iter()
            .filter(|a| **a == Answer::Error("too many transfers from this client".into()))
            .count(),
        12,
        "{answers:?}"
    );
    fetch(&net, &root);

    // The unacknowledged OACKs come again at the server's timeout, then stop: retries (5) at 1 s.
    let (socks, counts) = net.in_client(move || {
        let counts = retransmissions(&socks, Instant::now() + Duration::from_secs(12));
        (socks, counts)
    });
    drop(socks);
    eprintln!("retransmissions per granted transfer (count, last): {counts:?}");
    for (sent, last) in counts.iter().filter(|(n, _)| *n > 0) {
        assert!(
            (3..=6).contains(sent) && last.is_some_and(|t| t < Duration::from_secs(9)),
            "retransmissions per transfer (count, last): {counts:?}"
        );
    }
    assert_eq!(
        counts.iter().filter(|(n, _)| *n > 0).count(),
        8,
        "{counts:?}"
    );
    // The slots are free again.
    let again = net.in_client(|| unacknowledged_requests(8, TIMEOUT_255));
    assert!(
        again.iter().all(|(_, a)| matches!(a, Answer::Oack(_))),
        "{:?}",
        again.iter().map(|(_, a)| a).collect::<Vec<_>>()
    );
}

/// A request never acknowledged, on a server configured with a 2 s timeout and 100 retries. Before:
/// the OACK came every 2 s for 202 s, holding the slot all along. Now `stall_timeout_ms` (15 s by
/// default) ends any exchange that gets no acceptable ACK, whatever the timeout and retries.
#[test]
fn an_unacknowledged_tftp_transfer_gives_up_after_the_stall_timeout() {
    let mut net = Net::new("tftpstall");
    net.client_address(&format!("{ATTACKER_IP}/24"));
    let root = tree(&net);
    let yaml = tftp_yaml(&net, &root, "  timeout_ms: 2000\n  retries: 100\n");
    net.start_kabootd(&yaml, "tftp");
    let counts = net.in_client(|| {
        let (socks, answers): (Vec<UdpSocket>, Vec<Answer>) =
            unacknowledged_requests(1, &[("tsize", "0")])
                .into_iter()
                .unzip();
        assert!(matches!(answers[0], Answer::Oack(_)), "{answers:?}");
        retransmissions(&socks, Instant::now() + Duration::from_secs(22))
    });
    let (sent, last) = counts[0];
    eprintln!("{sent} retransmissions, the last after {last:?}");
    assert!(
        (5..=8).contains(&sent) && last.is_some_and(|t| t < Duration::from_secs(16)),
        "{sent} retransmissions, the last after {last:?}"
    );
}

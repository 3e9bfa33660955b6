//! Attacks on kabootd's DHCP server from the client namespace: forged DECLINEs, a DECLINE flood for
//! foreign addresses, and mutated datagrams aimed at the decoder.

use super::ns::{Net, SERVER_IP, require, rss_kib};
use super::{NODE_MAC, dhcp_yaml, udhcpc};
use dhcproto::v4::{DhcpOption, Message, MessageType};
use hal::netboot::dhcp::encode;
use hal::netboot::load::{Rng, fuzz};
use std::fs;
use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

/// Where the attacker sends from: a second address of the client side.
const ATTACKER_IP: &str = "10.77.0.12";

fn server() -> std::net::SocketAddr {
    format!("{SERVER_IP}:67").parse().unwrap()
}

fn decline(mac: [u8; 6], xid: u32, ip: Ipv4Addr) -> Vec<u8> {
    let zero = Ipv4Addr::UNSPECIFIED;
    let mut m = Message::new_with_id(xid, zero, zero, zero, zero, &mac);
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(MessageType::Decline));
    o.insert(DhcpOption::RequestedIpAddress(ip));
    o.insert(DhcpOption::ServerIdentifier(SERVER_IP.parse().unwrap()));
    encode(&m).unwrap()
}

/// Sends `datagrams` to the server from the attacker's address, pausing every `batch` so that the
/// server's receive buffer does not overflow.
fn send_all(net: &Net, datagrams: Vec<Vec<u8>>, batch: usize) {
    net.in_client(move || {
        let sock = UdpSocket::bind((ATTACKER_IP, 0)).expect("attacker socket");
        for (i, d) in datagrams.iter().enumerate() {
            sock.send_to(d, server()).expect("send");
            if i % batch == batch - 1 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
}

fn pool_yaml(net: &Net) -> String {
    let leases = net.dir.join("dhcp.leases").display().to_string();
    dhcp_yaml(net, &leases)
}

/// Before: a DECLINE released whatever lease its sender had and held the named address out of the
/// pool for a lease time (an hour), whoever sent it. One forged DECLINE per pool address (21 here)
/// left nothing to offer: the third client got no lease, and the first could not renew its own.
/// Now only the client holding the lease on an address can decline it.
#[test]
fn forged_declines_neither_free_a_lease_nor_empty_the_pool() {
    require("busybox", "busybox-static");
    let mut net = Net::new("decline");
    net.client_address(&format!("{ATTACKER_IP}/24"));
    let yaml = pool_yaml(&net);
    net.start_kabootd(&yaml, "dhcp");

    let first = udhcpc(&net, "02:00:00:00:00:01");
    assert!(first.contains("ip=10.77.0.100 "), "{first}");
    let forged: Vec<Vec<u8>> = (100..=120u8)
        .map(|i| {
            decline(
                [2, 0, 0, 0, 0x66, i],
                u32::from(i),
                Ipv4Addr::new(10, 77, 0, i),
            )
        })
        .collect();
    send_all(&net, forged, 64);
    std::thread::sleep(Duration::from_millis(300));

    let third = udhcpc(&net, "02:00:00:00:00:03");
    assert!(third.contains("ip=10.77.0.101 "), "pool emptied: {third}");
    let again = udhcpc(&net, "02:00:00:00:00:01");
    assert!(again.contains("ip=10.77.0.100 "), "lease lost: {again}");
    let journal = fs::read_to_string(net.dir.join("dhcp.leases")).unwrap();
    assert!(
        !journal.contains("\"del\""),
        "a lease was released:\n{journal}"
    );
    let log = net.log("dhcp");
    assert_eq!(
        log.matches("ignoring DECLINE of an address not leased to this client")
            .count(),
        21,
        "{log}"
    );
}

/// Before: every DECLINE added an entry to the server's offer table, never purged while the pool
/// was not searched: 300,000 DECLINEs from random MACs for foreign addresses grew kabootd by
/// megabytes. Now a DECLINE for an address not leased to its sender leaves no state.
#[test]
fn a_decline_flood_for_foreign_addresses_keeps_memory_bounded() {
    require("busybox", "busybox-static");
    const FLOOD: usize = 300_000;
    let mut net = Net::new("dflood");
    net.client_address(&format!("{ATTACKER_IP}/24"));
    let yaml = pool_yaml(&net);
    let server = net.start_kabootd(&yaml, "dhcp");
    let pid = net.pid(server);
    // A first exchange, so the allocations of a served request are in the baseline.
    udhcpc(&net, "02:00:00:00:00:01");
    let before = rss_kib(pid);

    let mut rng = Rng::new(300_000);
    let flood: Vec<Vec<u8>> = (0..FLOOD)
        .map(|i| {
            let r = rng.next_u64().to_be_bytes();
            let foreign = Ipv4Addr::new(172, 16 + (r[5] & 15), r[6], r[7]);
            decline([2, r[0], r[1], r[2], r[3], r[4]], i as u32, foreign)
        })
        .collect();
    send_all(&net, flood, 500);
    // The server is still serving, and has read the flood (its socket queue is drained).
    let after_flood = udhcpc(&net, "02:00:00:00:00:02");
    assert!(after_flood.contains("ip=10.77.0.101 "), "{after_flood}");
    let after = rss_kib(pid);
    let log = net.log("dhcp");
    let handled = log
        .matches("ignoring DECLINE of an address not leased to this client")
        .count();
    eprintln!("{FLOOD} DECLINEs sent, {handled} handled; RSS {before} KiB -> {after} KiB");
    assert!(
        after < before + 4096,
        "kabootd grew from {before} KiB to {after} KiB"
    );
    assert!(handled > FLOOD / 2, "the flood was not read: {handled}");
}

/// True when dhcproto alone panics on `bytes`; the panic message goes to the test's captured output.
fn dhcproto_panics(bytes: &[u8]) -> bool {
    use dhcproto::{Decodable, Decoder};
    std::panic::catch_unwind(|| {
        let _ = Message::decode(&mut Decoder::new(bytes));
    })
    .is_err()
}

/// 20,000 seeded mutations of real DISCOVER/REQUEST datagrams sent to a debug build of kabootd.
/// Before: some tripped dhcproto's debug assertions; the server caught each panic but the panic
/// hook logged it ("panicked at", and a backtrace with RUST_BACKTRACE set). Now the layout check
/// refuses them first: one debug line per datagram, no panic, and the server keeps serving.
#[test]
fn mutated_dhcp_datagrams_are_refused_without_a_panic() {
    require("busybox", "busybox-static");
    const MUTATIONS: usize = 20_000;
    let mut net = Net::new("dfuzz");
    net.client_address(&format!("{ATTACKER_IP}/24"));
    let yaml = pool_yaml(&net);
    net.start_kabootd(&yaml, "dhcp");

    let samples = fuzz::samples();
    let mut rng = Rng::new(0xD11C_F022);
    let mutations: Vec<Vec<u8>> = (0..MUTATIONS)
        .map(|i| fuzz::mutate(&mut rng, &samples[i % samples.len()]))
        .collect();
    let dangerous = mutations.iter().filter(|m| dhcproto_panics(m)).count();
    send_all(&net, mutations, 200);

    let lease = udhcpc(&net, NODE_MAC);
    assert!(lease.contains("ip=10.77.0.11 "), "{lease}");
    let log = net.log("dhcp");
    let refused = log.matches("ignoring malformed dhcp datagram").count();
    eprintln!(
        "{MUTATIONS} mutations sent, {dangerous} of them panic dhcproto; kabootd refused {refused}"
    );
    assert!(dangerous > 0, "no mutation reaches dhcproto's assertions");
    assert!(refused >= dangerous, "{refused} refused");
    for symptom in ["panicked", "backtrace", "the decoder panicked"] {
        assert!(
            !log.contains(symptom),
            "`{symptom}` in the server log:\n{}",
            super::tail(&log, 4000)
        );
    }
}

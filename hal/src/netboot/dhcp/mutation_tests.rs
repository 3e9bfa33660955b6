//! 20,000 seeded mutations of real DISCOVER/REQUEST datagrams through the layout check, dhcproto and
//! the handler, in the test profile (debug assertions on).

use super::config::{BootFiles, DhcpConfig, Host, Mac, Pool};
use super::{DhcpState, Leases, encode, wire};
use crate::netboot::load::{Rng, fuzz};
use dhcproto::{Decodable, Decoder, v4::Message};
use std::net::Ipv4Addr;

/// Mutations per run, as in the security report that found the dhcproto panics.
const MUTATIONS: usize = 20_000;

fn state() -> DhcpState {
    let config = DhcpConfig {
        server_ip: Ipv4Addr::new(10, 0, 0, 1),
        boot: BootFiles {
            bios: Some("pxelinux.0".into()),
            uefi: Some("ipxe.efi".into()),
            uefi_http: Some("http://10.0.0.1/ipxe.efi".into()),
            ipxe: Some("http://10.0.0.1/boot.ipxe".into()),
            arch: Default::default(),
        },
        pool: Some(Pool {
            start: Ipv4Addr::new(10, 0, 0, 100),
            end: Ipv4Addr::new(10, 0, 0, 199),
        }),
        hosts: vec![Host {
            mac: Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            ip: Ipv4Addr::new(10, 0, 0, 11),
            hostname: Some("node-1".into()),
            boot: None,
            ipxe: None,
        }],
        ..DhcpConfig::default()
    };
    DhcpState::new(config, Leases::in_memory())
}

/// True when dhcproto alone panics on `bytes` (what the server did before the layout check).
fn raw_decode_panics(bytes: &[u8]) -> bool {
    std::panic::catch_unwind(|| {
        let _ = Message::decode(&mut Decoder::new(bytes));
    })
    .is_err()
}

/// Before the layout check, dhcproto's debug assertions fired on some of these datagrams, each
/// printing a panic message and backtrace (the server caught the panic). Now every datagram is either
/// refused by [`wire::validate`] or decoded, handled and answered without any panic: the guarded path
/// below runs without `catch_unwind`, so a panic fails the test. The raw count shows the mutations do
/// reach dhcproto's weak spots.
#[test]
fn mutated_requests_are_refused_or_handled_without_panic() {
    let samples = fuzz::samples();
    let mut rng = Rng::new(0x5EC_B007);
    let mut s = state();
    let (mut refused, mut undecodable, mut answered, mut raw_panics) = (0, 0, 0, 0);
    for i in 0..MUTATIONS {
        let bytes = fuzz::mutate(&mut rng, &samples[i % samples.len()]);
        if raw_decode_panics(&bytes) {
            raw_panics += 1;
        }
        if wire::validate(&bytes).is_err() {
            refused += 1;
            continue;
        }
        let Ok(msg) = Message::decode(&mut Decoder::new(&bytes)) else {
            undecodable += 1;
            continue;
        };
        if let Some(reply) = s.handle(&msg, i as u64) {
            assert!(encode(&reply.message).is_some(), "reply to mutation {i}");
            answered += 1;
        }
    }
    eprintln!(
        "{MUTATIONS} mutations: {raw_panics} panic dhcproto alone; {refused} refused by the layout \
         check, {undecodable} undecodable, {answered} answered"
    );
    assert!(
        raw_panics > 0,
        "the mutations no longer reach dhcproto's assertions"
    );
    assert!(answered > 0 && refused > 0);
}

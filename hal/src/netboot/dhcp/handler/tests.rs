//! Tests of the DHCP handler: replies, leases, reservations, boot files per client class.

use super::*;
use crate::netboot::dhcp::config::{BootFiles, Pool};
use dhcproto::v4::{Architecture, relay};
use proptest::prelude::*;

const NODE: Mac = Mac([0x52, 0x54, 0, 0, 0, 1]);

fn state() -> DhcpState {
    let config = DhcpConfig {
        server_ip: Ipv4Addr::new(10, 0, 0, 1),
        boot: BootFiles {
            bios: Some("pxelinux.0".into()),
            uefi: Some("ipxe.efi".into()),
            uefi_http: None,
            ipxe: Some("http://10.0.0.1/boot.ipxe".into()),
            arch: Default::default(),
        },
        pool: Some(Pool {
            start: Ipv4Addr::new(10, 0, 0, 100),
            end: Ipv4Addr::new(10, 0, 0, 101),
        }),
        hosts: vec![Host {
            mac: NODE,
            ip: Ipv4Addr::new(10, 0, 0, 11),
            hostname: Some("node-1".into()),
            boot: None,
            ipxe: None,
        }],
        ..DhcpConfig::default()
    };
    DhcpState::new(config, Leases::in_memory())
}

fn msg(mac: Mac, kind: MessageType) -> Message {
    let mut m = Message::new_with_id(
        7,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &mac.0,
    );
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    m
}

fn file(r: &Reply) -> Option<String> {
    match r.message.opts().get(OptionCode::BootfileName) {
        Some(DhcpOption::BootfileName(f)) => Some(String::from_utf8_lossy(f).into_owned()),
        _ => None,
    }
}

#[test]
fn reserved_pxe_client_gets_its_address_and_boot_file_per_architecture() {
    let mut s = state();
    let mut d = msg(NODE, MessageType::Discover);
    d.opts_mut().insert(DhcpOption::ClassIdentifier(
        b"PXEClient:Arch:00000:UNDI:002001".to_vec(),
    ));
    d.opts_mut()
        .insert(DhcpOption::ClientSystemArchitecture(Architecture::X86_Bios));
    let offer = s.handle(&d, 0).unwrap();
    assert_eq!(offer.message.yiaddr(), Ipv4Addr::new(10, 0, 0, 11));
    assert_eq!(offer.message.opts().msg_type(), Some(MessageType::Offer));
    assert_eq!(file(&offer).as_deref(), Some("pxelinux.0"));
    assert_eq!(offer.to, "255.255.255.255:68".parse().unwrap());
    d.opts_mut()
        .insert(DhcpOption::ClientSystemArchitecture(Architecture::X64));
    assert_eq!(file(&s.handle(&d, 0).unwrap()).as_deref(), Some("ipxe.efi"));
    d.opts_mut()
        .insert(DhcpOption::UserClass(b"\x04iPXE".to_vec()));
    assert_eq!(
        file(&s.handle(&d, 0).unwrap()).as_deref(),
        Some("http://10.0.0.1/boot.ipxe")
    );
    let mut plain = msg(NODE, MessageType::Discover);
    plain.opts_mut().insert(ipxe_marker());
    assert_eq!(
        file(&s.handle(&plain, 0).unwrap()).as_deref(),
        Some("http://10.0.0.1/boot.ipxe")
    );
}

fn class(r: &Reply) -> Option<String> {
    match r.message.opts().get(OptionCode::ClassIdentifier) {
        Some(DhcpOption::ClassIdentifier(c)) => Some(String::from_utf8_lossy(c).into_owned()),
        _ => None,
    }
}

/// OVMF's UEFI HTTP boot (class `HTTPClient`, option 93 = 16) gets a URL and the class back; an
/// ARM64 client gets its architecture's files; iPXE keeps its script whatever its architecture.
#[test]
fn uefi_http_clients_and_other_architectures_get_their_own_boot_files() {
    let mut s = state();
    s.config.boot.uefi_http = Some("http://10.0.0.1/grubx64.efi".into());
    s.config.boot.arch.insert(11, "grubaa64.efi".into());
    s.config
        .boot
        .arch
        .insert(19, "http://10.0.0.1/grubaa64.efi".into());
    let discover = |arch: u16, vendor: &[u8]| {
        let mut d = msg(NODE, MessageType::Discover);
        d.opts_mut()
            .insert(DhcpOption::ClassIdentifier(vendor.to_vec()));
        d.opts_mut()
            .insert(DhcpOption::ClientSystemArchitecture(Architecture::from(
                arch,
            )));
        d
    };
    let http = s
        .handle(&discover(16, b"HTTPClient:Arch:00016:UNDI:003001"), 0)
        .unwrap();
    assert_eq!(file(&http).as_deref(), Some("http://10.0.0.1/grubx64.efi"));
    assert_eq!(class(&http).as_deref(), Some("HTTPClient"));
    let arm_http = s
        .handle(&discover(19, b"HTTPClient:Arch:00019:UNDI:003001"), 0)
        .unwrap();
    assert_eq!(
        file(&arm_http).as_deref(),
        Some("http://10.0.0.1/grubaa64.efi")
    );
    let arm_pxe = s
        .handle(&discover(11, b"PXEClient:Arch:00011:UNDI:003000"), 0)
        .unwrap();
    assert_eq!(file(&arm_pxe).as_deref(), Some("grubaa64.efi"));
    assert_eq!(class(&arm_pxe).as_deref(), Some("PXEClient"));
    let x64 = s
        .handle(&discover(7, b"PXEClient:Arch:00007:UNDI:003000"), 0)
        .unwrap();
    assert_eq!(file(&x64).as_deref(), Some("ipxe.efi"));
    // Before, UEFI PXE offers had no option 43 and OVMF refused them (PXE-E16) waiting for BINL.
    assert_eq!(
        x64.message.opts().get(OptionCode::VendorExtensions),
        Some(&DhcpOption::VendorExtensions(
            crate::netboot::dhcp::reply::PXE_BOOT_FILE_ONLY.to_vec()
        ))
    );
    assert!(
        http.message
            .opts()
            .get(OptionCode::VendorExtensions)
            .is_none()
    );
    let mut ipxe = discover(11, b"PXEClient:Arch:00011:UNDI:003000");
    ipxe.opts_mut()
        .insert(DhcpOption::UserClass(b"\x04iPXE".to_vec()));
    assert_eq!(
        file(&s.handle(&ipxe, 0).unwrap()).as_deref(),
        Some("http://10.0.0.1/boot.ipxe")
    );
    // An OS's DHCP client (GRUB's net_bootp, udhcpc) gets an address and no boot file.
    let plain = s.handle(&msg(NODE, MessageType::Discover), 0).unwrap();
    assert_eq!(plain.message.yiaddr(), Ipv4Addr::new(10, 0, 0, 11));
    assert_eq!(file(&plain), None);
}

#[test]
fn pool_request_ack_and_nak() {
    let mut s = state();
    let other = Mac([2, 0, 0, 0, 0, 9]);
    let offer = s.handle(&msg(other, MessageType::Discover), 0).unwrap();
    let ip = offer.message.yiaddr();
    assert_eq!(ip, Ipv4Addr::new(10, 0, 0, 100));
    let third = s
        .handle(&msg(Mac([2, 0, 0, 0, 0, 10]), MessageType::Discover), 0)
        .unwrap();
    assert_eq!(
        third.message.yiaddr(),
        Ipv4Addr::new(10, 0, 0, 101),
        "offered address is held"
    );
    assert!(
        s.handle(&msg(Mac([2, 0, 0, 0, 0, 11]), MessageType::Discover), 0)
            .is_none(),
        "pool exhausted"
    );

    let mut req = msg(other, MessageType::Request);
    req.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    req.opts_mut()
        .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 1)));
    let ack = s.handle(&req, 0).unwrap();
    assert_eq!(ack.message.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(s.leases.get(other).unwrap().ip, ip);

    let mut wrong = msg(other, MessageType::Request);
    wrong
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 0, 0, 50)));
    assert_eq!(
        s.handle(&wrong, 0).unwrap().message.opts().msg_type(),
        Some(MessageType::Nak)
    );

    let mut elsewhere = req.clone();
    elsewhere
        .opts_mut()
        .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 2)));
    assert!(s.handle(&elsewhere, 0).is_none());
}

fn lease(s: &mut DhcpState, mac: Mac) -> Ipv4Addr {
    let ip = s
        .handle(&msg(mac, MessageType::Discover), 0)
        .unwrap()
        .message
        .yiaddr();
    let mut req = msg(mac, MessageType::Request);
    req.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    req.opts_mut()
        .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(
        s.handle(&req, 0).unwrap().message.opts().msg_type(),
        Some(MessageType::Ack)
    );
    ip
}

fn decline(mac: Mac, ip: Ipv4Addr) -> Message {
    let mut d = msg(mac, MessageType::Decline);
    d.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    d
}

/// Before, any DECLINE released the sender's lease and held the named address out of offers for
/// a lease time, whoever sent it: one forged DECLINE per pool address emptied the pool.
#[test]
fn only_the_lease_holder_can_decline_its_address() {
    let mut s = state();
    let holder = Mac([2, 0, 0, 0, 0, 1]);
    let (first, second) = (Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 101));
    assert_eq!(lease(&mut s, holder), first);
    let forger = Mac([2, 0, 0, 0, 0, 66]);
    for ip in [first, second] {
        assert!(s.handle(&decline(forger, ip), 0).is_none());
    }
    assert_eq!(s.leases.get(holder).map(|l| l.ip), Some(first));
    assert_eq!(s.declined_len(), 0);
    assert_eq!(lease(&mut s, Mac([2, 0, 0, 0, 0, 2])), second);

    // The holder's own DECLINE: its lease goes, and the address stays out of the pool for
    // `decline_hold` seconds only.
    assert!(s.handle(&decline(holder, first), 10).is_none());
    assert!(s.leases.get(holder).is_none());
    assert_eq!(s.declined_len(), 1);
    let third = msg(Mac([2, 0, 0, 0, 0, 3]), MessageType::Discover);
    assert!(s.handle(&third, 10).is_none(), "declined address offered");
    let hold = u64::from(s.config.decline_hold);
    let offer = s
        .handle(&third, 10 + hold)
        .expect("no offer after the hold");
    assert_eq!(offer.message.yiaddr(), first);
}

/// Before, each DECLINE added an entry to the offer table (300,000 DECLINEs naming foreign
/// addresses: 300,000 entries, never purged while the pool was not searched).
#[test]
fn a_decline_flood_for_foreign_addresses_leaves_no_state() {
    let mut s = state();
    let mut rng = crate::netboot::load::Rng::new(11);
    for _ in 0..300_000 {
        let r = rng.next_u64().to_be_bytes();
        let mac = Mac([2, r[0], r[1], r[2], r[3], r[4]]);
        let ip = Ipv4Addr::new(r[5], r[6], r[7], r[0]);
        assert!(s.handle(&decline(mac, ip), 0).is_none());
    }
    assert_eq!(s.declined_len(), 0);
    assert!(s.offers.is_empty());
    assert!(s.leases.is_empty());
}

#[test]
fn the_declined_table_is_bounded_by_max_declined() {
    let mut s = state();
    s.config.pool = Some(Pool {
        start: Ipv4Addr::new(10, 0, 1, 0),
        end: Ipv4Addr::new(10, 0, 1, 255),
    });
    s.declined = Declined::new(3);
    for i in 0..50u8 {
        let mac = Mac([2, 0, 0, 0, 1, i]);
        let ip = lease(&mut s, mac);
        assert!(s.handle(&decline(mac, ip), 0).is_none());
        assert!(s.declined_len() <= 3);
    }
    assert_eq!(s.declined_len(), 3);
}

#[test]
fn pool_search_resumes_after_the_last_address_and_wraps_to_released_ones() {
    let mut s = state();
    let (a, b, c) = (
        Mac([2, 0, 0, 0, 0, 1]),
        Mac([2, 0, 0, 0, 0, 2]),
        Mac([2, 0, 0, 0, 0, 3]),
    );
    assert_eq!(lease(&mut s, a), Ipv4Addr::new(10, 0, 0, 100));
    assert_eq!(lease(&mut s, b), Ipv4Addr::new(10, 0, 0, 101));
    let mut release = msg(a, MessageType::Release);
    release.set_ciaddr(Ipv4Addr::new(10, 0, 0, 100));
    assert!(s.handle(&release, 0).is_none());
    assert_eq!(lease(&mut s, c), Ipv4Addr::new(10, 0, 0, 100));
    assert_eq!(
        lease(&mut s, b),
        Ipv4Addr::new(10, 0, 0, 101),
        "own lease kept"
    );
}

#[test]
fn a_large_pool_fills_in_order_without_rescanning() {
    let mut s = state();
    s.config.pool = Some(Pool {
        start: Ipv4Addr::new(10, 0, 1, 0),
        end: Ipv4Addr::new(10, 0, 255, 255),
    });
    for i in 0..20_000u32 {
        let b = i.to_be_bytes();
        let ip = lease(&mut s, Mac([2, 0, b[0], b[1], b[2], b[3]]));
        assert_eq!(u32::from(ip), u32::from(Ipv4Addr::new(10, 0, 1, 0)) + i);
    }
}

#[test]
fn relayed_requests_go_back_to_the_relay_with_option_82() {
    let mut s = state();
    let mut d = msg(NODE, MessageType::Discover);
    d.set_giaddr(Ipv4Addr::new(10, 1, 0, 1));
    let mut info = relay::RelayAgentInformation::default();
    info.insert(relay::RelayInfo::AgentCircuitId(b"port7".to_vec()));
    d.opts_mut()
        .insert(DhcpOption::RelayAgentInformation(info.clone()));
    let offer = s.handle(&d, 0).unwrap();
    assert_eq!(offer.to, "10.1.0.1:67".parse().unwrap());
    assert_eq!(offer.message.giaddr(), Ipv4Addr::new(10, 1, 0, 1));
    assert_eq!(
        offer.message.opts().get(OptionCode::RelayAgentInformation),
        Some(&DhcpOption::RelayAgentInformation(info))
    );
    // Unknown clients behind a relay of another subnet get nothing from the pool.
    let mut stranger = msg(Mac([2, 0, 0, 0, 0, 3]), MessageType::Discover);
    stranger.set_giaddr(Ipv4Addr::new(10, 1, 0, 1));
    assert!(s.handle(&stranger, 0).is_none());
}

#[test]
fn renewing_client_is_answered_by_unicast() {
    let mut s = state();
    let mut req = msg(NODE, MessageType::Request);
    req.set_ciaddr(Ipv4Addr::new(10, 0, 0, 11));
    let ack = s.handle(&req, 0).unwrap();
    assert_eq!(ack.to, "10.0.0.11:68".parse().unwrap());
    assert_eq!(
        ack.message.opts().get(OptionCode::Hostname),
        Some(&DhcpOption::Hostname("node-1".into()))
    );
}

proptest! {
    #[test]
    fn random_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let mut s = state();
        if let Ok(m) = crate::netboot::dhcp::decode(&bytes)
            && let Some(r) = s.handle(&m, 0) {
                let _ = crate::netboot::dhcp::encode(&r.message);
            }
    }

    #[test]
    fn mutated_requests_never_panic(flips in proptest::collection::vec((0usize..400, any::<u8>()), 0..16)) {
        let mut d = msg(NODE, MessageType::Discover);
        d.opts_mut().insert(DhcpOption::ClientSystemArchitecture(Architecture::X64));
        d.opts_mut().insert(DhcpOption::UserClass(b"\x04iPXE".to_vec()));
        let mut bytes = crate::netboot::dhcp::encode(&d).unwrap_or_default();
        for (i, b) in flips {
            if let Some(x) = bytes.get_mut(i) {
                *x = b;
            }
        }
        let mut s = state();
        if let Ok(m) = crate::netboot::dhcp::decode(&bytes)
            && let Some(r) = s.handle(&m, 0) {
                let _ = crate::netboot::dhcp::encode(&r.message);
            }
    }
}

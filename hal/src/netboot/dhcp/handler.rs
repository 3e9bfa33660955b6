//! The DHCP state machine, without sockets: a decoded request and the current time in, a reply and its
//! destination out (built in [`super::reply`]). Pure, so it is unit-tested and fuzzed.

use super::config::{DhcpConfig, Host, Mac};
use super::declined::Declined;
use super::lease::{Lease, Leases};
use super::reply::{self, Reply};
use dhcproto::v4::{DhcpOption, HType, Message, MessageType, Opcode, OptionCode, UnknownOption};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use tracing::{debug, warn};

/// Seconds an offered (not yet requested) pool address stays reserved for its client.
const OFFER_HOLD: u64 = 30;

/// Server state: configuration, reservations and leases.
pub struct DhcpState {
    config: DhcpConfig,
    hosts: BTreeMap<Mac, Host>,
    reserved_ips: BTreeMap<Ipv4Addr, Mac>,
    /// The lease table.
    pub leases: Leases,
    offers: BTreeMap<Ipv4Addr, (Mac, u64)>,
    /// Pool addresses declined by their lease holder, kept out of offers for `decline_hold`.
    declined: Declined,
    /// Where the next search for a free pool address starts.
    next_free: u32,
}

impl DhcpState {
    /// A state from a validated configuration and the lease table.
    pub fn new(config: DhcpConfig, leases: Leases) -> Self {
        let hosts: BTreeMap<Mac, Host> = config.hosts.iter().map(|h| (h.mac, h.clone())).collect();
        let reserved_ips = config.hosts.iter().map(|h| (h.ip, h.mac)).collect();
        DhcpState {
            declined: Declined::new(config.max_declined),
            config,
            hosts,
            reserved_ips,
            leases,
            offers: BTreeMap::new(),
            next_free: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DhcpConfig {
        &self.config
    }

    /// Handles one request at time `now` (seconds since the epoch). `None`: no answer is due.
    pub fn handle(&mut self, req: &Message, now: u64) -> Option<Reply> {
        // Check hlen before chaddr(): dhcproto 0.15 slices chaddr by the wire hlen and panics above 16
        // (found by the fuzz test below).
        if req.opcode() != Opcode::BootRequest || req.htype() != HType::Eth || req.hlen() != 6 {
            return None;
        }
        let mac = Mac(req.chaddr()[..6].try_into().ok()?);
        let kind = req.opts().msg_type()?;
        match kind {
            MessageType::Discover => {
                let ip = self.choose(mac, req, now)?;
                if !self.hosts.contains_key(&mac) && self.leases.get(mac).map(|l| l.ip) != Some(ip)
                {
                    self.offers.insert(ip, (mac, now + OFFER_HOLD));
                }
                Some(self.reply(req, MessageType::Offer, ip, mac))
            }
            MessageType::Request => self.request(req, mac, now),
            MessageType::Release => {
                if !self.for_us(req) {
                    return None;
                }
                if self.leases.get(mac).is_some_and(|l| l.ip == req.ciaddr()) {
                    self.persist(|l| l.release(mac));
                }
                None
            }
            MessageType::Decline => {
                if self.for_us(req) {
                    self.decline(req, mac, now);
                }
                None
            }
            MessageType::Inform => {
                let mut reply = self.reply(req, MessageType::Ack, Ipv4Addr::UNSPECIFIED, mac);
                reply
                    .message
                    .opts_mut()
                    .remove(OptionCode::AddressLeaseTime);
                Some(reply)
            }
            _ => None,
        }
    }

    /// RFC 2131 §4.3.3: the client found its address in use. Only the client holding the lease on
    /// that address can decline it (any other DECLINE is forged or stale, and would let anybody
    /// empty the pool); the address then leaves the pool for `decline_hold` seconds.
    fn decline(&mut self, req: &Message, mac: Mac, now: u64) {
        let Some(DhcpOption::RequestedIpAddress(ip)) =
            req.opts().get(OptionCode::RequestedIpAddress)
        else {
            return debug!(%mac, "ignoring DECLINE without a requested address");
        };
        let ip = *ip;
        if self.leases.holder(ip).is_none_or(|l| l.mac != mac) {
            return debug!(%mac, %ip, "ignoring DECLINE of an address not leased to this client");
        }
        warn!(%mac, %ip, hold = self.config.decline_hold, "address declined: another host uses it");
        self.persist(|l| l.release(mac));
        if self.config.pool.is_some_and(|p| p.contains(ip)) {
            let until = now + u64::from(self.config.decline_hold);
            self.declined.insert(ip, until, now);
        }
    }

    /// Number of declined pool addresses remembered (expired ones until purged).
    pub fn declined_len(&self) -> usize {
        self.declined.len()
    }

    fn persist(&mut self, f: impl FnOnce(&mut Leases) -> std::io::Result<()>) {
        if let Err(e) = f(&mut self.leases) {
            warn!(error = %e, "cannot write the lease file");
        }
    }

    fn for_us(&self, req: &Message) -> bool {
        match req.opts().get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(id)) => *id == self.config.server_ip,
            _ => true,
        }
    }

    fn usable(&self, ip: Ipv4Addr, mac: Mac, now: u64) -> bool {
        let pool = self.config.pool.is_some_and(|p| p.contains(ip));
        let leased = self
            .leases
            .holder(ip)
            .is_some_and(|l| l.mac != mac && l.expires > now);
        let offered = self
            .offers
            .get(&ip)
            .is_some_and(|(m, until)| *m != mac && *until > now);
        pool && !leased
            && !offered
            && !self.declined.contains(ip, now)
            && !self.reserved_ips.contains_key(&ip)
    }

    /// The address `mac` gets: its reservation, its lease, the address it asks for, or a free one.
    fn choose(&mut self, mac: Mac, req: &Message, now: u64) -> Option<Ipv4Addr> {
        if let Some(h) = self.hosts.get(&mac) {
            return Some(h.ip);
        }
        let pool = self.config.pool?;
        if !req.giaddr().is_unspecified()
            && !same_subnet(req.giaddr(), pool.start, self.config.subnet_mask)
        {
            return None;
        }
        if let Some(l) = self.leases.get(mac)
            && self.usable(l.ip, mac, now)
        {
            return Some(l.ip);
        }
        if let Some((ip, _)) = self
            .offers
            .iter()
            .find(|(_, (m, until))| *m == mac && *until > now)
        {
            return Some(*ip);
        }
        if let Some(DhcpOption::RequestedIpAddress(ip)) =
            req.opts().get(OptionCode::RequestedIpAddress)
            && self.usable(*ip, mac, now)
        {
            return Some(*ip);
        }
        self.offers.retain(|_, (_, until)| *until > now);
        // Next fit: resume after the address handed out last, so a pool filling up is not rescanned
        // from its start for every new client (a linear cost per DISCOVER that grew with the leases).
        let (start, end) = (u32::from(pool.start), u32::from(pool.end));
        let from = if (start..=end).contains(&self.next_free) {
            self.next_free
        } else {
            start
        };
        let ip = (from..=end)
            .chain(start..from)
            .map(Ipv4Addr::from)
            .find(|ip| self.usable(*ip, mac, now))?;
        self.next_free = u32::from(ip).wrapping_add(1);
        Some(ip)
    }

    fn request(&mut self, req: &Message, mac: Mac, now: u64) -> Option<Reply> {
        let selecting = req.opts().get(OptionCode::ServerIdentifier).is_some();
        if !self.for_us(req) {
            // The client took another server's offer.
            self.offers.retain(|_, (m, _)| *m != mac);
            return None;
        }
        let asked = match req.opts().get(OptionCode::RequestedIpAddress) {
            Some(DhcpOption::RequestedIpAddress(ip)) => *ip,
            _ => req.ciaddr(),
        };
        let known = self.hosts.contains_key(&mac) || self.leases.get(mac).is_some();
        let Some(ip) = self.choose(mac, req, now) else {
            return (selecting || known).then(|| self.nak(req));
        };
        if asked != ip {
            // Not authoritative for strangers in INIT-REBOOT: only NAK clients we know or chose us.
            return (selecting || known || self.config.pool.is_some_and(|p| p.contains(asked)))
                .then(|| self.nak(req));
        }
        let hostname = self.hosts.get(&mac).and_then(|h| h.hostname.clone());
        let lease = Lease {
            mac,
            ip,
            hostname,
            expires: now + u64::from(self.config.lease_time),
        };
        self.offers.remove(&ip);
        self.persist(|l| l.commit(lease));
        Some(self.reply(req, MessageType::Ack, ip, mac))
    }

    fn nak(&self, req: &Message) -> Reply {
        reply::nak(&self.config, req)
    }

    fn reply(&self, req: &Message, kind: MessageType, ip: Ipv4Addr, mac: Mac) -> Reply {
        reply::answer(&self.config, self.hosts.get(&mac), req, kind, ip, mac)
    }
}

fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, mask: Ipv4Addr) -> bool {
    u32::from(a) & u32::from(mask) == u32::from(b) & u32::from(mask)
}

/// iPXE's option 175 (encapsulated iPXE options), as iPXE sends it; for tests and load generators.
pub fn ipxe_marker() -> DhcpOption {
    DhcpOption::Unknown(UnknownOption::new(
        OptionCode::Unknown(175),
        vec![0xb1, 1, 1],
    ))
}

#[cfg(test)]
mod tests {
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
}

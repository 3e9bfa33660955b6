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
mod tests;

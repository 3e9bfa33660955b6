//! DHCP load: keeps `concurrency` DISCOVER → OFFER → REQUEST → ACK exchanges in flight from random
//! MACs (broadcast flag set, so any server answers by broadcast) and counts ACKs for a bounded time.

use super::{Rng, per_second};
use crate::netboot::dhcp::{decode, encode};
use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, OptionCode};
use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct DhcpLoad {
    /// Interface of the client side (`SO_BINDTODEVICE`); the socket binds `0.0.0.0:68`.
    pub interface: String,
    /// How long to send.
    pub duration: Duration,
    /// Exchanges in flight.
    pub concurrency: usize,
    /// An exchange not finished after this long is counted as timed out and replaced.
    pub timeout: Duration,
    /// Seed of the MACs and transaction ids.
    pub seed: u64,
}

/// What was measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DhcpReport {
    /// Exchanges finished by an ACK.
    pub acks: u64,
    /// Exchanges finished by a NAK.
    pub naks: u64,
    /// Exchanges that timed out.
    pub timeouts: u64,
    /// Measured time.
    pub elapsed: Duration,
    /// ACKs per second.
    pub acks_per_second: f64,
}

struct Exchange {
    mac: [u8; 6],
    requested: bool,
    since: Instant,
}

fn message(
    xid: u32,
    mac: &[u8; 6],
    kind: MessageType,
    offer: Option<(Ipv4Addr, Ipv4Addr)>,
) -> Message {
    let zero = Ipv4Addr::UNSPECIFIED;
    let mut msg = Message::new_with_id(xid, zero, zero, zero, zero, mac);
    msg.set_flags(Flags::default().set_broadcast());
    let o = msg.opts_mut();
    o.insert(DhcpOption::MessageType(kind));
    o.insert(DhcpOption::ClassIdentifier(
        b"PXEClient:Arch:00000:UNDI:002001".to_vec(),
    ));
    o.insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::DomainNameServer,
        OptionCode::BootfileName,
    ]));
    if let Some((ip, server)) = offer {
        o.insert(DhcpOption::RequestedIpAddress(ip));
        o.insert(DhcpOption::ServerIdentifier(server));
    }
    msg
}

fn client_socket(interface: &str) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_broadcast(true)?;
    socket.bind_device(Some(interface.as_bytes()))?;
    let _ = socket.set_recv_buffer_size(8 << 20);
    let _ = socket.set_send_buffer_size(8 << 20);
    socket.bind(&SocketAddr::from(([0, 0, 0, 0], 68)).into())?;
    socket.set_read_timeout(Some(Duration::from_millis(20)))?;
    Ok(socket.into())
}

/// Runs the load and reports; fails only when the socket cannot be opened or used.
pub fn run(load: &DhcpLoad) -> io::Result<DhcpReport> {
    let socket = client_socket(&load.interface)?;
    let server = SocketAddr::from(([255, 255, 255, 255], 67));
    let mut rng = Rng::new(load.seed);
    let mut open: BTreeMap<u32, Exchange> = BTreeMap::new();
    let mut report = DhcpReport::default();
    let start = Instant::now();
    let end = start + load.duration;
    let mut buf = vec![0u8; 2048];
    let mut last_sweep = start;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        while open.len() < load.concurrency.max(1) {
            let xid = rng.next_u64() as u32;
            let bits = rng.next_u64().to_be_bytes();
            // Locally administered, unicast.
            let mac = [0x02, bits[1], bits[2], bits[3], bits[4], bits[5]];
            if let Some(bytes) = encode(&message(xid, &mac, MessageType::Discover, None)) {
                socket.send_to(&bytes, server)?;
            }
            open.insert(
                xid,
                Exchange {
                    mac,
                    requested: false,
                    since: now,
                },
            );
        }
        if now.duration_since(last_sweep) > load.timeout / 4 {
            last_sweep = now;
            let before = open.len();
            open.retain(|_, x| now.duration_since(x.since) < load.timeout);
            report.timeouts += (before - open.len()) as u64;
        }
        let n = match socket.recv_from(&mut buf) {
            Ok((n, _)) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        let Ok(reply) = decode(&buf[..n]) else {
            continue;
        };
        let Some(x) = open.get_mut(&reply.xid()) else {
            continue;
        };
        if reply.chaddr().get(..6) != Some(&x.mac[..]) {
            continue;
        }
        match reply.opts().msg_type() {
            Some(MessageType::Offer) if !x.requested => {
                let server_id = match reply.opts().get(OptionCode::ServerIdentifier) {
                    Some(DhcpOption::ServerIdentifier(ip)) => *ip,
                    _ => reply.siaddr(),
                };
                x.requested = true;
                let req = message(
                    reply.xid(),
                    &x.mac,
                    MessageType::Request,
                    Some((reply.yiaddr(), server_id)),
                );
                if let Some(bytes) = encode(&req) {
                    socket.send_to(&bytes, server)?;
                }
            }
            Some(MessageType::Ack) if x.requested => {
                report.acks += 1;
                open.remove(&reply.xid());
            }
            Some(MessageType::Nak) => {
                report.naks += 1;
                open.remove(&reply.xid());
            }
            _ => {}
        }
    }
    report.elapsed = start.elapsed();
    report.acks_per_second = per_second(report.acks, report.elapsed);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_carries_the_offer_and_round_trips() {
        let mac = [2, 1, 2, 3, 4, 5];
        let ip = Ipv4Addr::new(10, 0, 0, 9);
        let server = Ipv4Addr::new(10, 0, 0, 1);
        let msg = message(42, &mac, MessageType::Request, Some((ip, server)));
        let back = decode(&encode(&msg).unwrap()).unwrap();
        assert_eq!(back.xid(), 42);
        assert_eq!(back.opts().msg_type(), Some(MessageType::Request));
        assert!(back.flags().broadcast());
        assert_eq!(
            back.opts().get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(ip))
        );
    }
}

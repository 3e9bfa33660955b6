//! DHCP replies built from a request: the answer (OFFER, ACK) with the network and boot options,
//! the NAK, and where each goes (RFC 2131 §4.1).

use super::client::{ClientKind, architecture, boot_file, classify};
use super::config::{DhcpConfig, Host, Mac};
use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use tracing::debug;

/// Option 43 of PXE offers: discovery control (6) of length 1 = 8 (use the boot file of this
/// offer, no boot server discovery), end (255).
pub const PXE_BOOT_FILE_ONLY: [u8; 4] = [6, 1, 8, 255];

/// A reply and where to send it.
#[derive(Debug)]
pub struct Reply {
    /// The message.
    pub message: Message,
    /// Destination address.
    pub to: SocketAddr,
}

/// A NAK for `req`: to the relay, or broadcast (the client's address is what is refused).
pub(super) fn nak(config: &DhcpConfig, req: &Message) -> Reply {
    let mut msg = base(req);
    msg.opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Nak));
    msg.opts_mut()
        .insert(DhcpOption::ServerIdentifier(config.server_ip));
    let to = if req.giaddr().is_unspecified() {
        SocketAddrV4::new(Ipv4Addr::BROADCAST, 68)
    } else {
        msg.set_flags(Flags::default().set_broadcast());
        SocketAddrV4::new(req.giaddr(), 67)
    };
    Reply {
        message: msg,
        to: to.into(),
    }
}

/// An OFFER or ACK (`kind`) of `ip` to `mac` (the reserved `host`, if any): the network settings,
/// and the boot file for PXE, UEFI and iPXE clients.
pub(super) fn answer(
    c: &DhcpConfig,
    host: Option<&Host>,
    req: &Message,
    kind: MessageType,
    ip: Ipv4Addr,
    mac: Mac,
) -> Reply {
    let client = classify(req);
    let next_server = c.next_server.unwrap_or(c.server_ip);
    let mut msg = base(req);
    msg.set_yiaddr(ip).set_siaddr(next_server);
    let o = msg.opts_mut();
    o.insert(DhcpOption::MessageType(kind));
    o.insert(DhcpOption::ServerIdentifier(c.server_ip));
    o.insert(DhcpOption::AddressLeaseTime(c.lease_time));
    o.insert(DhcpOption::Renewal(c.lease_time / 2));
    o.insert(DhcpOption::Rebinding(c.lease_time / 8 * 7));
    o.insert(DhcpOption::SubnetMask(c.subnet_mask));
    if !c.routers.is_empty() {
        o.insert(DhcpOption::Router(c.routers.clone()));
    }
    if !c.dns.is_empty() {
        o.insert(DhcpOption::DomainNameServer(c.dns.clone()));
    }
    if let Some(d) = &c.domain {
        o.insert(DhcpOption::DomainName(d.clone()));
    }
    if let Some(name) = host.and_then(|h| h.hostname.as_ref()) {
        o.insert(DhcpOption::Hostname(name.clone()));
    }
    if client != ClientKind::Plain
        && let Some(file) = boot_file(client, architecture(req), &c.boot, host)
    {
        o.insert(DhcpOption::TFTPServerName(
            next_server.to_string().into_bytes(),
        ));
        o.insert(DhcpOption::BootfileName(file.as_bytes().to_vec()));
        let class: &[u8] = if client == ClientKind::UefiHttp {
            b"HTTPClient"
        } else {
            b"PXEClient"
        };
        o.insert(DhcpOption::ClassIdentifier(class.to_vec()));
        if client != ClientKind::UefiHttp {
            // PXE discovery control (option 43, sub-option 6) = 8: boot the file named here. Without
            // it, a `PXEClient` offer asks UEFI PXE (EDK II, OVMF) for a BINL exchange on port 4011
            // that nobody answers: "PXE-E16: No valid offer received".
            o.insert(DhcpOption::VendorExtensions(PXE_BOOT_FILE_ONLY.to_vec()));
        }
        if file.len() < 128 {
            msg.set_fname_str(file);
        }
    }
    if let Some(relay) = req.opts().get(OptionCode::RelayAgentInformation) {
        msg.opts_mut().insert(relay.clone());
    }
    debug!(%mac, %ip, ?kind, ?client, "dhcp reply");
    Reply {
        to: destination(req).into(),
        message: msg,
    }
}

fn base(req: &Message) -> Message {
    let mut msg = Message::new_with_id(
        req.xid(),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        req.giaddr(),
        &req.chaddr()[..req.chaddr().len().min(16)],
    );
    msg.set_opcode(Opcode::BootReply)
        .set_htype(req.htype())
        .set_flags(req.flags());
    msg
}

/// RFC 2131 §4.1: relay → giaddr:67; renewing client → ciaddr:68; otherwise broadcast (the client has no
/// address yet, and this server injects no ARP entries).
fn destination(req: &Message) -> SocketAddrV4 {
    if !req.giaddr().is_unspecified() {
        SocketAddrV4::new(req.giaddr(), 67)
    } else if !req.ciaddr().is_unspecified() {
        SocketAddrV4::new(req.ciaddr(), 68)
    } else {
        SocketAddrV4::new(Ipv4Addr::BROADCAST, 68)
    }
}

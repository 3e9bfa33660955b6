//! The lab BMC's read-only inventory, as a site's `ipmitool` scripts query it: `mc guid` (Get System
//! GUID), `lan print` (Get Channel Info, Get LAN Configuration Parameters), `user list` (Get User
//! Access, Get User Name), `sol info` (Get SOL Configuration Parameters) and `chassis identify`.

use hal::power::ipmi::commands::{CC_BAD_LENGTH, CC_INVALID_DATA, CC_OK, PRIV_ADMIN};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// App: Get Device GUID.
pub const CMD_GET_DEVICE_GUID: u8 = 0x08;
/// App: Get System GUID.
pub const CMD_GET_SYSTEM_GUID: u8 = 0x37;
/// App: Get Channel Info.
pub const CMD_GET_CHANNEL_INFO: u8 = 0x42;
/// App: Get User Access.
pub const CMD_GET_USER_ACCESS: u8 = 0x44;
/// App: Get User Name.
pub const CMD_GET_USER_NAME: u8 = 0x46;
/// Chassis: Chassis Identify.
pub const CMD_CHASSIS_IDENTIFY: u8 = 0x04;
/// Network function of transport commands.
pub const NETFN_TRANSPORT: u8 = 0x0c;
/// Transport: Get LAN Configuration Parameters.
pub const CMD_GET_LAN_CONFIG: u8 = 0x02;
/// Transport: Get SOL Configuration Parameters.
pub const CMD_GET_SOL_CONFIG: u8 = 0x22;
/// Completion code: parameter not supported.
const CC_PARAM_NOT_SUPPORTED: u8 = 0x80;
/// The BMC's only channel: LAN, channel 1.
pub const LAN_CHANNEL: u8 = 1;
/// User IDs of the BMC: 1 is the anonymous user (disabled), 2 the configured one, 3 and 4 are empty.
const MAX_USERS: u8 = 4;
/// The configured user's ID.
const USER_ID: u8 = 2;
/// Revision byte of configuration parameter responses.
const PARAM_REVISION: u8 = 0x11;

/// Who the BMC is: its user, address and GUID.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The IPMI user name.
    pub user: String,
    /// The UDP address it listens on.
    pub addr: SocketAddr,
    /// The system GUID (also in RAKP 2).
    pub guid: [u8; 16],
}

impl Identity {
    fn ipv4(&self) -> Ipv4Addr {
        match self.addr.ip() {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        }
    }

    /// A locally administered MAC address made of the IPv4 address.
    fn mac(&self) -> [u8; 6] {
        let [a, b, c, d] = self.ipv4().octets();
        [0x02, 0x00, a, b, c, d]
    }
}

/// Maps the "current channel" (0x0e) to the LAN channel; other channels do not exist.
fn channel(byte: u8) -> Option<u8> {
    match byte & 0x0f {
        0x0e | LAN_CHANNEL => Some(LAN_CHANNEL),
        _ => None,
    }
}

/// Get Channel Info: channel 1 is an 802.3 LAN, multi-session, IPMB-1.0 protocol.
pub fn channel_info(data: &[u8], active_sessions: usize) -> (u8, Vec<u8>) {
    let [byte] = data else {
        return (CC_BAD_LENGTH, Vec::new());
    };
    match channel(*byte) {
        Some(c) => {
            let sessions = 0x80 | (active_sessions.min(0x3f) as u8);
            (CC_OK, vec![c, 0x04, 0x01, sessions, 0xf2, 0x1b, 0x00, 0, 0])
        }
        None => (CC_INVALID_DATA, Vec::new()),
    }
}

/// Get User Access for user 1 to 4 of channel 1.
pub fn user_access(data: &[u8]) -> (u8, Vec<u8>) {
    let [chan, uid] = data else {
        return (CC_BAD_LENGTH, Vec::new());
    };
    let uid = uid & 0x3f;
    if channel(*chan).is_none() || uid == 0 || uid > MAX_USERS {
        return (CC_INVALID_DATA, Vec::new());
    }
    // Link authentication and IPMI messaging enabled, administrator, for the configured user;
    // no access (0x0f) for the others.
    let access = if uid == USER_ID {
        0x30 | PRIV_ADMIN
    } else {
        0x0f
    };
    // One user enabled (bits 7:6 = 01b), user 1 has a fixed (empty) name.
    (CC_OK, vec![MAX_USERS, 0x40 | 1, 1, access])
}

/// Get User Name: the configured user's name for user 2, empty names for the others.
pub fn user_name(data: &[u8], id: &Identity) -> (u8, Vec<u8>) {
    let [uid] = data else {
        return (CC_BAD_LENGTH, Vec::new());
    };
    let uid = uid & 0x3f;
    if uid == 0 || uid > MAX_USERS {
        return (CC_INVALID_DATA, Vec::new());
    }
    let mut name = vec![0u8; 16];
    if uid == USER_ID {
        for (slot, b) in name.iter_mut().zip(id.user.bytes()) {
            *slot = b;
        }
    }
    (CC_OK, name)
}

/// Get LAN Configuration Parameters: every parameter `ipmitool lan print` reads.
pub fn lan_param(data: &[u8], id: &Identity) -> (u8, Vec<u8>) {
    let [chan, param, _set, _block] = data else {
        return (CC_BAD_LENGTH, Vec::new());
    };
    if channel(*chan).is_none() {
        return (CC_INVALID_DATA, Vec::new());
    }
    if chan & 0x80 != 0 {
        return (CC_OK, vec![PARAM_REVISION]);
    }
    let ip = id.ipv4();
    let mask = if ip.is_loopback() {
        Ipv4Addr::new(255, 0, 0, 0)
    } else {
        Ipv4Addr::new(255, 255, 255, 0)
    };
    let value: Vec<u8> = match param {
        0 => vec![0x00],
        // RMCP+ only: no IPMI 1.5 authentication types.
        1 => vec![0x00],
        2 => vec![0; 5],
        3 => ip.octets().to_vec(),
        4 => vec![0x01],
        5 => id.mac().to_vec(),
        6 => mask.octets().to_vec(),
        7 => vec![0x40, 0x40, 0x10],
        10 => vec![0x02],
        11 => vec![0x04],
        12 | 14 => vec![0; 4],
        13 | 15 => vec![0; 6],
        16 => {
            let mut community = b"public".to_vec();
            community.resize(18, 0);
            community
        }
        20 => vec![0x00, 0x00],
        21 => vec![0x00],
        22 => vec![2],
        23 => vec![0x00, 3, 17],
        24 => vec![0x00, (PRIV_ADMIN << 4) | PRIV_ADMIN, 0, 0, 0, 0, 0, 0, 0],
        26 => vec![0; 6],
        _ => return (CC_PARAM_NOT_SUPPORTED, Vec::new()),
    };
    let mut out = vec![PARAM_REVISION];
    out.extend(value);
    (CC_OK, out)
}

/// Get SOL Configuration Parameters: SOL at 115200 bit/s on this channel and port, enabled when the
/// BMC has a serial port to attach.
pub fn sol_param(data: &[u8], id: &Identity, enabled: bool) -> (u8, Vec<u8>) {
    let [chan, param, _set, _block] = data else {
        return (CC_BAD_LENGTH, Vec::new());
    };
    if channel(*chan).is_none() {
        return (CC_INVALID_DATA, Vec::new());
    }
    if chan & 0x80 != 0 {
        return (CC_OK, vec![PARAM_REVISION]);
    }
    let value: Vec<u8> = match param {
        0 => vec![0x00],
        1 => vec![u8::from(enabled)],
        // Forced encryption and authentication, user privilege.
        2 => vec![0xc2],
        // Accumulate 60 ms, send at 96 characters.
        3 => vec![0x0c, 0x60],
        // 7 retries, 500 ms apart.
        4 => vec![0x07, 0x32],
        5 | 6 => vec![0x0a],
        7 => vec![LAN_CHANNEL],
        8 => id.addr.port().to_le_bytes().to_vec(),
        _ => return (CC_PARAM_NOT_SUPPORTED, Vec::new()),
    };
    let mut out = vec![PARAM_REVISION];
    out.extend(value);
    (CC_OK, out)
}

/// Chassis Identify: an interval and an optional "force on" byte.
pub fn chassis_identify(data: &[u8]) -> u8 {
    match data {
        [] | [_] | [_, 0 | 1] => CC_OK,
        [_, _] => CC_INVALID_DATA,
        _ => CC_BAD_LENGTH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Identity {
        Identity {
            user: "ADMIN".into(),
            addr: "10.0.0.7:623".parse().unwrap(),
            guid: [0; 16],
        }
    }

    #[test]
    fn lan_parameters_describe_the_listen_address() {
        let id = id();
        assert_eq!(
            lan_param(&[1, 3, 0, 0], &id),
            (CC_OK, vec![0x11, 10, 0, 0, 7])
        );
        assert_eq!(
            lan_param(&[0x0e, 5, 0, 0], &id),
            (CC_OK, vec![0x11, 2, 0, 10, 0, 0, 7])
        );
        assert_eq!(lan_param(&[1, 24, 0, 0], &id).1.len(), 10);
        assert_eq!(lan_param(&[1, 99, 0, 0], &id).0, CC_PARAM_NOT_SUPPORTED);
        assert_eq!(lan_param(&[2, 3, 0, 0], &id).0, CC_INVALID_DATA);
        assert_eq!(lan_param(&[1, 3], &id).0, CC_BAD_LENGTH);
        assert_eq!(
            sol_param(&[1, 8, 0, 0], &id, true),
            (CC_OK, vec![0x11, 0x6f, 0x02])
        );
        assert_eq!(sol_param(&[1, 1, 0, 0], &id, false), (CC_OK, vec![0x11, 0]));
    }

    #[test]
    fn users_and_channels() {
        let id = id();
        assert_eq!(user_access(&[1, 2]), (CC_OK, vec![4, 0x41, 1, 0x34]));
        assert_eq!(user_access(&[1, 5]).0, CC_INVALID_DATA);
        let (cc, name) = user_name(&[2], &id);
        assert_eq!((cc, &name[..6]), (CC_OK, &b"ADMIN\0"[..]));
        assert_eq!(user_name(&[3], &id), (CC_OK, vec![0; 16]));
        assert_eq!(channel_info(&[1], 2).1[..4], [1, 0x04, 0x01, 0x82]);
        assert_eq!(channel_info(&[3], 0).0, CC_INVALID_DATA);
        assert_eq!(chassis_identify(&[]), CC_OK);
        assert_eq!(chassis_identify(&[15, 7]), CC_INVALID_DATA);
    }
}

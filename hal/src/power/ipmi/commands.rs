//! The IPMI commands of a power-control session: channel authentication capabilities, cipher suites,
//! session privilege and close, device ID, chassis status and chassis control.

use super::crypto::CipherSuite;
use super::wire::WireError;

/// Network function of chassis commands.
pub const NETFN_CHASSIS: u8 = 0x00;
/// Network function of application commands.
pub const NETFN_APP: u8 = 0x06;
/// App: Get Device ID.
pub const CMD_GET_DEVICE_ID: u8 = 0x01;
/// App: Get Channel Authentication Capabilities.
pub const CMD_GET_CHANNEL_AUTH_CAPS: u8 = 0x38;
/// App: Set Session Privilege Level.
pub const CMD_SET_SESSION_PRIVILEGE: u8 = 0x3b;
/// App: Close Session.
pub const CMD_CLOSE_SESSION: u8 = 0x3c;
/// App: Get Channel Cipher Suites.
pub const CMD_GET_CHANNEL_CIPHER_SUITES: u8 = 0x54;
/// Chassis: Get Chassis Status.
pub const CMD_GET_CHASSIS_STATUS: u8 = 0x01;
/// Chassis: Chassis Control.
pub const CMD_CHASSIS_CONTROL: u8 = 0x02;
/// Completion code: success.
pub const CC_OK: u8 = 0x00;
/// Completion code: invalid session ID.
pub const CC_INVALID_SESSION: u8 = 0x87;
/// Completion code: invalid command.
pub const CC_INVALID_COMMAND: u8 = 0xc1;
/// Completion code: request data length invalid.
pub const CC_BAD_LENGTH: u8 = 0xc7;
/// Completion code: invalid data field in request.
pub const CC_INVALID_DATA: u8 = 0xcc;
/// Completion code: unspecified error.
pub const CC_UNSPECIFIED: u8 = 0xff;
/// Privilege level Administrator.
pub const PRIV_ADMIN: u8 = 0x04;
/// "This channel" in channel-number fields.
pub const CHANNEL_CURRENT: u8 = 0x0e;

/// A human-readable completion code.
pub fn completion_text(cc: u8) -> &'static str {
    match cc {
        0x00 => "command completed normally",
        0x87 => "invalid session ID",
        0xc0 => "node busy",
        0xc1 => "invalid command",
        0xc3 => "timeout while processing command",
        0xc7 => "request data length invalid",
        0xcc => "invalid data field in request",
        0xd4 => "insufficient privilege level",
        0xd5 => "command not supported in present state",
        _ => "unspecified error",
    }
}

/// Chassis Control operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChassisControl {
    /// Power down.
    PowerDown,
    /// Power up.
    PowerUp,
    /// Power cycle.
    PowerCycle,
    /// Hard reset.
    HardReset,
    /// Soft shutdown via ACPI.
    SoftShutdown,
}

impl ChassisControl {
    /// The request byte.
    pub fn code(self) -> u8 {
        match self {
            ChassisControl::PowerDown => 0,
            ChassisControl::PowerUp => 1,
            ChassisControl::PowerCycle => 2,
            ChassisControl::HardReset => 3,
            ChassisControl::SoftShutdown => 5,
        }
    }

    /// The operation of a request byte.
    pub fn from_code(code: u8) -> Option<Self> {
        match code & 0x0f {
            0 => Some(ChassisControl::PowerDown),
            1 => Some(ChassisControl::PowerUp),
            2 => Some(ChassisControl::PowerCycle),
            3 => Some(ChassisControl::HardReset),
            5 => Some(ChassisControl::SoftShutdown),
            _ => None,
        }
    }
}

/// Get Chassis Status response data (after the completion code).
pub fn chassis_status_data(power_on: bool) -> Vec<u8> {
    // Current power state, last power event, misc chassis state, front panel button capabilities.
    vec![u8::from(power_on) | 0x40, 0x00, 0x00, 0x00]
}

/// Reads "system power is on" from Get Chassis Status response data.
pub fn parse_chassis_status(data: &[u8]) -> Result<bool, WireError> {
    data.first()
        .map(|b| b & 0x01 != 0)
        .ok_or(WireError::Truncated)
}

/// Get Channel Authentication Capabilities response data for an RMCP+-capable channel with user names.
pub fn auth_caps_data(channel: u8, v2: bool) -> Vec<u8> {
    // Auth types: bit 7 = v2.0 extended data present, bit 0 = none ... we only support RMCP+ logins.
    let types = if v2 { 0x80 } else { 0x00 };
    // Non-null user names, per-message and user-level authentication enabled.
    let status = 0x04;
    // Extended capabilities: IPMI v2.0 connections supported.
    let ext = if v2 { 0x02 } else { 0x00 };
    vec![channel, types, status, ext, 0, 0, 0, 0]
}

/// Reads "IPMI v2.0 / RMCP+ supported" from Get Channel Authentication Capabilities response data.
pub fn parse_auth_caps_v2(data: &[u8]) -> Result<bool, WireError> {
    if data.len() < 8 {
        return Err(WireError::Truncated);
    }
    Ok(data[1] & 0x80 != 0 && data[3] & 0x02 != 0)
}

/// The cipher suite records of Get Channel Cipher Suites ("list by cipher suite" format).
pub fn cipher_suite_records(suites: &[CipherSuite]) -> Vec<u8> {
    let mut b = Vec::new();
    for s in suites {
        let (a, i, c) = s.algorithms();
        b.extend_from_slice(&[0xc0, s.id(), a, 0x40 | i, 0x80 | c]);
    }
    b
}

/// Parses cipher suite records, keeping the suite IDs of standard records.
pub fn parse_cipher_suite_records(data: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut ids = Vec::new();
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            0xc0 => {
                ids.push(*data.get(i + 1).ok_or(WireError::Truncated)?);
                i += 2;
            }
            0xc1 => {
                ids.push(*data.get(i + 1).ok_or(WireError::Truncated)?);
                i += 5;
            }
            _ => return Err(WireError::Unsupported("cipher suite record")),
        }
        while i < data.len() && data[i] & 0xc0 != 0xc0 {
            i += 1;
        }
    }
    Ok(ids)
}

/// Get Device ID response data of the lab BMC.
pub fn device_id_data() -> Vec<u8> {
    // Device 0x20, revision 1, firmware 1.00, IPMI 2.0, chassis device and SDR repository, no
    // manufacturer.
    vec![0x20, 0x01, 0x01, 0x00, 0x02, 0x82, 0, 0, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_suite_records_round_trip() {
        let recs = cipher_suite_records(&CipherSuite::PREFERRED);
        assert_eq!(recs, vec![0xc0, 17, 3, 0x44, 0x81, 0xc0, 3, 1, 0x41, 0x81]);
        assert_eq!(parse_cipher_suite_records(&recs), Ok(vec![17, 3]));
        // An OEM record (id + IANA + algorithms) is skipped.
        let mut oem = vec![0xc1, 0x40, 1, 2, 3, 0x01, 0x41, 0x81];
        oem.extend(&recs);
        assert_eq!(parse_cipher_suite_records(&oem), Ok(vec![0x40, 17, 3]));
    }

    #[test]
    fn status_and_capabilities_parse() {
        assert_eq!(parse_chassis_status(&chassis_status_data(true)), Ok(true));
        assert_eq!(parse_chassis_status(&chassis_status_data(false)), Ok(false));
        assert_eq!(parse_auth_caps_v2(&auth_caps_data(1, true)), Ok(true));
        assert_eq!(parse_auth_caps_v2(&auth_caps_data(1, false)), Ok(false));
        for c in [
            ChassisControl::PowerDown,
            ChassisControl::PowerUp,
            ChassisControl::PowerCycle,
            ChassisControl::HardReset,
            ChassisControl::SoftShutdown,
        ] {
            assert_eq!(ChassisControl::from_code(c.code()), Some(c));
        }
    }
}

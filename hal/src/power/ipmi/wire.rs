//! RMCP framing: the RMCP/ASF header, IPMI 1.5 and 2.0 session headers and trailers, and LAN-format IPMI
//! messages with their checksums.

use super::crypto::{SessionKeys, random_bytes};

/// RMCP version 1.0.
pub const RMCP_VERSION: u8 = 0x06;
/// RMCP class of ASF messages (presence ping/pong).
pub const CLASS_ASF: u8 = 0x06;
/// RMCP class of IPMI messages.
pub const CLASS_IPMI: u8 = 0x07;
/// The ASF IANA enterprise number.
pub const ASF_IANA: u32 = 4542;
/// Session AuthType of an IPMI 2.0 (RMCP+) packet.
pub const AUTHTYPE_RMCP_PLUS: u8 = 0x06;
/// Payload type: an IPMI message.
pub const PAYLOAD_IPMI: u8 = 0x00;
/// Payload type: RMCP+ Open Session Request.
pub const PAYLOAD_OPEN_SESSION_REQUEST: u8 = 0x10;
/// Payload type: RMCP+ Open Session Response.
pub const PAYLOAD_OPEN_SESSION_RESPONSE: u8 = 0x11;
/// Payload type: RAKP Message 1.
pub const PAYLOAD_RAKP1: u8 = 0x12;
/// Payload type: RAKP Message 2.
pub const PAYLOAD_RAKP2: u8 = 0x13;
/// Payload type: RAKP Message 3.
pub const PAYLOAD_RAKP3: u8 = 0x14;
/// Payload type: RAKP Message 4.
pub const PAYLOAD_RAKP4: u8 = 0x15;
/// The BMC's slave address.
pub const BMC_ADDR: u8 = 0x20;
/// The remote console's software ID.
pub const REMOTE_SWID: u8 = 0x81;

/// A malformed or unverifiable packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The packet ended before a field.
    #[error("truncated packet")]
    Truncated,
    /// A header field has a value this implementation does not speak.
    #[error("unsupported {0}")]
    Unsupported(&'static str),
    /// A message checksum is wrong.
    #[error("bad IPMI message checksum")]
    Checksum,
    /// The session AuthCode does not match.
    #[error("bad session integrity code")]
    Integrity,
    /// The payload did not decrypt.
    #[error("payload does not decrypt")]
    Decrypt,
    /// An authenticated or encrypted packet arrived without session keys.
    #[error("secured packet outside a session")]
    NoSession,
}

/// A decoded RMCP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// An ASF presence ping with its message tag.
    Ping(u8),
    /// An ASF presence pong with its message tag and whether IPMI is supported.
    Pong(u8, bool),
    /// An IPMI 1.5 packet without authentication (pre-session).
    V15(V15Packet),
    /// An IPMI 2.0 (RMCP+) packet, payload still sealed.
    V2(V2Packet),
}

/// An IPMI 1.5 packet of AuthType none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V15Packet {
    /// Session sequence number.
    pub seq: u32,
    /// Session ID (0 before a session).
    pub session_id: u32,
    /// The IPMI message.
    pub message: Vec<u8>,
}

/// An IPMI 2.0 packet as received: header fields and the still encrypted/authenticated bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Packet {
    /// Payload type (without the encrypted/authenticated bits).
    pub payload_type: u8,
    /// The payload is encrypted.
    pub encrypted: bool,
    /// The packet carries an AuthCode.
    pub authenticated: bool,
    /// The receiver's session ID.
    pub session_id: u32,
    /// Session sequence number.
    pub seq: u32,
    raw: Vec<u8>,
    payload_start: usize,
    payload_len: usize,
}

impl V2Packet {
    /// Checks the AuthCode and decrypts the payload with `keys` (needed when the packet is secured).
    pub fn open(&self, keys: Option<&SessionKeys>) -> Result<Vec<u8>, WireError> {
        let payload = &self.raw[self.payload_start..self.payload_start + self.payload_len];
        if !self.authenticated && !self.encrypted {
            return Ok(payload.to_vec());
        }
        let keys = keys.ok_or(WireError::NoSession)?;
        if self.authenticated {
            let n = keys.suite.icv_len();
            if self.raw.len() < self.payload_start + self.payload_len + 2 + n {
                return Err(WireError::Truncated);
            }
            let (signed, code) = self.raw[4..].split_at(self.raw.len() - 4 - n);
            if keys.auth_code(signed) != code {
                return Err(WireError::Integrity);
            }
        }
        if self.encrypted {
            keys.decrypt(payload).ok_or(WireError::Decrypt)
        } else {
            Ok(payload.to_vec())
        }
    }
}

/// Parses one RMCP datagram.
pub fn decode(buf: &[u8]) -> Result<Packet, WireError> {
    if buf.len() < 4 {
        return Err(WireError::Truncated);
    }
    if buf[0] != RMCP_VERSION {
        return Err(WireError::Unsupported("RMCP version"));
    }
    match buf[3] {
        CLASS_ASF => decode_asf(&buf[4..]),
        CLASS_IPMI => {
            let body = &buf[4..];
            match body.first() {
                Some(&AUTHTYPE_RMCP_PLUS) => decode_v2(buf),
                Some(0x00) => decode_v15(body),
                Some(_) => Err(WireError::Unsupported("IPMI 1.5 authentication type")),
                None => Err(WireError::Truncated),
            }
        }
        _ => Err(WireError::Unsupported("RMCP class")),
    }
}

fn decode_asf(b: &[u8]) -> Result<Packet, WireError> {
    if b.len() < 8 {
        return Err(WireError::Truncated);
    }
    if u32::from_be_bytes([b[0], b[1], b[2], b[3]]) != ASF_IANA {
        return Err(WireError::Unsupported("ASF IANA"));
    }
    match b[4] {
        0x80 => Ok(Packet::Ping(b[5])),
        0x40 if b.len() >= 8 + 16 => Ok(Packet::Pong(b[5], b[8 + 8] & 0x80 != 0)),
        0x40 => Err(WireError::Truncated),
        _ => Err(WireError::Unsupported("ASF message type")),
    }
}

fn decode_v15(b: &[u8]) -> Result<Packet, WireError> {
    if b.len() < 10 {
        return Err(WireError::Truncated);
    }
    let seq = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
    let session_id = u32::from_le_bytes([b[5], b[6], b[7], b[8]]);
    let len = b[9] as usize;
    let message = b.get(10..10 + len).ok_or(WireError::Truncated)?.to_vec();
    Ok(Packet::V15(V15Packet {
        seq,
        session_id,
        message,
    }))
}

fn decode_v2(buf: &[u8]) -> Result<Packet, WireError> {
    if buf.len() < 16 {
        return Err(WireError::Truncated);
    }
    let pt = buf[5];
    if pt & 0x3f == 0x02 {
        return Err(WireError::Unsupported("OEM payload"));
    }
    let payload_len = u16::from_le_bytes([buf[14], buf[15]]) as usize;
    if buf.len() < 16 + payload_len {
        return Err(WireError::Truncated);
    }
    Ok(Packet::V2(V2Packet {
        payload_type: pt & 0x3f,
        encrypted: pt & 0x80 != 0,
        authenticated: pt & 0x40 != 0,
        session_id: u32::from_le_bytes([buf[6], buf[7], buf[8], buf[9]]),
        seq: u32::from_le_bytes([buf[10], buf[11], buf[12], buf[13]]),
        raw: buf.to_vec(),
        payload_start: 16,
        payload_len,
    }))
}

fn rmcp_header(class: u8) -> Vec<u8> {
    vec![RMCP_VERSION, 0x00, 0xff, class]
}

/// Encodes an ASF presence ping.
pub fn encode_ping(tag: u8) -> Vec<u8> {
    let mut b = rmcp_header(CLASS_ASF);
    b.extend_from_slice(&ASF_IANA.to_be_bytes());
    b.extend_from_slice(&[0x80, tag, 0x00, 0x00]);
    b
}

/// Encodes an ASF presence pong announcing IPMI support.
pub fn encode_pong(tag: u8) -> Vec<u8> {
    let mut b = rmcp_header(CLASS_ASF);
    b.extend_from_slice(&ASF_IANA.to_be_bytes());
    b.extend_from_slice(&[0x40, tag, 0x00, 0x10]);
    b.extend_from_slice(&ASF_IANA.to_be_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&[0x81, 0x00, 0, 0, 0, 0, 0, 0]);
    b
}

/// Encodes an IPMI 1.5 packet of AuthType none.
pub fn encode_v15(seq: u32, session_id: u32, message: &[u8]) -> Vec<u8> {
    let mut b = rmcp_header(CLASS_IPMI);
    b.push(0x00);
    b.extend_from_slice(&seq.to_le_bytes());
    b.extend_from_slice(&session_id.to_le_bytes());
    b.push(message.len() as u8);
    b.extend_from_slice(message);
    b
}

/// Encodes an IPMI 2.0 packet; with `keys` the payload is encrypted and the packet authenticated.
pub fn encode_v2(
    payload_type: u8,
    session_id: u32,
    seq: u32,
    payload: &[u8],
    keys: Option<&SessionKeys>,
) -> Vec<u8> {
    let mut b = rmcp_header(CLASS_IPMI);
    let flags = if keys.is_some() { 0xc0 } else { 0x00 };
    b.push(AUTHTYPE_RMCP_PLUS);
    b.push(payload_type | flags);
    b.extend_from_slice(&session_id.to_le_bytes());
    b.extend_from_slice(&seq.to_le_bytes());
    let body = match keys {
        Some(k) => k.encrypt(random_bytes::<16>(), payload),
        None => payload.to_vec(),
    };
    b.extend_from_slice(&(body.len() as u16).to_le_bytes());
    b.extend_from_slice(&body);
    if let Some(k) = keys {
        let covered = 12 + body.len() + 2;
        let pad = (4 - covered % 4) % 4;
        b.extend(std::iter::repeat_n(0xff, pad));
        b.push(pad as u8);
        b.push(0x07);
        let code = k.auth_code(&b[4..]);
        b.extend_from_slice(&code);
    }
    b
}

/// The two's-complement checksum of IPMI messages.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |a, &b| a.wrapping_add(b))
        .wrapping_neg()
}

/// An IPMI request message (LAN format: remote console to BMC, LUN 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Network function (even: request).
    pub netfn: u8,
    /// Command number.
    pub cmd: u8,
    /// Request sequence number (6 bits).
    pub rq_seq: u8,
    /// Request data.
    pub data: Vec<u8>,
}

impl Request {
    /// Encodes `rsAddr netFn/LUN chk1 rqAddr rqSeq/LUN cmd data chk2`.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = vec![BMC_ADDR, self.netfn << 2];
        m.push(checksum(&m));
        m.extend_from_slice(&[REMOTE_SWID, (self.rq_seq & 0x3f) << 2, self.cmd]);
        m.extend_from_slice(&self.data);
        m.push(checksum(&m[3..]));
        m
    }

    /// Decodes and checks a request message.
    pub fn decode(m: &[u8]) -> Result<Self, WireError> {
        let (netfn, rq_seq, cmd, data) = decode_message(m)?;
        Ok(Request {
            netfn,
            cmd,
            rq_seq,
            data,
        })
    }

    /// A response to this request with a completion code and data.
    pub fn respond(&self, completion: u8, data: Vec<u8>) -> Response {
        Response {
            netfn: self.netfn | 1,
            cmd: self.cmd,
            rq_seq: self.rq_seq,
            completion,
            data,
        }
    }
}

/// An IPMI response message (LAN format: BMC to remote console).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Network function (odd: response).
    pub netfn: u8,
    /// Command number.
    pub cmd: u8,
    /// The request's sequence number.
    pub rq_seq: u8,
    /// Completion code (0 = success).
    pub completion: u8,
    /// Response data after the completion code.
    pub data: Vec<u8>,
}

impl Response {
    /// Encodes `rqAddr netFn/LUN chk1 rsAddr rqSeq/LUN cmd cc data chk2`.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = vec![REMOTE_SWID, self.netfn << 2];
        m.push(checksum(&m));
        m.extend_from_slice(&[
            BMC_ADDR,
            (self.rq_seq & 0x3f) << 2,
            self.cmd,
            self.completion,
        ]);
        m.extend_from_slice(&self.data);
        m.push(checksum(&m[3..]));
        m
    }

    /// Decodes and checks a response message.
    pub fn decode(m: &[u8]) -> Result<Self, WireError> {
        let (netfn, rq_seq, cmd, mut data) = decode_message(m)?;
        if data.is_empty() {
            return Err(WireError::Truncated);
        }
        let completion = data.remove(0);
        Ok(Response {
            netfn,
            cmd,
            rq_seq,
            completion,
            data,
        })
    }
}

fn decode_message(m: &[u8]) -> Result<(u8, u8, u8, Vec<u8>), WireError> {
    if m.len() < 7 {
        return Err(WireError::Truncated);
    }
    if checksum(&m[..2]) != m[2] || checksum(&m[3..m.len() - 1]) != m[m.len() - 1] {
        return Err(WireError::Checksum);
    }
    Ok((m[1] >> 2, m[4] >> 2, m[5], m[6..m.len() - 1].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::super::crypto::CipherSuite;
    use super::*;

    #[test]
    fn request_round_trips_and_matches_ipmitool_bytes() {
        // Get Channel Authentication Capabilities as ipmitool sends it (channel 0x0E | 0x80, admin).
        let r = Request {
            netfn: 0x06,
            cmd: 0x38,
            rq_seq: 0,
            data: vec![0x8e, 0x04],
        };
        let m = r.encode();
        assert_eq!(
            m,
            vec![0x20, 0x18, 0xc8, 0x81, 0x00, 0x38, 0x8e, 0x04, 0xb5]
        );
        assert_eq!(Request::decode(&m), Ok(r));
    }

    #[test]
    fn response_round_trips_and_checksums_are_checked() {
        let r = Response {
            netfn: 0x01,
            cmd: 0x01,
            rq_seq: 5,
            completion: 0,
            data: vec![1, 0, 0x40],
        };
        let mut m = r.encode();
        assert_eq!(Response::decode(&m), Ok(r));
        m[7] ^= 1;
        assert_eq!(Response::decode(&m), Err(WireError::Checksum));
    }

    #[test]
    fn v15_and_ping_round_trip() {
        let p = encode_v15(0, 0, &[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(
            decode(&p),
            Ok(Packet::V15(V15Packet {
                seq: 0,
                session_id: 0,
                message: vec![1, 2, 3, 4, 5, 6, 7]
            }))
        );
        assert_eq!(decode(&encode_ping(7)), Ok(Packet::Ping(7)));
        assert_eq!(decode(&encode_pong(7)), Ok(Packet::Pong(7, true)));
    }

    #[test]
    fn secured_v2_packets_round_trip_and_detect_tampering() {
        for suite in CipherSuite::PREFERRED {
            let keys = SessionKeys::derive(suite, b"secret", &[1; 16], &[2; 16], 0x14, b"ADMIN");
            for len in 0..20 {
                let payload: Vec<u8> = (0..len).collect();
                let p = encode_v2(PAYLOAD_IPMI, 0xa0a2a3a4, 9, &payload, Some(&keys));
                // The signed range (AuthType to Next Header) is a multiple of 4.
                assert_eq!((p.len() - 4 - suite.icv_len()) % 4, 0);
                let Ok(Packet::V2(v2)) = decode(&p) else {
                    panic!("not v2")
                };
                assert!(v2.encrypted && v2.authenticated);
                assert_eq!((v2.session_id, v2.seq), (0xa0a2a3a4, 9));
                assert_eq!(v2.open(Some(&keys)), Ok(payload));
                assert_eq!(v2.open(None), Err(WireError::NoSession));
                let mut bad = p.clone();
                bad[20] ^= 0x55;
                let Ok(Packet::V2(v2)) = decode(&bad) else {
                    panic!("not v2")
                };
                assert_eq!(v2.open(Some(&keys)), Err(WireError::Integrity));
            }
        }
    }

    #[test]
    fn plain_v2_packets_round_trip() {
        let p = encode_v2(PAYLOAD_RAKP1, 0x1234, 0, &[5; 33], None);
        let Ok(Packet::V2(v2)) = decode(&p) else {
            panic!("not v2")
        };
        assert_eq!(v2.payload_type, PAYLOAD_RAKP1);
        assert_eq!(v2.open(None), Ok(vec![5; 33]));
        assert_eq!(decode(&p[..20]), Err(WireError::Truncated));
    }
}

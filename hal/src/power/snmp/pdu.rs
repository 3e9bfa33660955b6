//! SNMP PDUs (RFC 3416): the request and response kinds, variable bindings and their values, shared by
//! the client and the lab's PDU agent.

use super::ber::{self, BerError, Oid, Reader};

/// Most variable bindings one PDU may carry.
pub const MAX_VARBINDS: usize = 64;
/// Longest OCTET STRING value kept.
pub const MAX_OCTETS: usize = 4096;

/// The PDU kinds this code speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PduKind {
    /// GetRequest-PDU.
    Get,
    /// GetNextRequest-PDU.
    GetNext,
    /// Response-PDU.
    Response,
    /// SetRequest-PDU.
    Set,
    /// Report-PDU (SNMPv3 discovery and errors).
    Report,
}

impl PduKind {
    /// The context tag.
    pub fn tag(self) -> u8 {
        match self {
            PduKind::Get => 0xa0,
            PduKind::GetNext => 0xa1,
            PduKind::Response => 0xa2,
            PduKind::Set => 0xa3,
            PduKind::Report => 0xa8,
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        [
            PduKind::Get,
            PduKind::GetNext,
            PduKind::Response,
            PduKind::Set,
            PduKind::Report,
        ]
        .into_iter()
        .find(|k| k.tag() == tag)
    }
}

/// A variable's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// INTEGER.
    Integer(i64),
    /// OCTET STRING.
    Octets(Vec<u8>),
    /// NULL (the value of every binding in a Get).
    Null,
    /// OBJECT IDENTIFIER.
    Oid(Oid),
    /// Counter32, Gauge32, TimeTicks, Counter64 or IpAddress: the tag and the unsigned value.
    Unsigned(u8, u64),
    /// noSuchObject, noSuchInstance or endOfMibView: the tag.
    Exception(u8),
}

/// Tag of TimeTicks.
pub const TIMETICKS: u8 = 0x43;
/// Tag of Counter32.
pub const COUNTER32: u8 = 0x41;
/// Tag of noSuchObject.
pub const NO_SUCH_OBJECT: u8 = 0x80;
/// Tag of noSuchInstance.
pub const NO_SUCH_INSTANCE: u8 = 0x81;
/// Tag of endOfMibView.
pub const END_OF_MIB_VIEW: u8 = 0x82;

impl Value {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            Value::Integer(v) => ber::put_integer(out, *v),
            Value::Octets(b) => ber::put(out, ber::OCTET_STRING, b),
            Value::Null => ber::put(out, ber::NULL, &[]),
            Value::Oid(o) => ber::put_oid(out, o),
            Value::Unsigned(0x40, v) => ber::put(out, 0x40, &(*v as u32).to_be_bytes()),
            Value::Unsigned(tag, v) => ber::put(out, *tag, &ber::unsigned_content(*v)),
            Value::Exception(tag) => ber::put(out, *tag, &[]),
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Value, BerError> {
        let (tag, content) = r.any()?;
        Ok(match tag {
            ber::INTEGER => Value::Integer(ber::decode_integer(content)?),
            ber::OCTET_STRING | 0x44 => {
                if content.len() > MAX_OCTETS {
                    return Err(BerError::Length("octet string over 4096 bytes"));
                }
                Value::Octets(content.to_vec())
            }
            ber::NULL => Value::Null,
            ber::OID => Value::Oid(ber::decode_oid(content)?),
            0x40 if content.len() == 4 => Value::Unsigned(
                tag,
                u64::from(u32::from_be_bytes([
                    content[0], content[1], content[2], content[3],
                ])),
            ),
            0x41..=0x43 | 0x46 => Value::Unsigned(tag, ber::decode_unsigned(content)?),
            0x80..=0x82 => Value::Exception(tag),
            got => {
                return Err(BerError::Tag {
                    expected: ber::INTEGER,
                    got,
                });
            }
        })
    }
}

/// An SNMP PDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    /// Its kind.
    pub kind: PduKind,
    /// request-id.
    pub request_id: i32,
    /// error-status (0 = noError).
    pub error_status: i64,
    /// error-index (1-based binding, 0 = none).
    pub error_index: i64,
    /// The variable bindings.
    pub bindings: Vec<(Oid, Value)>,
}

/// error-status noSuchName (SNMPv1; v2c agents answer exceptions instead).
pub const ERR_NO_SUCH_NAME: i64 = 2;
/// error-status badValue.
pub const ERR_BAD_VALUE: i64 = 3;
/// error-status genErr.
pub const ERR_GEN_ERR: i64 = 5;
/// error-status notWritable.
pub const ERR_NOT_WRITABLE: i64 = 17;
/// error-status wrongValue.
pub const ERR_WRONG_VALUE: i64 = 10;
/// error-status wrongType.
pub const ERR_WRONG_TYPE: i64 = 7;
/// error-status tooBig.
pub const ERR_TOO_BIG: i64 = 1;

/// The name of an error-status.
pub fn error_name(status: i64) -> &'static str {
    match status {
        0 => "noError",
        1 => "tooBig",
        2 => "noSuchName",
        3 => "badValue",
        4 => "readOnly",
        5 => "genErr",
        6 => "noAccess",
        7 => "wrongType",
        8 => "wrongLength",
        9 => "wrongEncoding",
        10 => "wrongValue",
        11 => "noCreation",
        12 => "inconsistentValue",
        13 => "resourceUnavailable",
        14 => "commitFailed",
        15 => "undoFailed",
        16 => "authorizationError",
        17 => "notWritable",
        18 => "inconsistentName",
        _ => "unknown error",
    }
}

impl Pdu {
    /// A request of `kind` for `bindings`.
    pub fn request(kind: PduKind, request_id: i32, bindings: Vec<(Oid, Value)>) -> Pdu {
        Pdu {
            kind,
            request_id,
            error_status: 0,
            error_index: 0,
            bindings,
        }
    }

    /// Appends the PDU's BER.
    pub fn put(&self, out: &mut Vec<u8>) {
        ber::put_constructed(out, self.kind.tag(), |c| {
            ber::put_integer(c, i64::from(self.request_id));
            ber::put_integer(c, self.error_status);
            ber::put_integer(c, self.error_index);
            ber::put_constructed(c, ber::SEQUENCE, |list| {
                for (oid, value) in &self.bindings {
                    ber::put_constructed(list, ber::SEQUENCE, |vb| {
                        ber::put_oid(vb, oid);
                        value.put(vb);
                    });
                }
            });
        });
    }

    /// Reads a PDU (at most [`MAX_VARBINDS`] bindings).
    pub fn read(r: &mut Reader<'_>) -> Result<Pdu, BerError> {
        let tag = r.peek_tag()?;
        let kind = PduKind::from_tag(tag).ok_or(BerError::Tag {
            expected: PduKind::Get.tag(),
            got: tag,
        })?;
        let mut body = r.constructed(tag)?;
        let request_id = i32::try_from(body.integer()?).map_err(|_| BerError::Integer)?;
        let error_status = body.integer()?;
        let error_index = body.integer()?;
        let mut list = body.sequence()?;
        body.finish()?;
        let mut bindings = Vec::new();
        while !list.is_empty() {
            if bindings.len() == MAX_VARBINDS {
                return Err(BerError::Length("more than 64 variable bindings"));
            }
            let mut vb = list.sequence()?;
            let oid = vb.oid()?;
            let value = Value::read(&mut vb)?;
            vb.finish()?;
            bindings.push((oid, value));
        }
        Ok(Pdu {
            kind,
            request_id,
            error_status,
            error_index,
            bindings,
        })
    }
}

/// An SNMPv1/v2c message: version (0 = v1, 1 = v2c), community and PDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommunityMessage {
    /// msgVersion: 0 for v1, 1 for v2c.
    pub version: i64,
    /// The community string.
    pub community: Vec<u8>,
    /// The PDU.
    pub pdu: Pdu,
}

impl CommunityMessage {
    /// The message's BER.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        ber::put_constructed(&mut out, ber::SEQUENCE, |c| {
            ber::put_integer(c, self.version);
            ber::put(c, ber::OCTET_STRING, &self.community);
            self.pdu.put(c);
        });
        out
    }

    /// Decodes a whole datagram.
    pub fn decode(data: &[u8]) -> Result<CommunityMessage, BerError> {
        let mut top = Reader::message(data)?;
        let mut r = top.sequence()?;
        top.finish()?;
        let version = r.integer()?;
        let community = r.octets()?;
        if community.len() > 255 {
            return Err(BerError::Length("community over 255 bytes"));
        }
        let pdu = Pdu::read(&mut r)?;
        r.finish()?;
        Ok(CommunityMessage {
            version,
            community: community.to_vec(),
            pdu,
        })
    }
}

/// The msgVersion of a datagram (0, 1 or 3), read without decoding the rest.
pub fn message_version(data: &[u8]) -> Result<i64, BerError> {
    let mut top = Reader::message(data)?;
    top.sequence()?.integer()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> CommunityMessage {
        let oid = Oid::parse("1.3.6.1.4.1.318.1.1.4.4.2.1.3.2").unwrap();
        CommunityMessage {
            version: 1,
            community: b"private".to_vec(),
            pdu: Pdu::request(
                PduKind::Set,
                0x1234,
                vec![
                    (oid.clone(), Value::Integer(3)),
                    (oid.clone(), Value::Octets(b"x".to_vec())),
                    (oid.clone(), Value::Unsigned(TIMETICKS, 4_000_000_000)),
                    (oid.clone(), Value::Unsigned(0x40, 0x0a0b0c0d)),
                    (oid, Value::Exception(NO_SUCH_INSTANCE)),
                ],
            ),
        }
    }

    #[test]
    fn messages_round_trip() {
        let m = sample();
        let bytes = m.encode();
        assert_eq!(CommunityMessage::decode(&bytes), Ok(m));
        assert_eq!(message_version(&bytes), Ok(1));
    }

    #[test]
    fn too_many_bindings_are_refused() {
        let oid = Oid::parse("1.3.6.1.2.1.1.1.0").unwrap();
        let mut m = sample();
        m.pdu.bindings = vec![(oid, Value::Null); MAX_VARBINDS + 1];
        assert!(CommunityMessage::decode(&m.encode()).is_err());
    }

    proptest! {
        /// Every prefix and every single-byte corruption of a valid message decodes or fails, never panics.
        #[test]
        fn corrupted_messages_never_panic(pos in 0usize..200, byte in any::<u8>(), cut in 0usize..200) {
            let mut bytes = sample().encode();
            let pos = pos % bytes.len();
            bytes[pos] = byte;
            let _ = CommunityMessage::decode(&bytes);
            let cut = cut.min(bytes.len());
            let _ = CommunityMessage::decode(&bytes[..cut]);
        }
    }
}

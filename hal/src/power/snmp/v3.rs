//! SNMPv3 messages (RFC 3412) with USM security parameters (RFC 3414): encoding, authentication and
//! encryption on the way out, and the checks on the way in, shared by the client and the lab agent.

use super::ber::{self, BerError, Oid, Reader};
use super::pdu::Pdu;
use super::usm::{LocalKeys, aes_cfb};

/// msgFlags bit: authenticated.
pub const FLAG_AUTH: u8 = 0x01;
/// msgFlags bit: encrypted.
pub const FLAG_PRIV: u8 = 0x02;
/// msgFlags bit: a Report is expected on errors.
pub const FLAG_REPORTABLE: u8 = 0x04;
/// msgSecurityModel of USM.
const USM: i64 = 3;
/// Longest engine ID (RFC 3411: 5 to 32 bytes).
pub const MAX_ENGINE_ID: usize = 32;
/// Longest user name (RFC 3414: 32).
pub const MAX_USER: usize = 32;

/// usmStatsUnsupportedSecLevels.0
pub const USM_STATS_UNSUPPORTED_SEC_LEVELS: u32 = 1;
/// usmStatsNotInTimeWindows.0
pub const USM_STATS_NOT_IN_TIME_WINDOWS: u32 = 2;
/// usmStatsUnknownUserNames.0
pub const USM_STATS_UNKNOWN_USER_NAMES: u32 = 3;
/// usmStatsUnknownEngineIDs.0
pub const USM_STATS_UNKNOWN_ENGINE_IDS: u32 = 4;
/// usmStatsWrongDigests.0
pub const USM_STATS_WRONG_DIGESTS: u32 = 5;
/// usmStatsDecryptionErrors.0
pub const USM_STATS_DECRYPTION_ERRORS: u32 = 6;

/// The OID `usmStats<counter>.0` (1.3.6.1.6.3.15.1.1.<counter>.0).
pub fn usm_stats_oid(counter: u32) -> Oid {
    Oid(vec![1, 3, 6, 1, 6, 3, 15, 1, 1, counter, 0])
}

/// The counter of a `usmStats*` OID, if it is one.
pub fn usm_stats_counter(oid: &Oid) -> Option<u32> {
    match oid.0.as_slice() {
        [1, 3, 6, 1, 6, 3, 15, 1, 1, counter, 0] => Some(*counter),
        _ => None,
    }
}

/// Why a v3 message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V3Error {
    /// Not well-formed.
    #[error("malformed SNMPv3 message: {0}")]
    Ber(#[from] BerError),
    /// A field out of its range (version, security model, flags, sizes).
    #[error("invalid SNMPv3 message: {0}")]
    Invalid(&'static str),
    /// The HMAC does not match.
    #[error("wrong digest")]
    WrongDigest,
    /// The message is encrypted and the keys have none, or the data cannot be decrypted.
    #[error("decryption error")]
    Decryption,
}

/// USM security parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsmParams {
    /// msgAuthoritativeEngineID.
    pub engine_id: Vec<u8>,
    /// msgAuthoritativeEngineBoots.
    pub boots: u32,
    /// msgAuthoritativeEngineTime.
    pub time: u32,
    /// msgUserName.
    pub user: Vec<u8>,
}

/// A scoped PDU: the context and the PDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopedPdu {
    /// contextEngineID.
    pub context_engine_id: Vec<u8>,
    /// contextName.
    pub context_name: Vec<u8>,
    /// The PDU.
    pub pdu: Pdu,
}

impl ScopedPdu {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        ber::put_constructed(&mut out, ber::SEQUENCE, |c| {
            ber::put(c, ber::OCTET_STRING, &self.context_engine_id);
            ber::put(c, ber::OCTET_STRING, &self.context_name);
            self.pdu.put(c);
        });
        out
    }

    fn decode(r: &mut Reader<'_>) -> Result<ScopedPdu, V3Error> {
        let mut s = r.sequence()?;
        let context_engine_id = bounded(s.octets()?, MAX_ENGINE_ID, "contextEngineID")?;
        let context_name = bounded(s.octets()?, 255, "contextName")?;
        let pdu = Pdu::read(&mut s)?;
        s.finish()?;
        Ok(ScopedPdu {
            context_engine_id,
            context_name,
            pdu,
        })
    }
}

fn bounded(bytes: &[u8], max: usize, what: &'static str) -> Result<Vec<u8>, V3Error> {
    if bytes.len() > max {
        return Err(V3Error::Invalid(what));
    }
    Ok(bytes.to_vec())
}

/// A v3 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V3Message {
    /// msgID.
    pub msg_id: i32,
    /// msgMaxSize.
    pub max_size: i32,
    /// msgFlags.
    pub flags: u8,
    /// The USM parameters.
    pub usm: UsmParams,
    /// The scoped PDU (decrypted).
    pub scoped: ScopedPdu,
}

/// What [`open`] read before checking anything: the header and USM fields, and where the MAC is.
#[derive(Debug)]
pub struct Received<'a> {
    /// msgID.
    pub msg_id: i32,
    /// msgMaxSize.
    pub max_size: i32,
    /// msgFlags.
    pub flags: u8,
    /// The USM parameters.
    pub usm: UsmParams,
    auth_params: &'a [u8],
    priv_params: &'a [u8],
    data_tag: u8,
    data: &'a [u8],
    whole: &'a [u8],
}

/// Reads a v3 datagram's header and security parameters (nothing is verified yet).
pub fn parse(data: &[u8]) -> Result<Received<'_>, V3Error> {
    let mut top = Reader::message(data)?;
    let mut msg = top.sequence()?;
    top.finish()?;
    if msg.integer()? != 3 {
        return Err(V3Error::Invalid("msgVersion is not 3"));
    }
    let mut header = msg.sequence()?;
    let msg_id = i32::try_from(header.integer()?).map_err(|_| V3Error::Invalid("msgID"))?;
    let max_size = i32::try_from(header.integer()?).map_err(|_| V3Error::Invalid("msgMaxSize"))?;
    let flags = match header.octets()? {
        [f] => *f,
        _ => return Err(V3Error::Invalid("msgFlags is not one byte")),
    };
    if flags & FLAG_PRIV != 0 && flags & FLAG_AUTH == 0 {
        return Err(V3Error::Invalid("privacy without authentication"));
    }
    if header.integer()? != USM {
        return Err(V3Error::Invalid("security model is not USM"));
    }
    header.finish()?;
    let usm_bytes = msg.octets()?;
    let mut usm_outer = Reader::new(usm_bytes);
    let mut usm = usm_outer.sequence()?;
    usm_outer.finish()?;
    let engine_id = bounded(usm.octets()?, MAX_ENGINE_ID, "engine ID over 32 bytes")?;
    let boots = u32::try_from(usm.integer()?).map_err(|_| V3Error::Invalid("engine boots"))?;
    let time = u32::try_from(usm.integer()?).map_err(|_| V3Error::Invalid("engine time"))?;
    let user = bounded(usm.octets()?, MAX_USER, "user name over 32 bytes")?;
    let auth_params = usm.octets()?;
    let priv_params = usm.octets()?;
    usm.finish()?;
    let (data_tag, data_content) = msg.any()?;
    msg.finish()?;
    Ok(Received {
        msg_id,
        max_size,
        flags,
        usm: UsmParams {
            engine_id,
            boots,
            time,
            user,
        },
        auth_params,
        priv_params,
        data_tag,
        data: data_content,
        whole: data,
    })
}

impl Received<'_> {
    /// Verifies the MAC (when the flags ask for it) and decrypts; `keys` must be those of the message's
    /// user and engine when the message is authenticated.
    pub fn open(&self, keys: Option<&LocalKeys>) -> Result<V3Message, V3Error> {
        if self.flags & FLAG_AUTH != 0 {
            let keys = keys.ok_or(V3Error::WrongDigest)?;
            if self.auth_params.len() != keys.auth.mac_len() {
                return Err(V3Error::WrongDigest);
            }
            // The MAC covers the whole message with the MAC field zeroed.
            let offset = self.auth_params.as_ptr() as usize - self.whole.as_ptr() as usize;
            let mut copy = self.whole.to_vec();
            copy[offset..offset + self.auth_params.len()].fill(0);
            let expected = keys.auth.mac(&keys.auth_key, &copy);
            if !constant_time_eq(&expected, self.auth_params) {
                return Err(V3Error::WrongDigest);
            }
        }
        let scoped = if self.flags & FLAG_PRIV != 0 {
            if self.data_tag != ber::OCTET_STRING {
                return Err(V3Error::Decryption);
            }
            let key = keys
                .and_then(|k| k.priv_key.as_deref())
                .ok_or(V3Error::Decryption)?;
            let salt: [u8; 8] = self
                .priv_params
                .try_into()
                .map_err(|_| V3Error::Decryption)?;
            let mut plain = self.data.to_vec();
            aes_cfb(key, self.usm.boots, self.usm.time, &salt, &mut plain, false);
            let mut r = Reader::new(&plain);
            // Trailing bytes after the scoped PDU are allowed: some agents pad.
            ScopedPdu::decode(&mut r).map_err(|_| V3Error::Decryption)?
        } else {
            if self.data_tag != ber::SEQUENCE {
                return Err(V3Error::Invalid("plaintext scoped PDU expected"));
            }
            let mut wrapped = Vec::with_capacity(self.data.len() + 6);
            ber::put(&mut wrapped, ber::SEQUENCE, self.data);
            ScopedPdu::decode(&mut Reader::new(&wrapped))?
        };
        Ok(V3Message {
            msg_id: self.msg_id,
            max_size: self.max_size,
            flags: self.flags,
            usm: self.usm.clone(),
            scoped,
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Encodes `message`; with `keys`, authenticates it (and encrypts with `salt` when the flags say
/// privacy and the keys have a privacy key).
pub fn seal(message: &V3Message, keys: Option<&LocalKeys>, salt: [u8; 8]) -> Vec<u8> {
    let auth = message.flags & FLAG_AUTH != 0;
    let privacy = message.flags & FLAG_PRIV != 0;
    let mac_len = keys.filter(|_| auth).map_or(0, |k| k.auth.mac_len());
    let plain = message.scoped.encode();
    let (priv_params, data) = match keys.and_then(|k| k.priv_key.as_deref()) {
        Some(key) if privacy => {
            let mut enc = plain;
            aes_cfb(
                key,
                message.usm.boots,
                message.usm.time,
                &salt,
                &mut enc,
                true,
            );
            let mut data = Vec::new();
            ber::put(&mut data, ber::OCTET_STRING, &enc);
            (salt.to_vec(), data)
        }
        _ => (Vec::new(), plain),
    };
    let mut usm = Vec::new();
    ber::put_constructed(&mut usm, ber::SEQUENCE, |c| {
        ber::put(c, ber::OCTET_STRING, &message.usm.engine_id);
        ber::put_integer(c, i64::from(message.usm.boots));
        ber::put_integer(c, i64::from(message.usm.time));
        ber::put(c, ber::OCTET_STRING, &message.usm.user);
        ber::put(c, ber::OCTET_STRING, &vec![0u8; mac_len]);
        ber::put(c, ber::OCTET_STRING, &priv_params);
    });
    let mut out = Vec::new();
    ber::put_constructed(&mut out, ber::SEQUENCE, |c| {
        ber::put_integer(c, 3);
        ber::put_constructed(c, ber::SEQUENCE, |h| {
            ber::put_integer(h, i64::from(message.msg_id));
            ber::put_integer(h, i64::from(message.max_size));
            ber::put(h, ber::OCTET_STRING, &[message.flags]);
            ber::put_integer(h, USM);
        });
        ber::put(c, ber::OCTET_STRING, &usm);
        c.extend_from_slice(&data);
    });
    if let Some(k) = keys.filter(|_| auth) {
        let mac = k.auth.mac(&k.auth_key, &out);
        // Our own encoding parses; the MAC field is where parse finds it.
        if let Ok(received) = parse(&out) {
            let offset = received.auth_params.as_ptr() as usize - out.as_ptr() as usize;
            out[offset..offset + mac.len()].copy_from_slice(&mac);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::power::snmp::pdu::{PduKind, Value};
    use crate::power::snmp::usm::AuthProtocol;
    use proptest::prelude::*;

    fn message(flags: u8) -> V3Message {
        V3Message {
            msg_id: 77,
            max_size: 65507,
            flags,
            usm: UsmParams {
                engine_id: b"\x80\x00\x1f\x88\x04kalab".to_vec(),
                boots: 1,
                time: 42,
                user: b"pduadmin".to_vec(),
            },
            scoped: ScopedPdu {
                context_engine_id: b"\x80\x00\x1f\x88\x04kalab".to_vec(),
                context_name: Vec::new(),
                pdu: Pdu::request(
                    PduKind::Get,
                    5,
                    vec![(Oid::parse("1.3.6.1.2.1.1.1.0").unwrap(), Value::Null)],
                ),
            },
        }
    }

    fn keys() -> LocalKeys {
        LocalKeys::derive(
            AuthProtocol::Sha1,
            b"authpass1",
            Some(b"privpass1"),
            b"\x80\x00\x1f\x88\x04kalab",
        )
    }

    #[test]
    fn auth_priv_round_trips_and_tampering_is_caught() {
        let m = message(FLAG_AUTH | FLAG_PRIV | FLAG_REPORTABLE);
        let bytes = seal(&m, Some(&keys()), [9; 8]);
        let opened = parse(&bytes).unwrap().open(Some(&keys())).unwrap();
        assert_eq!(opened, m);
        let mut tampered = bytes.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            parse(&tampered).unwrap().open(Some(&keys())),
            Err(V3Error::WrongDigest)
        );
        let other = LocalKeys::derive(AuthProtocol::Sha1, b"otherpass", None, b"e");
        assert_eq!(
            parse(&bytes).unwrap().open(Some(&other)),
            Err(V3Error::WrongDigest)
        );
    }

    #[test]
    fn no_auth_round_trips() {
        let m = message(FLAG_REPORTABLE);
        let bytes = seal(&m, None, [0; 8]);
        assert_eq!(parse(&bytes).unwrap().open(None), Ok(m));
    }

    proptest! {
        #[test]
        fn corrupted_messages_never_panic(pos in 0usize..400, byte in any::<u8>(), cut in 0usize..400) {
            let mut bytes = seal(&message(FLAG_AUTH | FLAG_PRIV), Some(&keys()), [1; 8]);
            let pos = pos % bytes.len();
            bytes[pos] = byte;
            if let Ok(r) = parse(&bytes) {
                let _ = r.open(Some(&keys()));
            }
            let cut = cut.min(bytes.len());
            if let Ok(r) = parse(&bytes[..cut]) {
                let _ = r.open(Some(&keys()));
            }
        }
    }
}

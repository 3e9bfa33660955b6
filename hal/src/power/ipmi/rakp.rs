//! RMCP+ session establishment payloads: Open Session Request/Response and RAKP messages 1 to 4, with the
//! key-exchange authentication codes both sides compute.

use super::crypto::CipherSuite;
use super::wire::WireError;

/// RMCP+ status code: no errors.
pub const STATUS_OK: u8 = 0x00;
/// RMCP+ status code: invalid session ID.
pub const STATUS_INVALID_SESSION: u8 = 0x02;
/// RMCP+ status code: no cipher suite match with proposed security algorithms.
pub const STATUS_NO_CIPHER_SUITE: u8 = 0x11;
/// RMCP+ status code: unauthorized name.
pub const STATUS_UNAUTHORIZED_NAME: u8 = 0x0d;
/// RMCP+ status code: invalid integrity check value.
pub const STATUS_INVALID_ICV: u8 = 0x0f;

/// A human-readable RMCP+ status code.
pub fn status_text(status: u8) -> &'static str {
    match status {
        0x00 => "no errors",
        0x01 => "insufficient resources to create a session",
        0x02 => "invalid session ID",
        0x09 => "invalid role",
        0x0d => "unauthorized name",
        0x0f => "invalid integrity check value",
        0x11 => "no cipher suite match with proposed security algorithms",
        0x12 => "illegal or unrecognized parameter",
        _ => "unknown status",
    }
}

fn get<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N], WireError> {
    b.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or(WireError::Truncated)
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, WireError> {
    get::<4>(b, at).map(u32::from_le_bytes)
}

/// RMCP+ Open Session Request (payload type 0x10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSessionRequest {
    /// Message tag echoed in the response.
    pub tag: u8,
    /// Requested maximum privilege level (0 = highest the algorithms allow).
    pub max_privilege: u8,
    /// The remote console's session ID.
    pub console_id: u32,
    /// Proposed (authentication, integrity, confidentiality) algorithms.
    pub algorithms: (u8, u8, u8),
}

fn algorithm_payloads(b: &mut Vec<u8>, (a, i, c): (u8, u8, u8)) {
    for (kind, alg) in [(0u8, a), (1, i), (2, c)] {
        b.extend_from_slice(&[kind, 0, 0, 8, alg, 0, 0, 0]);
    }
}

impl OpenSessionRequest {
    /// Encodes the 32-byte payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![self.tag, self.max_privilege, 0, 0];
        b.extend_from_slice(&self.console_id.to_le_bytes());
        algorithm_payloads(&mut b, self.algorithms);
        b
    }

    /// Decodes the payload.
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        let _ = get::<32>(b, 0)?;
        Ok(OpenSessionRequest {
            tag: b[0],
            max_privilege: b[1],
            console_id: u32_at(b, 4)?,
            algorithms: (b[12], b[20], b[28]),
        })
    }
}

/// RMCP+ Open Session Response (payload type 0x11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSessionResponse {
    /// The request's tag.
    pub tag: u8,
    /// RMCP+ status code.
    pub status: u8,
    /// Maximum privilege level granted.
    pub max_privilege: u8,
    /// The remote console's session ID.
    pub console_id: u32,
    /// The BMC's session ID (0 on error).
    pub bmc_id: u32,
    /// Chosen algorithms.
    pub algorithms: (u8, u8, u8),
}

impl OpenSessionResponse {
    /// Encodes the payload (8 bytes on error, 36 otherwise).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![self.tag, self.status, self.max_privilege, 0];
        b.extend_from_slice(&self.console_id.to_le_bytes());
        if self.status == STATUS_OK {
            b.extend_from_slice(&self.bmc_id.to_le_bytes());
            algorithm_payloads(&mut b, self.algorithms);
        }
        b
    }

    /// Decodes the payload.
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        let head = get::<8>(b, 0)?;
        let mut r = OpenSessionResponse {
            tag: head[0],
            status: head[1],
            max_privilege: head[2],
            console_id: u32_at(b, 4)?,
            bmc_id: 0,
            algorithms: (0, 0, 0),
        };
        if r.status == STATUS_OK {
            let _ = get::<36>(b, 0)?;
            r.bmc_id = u32_at(b, 8)?;
            r.algorithms = (b[16], b[24], b[32]);
        }
        Ok(r)
    }
}

/// RAKP Message 1 (payload type 0x12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp1 {
    /// Message tag.
    pub tag: u8,
    /// The BMC's session ID.
    pub bmc_id: u32,
    /// The remote console's random number Rm.
    pub console_rand: [u8; 16],
    /// Requested role: privilege level, bit 4 set for name-only lookup.
    pub role: u8,
    /// User name (at most 16 bytes).
    pub user: Vec<u8>,
}

impl Rakp1 {
    /// Encodes the payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![self.tag, 0, 0, 0];
        b.extend_from_slice(&self.bmc_id.to_le_bytes());
        b.extend_from_slice(&self.console_rand);
        b.extend_from_slice(&[self.role, 0, 0, self.user.len() as u8]);
        b.extend_from_slice(&self.user);
        b
    }

    /// Decodes the payload.
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        let head = get::<28>(b, 0)?;
        let n = head[27] as usize;
        if n > 16 {
            return Err(WireError::Unsupported("user name length"));
        }
        Ok(Rakp1 {
            tag: head[0],
            bmc_id: u32_at(b, 4)?,
            console_rand: get(b, 8)?,
            role: head[24],
            user: b.get(28..28 + n).ok_or(WireError::Truncated)?.to_vec(),
        })
    }
}

/// RAKP Message 2 (payload type 0x13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp2 {
    /// The RAKP 1 tag.
    pub tag: u8,
    /// RMCP+ status code.
    pub status: u8,
    /// The remote console's session ID.
    pub console_id: u32,
    /// The BMC's random number Rc.
    pub bmc_rand: [u8; 16],
    /// The BMC's GUID.
    pub bmc_guid: [u8; 16],
    /// HMAC_Kuid(SIDm, SIDc, Rm, Rc, GUIDc, ROLEm, ULENGTHm, UNAMEm).
    pub auth_code: Vec<u8>,
}

impl Rakp2 {
    /// Encodes the payload (8 bytes on error).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![self.tag, self.status, 0, 0];
        b.extend_from_slice(&self.console_id.to_le_bytes());
        if self.status == STATUS_OK {
            b.extend_from_slice(&self.bmc_rand);
            b.extend_from_slice(&self.bmc_guid);
            b.extend_from_slice(&self.auth_code);
        }
        b
    }

    /// Decodes the payload.
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        let head = get::<8>(b, 0)?;
        let mut r = Rakp2 {
            tag: head[0],
            status: head[1],
            console_id: u32_at(b, 4)?,
            bmc_rand: [0; 16],
            bmc_guid: [0; 16],
            auth_code: Vec::new(),
        };
        if r.status == STATUS_OK {
            r.bmc_rand = get(b, 8)?;
            r.bmc_guid = get(b, 24)?;
            r.auth_code = b[40..].to_vec();
        }
        Ok(r)
    }
}

/// RAKP Message 3 (payload type 0x14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp3 {
    /// Message tag.
    pub tag: u8,
    /// RMCP+ status code of the console's check of RAKP 2.
    pub status: u8,
    /// The BMC's session ID.
    pub bmc_id: u32,
    /// HMAC_Kuid(Rc, SIDm, ROLEm, ULENGTHm, UNAMEm).
    pub auth_code: Vec<u8>,
}

impl Rakp3 {
    /// Encodes the payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![self.tag, self.status, 0, 0];
        b.extend_from_slice(&self.bmc_id.to_le_bytes());
        b.extend_from_slice(&self.auth_code);
        b
    }

    /// Decodes the payload.
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        let head = get::<8>(b, 0)?;
        Ok(Rakp3 {
            tag: head[0],
            status: head[1],
            bmc_id: u32_at(b, 4)?,
            auth_code: b[8..].to_vec(),
        })
    }
}

/// RAKP Message 4 (payload type 0x15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp4 {
    /// The RAKP 3 tag.
    pub tag: u8,
    /// RMCP+ status code.
    pub status: u8,
    /// The remote console's session ID.
    pub console_id: u32,
    /// Truncated HMAC_SIK(Rm, SIDc, GUIDc).
    pub icv: Vec<u8>,
}

impl Rakp4 {
    /// Encodes the payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![self.tag, self.status, 0, 0];
        b.extend_from_slice(&self.console_id.to_le_bytes());
        b.extend_from_slice(&self.icv);
        b
    }

    /// Decodes the payload.
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        let head = get::<8>(b, 0)?;
        Ok(Rakp4 {
            tag: head[0],
            status: head[1],
            console_id: u32_at(b, 4)?,
            icv: b[8..].to_vec(),
        })
    }
}

/// What both sides know once RAKP 2 is out: the inputs of every RAKP code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The negotiated suite.
    pub suite: CipherSuite,
    /// The remote console's session ID (SIDm).
    pub console_id: u32,
    /// The BMC's session ID (SIDc).
    pub bmc_id: u32,
    /// Rm.
    pub console_rand: [u8; 16],
    /// Rc.
    pub bmc_rand: [u8; 16],
    /// GUIDc.
    pub bmc_guid: [u8; 16],
    /// ROLEm, the whole byte of RAKP 1.
    pub role: u8,
    /// UNAMEm.
    pub user: Vec<u8>,
}

impl Handshake {
    /// The RAKP 2 key-exchange authentication code, keyed with the password.
    pub fn rakp2_code(&self, password: &[u8]) -> Vec<u8> {
        self.suite.hmac(
            password,
            &[
                &self.console_id.to_le_bytes(),
                &self.bmc_id.to_le_bytes(),
                &self.console_rand,
                &self.bmc_rand,
                &self.bmc_guid,
                &[self.role, self.user.len() as u8],
                &self.user,
            ],
        )
    }

    /// The RAKP 3 key-exchange authentication code, keyed with the password.
    pub fn rakp3_code(&self, password: &[u8]) -> Vec<u8> {
        self.suite.hmac(
            password,
            &[
                &self.bmc_rand,
                &self.console_id.to_le_bytes(),
                &[self.role, self.user.len() as u8],
                &self.user,
            ],
        )
    }

    /// The session keys, with Kg = the password (no BMC key).
    pub fn keys(&self, password: &[u8]) -> super::crypto::SessionKeys {
        super::crypto::SessionKeys::derive(
            self.suite,
            password,
            &self.console_rand,
            &self.bmc_rand,
            self.role,
            &self.user,
        )
    }

    /// The RAKP 4 integrity check value, keyed with the SIK.
    pub fn rakp4_icv(&self, sik: &[u8]) -> Vec<u8> {
        let mut icv = self.suite.hmac(
            sik,
            &[
                &self.console_rand,
                &self.bmc_id.to_le_bytes(),
                &self.bmc_guid,
            ],
        );
        icv.truncate(self.suite.icv_len());
        icv
    }
}

/// Constant-time comparison of two codes.
pub fn codes_match(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let o = OpenSessionRequest {
            tag: 1,
            max_privilege: 0,
            console_id: 0xa0a2a3a4,
            algorithms: (3, 4, 1),
        };
        assert_eq!(o.encode().len(), 32);
        assert_eq!(OpenSessionRequest::decode(&o.encode()), Ok(o));
        let r = OpenSessionResponse {
            tag: 1,
            status: 0,
            max_privilege: 4,
            console_id: 7,
            bmc_id: 9,
            algorithms: (1, 1, 1),
        };
        assert_eq!(r.encode().len(), 36);
        assert_eq!(OpenSessionResponse::decode(&r.encode()), Ok(r));
        let e = OpenSessionResponse {
            tag: 1,
            status: 0x11,
            max_privilege: 0,
            console_id: 7,
            bmc_id: 0,
            algorithms: (0, 0, 0),
        };
        assert_eq!(e.encode().len(), 8);
        assert_eq!(OpenSessionResponse::decode(&e.encode()), Ok(e));
        let m1 = Rakp1 {
            tag: 2,
            bmc_id: 9,
            console_rand: [3; 16],
            role: 0x14,
            user: b"ADMIN".to_vec(),
        };
        assert_eq!(m1.encode().len(), 33);
        assert_eq!(Rakp1::decode(&m1.encode()), Ok(m1));
        let m2 = Rakp2 {
            tag: 2,
            status: 0,
            console_id: 7,
            bmc_rand: [4; 16],
            bmc_guid: [5; 16],
            auth_code: vec![6; 20],
        };
        assert_eq!(Rakp2::decode(&m2.encode()), Ok(m2));
        let m3 = Rakp3 {
            tag: 3,
            status: 0,
            bmc_id: 9,
            auth_code: vec![7; 32],
        };
        assert_eq!(Rakp3::decode(&m3.encode()), Ok(m3));
        let m4 = Rakp4 {
            tag: 3,
            status: 0,
            console_id: 7,
            icv: vec![8; 12],
        };
        assert_eq!(Rakp4::decode(&m4.encode()), Ok(m4));
        assert_eq!(Rakp1::decode(&[0; 10]), Err(WireError::Truncated));
    }

    #[test]
    fn codes_depend_on_the_password_and_have_suite_lengths() {
        for (suite, full, icv) in [
            (CipherSuite::Suite3, 20, 12),
            (CipherSuite::Suite17, 32, 16),
        ] {
            let h = Handshake {
                suite,
                console_id: 1,
                bmc_id: 2,
                console_rand: [3; 16],
                bmc_rand: [4; 16],
                bmc_guid: [5; 16],
                role: 0x14,
                user: b"ADMIN".to_vec(),
            };
            assert_eq!(h.rakp2_code(b"a").len(), full);
            assert_ne!(h.rakp2_code(b"a"), h.rakp2_code(b"b"));
            assert_ne!(h.rakp2_code(b"a"), h.rakp3_code(b"a"));
            let keys = h.keys(b"a");
            assert_eq!(h.rakp4_icv(&keys.sik).len(), icv);
            assert!(codes_match(&h.rakp3_code(b"a"), &h.rakp3_code(b"a")));
            assert!(!codes_match(&h.rakp3_code(b"a"), &h.rakp3_code(b"b")));
        }
    }

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn arr(s: &str) -> [u8; 16] {
        unhex(s).try_into().unwrap()
    }

    /// Values printed by `ipmitool -I lanplus -vvvv` (OpenSSL) for user ADMIN, password `secret`.
    #[test]
    fn codes_and_keys_match_ipmitool_vectors() {
        let guid = arr("0c 03 3b 91 14 a5 80 ce f3 19 78 a4 8a d5 00 44");
        let cases = [
            (
                CipherSuite::Suite3,
                0xb07a_e460u32,
                "01 24 ba 38 e4 14 d8 f0 da d9 42 d6 40 72 c6 b1",
                "cb 8a 52 2e 60 f1 49 18 da ff ed 96 bb 05 d8 a3",
                "34 fd 71 85 05 89 f6 dd 9e 77 58 e3 ea 75 6f 1c 21 32 fb 88",
                "7a d8 7e a0 9e 72 10 16 50 6c 46 cb e9 1c 98 91 60 41 75 8a",
                "10 d0 b1 38 1f 85 12 91 ad 0c 7b 68 68 ce d0 04 17 cc ca f4",
                "fb 85 0b 8d 69 8a 1e ca ae 8b 7d f5 6d b6 c4 1c 45 81 32 91",
                "eb 97 08 0e fa 9a 21 c6 6d e6 80 4d e3 d0 3b a1 1e 6c 0d f6",
                "de 0d 71 b1 73 55 6a 87 44 64 f3 f7",
            ),
            (
                CipherSuite::Suite17,
                0x2710_3f81,
                "bf ca 0c 8e 67 c2 b5 65 5f 6b 63 cb c5 1f 20 e0",
                "cf b6 af dc 27 f9 d9 68 f3 d0 02 42 38 d9 19 3c",
                "11 cb 6c b9 c9 97 9f 1a be ca ed d3 b5 b3 e9 01 92 15 c1 a3 a1 ad cd cc bd 01 4a 66 b3 81 c1 14",
                "96 4a 6a 65 36 99 69 f2 98 c7 94 83 ba 08 6e 84 1c ef 26 a1 5b 56 e1 fc 9f 5f a9 fc dd d5 d2 6b",
                "13 55 dc 55 2e ac 47 df 1d d1 15 71 59 af b7 45 eb 1f 01 c1 e9 3d ad 15 90 75 c9 94 86 f4 1e 84",
                "b8 78 be dc 60 35 ff 47 91 50 b4 8a 77 34 25 f4 66 80 4f 62 4a e8 e3 c9 23 5e b7 2e 55 07 d4 b4",
                "7b 02 68 5c ad 5b 39 c3 bb 4f d7 dc 7a 59 49 67 88 ad 84 66 f2 1b fc 23 56 3f 40 28 6d 7c e9 25",
                "bd ba 75 e9 2b bb 6b e2 18 94 af 45 92 69 f7 45",
            ),
        ];
        for (suite, bmc_id, rm, rc, rakp2, rakp3, sik, k1, k2, rakp4) in cases {
            let h = Handshake {
                suite,
                console_id: 0xa0a2_a3a4,
                bmc_id,
                console_rand: arr(rm),
                bmc_rand: arr(rc),
                bmc_guid: guid,
                role: 0x14,
                user: b"ADMIN".to_vec(),
            };
            assert_eq!(h.rakp2_code(b"secret"), unhex(rakp2), "{suite:?} RAKP 2");
            assert_eq!(h.rakp3_code(b"secret"), unhex(rakp3), "{suite:?} RAKP 3");
            let keys = h.keys(b"secret");
            assert_eq!(keys.sik, unhex(sik), "{suite:?} SIK");
            assert_eq!(keys.k1, unhex(k1), "{suite:?} K1");
            assert_eq!(keys.k2, unhex(k2), "{suite:?} K2");
            assert_eq!(h.rakp4_icv(&keys.sik), unhex(rakp4), "{suite:?} RAKP 4");
        }
    }
}

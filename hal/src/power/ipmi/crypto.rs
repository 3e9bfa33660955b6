//! RMCP+ cipher suites 3 and 17: RAKP HMACs, session key derivation (SIK, K1, K2), integrity and AES-CBC-128.

use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hmac::{KeyInit, Mac};

/// Authentication algorithm RAKP-HMAC-SHA1.
pub const AUTH_HMAC_SHA1: u8 = 0x01;
/// Authentication algorithm RAKP-HMAC-SHA256.
pub const AUTH_HMAC_SHA256: u8 = 0x03;
/// Integrity algorithm HMAC-SHA1-96.
pub const INTEGRITY_HMAC_SHA1_96: u8 = 0x01;
/// Integrity algorithm HMAC-SHA256-128.
pub const INTEGRITY_HMAC_SHA256_128: u8 = 0x04;
/// Confidentiality algorithm AES-CBC-128.
pub const CONF_AES_CBC_128: u8 = 0x01;

/// The cipher suites this implementation speaks (IPMI v2.0 table 22-20).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CipherSuite {
    /// Suite 3: RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128.
    Suite3,
    /// Suite 17: RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128.
    Suite17,
}

impl CipherSuite {
    /// Every supported suite, best first (ipmitool's order of preference).
    pub const PREFERRED: [CipherSuite; 2] = [CipherSuite::Suite17, CipherSuite::Suite3];

    /// The suite's number.
    pub fn id(self) -> u8 {
        match self {
            CipherSuite::Suite3 => 3,
            CipherSuite::Suite17 => 17,
        }
    }

    /// The suite of a number, if supported.
    pub fn from_id(id: u8) -> Option<Self> {
        Self::PREFERRED.into_iter().find(|s| s.id() == id)
    }

    /// The suite made of these algorithms, if supported.
    pub fn from_algorithms(auth: u8, integrity: u8, conf: u8) -> Option<Self> {
        Self::PREFERRED
            .into_iter()
            .find(|s| s.algorithms() == (auth, integrity, conf))
    }

    /// The (authentication, integrity, confidentiality) algorithm numbers.
    pub fn algorithms(self) -> (u8, u8, u8) {
        match self {
            CipherSuite::Suite3 => (AUTH_HMAC_SHA1, INTEGRITY_HMAC_SHA1_96, CONF_AES_CBC_128),
            CipherSuite::Suite17 => (
                AUTH_HMAC_SHA256,
                INTEGRITY_HMAC_SHA256_128,
                CONF_AES_CBC_128,
            ),
        }
    }

    /// The full HMAC of the suite's hash (used by RAKP 2/3, the SIK, K1 and K2).
    pub fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            CipherSuite::Suite3 => hmac_of::<hmac::Hmac<sha1::Sha1>>(key, parts),
            CipherSuite::Suite17 => hmac_of::<hmac::Hmac<sha2::Sha256>>(key, parts),
        }
    }

    /// Length of the RAKP 4 integrity check value and of a session packet's AuthCode (12 or 16).
    pub fn icv_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 12,
            CipherSuite::Suite17 => 16,
        }
    }
}

fn hmac_of<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let mut mac = <M as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The keys of an established session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionKeys {
    /// The negotiated suite.
    pub suite: CipherSuite,
    /// Session Integrity Key.
    pub sik: Vec<u8>,
    /// K1: the integrity key.
    pub k1: Vec<u8>,
    /// K2: its first 16 bytes are the AES key.
    pub k2: Vec<u8>,
}

impl SessionKeys {
    /// Derives SIK = HMAC_Kg(Rm | Rc | ROLEm | ULENGTHm | UNAMEm), K1 = HMAC_SIK(0x01 x 20),
    /// K2 = HMAC_SIK(0x02 x 20). `kg` is the BMC key, or the user's password when none is set.
    pub fn derive(
        suite: CipherSuite,
        kg: &[u8],
        console_rand: &[u8; 16],
        bmc_rand: &[u8; 16],
        role: u8,
        user: &[u8],
    ) -> Self {
        let sik = suite.hmac(
            kg,
            &[console_rand, bmc_rand, &[role, user.len() as u8], user],
        );
        let k1 = suite.hmac(&sik, &[&[0x01; 20]]);
        let k2 = suite.hmac(&sik, &[&[0x02; 20]]);
        SessionKeys { suite, sik, k1, k2 }
    }

    /// The AuthCode of a session packet: the truncated HMAC_K1 of everything from the AuthType byte to the
    /// Next Header byte.
    pub fn auth_code(&self, signed: &[u8]) -> Vec<u8> {
        let mut code = self.suite.hmac(&self.k1, &[signed]);
        code.truncate(self.suite.icv_len());
        code
    }

    /// Encrypts a payload: a 16-byte IV, then AES-CBC-128 of payload | pad 1,2,3.. | pad length.
    pub fn encrypt(&self, iv: [u8; 16], payload: &[u8]) -> Vec<u8> {
        let pad = (16 - (payload.len() + 1) % 16) % 16;
        let mut data = Vec::with_capacity(16 + payload.len() + pad + 1);
        data.extend_from_slice(&iv);
        data.extend_from_slice(payload);
        data.extend((1..=pad as u8).collect::<Vec<_>>());
        data.push(pad as u8);
        let mut enc = cbc::Encryptor::<aes::Aes128>::new_from_slices(&self.k2[..16], &iv)
            .unwrap_or_else(|_| unreachable!());
        for chunk in data[16..].chunks_exact_mut(16) {
            let mut block = aes::Block::default();
            block.copy_from_slice(chunk);
            enc.encrypt_block(&mut block);
            chunk.copy_from_slice(&block);
        }
        data
    }

    /// Decrypts what [`SessionKeys::encrypt`] produced, checking the confidentiality pad.
    pub fn decrypt(&self, data: &[u8]) -> Option<Vec<u8>> {
        if data.len() < 32 || !data.len().is_multiple_of(16) {
            return None;
        }
        let mut dec = cbc::Decryptor::<aes::Aes128>::new_from_slices(&self.k2[..16], &data[..16])
            .unwrap_or_else(|_| unreachable!());
        let mut out = data[16..].to_vec();
        for chunk in out.chunks_exact_mut(16) {
            let mut block = aes::Block::default();
            block.copy_from_slice(chunk);
            dec.decrypt_block(&mut block);
            chunk.copy_from_slice(&block);
        }
        let pad = *out.last()? as usize;
        if pad >= 16 || pad + 1 > out.len() {
            return None;
        }
        let body = out.len() - pad - 1;
        if out[body..body + pad]
            .iter()
            .enumerate()
            .any(|(i, &b)| b as usize != i + 1)
        {
            return None;
        }
        out.truncate(body);
        Some(out)
    }
}

/// Fills a buffer with random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS RNG only fails on exotic platforms; a zero buffer would still be a valid (weak) nonce.
    let _ = getrandom::fill(&mut b);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_map_to_their_algorithms() {
        assert_eq!(
            CipherSuite::from_algorithms(1, 1, 1),
            Some(CipherSuite::Suite3)
        );
        assert_eq!(
            CipherSuite::from_algorithms(3, 4, 1),
            Some(CipherSuite::Suite17)
        );
        assert_eq!(CipherSuite::from_algorithms(1, 0, 0), None);
        assert_eq!(CipherSuite::from_id(17), Some(CipherSuite::Suite17));
    }

    #[test]
    fn hmac_sha1_matches_rfc2202_case_2() {
        let mac = CipherSuite::Suite3.hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex(&mac), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    }

    #[test]
    fn encryption_round_trips_with_ipmi_padding() {
        for suite in CipherSuite::PREFERRED {
            let keys = SessionKeys::derive(suite, b"pw", &[1; 16], &[2; 16], 0x14, b"ADMIN");
            for len in [0usize, 1, 14, 15, 16, 17, 40] {
                let payload: Vec<u8> = (0..len as u8).collect();
                let sealed = keys.encrypt([9; 16], &payload);
                assert_eq!(sealed.len() % 16, 0);
                assert_eq!(keys.decrypt(&sealed), Some(payload));
            }
        }
    }

    #[test]
    fn decryption_rejects_a_wrong_key() {
        let a = SessionKeys::derive(CipherSuite::Suite3, b"a", &[1; 16], &[2; 16], 4, b"u");
        let b = SessionKeys::derive(CipherSuite::Suite3, b"b", &[1; 16], &[2; 16], 4, b"u");
        let sealed = a.encrypt([3; 16], b"hello chassis");
        assert_ne!(b.decrypt(&sealed), Some(b"hello chassis".to_vec()));
    }

    pub(crate) fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}

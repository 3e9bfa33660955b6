//! The per-deployment secret of the broadcast: the deployer makes a fresh [`AgentToken`] for every
//! broadcast, hands it to each node over the channel it already trusts (SSH: a root-only file, by
//! default [`DEFAULT_TOKEN_FILE`]), and every job or data connection to a `kaagent` must prove it
//! knows the token with an HMAC-SHA256 of the agent's fresh nonce and of the frames it sends
//! (see [`super::handshake`]). The token itself never travels over the broadcast network.

use hmac::{KeyInit, Mac};
use std::fmt;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the agent reads the token, and where the deployer writes it on each node.
pub const DEFAULT_TOKEN_FILE: &str = "/run/kaagent.token";
/// Shortest token accepted, in characters (a generated one has 64 hex digits: 256 bits).
pub const MIN_TOKEN_LEN: usize = 32;
/// Longest token accepted, in characters.
pub const MAX_TOKEN_LEN: usize = 1024;
/// Length of a MAC in bytes (HMAC-SHA256).
pub const MAC_LEN: usize = 32;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Why a token could not be made, read or accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be opened or read.
    #[error("reading the agent token {path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's error.
        message: String,
    },
    /// The token file is not a regular file that only its owner (root or the agent's user) reads.
    #[error(
        "the agent token {path} must be a regular file owned by root or the agent's user and \
         readable by its owner only (mode {mode:o}, owner {uid})"
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
        /// Its owner.
        uid: u32,
    },
    /// The token is too short, too long, or holds spaces or control characters.
    #[error(
        "an agent token of {len} characters: {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} printable characters needed"
    )]
    Malformed {
        /// Its length in characters (after trimming the end of line).
        len: usize,
    },
    /// The operating system gave no random numbers.
    #[error("no random numbers for a token: {0}")]
    Random(String),
}

/// A shared secret of one deployment. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentToken(Arc<str>);

impl fmt::Debug for AgentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgentToken(..)")
    }
}

impl AgentToken {
    /// A fresh token: 256 random bits from the operating system, as 64 hex digits.
    pub fn generate() -> Result<Self, TokenError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(AgentToken(hex.into()))
    }

    /// The token written in `text` (surrounding white space, such as a final newline, ignored).
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let t = text.trim();
        let len = t.chars().count();
        if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&len)
            || !t.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(TokenError::Malformed { len });
        }
        Ok(AgentToken(t.into()))
    }

    /// The token held in `path`, which must be a regular file owned by root or by this process's
    /// user, with no permission for group or others (as `umask 077` makes it).
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let read_err = |e: std::io::Error| TokenError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let meta = file.metadata().map_err(read_err)?;
        let owner_ok = meta.uid() == 0 || Some(meta.uid()) == effective_uid();
        if !meta.is_file() || meta.mode() & 0o077 != 0 || !owner_ok {
            return Err(TokenError::Exposed {
                path: path.to_path_buf(),
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
            });
        }
        let mut text = String::new();
        file.take(MAX_TOKEN_LEN as u64 + 2)
            .read_to_string(&mut text)
            .map_err(read_err)?;
        Self::parse(&text)
    }

    /// The secret itself, to hand to the nodes over a trusted channel.
    pub fn secret(&self) -> &str {
        &self.0
    }

    fn hmac(&self) -> Option<HmacSha256> {
        // HMAC takes keys of any length: this never fails.
        <HmacSha256 as KeyInit>::new_from_slice(self.0.as_bytes()).ok()
    }

    /// The MAC of `parts`, in order (each part of a fixed length or self-delimiting).
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; MAC_LEN] {
        let mut out = [0u8; MAC_LEN];
        if let Some(mut m) = self.hmac() {
            for p in parts {
                m.update(p);
            }
            out.copy_from_slice(&m.finalize().into_bytes());
        }
        out
    }

    /// Whether `mac` is the MAC of `parts` (compared in constant time).
    pub fn verify(&self, parts: &[&[u8]], mac: &[u8]) -> bool {
        let Some(mut m) = self.hmac() else {
            return false;
        };
        for p in parts {
            m.update(p);
        }
        m.verify_slice(mac).is_ok()
    }
}

/// Length of the MAC closing every datagram of a multicast broadcast (HMAC-SHA256, truncated).
pub const DATAGRAM_MAC_LEN: usize = 16;
/// Domain of the datagram MACs (and protocol version).
const DATAGRAM_DOMAIN: &[u8] = b"kaagent-mcast-v1";

/// The token's key prepared for sealing and opening many small datagrams (the HMAC key schedule
/// done once): each datagram ends with `HMAC-SHA256(token, domain ‖ datagram)`, truncated to
/// [`DATAGRAM_MAC_LEN`] bytes.
#[derive(Clone)]
pub struct DatagramKey(HmacSha256);

impl fmt::Debug for DatagramKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatagramKey(..)")
    }
}

impl DatagramKey {
    /// The key of `token`, or `None` if the MAC cannot be keyed (never for a parsed token).
    pub fn new(token: &AgentToken) -> Option<Self> {
        token.hmac().map(DatagramKey)
    }

    fn tag(&self, body: &[u8]) -> [u8; MAC_LEN] {
        let mut m = self.0.clone();
        m.update(DATAGRAM_DOMAIN);
        m.update(body);
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&m.finalize().into_bytes());
        out
    }

    /// Appends the MAC of `datagram` (everything in it so far) to it.
    pub fn seal(&self, datagram: &mut Vec<u8>) {
        self.seal_from(datagram, 0);
    }

    /// Appends the MAC of the datagram that starts at `start` in `buf` (everything from there so
    /// far) to it: datagrams built one after the other in one buffer.
    pub fn seal_from(&self, buf: &mut Vec<u8>, start: usize) {
        let tag = self.tag(buf.get(start..).unwrap_or_default());
        buf.extend_from_slice(&tag[..DATAGRAM_MAC_LEN]);
    }

    /// The body of a sealed datagram if its MAC is right (compared in constant time), else `None`.
    pub fn open<'a>(&self, datagram: &'a [u8]) -> Option<&'a [u8]> {
        let split = datagram.len().checked_sub(DATAGRAM_MAC_LEN)?;
        let (body, mac) = datagram.split_at(split);
        let mut m = self.0.clone();
        m.update(DATAGRAM_DOMAIN);
        m.update(body);
        m.verify_truncated_left(mac).ok().map(|()| body)
    }
}

/// This process's effective user id (the owner of `/proc/self`).
fn effective_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_tokens_are_fresh_and_parse_back() {
        let a = AgentToken::generate().unwrap();
        let b = AgentToken::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.secret().len(), 64);
        assert_eq!(AgentToken::parse(&format!("{}\n", a.secret())).unwrap(), a);
        assert_eq!(format!("{a:?}"), "AgentToken(..)");
    }

    #[test]
    fn short_long_or_spaced_tokens_are_refused() {
        for bad in [
            "",
            "short",
            &"x".repeat(MAX_TOKEN_LEN + 1),
            &format!("{} {}", "a".repeat(20), "b".repeat(20)),
        ] {
            assert!(
                matches!(AgentToken::parse(bad), Err(TokenError::Malformed { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn macs_bind_every_part_and_the_key() {
        let t = AgentToken::generate().unwrap();
        let other = AgentToken::generate().unwrap();
        let mac = t.mac(&[b"nonce", b"hello"]);
        assert!(t.verify(&[b"nonce", b"hello"], &mac));
        assert!(!t.verify(&[b"nonce", b"hellO"], &mac));
        assert!(!t.verify(&[b"other", b"hello"], &mac));
        assert!(!other.verify(&[b"nonce", b"hello"], &mac));
        assert!(!t.verify(&[b"nonce", b"hello"], &mac[..31]));
    }

    #[test]
    fn sealed_datagrams_open_with_the_same_token_only() {
        let t = AgentToken::generate().unwrap();
        let key = DatagramKey::new(&t).unwrap();
        let mut d = b"KMDpayload".to_vec();
        key.seal(&mut d);
        assert_eq!(d.len(), 10 + DATAGRAM_MAC_LEN);
        assert_eq!(key.open(&d), Some(&b"KMDpayload"[..]));
        let other = DatagramKey::new(&AgentToken::generate().unwrap()).unwrap();
        assert_eq!(other.open(&d), None);
        d[3] ^= 1;
        assert_eq!(key.open(&d), None);
        assert_eq!(key.open(&d[..5]), None);
    }

    #[test]
    fn token_files_readable_by_others_are_refused() {
        let dir = std::env::temp_dir().join(format!("hal-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        let t = AgentToken::generate().unwrap();
        std::fs::write(&path, format!("{}\n", t.secret())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            AgentToken::from_file(&path),
            Err(TokenError::Exposed { mode: 0o644, .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(AgentToken::from_file(&path).unwrap(), t);
        assert!(matches!(
            AgentToken::from_file(&dir.join("missing")),
            Err(TokenError::Read { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

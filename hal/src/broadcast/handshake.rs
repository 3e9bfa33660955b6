//! The authenticated opening of every connection to an agent. On accepting, the agent sends a fresh
//! random nonce; every frame the peer sends next on the control plane (its hello; for a job, the
//! node's plan and the manifest) is *sealed*: its payload followed by
//! `HMAC-SHA256(token, "kaagent-v2" ‖ nonce ‖ sequence number ‖ payload)`. The agent bounds each
//! frame before allocating it and checks the MAC before parsing anything; a replayed or reordered
//! frame fails (fresh nonce, sequence number). Chunks are not sealed: each is checked against the
//! sealed manifest.

use super::token::{AgentToken, MAC_LEN, TokenError};
use super::wire;
use serde::{Serialize, de::DeserializeOwned};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// Length of the agent's nonce.
pub const NONCE_LEN: usize = 32;
/// Domain of the MACs (and protocol version).
const DOMAIN: &[u8] = b"kaagent-v2";

/// Why an agent did not accept a connection's frames.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The connection failed, timed out, or announced a frame beyond its bound.
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    /// The agent has no usable token.
    #[error("{0}")]
    Token(#[from] TokenError),
    /// A frame's MAC is wrong: the peer does not know the deployment's token.
    #[error("frame {seq} failed authentication")]
    Forged {
        /// The frame's sequence number.
        seq: u64,
    },
    /// An authenticated frame that does not parse.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The operating system gave no random numbers.
    #[error("no random numbers for a nonce: {0}")]
    Random(String),
}

fn mac_input<'a>(nonce: &'a [u8; NONCE_LEN], seq: &'a [u8; 8], payload: &'a [u8]) -> [&'a [u8]; 4] {
    [DOMAIN, nonce, seq, payload]
}

/// The sending side of a connection to an agent (the server, or an upstream agent): seals frames.
pub struct Sealer {
    token: AgentToken,
    nonce: [u8; NONCE_LEN],
    seq: u64,
}

impl Sealer {
    /// Reads the agent's nonce, the first frame on the connection.
    pub fn start(r: &mut impl Read, token: AgentToken) -> io::Result<Sealer> {
        let frame = wire::read_raw(r, NONCE_LEN as u32)?;
        let nonce: [u8; NONCE_LEN] = frame.as_slice().try_into().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("agent nonce of {} bytes", frame.len()),
            )
        })?;
        Ok(Sealer {
            token,
            nonce,
            seq: 0,
        })
    }

    /// Writes `payload` as the next sealed frame (one write).
    pub fn send_raw(&mut self, w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
        let seq = self.seq.to_be_bytes();
        let mac = self.token.mac(&mac_input(&self.nonce, &seq, payload));
        self.seq += 1;
        let len = u32::try_from(payload.len() + MAC_LEN)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
        let mut buf = Vec::with_capacity(4 + payload.len() + MAC_LEN);
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(payload);
        buf.extend_from_slice(&mac);
        w.write_all(&buf)?;
        w.flush()
    }

    /// Writes `msg` as the next sealed JSON frame.
    pub fn send<T: Serialize>(&mut self, w: &mut impl Write, msg: &T) -> io::Result<()> {
        let json = serde_json::to_vec(msg).map_err(io::Error::other)?;
        self.send_raw(w, &json)
    }
}

/// The agent's side of a connection: sends the nonce, then opens sealed frames.
pub struct Opener {
    nonce: [u8; NONCE_LEN],
    seq: u64,
}

impl Opener {
    /// Sends a fresh nonce.
    pub fn challenge(w: &mut impl Write) -> Result<Opener, HandshakeError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| HandshakeError::Random(e.to_string()))?;
        wire::write_raw(w, &nonce)?;
        Ok(Opener { nonce, seq: 0 })
    }

    /// Reads the next sealed frame, of at most `max` payload bytes (refused before any
    /// allocation when announced longer), and checks its MAC with `token`.
    pub fn recv_raw(
        &mut self,
        r: &mut impl Read,
        max: u32,
        token: &AgentToken,
    ) -> Result<Vec<u8>, HandshakeError> {
        let mut frame = wire::read_raw(r, max.saturating_add(MAC_LEN as u32))?;
        let Some(split) = frame.len().checked_sub(MAC_LEN) else {
            return Err(HandshakeError::Forged { seq: self.seq });
        };
        let seq = self.seq.to_be_bytes();
        let (payload, mac) = frame.split_at(split);
        if !token.verify(&mac_input(&self.nonce, &seq, payload), mac) {
            return Err(HandshakeError::Forged { seq: self.seq });
        }
        self.seq += 1;
        frame.truncate(split);
        Ok(frame)
    }

    /// Reads the next sealed JSON frame as `T`.
    pub fn recv<T: DeserializeOwned>(
        &mut self,
        r: &mut impl Read,
        max: u32,
        token: &AgentToken,
    ) -> Result<T, HandshakeError> {
        let payload = self.recv_raw(r, max, token)?;
        serde_json::from_slice(&payload).map_err(|e| HandshakeError::Malformed(e.to_string()))
    }
}

/// Reads and writes on a stream until a deadline, whatever the peer's pace: a peer trickling one
/// byte at a time cannot stretch the handshake.
pub struct Deadline<'a> {
    stream: &'a TcpStream,
    until: Instant,
}

impl<'a> Deadline<'a> {
    /// `stream` until `until`.
    pub fn new(stream: &'a TcpStream, until: Instant) -> Self {
        Deadline { stream, until }
    }

    fn left(&self) -> io::Result<std::time::Duration> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "handshake deadline passed",
            ));
        }
        Ok(left)
    }
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        (&mut &*self.stream).read(buf)
    }
}

impl Write for Deadline<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        (&mut &*self.stream).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(token: &AgentToken) -> (Sealer, Opener, Vec<u8>) {
        let mut challenge = Vec::new();
        let opener = Opener::challenge(&mut challenge).unwrap();
        let sealer = Sealer::start(&mut &challenge[..], token.clone()).unwrap();
        (sealer, opener, Vec::new())
    }

    #[test]
    fn sealed_frames_open_in_order_with_the_token_only() {
        let token = AgentToken::generate().unwrap();
        let (mut s, mut o, mut buf) = pair(&token);
        s.send(&mut buf, &"hello").unwrap();
        s.send_raw(&mut buf, b"manifest").unwrap();
        let mut rd = &buf[..];
        assert_eq!(o.recv::<String>(&mut rd, 64, &token).unwrap(), "hello");
        assert_eq!(o.recv_raw(&mut rd, 64, &token).unwrap(), b"manifest");

        // Another token, a replayed frame, a flipped byte: refused.
        let (mut s, mut o, mut buf) = pair(&token);
        s.send_raw(&mut buf, b"first").unwrap();
        let other = AgentToken::generate().unwrap();
        assert!(matches!(
            o.recv_raw(&mut &buf[..], 64, &other),
            Err(HandshakeError::Forged { seq: 0 })
        ));
        assert_eq!(o.recv_raw(&mut &buf[..], 64, &token).unwrap(), b"first");
        assert!(matches!(
            o.recv_raw(&mut &buf[..], 64, &token),
            Err(HandshakeError::Forged { seq: 1 })
        ));
        let (mut s, mut o, mut buf) = pair(&token);
        s.send_raw(&mut buf, b"first").unwrap();
        buf[5] ^= 1;
        assert!(o.recv_raw(&mut &buf[..], 64, &token).is_err());
    }

    #[test]
    fn frames_beyond_the_bound_are_refused_from_their_header() {
        let token = AgentToken::generate().unwrap();
        let (_, mut o, _) = pair(&token);
        // Only the header: the frame is refused without waiting for (or allocating) its body.
        let header = (40u32 << 20).to_be_bytes();
        let e = o.recv_raw(&mut &header[..], 64 << 10, &token).unwrap_err();
        assert!(
            matches!(e, HandshakeError::Io(ref io) if io.kind() == io::ErrorKind::InvalidData),
            "{e}"
        );
        // Shorter than a MAC.
        let mut short = Vec::new();
        wire::write_raw(&mut short, b"tiny").unwrap();
        assert!(matches!(
            o.recv_raw(&mut &short[..], 64, &token),
            Err(HandshakeError::Forged { .. })
        ));
    }
}

//! Messages between two peers of a swarm broadcast (two agents, or the server's seed and an agent),
//! on a connection opened with a sealed [`super::wire::Hello::Peer`]. Both directions carry the same
//! frames (integers big-endian):
//!
//! ```text
//! 'S' | low u64 | len u32 | bitmap (len bytes): the chunks low + i the sender holds (bit i, LSB first)
//! 'A' | chunks u64 | 0 u32:                      the sender holds every chunk (a seed)
//! 'R' | index u64 | 0 u32:                       send chunk `index`
//! 'C' | index u64 | len u32 | bytes:             chunk `index` (checked against the manifest)
//! 'N' | index u64 | 0 u32:                       chunk `index` is not here (any more)
//! ```

use crate::image::{ImageError, ImageErrorKind};
use std::io::{self, IoSlice, Read, Write};

/// Chunks a holding map covers at most (bounds the bitmap a peer may send).
pub const MAX_SPAN: u64 = 1 << 16;

/// A swarm message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerMsg {
    /// The chunks `low + i` for every bit `i` set are held.
    Holding {
        /// First chunk of the map.
        low: u64,
        /// The map.
        bits: Vec<u8>,
    },
    /// Every chunk is held.
    All,
    /// A request for a chunk.
    Request(u64),
    /// A chunk.
    Chunk(u64, Vec<u8>),
    /// A refused request.
    Missing(u64),
}

/// Writes one message (a chunk in one vectored write).
pub fn write(w: &mut impl Write, msg: &PeerMsg) -> io::Result<()> {
    let (tag, index, body): (u8, u64, &[u8]) = match msg {
        PeerMsg::Holding { low, bits } => (b'S', *low, bits),
        PeerMsg::All => (b'A', 0, &[]),
        PeerMsg::Request(i) => (b'R', *i, &[]),
        PeerMsg::Chunk(i, data) => (b'C', *i, data),
        PeerMsg::Missing(i) => (b'N', *i, &[]),
    };
    write_parts(w, tag, index, body)
}

/// Writes chunk `index` (as [`PeerMsg::Chunk`]) straight from a shared buffer.
pub fn write_chunk(w: &mut impl Write, index: u64, data: &[u8]) -> io::Result<()> {
    write_parts(w, b'C', index, data)
}

fn write_parts(w: &mut impl Write, tag: u8, index: u64, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message too long"))?;
    let mut h = [0u8; 13];
    h[0] = tag;
    h[1..9].copy_from_slice(&index.to_be_bytes());
    h[9..13].copy_from_slice(&len.to_be_bytes());
    let mut parts = [IoSlice::new(&h), IoSlice::new(body)];
    let mut parts = &mut parts[..];
    while !parts.is_empty() {
        match w.write_vectored(parts) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut parts, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn format(msg: String) -> ImageError {
    ImageError::new(ImageErrorKind::Format, msg)
}

/// Reads one message; a chunk longer than `max_chunk` or a map longer than [`MAX_SPAN`] bits is
/// refused from its header, before anything is allocated.
pub fn read(r: &mut impl Read, max_chunk: u32) -> Result<PeerMsg, ImageError> {
    let mut h = [0u8; 13];
    r.read_exact(&mut h)
        .map_err(|e| ImageError::io(ImageErrorKind::Io, "reading a peer message", &e))?;
    let index = u64::from_be_bytes(h[1..9].try_into().unwrap_or_default());
    let len = u32::from_be_bytes(h[9..13].try_into().unwrap_or_default());
    let max = match h[0] {
        b'S' => (MAX_SPAN / 8) as u32,
        b'C' => max_chunk,
        b'A' | b'R' | b'N' => 0,
        t => return Err(format(format!("unknown peer message {t:#04x}"))),
    };
    if len > max {
        return Err(format(format!(
            "peer message {:#04x} of {len} bytes, at most {max}",
            h[0]
        )));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body)
        .map_err(|e| ImageError::io(ImageErrorKind::Io, "reading a peer message", &e))?;
    Ok(match h[0] {
        b'S' => PeerMsg::Holding {
            low: index,
            bits: body,
        },
        b'A' => PeerMsg::All,
        b'R' => PeerMsg::Request(index),
        b'C' => PeerMsg::Chunk(index, body),
        _ => PeerMsg::Missing(index),
    })
}

/// Whether a holding map (`low`, `bits`) has chunk `index`.
pub fn holds(low: u64, bits: &[u8], index: u64) -> bool {
    index
        .checked_sub(low)
        .and_then(|i| bits.get((i / 8) as usize).map(|b| b & (1 << (i % 8)) != 0))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let msgs = [
            PeerMsg::Holding {
                low: 4,
                bits: vec![0b101],
            },
            PeerMsg::All,
            PeerMsg::Request(3),
            PeerMsg::Chunk(3, vec![1, 2, 3]),
            PeerMsg::Missing(9),
        ];
        let mut buf = Vec::new();
        for m in &msgs {
            write(&mut buf, m).unwrap();
        }
        let mut r = &buf[..];
        for m in &msgs {
            assert_eq!(&read(&mut r, 16).unwrap(), m);
        }
        assert!(holds(4, &[0b101], 4) && !holds(4, &[0b101], 5) && holds(4, &[0b101], 6));
        assert!(!holds(4, &[0b101], 3) && !holds(4, &[0b101], 100));
    }

    #[test]
    fn oversized_and_unknown_messages_are_refused_from_their_header() {
        let mut buf = Vec::new();
        write(&mut buf, &PeerMsg::Chunk(0, vec![0; 32])).unwrap();
        assert_eq!(
            read(&mut &buf[..], 16).unwrap_err().kind,
            ImageErrorKind::Format
        );
        let mut h = [0u8; 13];
        h[0] = b'S';
        h[9..13].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            read(&mut &h[..], 16).unwrap_err().kind,
            ImageErrorKind::Format
        );
        h[0] = b'Z';
        assert_eq!(
            read(&mut &h[..], 16).unwrap_err().kind,
            ImageErrorKind::Format
        );
    }
}

//! Datagrams of the multicast broadcast, every one sealed with the broadcast's token (see
//! [`super::token::DatagramKey`]) and tagged with its job, so that a datagram of an unknown sender
//! or of another broadcast is dropped before anything in it is used. All integers big-endian:
//!
//! ```text
//! kind u8 | job tag [4] | body | MAC [16]
//! data      'D' (sender → group):  chunk u32 | piece u16 | payload (at most PIECE_LEN bytes)
//! repair    'R' (sender → group):  chunk u32 | code u16 | payload (at most PIECE_LEN bytes)
//! heartbeat 'H' (sender → group):  chunks u32 | sent chunk u32 | sent piece u16 | finished u8
//! status    'S' (receiver → sender): node u32 | have u64 | count u16 | count × (chunk u32 | first u16 | pieces u16)
//! ```
//!
//! A status acknowledges the chunks a receiver holds in order (`have`) and asks again for the
//! pieces it misses (negative acknowledgements, at most [`MAX_NAK_RANGES`] ranges). A repair
//! carries forward error correction (see [`super::mcast_fec`]): `code` names its block and index.

use super::token::{DATAGRAM_MAC_LEN, DatagramKey};

/// Payload bytes of a data datagram: the datagram, [`MAX_DATAGRAM`] bytes, fills a 1,500-byte MTU
/// with the IP and UDP headers.
pub const PIECE_LEN: usize = MAX_DATAGRAM - PREFIX - 6 - DATAGRAM_MAC_LEN;
/// Largest datagram sent or accepted.
pub const MAX_DATAGRAM: usize = 1472;
/// Missing-piece ranges in one status at most.
pub const MAX_NAK_RANGES: usize = 64;
const PREFIX: usize = 1 + 4;

/// The tag of a job's datagrams (a first filter; the MAC decides).
pub type JobTag = [u8; 4];

/// The tag of job `job` in its datagrams.
pub fn job_tag(job: &str) -> JobTag {
    let h = blake3::hash(job.as_bytes());
    let mut tag = [0u8; 4];
    tag.copy_from_slice(&h.as_bytes()[..4]);
    tag
}

/// Pieces `first .. first + count` of chunk `chunk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PieceRange {
    /// Chunk index.
    pub chunk: u32,
    /// First piece.
    pub first: u16,
    /// Number of pieces.
    pub count: u16,
}

/// A multicast datagram's meaning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// Piece `piece` of chunk `chunk`.
    Data {
        /// Chunk index.
        chunk: u32,
        /// Piece index in the chunk.
        piece: u16,
        /// The piece's bytes.
        payload: &'a [u8],
    },
    /// Repair piece `code` (block and index, see [`super::mcast_fec::Fec::code`]) of chunk `chunk`.
    Repair {
        /// Chunk index.
        chunk: u32,
        /// Block and index of the repair in the chunk.
        code: u16,
        /// The repair's bytes.
        payload: &'a [u8],
    },
    /// The sender's progress: new data was sent up to (`chunk`, `piece`), inclusive.
    Heartbeat {
        /// Chunks of the image.
        chunks: u32,
        /// Chunk of the last new piece sent.
        chunk: u32,
        /// Last new piece sent in that chunk.
        piece: u16,
        /// The sender is done: receivers may stop.
        finished: bool,
    },
    /// A receiver's progress and the pieces it asks for again.
    Status {
        /// The receiver's index in the job.
        node: u32,
        /// Chunks it holds, verified, in order.
        have: u64,
        /// Missing pieces.
        naks: Vec<PieceRange>,
    },
}

fn prefix(kind: u8, tag: &JobTag, capacity: usize) -> Vec<u8> {
    let mut d = Vec::with_capacity(capacity + PREFIX + DATAGRAM_MAC_LEN);
    d.push(kind);
    d.extend_from_slice(tag);
    d
}

/// A sealed data datagram.
pub fn data(key: &DatagramKey, tag: &JobTag, chunk: u32, piece: u16, payload: &[u8]) -> Vec<u8> {
    piece_datagram(b'D', key, tag, chunk, piece, payload)
}

/// A sealed repair datagram (forward error correction).
pub fn repair(key: &DatagramKey, tag: &JobTag, chunk: u32, code: u16, payload: &[u8]) -> Vec<u8> {
    piece_datagram(b'R', key, tag, chunk, code, payload)
}

/// Length of the sealed data or repair datagram of a payload of `payload` bytes.
pub const fn piece_datagram_len(payload: usize) -> usize {
    PREFIX + 6 + payload + DATAGRAM_MAC_LEN
}

/// Appends a sealed data datagram to `out` (datagrams built one after the other, sent as a run).
pub fn append_data(
    out: &mut Vec<u8>,
    key: &DatagramKey,
    tag: &JobTag,
    (chunk, piece): (u32, u16),
    payload: &[u8],
) {
    append_piece(out, b'D', key, tag, (chunk, piece), payload);
}

/// Appends a sealed repair datagram (forward error correction) to `out`.
pub fn append_repair(
    out: &mut Vec<u8>,
    key: &DatagramKey,
    tag: &JobTag,
    (chunk, code): (u32, u16),
    payload: &[u8],
) {
    append_piece(out, b'R', key, tag, (chunk, code), payload);
}

fn piece_datagram(
    kind: u8,
    key: &DatagramKey,
    tag: &JobTag,
    chunk: u32,
    piece: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut d = Vec::with_capacity(piece_datagram_len(payload.len()));
    append_piece(&mut d, kind, key, tag, (chunk, piece), payload);
    d
}

fn append_piece(
    out: &mut Vec<u8>,
    kind: u8,
    key: &DatagramKey,
    tag: &JobTag,
    (chunk, piece): (u32, u16),
    payload: &[u8],
) {
    let start = out.len();
    out.push(kind);
    out.extend_from_slice(tag);
    out.extend_from_slice(&chunk.to_be_bytes());
    out.extend_from_slice(&piece.to_be_bytes());
    out.extend_from_slice(payload);
    key.seal_from(out, start);
}

/// A sealed heartbeat.
pub fn heartbeat(
    key: &DatagramKey,
    tag: &JobTag,
    chunks: u32,
    (chunk, piece): (u32, u16),
    finished: bool,
) -> Vec<u8> {
    let mut d = prefix(b'H', tag, 11);
    d.extend_from_slice(&chunks.to_be_bytes());
    d.extend_from_slice(&chunk.to_be_bytes());
    d.extend_from_slice(&piece.to_be_bytes());
    d.push(u8::from(finished));
    key.seal(&mut d);
    d
}

/// A sealed status (at most [`MAX_NAK_RANGES`] of `naks` are sent).
pub fn status(
    key: &DatagramKey,
    tag: &JobTag,
    node: u32,
    have: u64,
    naks: &[PieceRange],
) -> Vec<u8> {
    let naks = &naks[..naks.len().min(MAX_NAK_RANGES)];
    let mut d = prefix(b'S', tag, 14 + 8 * naks.len());
    d.extend_from_slice(&node.to_be_bytes());
    d.extend_from_slice(&have.to_be_bytes());
    d.extend_from_slice(&(naks.len() as u16).to_be_bytes());
    for r in naks {
        d.extend_from_slice(&r.chunk.to_be_bytes());
        d.extend_from_slice(&r.first.to_be_bytes());
        d.extend_from_slice(&r.count.to_be_bytes());
    }
    key.seal(&mut d);
    d
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Opens a datagram of job `tag`: `None` if it is too long, forged, of another job or malformed.
pub fn open<'a>(key: &DatagramKey, tag: &JobTag, datagram: &'a [u8]) -> Option<Datagram<'a>> {
    if datagram.len() > MAX_DATAGRAM || datagram.get(1..PREFIX)? != tag {
        return None;
    }
    let body = key.open(datagram)?;
    let kind = *body.first()?;
    let b = body.get(PREFIX..)?;
    match kind {
        b'D' | b'R' => {
            let payload = b.get(6..)?;
            if payload.is_empty() || payload.len() > PIECE_LEN {
                return None;
            }
            let (chunk, piece) = (u32_at(b, 0)?, u16_at(b, 4)?);
            Some(if kind == b'D' {
                Datagram::Data {
                    chunk,
                    piece,
                    payload,
                }
            } else {
                Datagram::Repair {
                    chunk,
                    code: piece,
                    payload,
                }
            })
        }
        b'H' if b.len() == 11 => Some(Datagram::Heartbeat {
            chunks: u32_at(b, 0)?,
            chunk: u32_at(b, 4)?,
            piece: u16_at(b, 8)?,
            finished: b[10] != 0,
        }),
        b'S' => {
            let count = usize::from(u16_at(b, 12)?);
            if count > MAX_NAK_RANGES || b.len() != 14 + 8 * count {
                return None;
            }
            let naks = (0..count)
                .map(|i| {
                    let at = 14 + 8 * i;
                    Some(PieceRange {
                        chunk: u32_at(b, at)?,
                        first: u16_at(b, at + 4)?,
                        count: u16_at(b, at + 6)?,
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Datagram::Status {
                node: u32_at(b, 0)?,
                have: u64_at(b, 4)?,
                naks,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broadcast::token::AgentToken;

    fn key() -> DatagramKey {
        DatagramKey::new(&AgentToken::generate().unwrap()).unwrap()
    }

    #[test]
    fn datagrams_round_trip_and_fit_the_mtu() {
        let k = key();
        let tag = job_tag("job");
        let d = data(&k, &tag, 7, 3, &[5u8; PIECE_LEN]);
        assert_eq!(d.len(), MAX_DATAGRAM);
        assert_eq!(
            open(&k, &tag, &d),
            Some(Datagram::Data {
                chunk: 7,
                piece: 3,
                payload: &[5u8; PIECE_LEN][..]
            })
        );
        let r = repair(&k, &tag, 7, 9, &[6u8; PIECE_LEN]);
        assert_eq!(r.len(), MAX_DATAGRAM);
        assert_eq!(
            open(&k, &tag, &r),
            Some(Datagram::Repair {
                chunk: 7,
                code: 9,
                payload: &[6u8; PIECE_LEN][..]
            })
        );
        let h = heartbeat(&k, &tag, 9, (4, 2), true);
        assert!(matches!(
            open(&k, &tag, &h),
            Some(Datagram::Heartbeat {
                chunks: 9,
                chunk: 4,
                piece: 2,
                finished: true
            })
        ));
        let naks = vec![
            PieceRange {
                chunk: 1,
                first: 2,
                count: 3
            };
            MAX_NAK_RANGES + 5
        ];
        let s = status(&k, &tag, 2, 11, &naks);
        assert!(s.len() <= MAX_DATAGRAM);
        match open(&k, &tag, &s) {
            Some(Datagram::Status { node, have, naks }) => {
                assert_eq!((node, have, naks.len()), (2, 11, MAX_NAK_RANGES));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn forged_foreign_and_malformed_datagrams_are_dropped() {
        let k = key();
        let tag = job_tag("job");
        let d = data(&k, &tag, 1, 0, b"x");
        assert_eq!(open(&key(), &tag, &d), None, "another token");
        assert_eq!(open(&k, &job_tag("other"), &d), None, "another job");
        let mut flipped = d.clone();
        flipped[8] ^= 1;
        assert_eq!(open(&k, &tag, &flipped), None);
        assert_eq!(open(&k, &tag, &d[..4]), None);
        assert_eq!(open(&k, &tag, &vec![0u8; MAX_DATAGRAM + 1]), None);
        let oversized = repair(&k, &tag, 1, 0, &[1u8; PIECE_LEN + 1]);
        assert_eq!(open(&k, &tag, &oversized), None, "oversized repair");
        let forged = repair(&key(), &tag, 1, 0, &[1u8; PIECE_LEN]);
        assert_eq!(open(&k, &tag, &forged), None, "forged repair");
        // A sealed status announcing more ranges than it holds.
        let mut s = prefix(b'S', &tag, 14);
        s.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        k.seal(&mut s);
        assert_eq!(open(&k, &tag, &s), None);
    }
}

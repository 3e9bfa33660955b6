//! Data-plane frames of the chunked stream: chunks and the end mark downstream, acknowledgements and
//! re-fetch requests upstream, on one raw TCP connection per hop.
//!
//! Downstream (all integers big-endian):
//!
//! ```text
//! chunk: 'C' | index u64 | len u32 | len bytes
//! end:   'E' | chunk count u64 | 0 u32
//! ```
//!
//! Upstream, fixed 17 bytes:
//!
//! ```text
//! ack:  'A' | have u64 | child_have u64    (chunks held in order by the receiver, and by its successor)
//! nack: 'N' | index u64 | 0 u64             (chunk `index` failed its hash: send again from there)
//! ```

use super::error::{ImageError, ImageErrorKind};
use super::manifest::MAX_CHUNK_SIZE;
use std::io::{self, IoSlice, Read, Write};

/// A downstream frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataFrame {
    /// Chunk `index` and its bytes.
    Chunk {
        /// Chunk index.
        index: u64,
        /// Chunk bytes.
        data: Vec<u8>,
    },
    /// No more chunks: the image has `count` chunks.
    End {
        /// Number of chunks of the image.
        count: u64,
    },
}

/// An upstream frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feedback {
    /// The receiver holds chunks `0..have` (verified, in order); its successor holds `0..child_have`
    /// (equal to `have` when it has no live successor).
    Ack {
        /// Chunks held by the receiver.
        have: u64,
        /// Chunks held by the receiver's successor.
        child_have: u64,
    },
    /// Chunk `index` arrived corrupted: the sender goes back to it.
    Nack {
        /// The chunk to send again.
        index: u64,
    },
}

const HEADER: usize = 13;

/// Writes a chunk frame header followed by `data`, in one vectored write where the writer takes it
/// whole (no separate small segment for the header, no copy of the data).
pub fn write_chunk(w: &mut impl Write, index: u64, data: &[u8]) -> io::Result<()> {
    let mut h = [0u8; HEADER];
    h[0] = b'C';
    h[1..9].copy_from_slice(&index.to_be_bytes());
    h[9..13].copy_from_slice(&(data.len() as u32).to_be_bytes());
    let mut parts = [IoSlice::new(&h), IoSlice::new(data)];
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

/// Writes the end frame.
pub fn write_end(w: &mut impl Write, count: u64) -> io::Result<()> {
    let mut h = [0u8; HEADER];
    h[0] = b'E';
    h[1..9].copy_from_slice(&count.to_be_bytes());
    w.write_all(&h)?;
    w.flush()
}

/// Reads one downstream frame. A chunk longer than `max_len` (at most [`MAX_CHUNK_SIZE`]) is a format
/// error: a peer can never make us allocate more than one chunk.
pub fn read_frame(r: &mut impl Read, max_len: u32) -> Result<DataFrame, ImageError> {
    read_frame_into(r, max_len, Vec::new())
}

/// The header of a downstream frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameHeader {
    /// Chunk `index` of `len` bytes follows.
    Chunk {
        /// Chunk index.
        index: u64,
        /// Length of the chunk's bytes that follow.
        len: u32,
    },
    /// No more chunks: the image has `count` chunks.
    End {
        /// Number of chunks of the image.
        count: u64,
    },
}

/// Reads the header of one downstream frame (the chunk's bytes are left to read). A chunk longer than
/// `max_len` (at most [`MAX_CHUNK_SIZE`]) is a format error, found before anything is allocated.
pub fn read_header(r: &mut impl Read, max_len: u32) -> Result<FrameHeader, ImageError> {
    let mut h = [0u8; HEADER];
    r.read_exact(&mut h)
        .map_err(|e| ImageError::io(ImageErrorKind::Io, "reading a frame header", &e))?;
    let index = u64::from_be_bytes(h[1..9].try_into().unwrap_or_default());
    let len = u32::from_be_bytes(h[9..13].try_into().unwrap_or_default());
    match h[0] {
        b'C' => {
            if len > max_len.min(MAX_CHUNK_SIZE) {
                return Err(ImageError::new(
                    ImageErrorKind::Format,
                    format!("chunk {index} of {len} bytes is too long"),
                ));
            }
            Ok(FrameHeader::Chunk { index, len })
        }
        b'E' => Ok(FrameHeader::End { count: index }),
        t => Err(ImageError::new(
            ImageErrorKind::Format,
            format!("unknown frame type {t:#04x}"),
        )),
    }
}

/// Writes the header of a chunk frame of `len` bytes (its bytes are to follow, cut-through).
pub fn write_chunk_header(w: &mut impl Write, index: u64, len: u32) -> io::Result<()> {
    let mut h = [0u8; HEADER];
    h[0] = b'C';
    h[1..9].copy_from_slice(&index.to_be_bytes());
    h[9..13].copy_from_slice(&len.to_be_bytes());
    w.write_all(&h)
}

/// Reads one downstream frame as [`read_frame`] does, a chunk into `buffer` (reused: a buffer of a
/// previous chunk is neither reallocated nor zeroed again).
pub fn read_frame_into(
    r: &mut impl Read,
    max_len: u32,
    mut buffer: Vec<u8>,
) -> Result<DataFrame, ImageError> {
    match read_header(r, max_len)? {
        FrameHeader::Chunk { index, len } => {
            buffer.resize(len as usize, 0);
            r.read_exact(&mut buffer)
                .map_err(|e| ImageError::io(ImageErrorKind::Io, "reading a chunk", &e))?;
            Ok(DataFrame::Chunk {
                index,
                data: buffer,
            })
        }
        FrameHeader::End { count } => Ok(DataFrame::End { count }),
    }
}

/// Writes one upstream frame.
pub fn write_feedback(w: &mut impl Write, f: Feedback) -> io::Result<()> {
    let (tag, a, b) = match f {
        Feedback::Ack { have, child_have } => (b'A', have, child_have),
        Feedback::Nack { index } => (b'N', index, 0),
    };
    let mut buf = [0u8; 17];
    buf[0] = tag;
    buf[1..9].copy_from_slice(&a.to_be_bytes());
    buf[9..17].copy_from_slice(&b.to_be_bytes());
    w.write_all(&buf)?;
    w.flush()
}

/// Reads one upstream frame.
pub fn read_feedback(r: &mut impl Read) -> Result<Feedback, ImageError> {
    let mut buf = [0u8; 17];
    r.read_exact(&mut buf)
        .map_err(|e| ImageError::io(ImageErrorKind::Io, "reading feedback", &e))?;
    let a = u64::from_be_bytes(buf[1..9].try_into().unwrap_or_default());
    let b = u64::from_be_bytes(buf[9..17].try_into().unwrap_or_default());
    match buf[0] {
        b'A' => Ok(Feedback::Ack {
            have: a,
            child_have: b,
        }),
        b'N' => Ok(Feedback::Nack { index: a }),
        t => Err(ImageError::new(
            ImageErrorKind::Format,
            format!("unknown feedback type {t:#04x}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        write_chunk(&mut buf, 7, b"hello").unwrap();
        write_end(&mut buf, 8).unwrap();
        let mut r = &buf[..];
        assert_eq!(
            read_frame(&mut r, 1024).unwrap(),
            DataFrame::Chunk {
                index: 7,
                data: b"hello".to_vec()
            }
        );
        assert_eq!(
            read_frame(&mut r, 1024).unwrap(),
            DataFrame::End { count: 8 }
        );
        assert_eq!(
            read_frame(&mut r, 1024).unwrap_err().kind,
            ImageErrorKind::Io
        );
    }

    #[test]
    fn rejects_oversized_and_unknown_frames() {
        let mut buf = Vec::new();
        write_chunk(&mut buf, 0, &[0u8; 100]).unwrap();
        assert_eq!(
            read_frame(&mut &buf[..], 99).unwrap_err().kind,
            ImageErrorKind::Format
        );
        buf[0] = b'Z';
        assert_eq!(
            read_frame(&mut &buf[..], 1000).unwrap_err().kind,
            ImageErrorKind::Format
        );
        let mut short = &buf[..5];
        assert_eq!(
            read_frame(&mut short, 1000).unwrap_err().kind,
            ImageErrorKind::Io
        );
    }

    #[test]
    fn feedback_round_trips() {
        let mut buf = Vec::new();
        write_feedback(
            &mut buf,
            Feedback::Ack {
                have: 3,
                child_have: 2,
            },
        )
        .unwrap();
        write_feedback(&mut buf, Feedback::Nack { index: 9 }).unwrap();
        let mut r = &buf[..];
        assert_eq!(
            read_feedback(&mut r).unwrap(),
            Feedback::Ack {
                have: 3,
                child_have: 2
            }
        );
        assert_eq!(read_feedback(&mut r).unwrap(), Feedback::Nack { index: 9 });
        assert!(read_feedback(&mut &b"X"[..]).is_err());
    }
}

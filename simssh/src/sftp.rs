//! A minimal SFTP (version 3) server over a node's simulated files, as byte-driven state: what OpenSSH's
//! `scp` (SFTP mode, the default since 9.0) and `sftp` use to upload, download, list, create and remove.
//! Packet sizes, open handles and file sizes are bounded.

use crate::node_fs::NodeFs;
use crate::vfs::{Entry, FsError, Held, MAX_FILE_BYTES, normalize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Largest packet accepted.
pub const MAX_PACKET: usize = 256 << 10;
/// Handles open at once.
pub const MAX_HANDLES: usize = 16;
/// The home directory relative paths start from.
const HOME: &str = "root";

/// Why the subsystem stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SftpError {
    /// A packet is over [`MAX_PACKET`] or malformed.
    #[error("sftp: bad packet: {0}")]
    BadPacket(&'static str),
}

/// An open handle.
#[derive(Debug)]
enum Handle {
    Read(Arc<Vec<u8>>),
    Write {
        path: String,
        data: Vec<u8>,
        /// The budget share of `data`.
        held: Held,
    },
    Dir {
        entries: Vec<(String, Entry)>,
        sent: bool,
    },
}

/// One sftp session.
#[derive(Debug, Default)]
pub struct Sftp {
    buf: Vec<u8>,
    handles: BTreeMap<u32, Handle>,
    next: u32,
}

/// Status codes of SSH_FXP_STATUS.
const OK: u32 = 0;
const EOF: u32 = 1;
const NO_SUCH_FILE: u32 = 2;
const FAILURE: u32 = 4;
const UNSUPPORTED: u32 = 8;

/// A packet's payload being read.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SftpError> {
        if self.0.len() < n {
            return Err(SftpError::BadPacket("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, SftpError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, SftpError> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }
    fn bytes(&mut self) -> Result<&'a [u8], SftpError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, SftpError> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }
}

/// A reply packet being built.
struct Out(Vec<u8>);

impl Out {
    fn new(kind: u8, id: Option<u32>) -> Out {
        let mut o = Out(vec![0, 0, 0, 0, kind]);
        if let Some(id) = id {
            o.u32(id);
        }
        o
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn attrs(&mut self, e: &Entry) {
        self.u32(1 | 2 | 4 | 8);
        self.u64(e.size());
        self.u32(0);
        self.u32(0);
        self.u32(if *e == Entry::Dir { 0o40755 } else { 0o100644 });
        self.u32(0);
        self.u32(0);
    }
    fn done(mut self) -> Vec<u8> {
        let len = (self.0.len() - 4) as u32;
        self.0[..4].copy_from_slice(&len.to_be_bytes());
        self.0
    }
}

fn status(id: u32, code: u32, message: &str) -> Vec<u8> {
    let mut o = Out::new(101, Some(id));
    o.u32(code);
    o.bytes(message.as_bytes());
    o.bytes(b"en");
    o.done()
}

fn fs_status(id: u32, e: FsError) -> Vec<u8> {
    let code = if e == FsError::NotFound {
        NO_SUCH_FILE
    } else {
        FAILURE
    };
    status(id, code, &e.to_string())
}

fn attrs_reply(id: u32, e: &Entry) -> Vec<u8> {
    let mut o = Out::new(105, Some(id));
    o.attrs(e);
    o.done()
}

/// SSH_FXP_REMOVE (13), MKDIR (14), RMDIR (15) and RENAME (18).
fn change(fs: &mut NodeFs, id: u32, kind: u8, r: &mut Reader<'_>) -> Result<Vec<u8>, SftpError> {
    let path = r.string()?;
    let result = match kind {
        14 => fs
            .locate(HOME, &path)
            .and_then(|(t, rel)| fs.tree_mut(&t).mkdir(&rel, false)),
        18 => {
            let to = r.string()?;
            fs.read(HOME, &path).and_then(|d| {
                fs.write(HOME, &to, &d, false, false)?;
                let (t, rel) = fs.locate(HOME, &path)?;
                fs.tree_mut(&t).remove(&rel, false)
            })
        }
        _ => fs.locate(HOME, &path).and_then(|(t, rel)| {
            let is_dir = fs.tree(&t).is_dir(&rel);
            if is_dir != (kind == 15) {
                return Err(if is_dir {
                    FsError::IsDir
                } else {
                    FsError::NotDir
                });
            }
            fs.tree_mut(&t).remove(&rel, false)
        }),
    };
    Ok(result.map_or_else(|e| fs_status(id, e), |()| status(id, OK, "OK")))
}

fn name_reply(id: u32, entries: &[(String, Entry)]) -> Vec<u8> {
    let mut o = Out::new(104, Some(id));
    o.u32(entries.len() as u32);
    for (name, e) in entries {
        o.bytes(name.as_bytes());
        let kind = if *e == Entry::Dir { 'd' } else { '-' };
        o.bytes(
            format!(
                "{kind}rw-r--r--    1 root     root     {:>8} Jan  1 00:00 {name}",
                e.size()
            )
            .as_bytes(),
        );
        o.attrs(e);
    }
    o.done()
}

impl Sftp {
    /// Takes bytes from the client; returns the replies to send.
    pub fn feed(&mut self, fs: &mut NodeFs, data: &[u8]) -> Result<Vec<u8>, SftpError> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            if self.buf.len() < 4 {
                return Ok(out);
            }
            let len =
                u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
            if len == 0 || len > MAX_PACKET {
                return Err(SftpError::BadPacket("length"));
            }
            if self.buf.len() < 4 + len {
                return Ok(out);
            }
            let packet: Vec<u8> = self.buf.drain(..4 + len).skip(4).collect();
            out.extend(self.packet(fs, &packet)?);
        }
    }

    /// Handles one packet.
    fn packet(&mut self, fs: &mut NodeFs, packet: &[u8]) -> Result<Vec<u8>, SftpError> {
        let mut r = Reader(packet);
        let kind = r.take(1)?[0];
        if kind == 1 {
            let mut o = Out::new(2, None);
            o.u32(3);
            return Ok(o.done());
        }
        let id = r.u32()?;
        Ok(match kind {
            3 => {
                let path = r.string()?;
                let flags = r.u32()?;
                self.open(fs, id, &path, flags)
            }
            4 => self.close(fs, id, &mut r)?,
            5 => self.read(id, &mut r)?,
            6 => self.write(id, &mut r)?,
            7 | 17 => match fs.stat(HOME, &r.string()?) {
                Ok(e) => attrs_reply(id, &e),
                Err(e) => fs_status(id, e),
            },
            8 => {
                let h = self.handle_id(&mut r)?;
                match self.handles.get(&h) {
                    Some(Handle::Read(d)) => attrs_reply(id, &Entry::File(d.clone())),
                    Some(Handle::Write { data, .. }) => {
                        attrs_reply(id, &Entry::Opaque(data.len() as u64))
                    }
                    Some(Handle::Dir { .. }) => attrs_reply(id, &Entry::Dir),
                    None => status(id, FAILURE, "bad handle"),
                }
            }
            9 | 10 => status(id, OK, "OK"),
            11 => {
                let path = r.string()?;
                let listing = fs
                    .locate(HOME, &path)
                    .and_then(|(t, rel)| fs.tree(&t).list(&rel));
                match listing {
                    Ok(entries) => self.new_handle(
                        id,
                        Handle::Dir {
                            entries,
                            sent: false,
                        },
                    ),
                    Err(e) => fs_status(id, e),
                }
            }
            12 => {
                let h = self.handle_id(&mut r)?;
                match self.handles.get_mut(&h) {
                    Some(Handle::Dir { entries, sent }) if !*sent => {
                        *sent = true;
                        name_reply(id, entries)
                    }
                    Some(Handle::Dir { .. }) => status(id, EOF, "EOF"),
                    _ => status(id, FAILURE, "bad handle"),
                }
            }
            13 | 14 | 15 | 18 => change(fs, id, kind, &mut r)?,
            16 => match normalize(HOME, &r.string()?) {
                Ok(p) => name_reply(id, &[(format!("/{p}"), Entry::Dir)]),
                Err(e) => fs_status(id, e),
            },
            _ => status(id, UNSUPPORTED, "operation not supported"),
        })
    }

    /// SSH_FXP_CLOSE: a written file is stored now.
    fn close(
        &mut self,
        fs: &mut NodeFs,
        id: u32,
        r: &mut Reader<'_>,
    ) -> Result<Vec<u8>, SftpError> {
        let h = self.handle_id(r)?;
        Ok(match self.handles.remove(&h) {
            Some(Handle::Write { path, data, .. }) => {
                match fs.write(HOME, &path, &data, false, false) {
                    Ok(()) => status(id, OK, "OK"),
                    Err(e) => fs_status(id, e),
                }
            }
            Some(_) => status(id, OK, "OK"),
            None => status(id, FAILURE, "bad handle"),
        })
    }

    /// SSH_FXP_READ.
    fn read(&self, id: u32, r: &mut Reader<'_>) -> Result<Vec<u8>, SftpError> {
        let h = self.handle_id(r)?;
        let (offset, len) = (r.u64()?, r.u32()?.min(64 << 10) as usize);
        Ok(match self.handles.get(&h) {
            Some(Handle::Read(data)) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                if start >= data.len() {
                    status(id, EOF, "EOF")
                } else {
                    let mut o = Out::new(103, Some(id));
                    o.bytes(&data[start..(start + len).min(data.len())]);
                    o.done()
                }
            }
            _ => status(id, FAILURE, "bad handle"),
        })
    }

    /// SSH_FXP_WRITE, within [`MAX_FILE_BYTES`].
    fn write(&mut self, id: u32, r: &mut Reader<'_>) -> Result<Vec<u8>, SftpError> {
        let h = self.handle_id(r)?;
        let offset = r.u64()?;
        let chunk = r.bytes()?;
        let Some(Handle::Write { data, held, .. }) = self.handles.get_mut(&h) else {
            return Ok(status(id, FAILURE, "bad handle"));
        };
        let end = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(chunk.len()));
        Ok(match end {
            Some(end) if end <= MAX_FILE_BYTES => {
                let start = end - chunk.len();
                if data.len() < end {
                    if let Err(e) = held.grow(end - data.len()) {
                        return Ok(fs_status(id, e));
                    }
                    data.resize(end, 0);
                }
                data[start..end].copy_from_slice(chunk);
                status(id, OK, "OK")
            }
            _ => fs_status(id, FsError::NoSpace),
        })
    }

    fn handle_id(&self, r: &mut Reader<'_>) -> Result<u32, SftpError> {
        let b = r.bytes()?;
        Ok(<[u8; 4]>::try_from(b)
            .map(u32::from_be_bytes)
            .unwrap_or(u32::MAX))
    }

    fn new_handle(&mut self, id: u32, h: Handle) -> Vec<u8> {
        if self.handles.len() >= MAX_HANDLES {
            return status(id, FAILURE, "too many open handles");
        }
        self.next = self.next.wrapping_add(1);
        self.handles.insert(self.next, h);
        let mut o = Out::new(102, Some(id));
        o.bytes(&self.next.to_be_bytes());
        o.done()
    }

    fn open(&mut self, fs: &mut NodeFs, id: u32, path: &str, flags: u32) -> Vec<u8> {
        const WRITE: u32 = 2;
        const APPEND: u32 = 4;
        const CREAT: u32 = 8;
        if flags & (WRITE | CREAT) == 0 {
            return match fs.read(HOME, path) {
                Ok(d) => self.new_handle(id, Handle::Read(d)),
                Err(e) => fs_status(id, e),
            };
        }
        let existing = match fs.read(HOME, path) {
            Ok(d) if flags & APPEND != 0 => d.as_ref().clone(),
            Ok(_) => Vec::new(),
            Err(FsError::NotFound) if flags & CREAT != 0 => Vec::new(),
            Err(e) => return fs_status(id, e),
        };
        // Create it now, so that a missing directory fails at open as it would on a node.
        if let Err(e) = fs.write(HOME, path, &existing, false, false) {
            return fs_status(id, e);
        }
        let mut held = Held::default();
        if let Err(e) = held.grow(existing.len()) {
            return fs_status(id, e);
        }
        self.new_handle(
            id,
            Handle::Write {
                path: path.to_string(),
                data: existing,
                held,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(kind: u8, id: u32, body: &[&[u8]]) -> Vec<u8> {
        let mut o = Out::new(kind, Some(id));
        for b in body {
            o.0.extend_from_slice(b);
        }
        o.done()
    }

    fn string(s: &[u8]) -> Vec<u8> {
        let mut v = (s.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(s);
        v
    }

    #[test]
    fn upload_then_download_and_oversized_packets() {
        let mut fs = NodeFs::new("n1");
        let mut s = Sftp::default();
        assert_eq!(
            s.feed(&mut fs, &[0, 0, 0, 5, 1, 0, 0, 0, 3]).unwrap(),
            vec![0, 0, 0, 5, 2, 0, 0, 0, 3]
        );
        let open = packet(
            3,
            7,
            &[
                &string(b"/tmp/x"),
                &(2u32 | 8 | 16).to_be_bytes(),
                &0u32.to_be_bytes(),
            ],
        );
        let reply = s.feed(&mut fs, &open).unwrap();
        assert_eq!(reply[4], 102);
        let handle = string(&reply[13..17]);
        let write = packet(6, 8, &[&handle, &0u64.to_be_bytes(), &string(b"hello")]);
        let huge_offset = packet(6, 10, &[&handle, &u64::MAX.to_be_bytes(), &string(b"x")]);
        let close = packet(4, 9, &[&handle]);
        let reply = s
            .feed(&mut fs, &[write, huge_offset, close].concat())
            .unwrap();
        let one = 4 + 1 + 4 + 4 + 4 + 2 + 4 + 2;
        assert_eq!(
            reply.len(),
            2 * one + one - 2 + FsError::NoSpace.to_string().len()
        );
        assert_eq!(&reply[one + 9..one + 13], &FAILURE.to_be_bytes());
        assert_eq!(fs.read("", "/tmp/x").unwrap().as_slice(), b"hello");
        assert!(
            s.feed(&mut fs, &((MAX_PACKET + 1) as u32).to_be_bytes())
                .is_err()
        );
    }
}

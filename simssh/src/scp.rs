//! The legacy scp protocol (`scp -O`, `scp -t` and `scp -f` run by the remote shell), as byte-driven
//! state machines over a node's simulated files: uploads (with `-r` directories) and downloads of one
//! file, every line, name and size bounded.

use crate::node_fs::NodeFs;
use crate::vfs::{Entry, FsError, Held, MAX_FILE_BYTES, base_name};

/// Longest control line (`C0644 <size> <name>`).
pub const MAX_LINE: usize = 4096;
/// Directory nesting of a recursive upload.
pub const MAX_DEPTH: usize = 32;

/// What a remote `scp` command asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScpMode {
    /// `scp -t PATH`: receive into PATH.
    Sink(String),
    /// `scp -f PATH`: send PATH.
    Source(String),
}

/// Why a transfer stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScpError {
    /// The peer broke the protocol.
    #[error("scp: protocol error: {0}")]
    Protocol(String),
    /// A file could not be read or written.
    #[error("scp: {path}: {source}")]
    Fs {
        /// The file.
        path: String,
        /// Why.
        source: FsError,
    },
}

/// The mode of an exec'd `scp` command line, when it is one.
pub fn parse_command(command: &str) -> Option<ScpMode> {
    let words: Vec<&str> = command.split_whitespace().collect();
    if words.first().map(|w| base_name(w)) != Some("scp") {
        return None;
    }
    let flags: String = words[1..]
        .iter()
        .take_while(|w| w.starts_with('-') && **w != "--")
        .flat_map(|w| w.chars().skip(1))
        .collect();
    let path = words
        .last()
        .filter(|w| !w.starts_with('-') && words.len() > 1)?
        .to_string();
    if flags.contains('t') {
        Some(ScpMode::Sink(path))
    } else if flags.contains('f') {
        Some(ScpMode::Source(path))
    } else {
        None
    }
}

/// An scp error reply (`\x01` then a line).
fn warning(message: &str) -> Vec<u8> {
    let mut v = vec![1u8];
    v.extend_from_slice(message.as_bytes());
    v.push(b'\n');
    v
}

/// The receiving side (`scp -t`).
#[derive(Debug)]
pub struct Sink {
    target: String,
    /// Directories entered (`D` lines), as paths.
    dirs: Vec<String>,
    line: Vec<u8>,
    /// A file being received: its path, declared size and data so far.
    file: Option<(String, usize, Vec<u8>)>,
    /// The budget share of the file being received.
    held: Held,
}

impl Sink {
    /// A sink writing into `target`; the first bytes to send are [`Sink::hello`].
    pub fn new(target: String) -> Self {
        Sink {
            target,
            dirs: Vec::new(),
            line: Vec::new(),
            file: None,
            held: Held::default(),
        }
    }

    /// What the sink sends first (ready).
    pub fn hello() -> Vec<u8> {
        vec![0]
    }

    /// Where an entry called `name` goes.
    fn place(&self, fs: &NodeFs, name: &str) -> String {
        match self.dirs.last() {
            Some(dir) => format!("{dir}/{name}"),
            None if fs.stat("root", &self.target) == Ok(Entry::Dir) => {
                format!("{}/{name}", self.target)
            }
            None => self.target.clone(),
        }
    }

    /// Takes bytes from the client; returns the bytes to answer.
    pub fn feed(&mut self, fs: &mut NodeFs, mut data: &[u8]) -> Result<Vec<u8>, ScpError> {
        let mut reply = Vec::new();
        while !data.is_empty() {
            if let Some((path, size, buf)) = &mut self.file {
                let want = (*size + 1).saturating_sub(buf.len());
                let take = want.min(data.len());
                if let Err(source) = self.held.grow(take) {
                    return Err(ScpError::Fs {
                        path: path.clone(),
                        source,
                    });
                }
                buf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if buf.len() == *size + 1 {
                    if buf.pop() != Some(0) {
                        return Err(ScpError::Protocol(
                            "file data not followed by a zero byte".into(),
                        ));
                    }
                    let path = std::mem::take(path);
                    let content = std::mem::take(buf);
                    self.file = None;
                    let held = self.held.bytes();
                    self.held.shrink(held);
                    match fs.write("root", &path, &content, false, false) {
                        Ok(()) => reply.push(0),
                        Err(source) => return Err(ScpError::Fs { path, source }),
                    }
                }
                continue;
            }
            let end = data.iter().position(|&b| b == b'\n');
            let take = end.map_or(data.len(), |e| e + 1);
            if self.line.len() + take > MAX_LINE {
                return Err(ScpError::Protocol("control line too long".into()));
            }
            self.line.extend_from_slice(&data[..take]);
            data = &data[take..];
            if end.is_some() {
                let line = String::from_utf8_lossy(&std::mem::take(&mut self.line))
                    .trim_end_matches('\n')
                    .to_string();
                reply.extend(self.control(fs, &line)?);
            }
        }
        Ok(reply)
    }

    /// Handles one control line.
    fn control(&mut self, fs: &mut NodeFs, line: &str) -> Result<Vec<u8>, ScpError> {
        let protocol = |m: &str| ScpError::Protocol(m.to_string());
        match line.chars().next() {
            Some('T') => Ok(vec![0]),
            Some('E') => {
                self.dirs.pop().ok_or_else(|| protocol("E without D"))?;
                Ok(vec![0])
            }
            Some(kind @ ('C' | 'D')) => {
                let mut parts = line[1..].splitn(3, ' ');
                let (_mode, size, name) = (parts.next(), parts.next(), parts.next());
                let size: usize = size
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| protocol("bad size"))?;
                let name = name.ok_or_else(|| protocol("no name"))?;
                if name.is_empty() || name.contains('/') || name == ".." || name == "." {
                    return Ok(warning(&format!("scp: error: unexpected filename: {name}")));
                }
                let path = self.place(fs, name);
                if kind == 'D' {
                    if self.dirs.len() >= MAX_DEPTH {
                        return Err(protocol("directories nested too deeply"));
                    }
                    let target_dir =
                        if self.dirs.is_empty() && fs.stat("root", &self.target).is_err() {
                            self.target.clone()
                        } else {
                            path
                        };
                    let (id, rel) =
                        fs.locate("root", &target_dir)
                            .map_err(|source| ScpError::Fs {
                                path: target_dir.clone(),
                                source,
                            })?;
                    if let Err(source) = fs.tree_mut(&id).mkdir(&rel, true) {
                        return Ok(warning(&format!("scp: {target_dir}: {source}")));
                    }
                    self.dirs.push(target_dir);
                    return Ok(vec![0]);
                }
                if size > MAX_FILE_BYTES {
                    return Ok(warning(&format!("scp: {path}: {}", FsError::NoSpace)));
                }
                self.file = Some((path, size, Vec::new()));
                Ok(vec![0])
            }
            Some('\x01' | '\x02') => Err(protocol(line[1..].trim())),
            _ => Err(protocol("unknown control line")),
        }
    }
}

/// The sending side (`scp -f`) of one file.
#[derive(Debug)]
pub struct Source {
    header: Vec<u8>,
    data: std::sync::Arc<Vec<u8>>,
    /// Acknowledgements received so far (0: waiting for the start, 1: header sent, 2: data sent).
    acks: u8,
}

impl Source {
    /// A source of `path`, or the error reply when it cannot be read.
    pub fn new(fs: &NodeFs, path: &str) -> Result<Self, Vec<u8>> {
        match fs.read("root", path) {
            Ok(data) => {
                let name = base_name(path.trim_end_matches('/'));
                let header = format!("C0644 {} {name}\n", data.len()).into_bytes();
                Ok(Source {
                    header,
                    data,
                    acks: 0,
                })
            }
            Err(e) => Err(warning(&format!("scp: {path}: {e}"))),
        }
    }

    /// Takes bytes from the client: what to send, and true when the transfer is over.
    pub fn feed(&mut self, data: &[u8]) -> Result<(Vec<u8>, bool), ScpError> {
        let mut out = Vec::new();
        for &b in data {
            if b != 0 {
                return Err(ScpError::Protocol("the client refused the file".into()));
            }
            self.acks += 1;
            match self.acks {
                1 => out.extend_from_slice(&self.header),
                2 => {
                    out.extend_from_slice(&self.data);
                    out.push(0);
                }
                _ => return Ok((out, true)),
            }
        }
        Ok((out, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_upload_and_download() {
        assert_eq!(
            parse_command("scp -t -- /tmp/x"),
            Some(ScpMode::Sink("/tmp/x".into()))
        );
        assert_eq!(
            parse_command("scp -r -t /tmp"),
            Some(ScpMode::Sink("/tmp".into()))
        );
        assert_eq!(
            parse_command("scp -f /etc/hostname"),
            Some(ScpMode::Source("/etc/hostname".into()))
        );
        assert_eq!(parse_command("scp -t"), None);
        assert_eq!(parse_command("cat /x"), None);
        let mut fs = NodeFs::new("node-1.sim");
        let mut sink = Sink::new("/tmp".into());
        let mut reply = sink.feed(&mut fs, b"C0644 5 f.txt\nhel").unwrap();
        reply.extend(sink.feed(&mut fs, b"lo\0").unwrap());
        assert_eq!(reply, vec![0, 0]);
        assert_eq!(fs.read("", "/tmp/f.txt").unwrap().as_slice(), b"hello");
        assert_eq!(sink.feed(&mut fs, b"C0644 1 ../escape\n").unwrap()[0], 1);
        let too_big = format!("C0644 {} big\n", MAX_FILE_BYTES + 1);
        assert_eq!(sink.feed(&mut fs, too_big.as_bytes()).unwrap()[0], 1);
        assert!(sink.feed(&mut fs, &[b'C'; MAX_LINE + 1]).is_err());
        let mut src = Source::new(&fs, "/tmp/f.txt").unwrap();
        let (out, done) = src.feed(&[0]).unwrap();
        assert_eq!((out.as_slice(), done), (&b"C0644 5 f.txt\n"[..], false));
        let (out, done) = src.feed(&[0, 0]).unwrap();
        assert_eq!((out.as_slice(), done), (&b"hello\0"[..], true));
        assert!(Source::new(&fs, "/nope").is_err());
    }
}

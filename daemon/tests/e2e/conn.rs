//! A keep-alive HTTP/1.1 connection for the attack and fuzz tests: several requests written on one
//! socket (pipelined or one after the other) and their answers read back one by one, so a dropped
//! connection shows as a missing answer.

use super::harness::Resp;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Largest answer body read (the API's largest answers are well below).
const MAX_BODY: usize = 64 << 20;

/// One open connection to the server.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connects to 127.0.0.1:`port`; reads time out after `timeout`.
    pub fn open(port: u16, timeout: Duration) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(timeout)).expect("read timeout");
        s.set_nodelay(true).expect("nodelay");
        Conn {
            reader: BufReader::new(s),
        }
    }

    /// Writes raw bytes (a write error is not fatal: the server may have answered and closed).
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.reader.get_mut().write_all(bytes);
    }

    /// Reads the next answer, `None` when the connection ends (or times out) before a full one.
    pub fn read(&mut self) -> Option<Resp> {
        let mut line = String::new();
        self.reader.read_line(&mut line).ok()?;
        let status: u16 = line.split(' ').nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if self.reader.read_line(&mut h).ok()? == 0 {
                return None;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':')?;
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let mut raw = Vec::new();
        if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).ok()?;
                let size = usize::from_str_radix(size.trim(), 16).ok()?;
                if size == 0 {
                    let mut end = String::new();
                    self.reader.read_line(&mut end).ok()?;
                    break;
                }
                if raw.len() + size > MAX_BODY {
                    return None;
                }
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).ok()?;
                raw.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            if len > MAX_BODY {
                return None;
            }
            raw = vec![0; len];
            self.reader.read_exact(&mut raw).ok()?;
        }
        Some(Resp {
            status,
            headers,
            raw,
        })
    }
}

/// A request as the Ruby clients send it, keeping the connection open unless `close`.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    user: Option<&str>,
    body: Option<(&str, &[u8])>,
    close: bool,
) -> Vec<u8> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n"
    );
    if let Some(user) = user {
        head.push_str(&format!("X-Kadeploy-User: {user}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    let mut bytes = Vec::new();
    match body {
        Some((ctype, body)) => {
            head.push_str(&format!(
                "Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            ));
            bytes.extend_from_slice(head.as_bytes());
            bytes.extend_from_slice(body);
        }
        None => {
            head.push_str("\r\n");
            bytes.extend_from_slice(head.as_bytes());
        }
    }
    bytes
}

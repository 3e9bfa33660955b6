//! `-H/--debug-http`: the HTTP exchanges dumped as Ruby's `Net::HTTP#set_debug_output` does (`<- "…"` for
//! what is sent, `-> "…"` for what is received), to file descriptor 4 when the caller opened it, else to
//! stdout.

use std::fs::File;
use std::io::Write as _;
use std::sync::OnceLock;

/// File descriptor 4 as the process found it at start-up (before the runtime opened its own files).
static FD4: OnceLock<Option<File>> = OnceLock::new();

/// Records whether fd 4 was open at start-up; call before creating any file or socket.
pub fn capture_fd4() {
    FD4.get_or_init(|| {
        std::fs::read_link("/proc/self/fd/4").ok()?;
        std::fs::OpenOptions::new()
            .append(true)
            .open("/proc/self/fd/4")
            .ok()
    });
}

/// Writes one trace block.
pub fn emit(text: &str) {
    match FD4.get().and_then(Option::as_ref) {
        Some(mut f) => {
            let _ = f.write_all(text.as_bytes());
        }
        None => {
            print!("{text}");
            let _ = std::io::stdout().flush();
        }
    }
}

/// Ruby's `String#inspect` of `bytes` (quoted, `\r`, `\n`, `\"`, `\\` and non-printable bytes escaped).
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '\r' => out += "\\r",
            '\n' => out += "\\n",
            '\t' => out += "\\t",
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            c if c.is_control() => out += &format!("\\x{:02X}", c as u32),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The request as `Net::HTTP` logs it: the request line and headers, then the body.
pub fn request(method: &str, target: &str, headers: &[(String, String)], body: &[u8]) -> String {
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    head += "\r\n";
    let mut out = format!("<- {}\n", quote(head.as_bytes()));
    if !body.is_empty() {
        out += &format!("<- {}\n", quote(body));
    }
    out
}

/// The response as `Net::HTTP` logs it: status line, each header, then the body with its size.
pub fn response(status: u16, reason: &str, headers: &[(String, String)], body: &[u8]) -> String {
    let mut out = format!(
        "-> {}\n",
        quote(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes())
    );
    for (k, v) in headers {
        out += &format!("-> {}\n", quote(format!("{k}: {v}\r\n").as_bytes()));
    }
    out += "-> \"\\r\\n\"\n";
    out += &format!("reading {} bytes...\n", body.len());
    out += &format!("-> {}\n", quote(body));
    out += &format!("read {} bytes\n", body.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchanges_look_like_net_http_debug_output() {
        let r = request(
            "GET",
            "/version",
            &[("Accept".into(), "application/json".into())],
            b"",
        );
        assert_eq!(
            r,
            "<- \"GET /version HTTP/1.1\\r\\nAccept: application/json\\r\\n\\r\\n\"\n"
        );
        let a = response(
            200,
            "OK",
            &[("Content-Type".into(), "text/plain".into())],
            b"3.3.11\n",
        );
        assert!(
            a.starts_with("-> \"HTTP/1.1 200 OK\\r\\n\"\n-> \"Content-Type: text/plain\\r\\n\"\n")
        );
        assert!(a.ends_with("reading 7 bytes...\n-> \"3.3.11\\n\"\nread 7 bytes\n"));
    }
}

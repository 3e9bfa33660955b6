//! Ident authentication (RFC 1413, spec §3.2): ask the identd of the client's host who owns the
//! connection, as Kadeploy's `ident.rb` does (TCP 113, `"<client port>, <server port>"`, 10 s timeout).
//! Only a privileged port is queried (only the host's administrator can answer there), the answer is read
//! up to [`MAX_REPLY`] bytes, must name the queried ports and a plausible login, and is never echoed back.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader};

/// The identd port.
pub const IDENT_PORT: u16 = 113;

/// Kadeploy's timeout for the whole query.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Longest answer read (RFC 1413 answers are one short line).
pub const MAX_REPLY: u64 = 1024;

/// Longest user name accepted.
pub const MAX_USER: usize = 64;

/// Why an ident query gave no user.
#[derive(Debug, thiserror::Error)]
pub enum IdentError {
    /// The identd cannot be reached or did not answer in time.
    #[error("cannot query the identd of {0}: {1}")]
    Unreachable(SocketAddr, String),
    /// The answer does not follow RFC 1413 (its text is not repeated).
    #[error("the identd's answer is not a valid RFC 1413 reply ({0})")]
    Malformed(&'static str),
    /// The identd answered an error (`ERROR : NO-USER`…); unknown error tokens become `UNKNOWN-ERROR`.
    #[error("ident error: {0}")]
    Refused(String),
}

/// An RFC 1413 error token as the identd sent it, when it looks like one (`NO-USER`, `X-…`).
fn error_token(e: &str) -> String {
    let plain = !e.is_empty()
        && e.len() <= 32
        && e.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
    if plain {
        e.to_string()
    } else {
        "UNKNOWN-ERROR".into()
    }
}

/// A login as Unix tools accept it.
fn plausible_user(u: &str) -> bool {
    !u.is_empty()
        && u.len() <= MAX_USER
        && !u.starts_with('-')
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '$'))
}

/// Parses `"<p1> , <p2> : USERID : <os> : <user>"` for the query `"<client>, <server>"`: the user, or the
/// identd's error.
pub fn parse_reply(line: &str, client: u16, server: u16) -> Result<String, IdentError> {
    let mut parts = line.trim().splitn(4, ':').map(str::trim);
    let ports = parts.next().ok_or(IdentError::Malformed("no ports"))?;
    let (a, b) = ports
        .split_once(',')
        .ok_or(IdentError::Malformed("no ports"))?;
    if a.trim().parse::<u16>().ok() != Some(client) || b.trim().parse::<u16>().ok() != Some(server)
    {
        return Err(IdentError::Malformed("not the queried ports"));
    }
    match (parts.next(), parts.next(), parts.next()) {
        (Some("USERID"), Some(os), Some(_)) if os.eq_ignore_ascii_case("OTHER") => Err(
            IdentError::Malformed("the identifier is not a user name (OTHER)"),
        ),
        (Some("USERID"), Some(_os), Some(user)) if plausible_user(user) => Ok(user.to_string()),
        (Some("USERID"), Some(_), Some(_)) => Err(IdentError::Malformed("not a valid user name")),
        (Some("ERROR"), Some(e), None) => Err(IdentError::Refused(error_token(e))),
        _ => Err(IdentError::Malformed("unexpected fields")),
    }
}

/// Asks the identd at `identd` (normally the client's address, port 113) who owns the connection from
/// `client_port` to `server_port`.
pub async fn query(
    identd: SocketAddr,
    client_port: u16,
    server_port: u16,
) -> Result<String, IdentError> {
    let unreachable = |e: String| IdentError::Unreachable(identd, e);
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(identd)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        s.write_all(format!("{client_port}, {server_port}\r\n").as_bytes())
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let mut line = Vec::new();
        BufReader::new(s.take(MAX_REPLY))
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if !line.ends_with(b"\n") {
            return Err(IdentError::Malformed("no complete line"));
        }
        let line = std::str::from_utf8(&line).map_err(|_| IdentError::Malformed("not text"))?;
        parse_reply(line, client_port, server_port)
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| unreachable("timeout".into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(
            parse_reply("6193, 23 : USERID : UNIX : stjohns\r\n", 6193, 23).unwrap(),
            "stjohns"
        );
        assert!(matches!(
            parse_reply("6195, 23 : ERROR : NO-USER", 6195, 23),
            Err(IdentError::Refused(e)) if e == "NO-USER"
        ));
        assert!(matches!(
            parse_reply("6195, 23 : ERROR : <script>", 6195, 23),
            Err(IdentError::Refused(e)) if e == "UNKNOWN-ERROR"
        ));
        assert!(parse_reply("garbage", 1, 2).is_err());
        assert!(parse_reply("1, 2 : USERID : UNIX", 1, 2).is_err());
        assert!(parse_reply("1, 3 : USERID : UNIX : root", 1, 2).is_err());
        assert!(parse_reply("1, 2 : USERID : OTHER : root", 1, 2).is_err());
        assert!(parse_reply("1, 2 : USERID : UNIX : ro ot", 1, 2).is_err());
        let long = format!("1, 2 : USERID : UNIX : {}", "a".repeat(65));
        assert!(parse_reply(&long, 1, 2).is_err());
    }

    #[tokio::test]
    async fn a_long_answer_is_cut_and_not_echoed() {
        use tokio::io::AsyncWriteExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let identd = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut query = String::new();
            let _ = BufReader::new(&mut s).read_line(&mut query).await;
            let chunk = vec![b'A'; 64 << 10];
            // An endless line: before, the server read it all into memory.
            for _ in 0..64 {
                if s.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
        let e = query(addr, 1, 2).await.unwrap_err();
        assert!(matches!(e, IdentError::Malformed(_)), "{e}");
        assert!(!e.to_string().contains("AAAA"), "{e}");
        identd.abort();
    }
}

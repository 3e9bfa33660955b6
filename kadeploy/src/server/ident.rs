//! Ident authentication (RFC 1413, spec §3.2): ask the identd of the client's host who owns the
//! connection, as Kadeploy's `ident.rb` does (TCP 113, `"<client port>, <server port>"`, 10 s timeout).

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The identd port.
pub const IDENT_PORT: u16 = 113;

/// Kadeploy's timeout for the whole query.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Why an ident query gave no user.
#[derive(Debug, thiserror::Error)]
pub enum IdentError {
    /// The identd cannot be reached or did not answer in time.
    #[error("cannot query the identd of {0}: {1}")]
    Unreachable(SocketAddr, String),
    /// The answer does not follow RFC 1413.
    #[error("invalid ident answer {0:?}")]
    Malformed(String),
    /// The identd answered an error (`ERROR : NO-USER`…).
    #[error("ident error: {0}")]
    Refused(String),
}

/// Parses `"<p1> , <p2> : USERID : <os> : <user>"`: the user, or the identd's error.
pub fn parse_reply(line: &str) -> Result<String, IdentError> {
    let malformed = || IdentError::Malformed(line.trim().to_string());
    let mut parts = line.trim().splitn(4, ':').map(str::trim);
    let ports = parts.next().ok_or_else(malformed)?;
    let (a, b) = ports.split_once(',').ok_or_else(malformed)?;
    if a.trim().parse::<u16>().is_err() || b.trim().parse::<u16>().is_err() {
        return Err(malformed());
    }
    match (parts.next(), parts.next(), parts.next()) {
        (Some("USERID"), Some(_os), Some(user)) if !user.is_empty() => Ok(user.to_string()),
        (Some("ERROR"), Some(e), None) => Err(IdentError::Refused(e.to_string())),
        _ => Err(malformed()),
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
        let mut line = String::new();
        BufReader::new(s)
            .read_line(&mut line)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        parse_reply(&line)
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
            parse_reply("6193, 23 : USERID : UNIX : stjohns\r\n").unwrap(),
            "stjohns"
        );
        assert!(matches!(
            parse_reply("6195, 23 : ERROR : NO-USER"),
            Err(IdentError::Refused(e)) if e == "NO-USER"
        ));
        assert!(parse_reply("garbage").is_err());
        assert!(parse_reply("1, 2 : USERID : UNIX").is_err());
    }
}

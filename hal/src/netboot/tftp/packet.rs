//! TFTP packets (RFC 1350) with option extension (RFC 2347): a parser that never panics on hostile
//! bytes, and encoders for what a read-only server sends.

/// TFTP error codes (RFC 1350, RFC 2347).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    /// 0: see the message.
    Undefined = 0,
    /// 1.
    FileNotFound = 1,
    /// 2.
    AccessViolation = 2,
    /// 4.
    IllegalOperation = 4,
    /// 5.
    UnknownTransferId = 5,
    /// 8: option negotiation refused.
    OptionRefused = 8,
}

/// A parsed TFTP packet, borrowing from the datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Read request: file name, mode and options in request order (names lower-cased).
    Rrq {
        /// File name.
        filename: &'a str,
        /// `octet` or `netascii` (lower-cased).
        mode: String,
        /// Options (RFC 2347), names lower-cased.
        options: Vec<(String, &'a str)>,
    },
    /// Write request (refused by this server).
    Wrq,
    /// A data block.
    Data {
        /// Block number.
        block: u16,
        /// Payload.
        data: &'a [u8],
    },
    /// Acknowledgement of a block (0 acknowledges an OACK).
    Ack {
        /// Block number.
        block: u16,
    },
    /// Error from the peer.
    Error {
        /// Code.
        code: u16,
        /// Message.
        message: &'a str,
    },
    /// Option acknowledgement.
    Oack,
}

/// Why a datagram is not a valid TFTP packet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed TFTP packet: {0}")]
pub struct PacketError(pub &'static str);

fn strings(body: &[u8]) -> Result<Vec<&str>, PacketError> {
    let body = body
        .strip_suffix(&[0])
        .ok_or(PacketError("request not NUL-terminated"))?;
    body.split(|&b| b == 0)
        .map(|s| std::str::from_utf8(s).map_err(|_| PacketError("request string is not UTF-8")))
        .collect()
}

/// Parses one datagram.
pub fn parse(buf: &[u8]) -> Result<Packet<'_>, PacketError> {
    if buf.len() < 4 {
        return Err(PacketError("shorter than 4 bytes"));
    }
    let opcode = u16::from_be_bytes([buf[0], buf[1]]);
    let word = u16::from_be_bytes([buf[2], buf[3]]);
    match opcode {
        1 => {
            let parts = strings(&buf[2..])?;
            let (filename, mode, rest) = match parts.as_slice() {
                [f, m, rest @ ..] => (*f, m.to_ascii_lowercase(), rest),
                _ => return Err(PacketError("request without file name and mode")),
            };
            if filename.is_empty() {
                return Err(PacketError("empty file name"));
            }
            if mode != "octet" && mode != "netascii" {
                return Err(PacketError("unsupported mode"));
            }
            if rest.len() % 2 != 0 {
                return Err(PacketError("option without value"));
            }
            let options = rest
                .chunks_exact(2)
                .map(|kv| (kv[0].to_ascii_lowercase(), kv[1]))
                .collect();
            Ok(Packet::Rrq {
                filename,
                mode,
                options,
            })
        }
        2 => Ok(Packet::Wrq),
        3 => Ok(Packet::Data {
            block: word,
            data: &buf[4..],
        }),
        4 if buf.len() == 4 => Ok(Packet::Ack { block: word }),
        4 => Err(PacketError("ACK with trailing bytes")),
        5 => {
            let msg = buf[4..].split(|&b| b == 0).next().unwrap_or_default();
            Ok(Packet::Error {
                code: word,
                message: std::str::from_utf8(msg).unwrap_or(""),
            })
        }
        6 => Ok(Packet::Oack),
        _ => Err(PacketError("unknown opcode")),
    }
}

/// Writes a DATA header into `out` (cleared), ready for the payload to be appended.
pub fn data_header(out: &mut Vec<u8>, block: u16) {
    out.clear();
    out.extend_from_slice(&3u16.to_be_bytes());
    out.extend_from_slice(&block.to_be_bytes());
}

/// An ERROR packet.
pub fn error(code: ErrorCode, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.extend_from_slice(&5u16.to_be_bytes());
    out.extend_from_slice(&(code as u16).to_be_bytes());
    out.extend_from_slice(message.as_bytes());
    out.push(0);
    out
}

/// An OACK packet with the accepted options.
pub fn oack(options: &[(&str, String)]) -> Vec<u8> {
    let mut out = 6u16.to_be_bytes().to_vec();
    for (name, value) in options {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_rrq_with_options() {
        let pkt = b"\x00\x01pxelinux.0\x00OCTET\x00BLKSIZE\x001468\x00tsize\x000\x00";
        let Packet::Rrq {
            filename,
            mode,
            options,
        } = parse(pkt).unwrap()
        else {
            panic!("not an RRQ")
        };
        assert_eq!((filename, mode.as_str()), ("pxelinux.0", "octet"));
        assert_eq!(
            options,
            vec![("blksize".to_string(), "1468"), ("tsize".to_string(), "0")]
        );
        assert_eq!(
            parse(b"\x00\x04\x00\x07").unwrap(),
            Packet::Ack { block: 7 }
        );
        assert_eq!(
            parse(b"\x00\x05\x00\x08abort\x00").unwrap(),
            Packet::Error {
                code: 8,
                message: "abort"
            }
        );
    }

    #[test]
    fn rejects_malformed_requests() {
        for bad in [
            &b""[..],
            b"\x00\x01",
            b"\x00\x01f\x00octet",
            b"\x00\x01\x00octet\x00",
            b"\x00\x01f\x00mail\x00",
            b"\x00\x01f\x00octet\x00blksize\x00",
            b"\x00\x01\xff\xfe\x00octet\x00",
            b"\x00\x09\x00\x00",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn encodes() {
        assert_eq!(
            error(ErrorCode::FileNotFound, "no"),
            b"\x00\x05\x00\x01no\x00"
        );
        assert_eq!(oack(&[("tsize", "12".into())]), b"\x00\x06tsize\x0012\x00");
    }

    proptest! {
        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn never_panics_on_random_requests(
            op in 0u16..8,
            parts in proptest::collection::vec("[a-zA-Z0-9./\\\\]{0,12}", 0..8),
        ) {
            let mut pkt = op.to_be_bytes().to_vec();
            for p in &parts {
                pkt.extend_from_slice(p.as_bytes());
                pkt.push(0);
            }
            let _ = parse(&pkt);
        }
    }
}

//! Checks a DHCP datagram's layout before dhcproto decodes it: fixed header, Ethernet hardware
//! address, magic cookie, and every option inside the datagram with a length its decoder accepts.
//!
//! dhcproto 0.15 has `debug_assert!`s on the lengths of options 80, 94 and 152–155 and computes
//! `len - 1` / `len - 3` for options 151 and 81 (a panic in debug builds, where a 20,000-packet
//! mutation run tripped them 31 times). It also concatenates consecutive options with the same code
//! (RFC 3396) before decoding, so these rules apply to the concatenated length, as here.

/// Fixed BOOTP header before the magic cookie (op … file).
const HEADER: usize = 236;
/// RFC 2131 §3: the options start with these four bytes.
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Largest datagram accepted (the receive buffer is this size too).
pub const MAX_LEN: usize = 4096;
/// Ethernet (RFC 1700 hardware type 1) and its address length.
const HTYPE_ETHERNET: u8 = 1;
const HLEN_ETHERNET: u8 = 6;
/// RFC 1542 §4.1.1: relays discard requests with more hops than this.
const MAX_HOPS: u8 = 16;

/// Why a datagram is refused before decoding.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than the header and the magic cookie, or longer than [`MAX_LEN`].
    #[error("datagram of {0} bytes")]
    Length(usize),
    /// Neither a BOOTREQUEST (op 1) nor a BOOTREPLY (op 2).
    #[error("op {0} is not BOOTP")]
    Op(u8),
    /// Not an Ethernet address (htype 1, hlen 6).
    #[error("hardware type {htype} with address length {hlen}")]
    Hardware {
        /// `htype`.
        htype: u8,
        /// `hlen`.
        hlen: u8,
    },
    /// More relay hops than RFC 1542 allows.
    #[error("{0} relay hops")]
    Hops(u8),
    /// The four bytes after the header are not the DHCP magic cookie.
    #[error("no DHCP magic cookie")]
    Cookie,
    /// An option's length runs past the end of the datagram.
    #[error("option {code} overruns the datagram")]
    Overrun {
        /// Option code.
        code: u8,
    },
    /// An option whose (concatenated) length its decoder does not accept.
    #[error("option {code} with length {len}")]
    OptionLength {
        /// Option code.
        code: u8,
        /// Its length after RFC 3396 concatenation.
        len: usize,
    },
}

/// Checks `buf` (one UDP payload); `Ok` means dhcproto can decode it without panicking.
pub fn validate(buf: &[u8]) -> Result<(), WireError> {
    if buf.len() < HEADER + MAGIC_COOKIE.len() || buf.len() > MAX_LEN {
        return Err(WireError::Length(buf.len()));
    }
    let (header, rest) = buf.split_at(HEADER);
    let (cookie, options) = rest.split_at(MAGIC_COOKIE.len());
    let [op, htype, hlen, hops, ..] = *header else {
        return Err(WireError::Length(buf.len()));
    };
    if op != 1 && op != 2 {
        return Err(WireError::Op(op));
    }
    if htype != HTYPE_ETHERNET || hlen != HLEN_ETHERNET {
        return Err(WireError::Hardware { htype, hlen });
    }
    if hops > MAX_HOPS {
        return Err(WireError::Hops(hops));
    }
    if cookie != MAGIC_COOKIE {
        return Err(WireError::Cookie);
    }
    walk_options(options)
}

/// Walks the options region: pads, then `code len value` runs until End or the end of the datagram.
fn walk_options(options: &[u8]) -> Result<(), WireError> {
    // The run of consecutive options with the same code, as dhcproto concatenates them.
    let mut run: Option<(u8, usize)> = None;
    let mut at = 0;
    while let Some(&code) = options.get(at) {
        if code == 0 || code == 255 {
            if let Some((c, len)) = run.take() {
                check_length(c, len)?;
            }
            if code == 255 {
                return Ok(());
            }
            at += 1;
            continue;
        }
        let len = usize::from(*options.get(at + 1).ok_or(WireError::Overrun { code })?);
        if at + 2 + len > options.len() {
            return Err(WireError::Overrun { code });
        }
        run = match run {
            Some((c, total)) if c == code => Some((c, total + len)),
            Some((c, total)) => {
                check_length(c, total)?;
                Some((code, len))
            }
            None => Some((code, len)),
        };
        at += 2 + len;
    }
    match run {
        Some((c, len)) => check_length(c, len),
        None => Ok(()),
    }
}

/// The lengths dhcproto's option decoders assume (RFC 4039, 4578, 4702, 6926).
fn check_length(code: u8, len: usize) -> Result<(), WireError> {
    let ok = match code {
        // Rapid Commit: no value.
        80 => len == 0,
        // Client FQDN: flags, two rcodes, then the name.
        81 => len >= 3,
        // Client Network Interface Identifier: type, major, minor.
        94 => len == 3,
        // Bulk leasequery status code: a code byte, then a message.
        151 => len >= 1,
        // Bulk leasequery times: a 32-bit number.
        152..=155 => len == 4,
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(WireError::OptionLength { code, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal DISCOVER from `52:54:00:00:00:01` followed by `options` (End appended).
    fn request(options: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER];
        b[..4].copy_from_slice(&[1, 1, 6, 0]);
        b[28..34].copy_from_slice(&[0x52, 0x54, 0, 0, 0, 1]);
        b.extend_from_slice(&MAGIC_COOKIE);
        b.extend_from_slice(&[53, 1, 1]);
        b.extend_from_slice(options);
        b.push(255);
        b
    }

    #[test]
    fn accepts_a_well_formed_request() {
        assert_eq!(validate(&request(&[])), Ok(()));
        assert_eq!(validate(&request(&[0, 0, 94, 3, 1, 3, 16])), Ok(()));
        assert_eq!(validate(&request(&[81, 3, 0, 0, 0, 80, 0])), Ok(()));
        // Without End, the walk stops at the end of the datagram.
        let mut no_end = request(&[]);
        no_end.pop();
        assert_eq!(validate(&no_end), Ok(()));
    }

    #[test]
    fn refuses_bad_headers() {
        let good = request(&[]);
        assert_eq!(validate(&good[..239]), Err(WireError::Length(239)));
        assert_eq!(
            validate(&vec![0u8; MAX_LEN + 1]),
            Err(WireError::Length(MAX_LEN + 1))
        );
        let mut bad = good.clone();
        bad[0] = 3;
        assert_eq!(validate(&bad), Err(WireError::Op(3)));
        let mut bad = good.clone();
        bad[2] = 17;
        assert_eq!(
            validate(&bad),
            Err(WireError::Hardware { htype: 1, hlen: 17 })
        );
        let mut bad = good.clone();
        bad[3] = 17;
        assert_eq!(validate(&bad), Err(WireError::Hops(17)));
        let mut bad = good;
        bad[HEADER] = 98;
        assert_eq!(validate(&bad), Err(WireError::Cookie));
    }

    #[test]
    fn refuses_options_dhcproto_would_panic_on() {
        for (opts, code, len) in [
            (&[80u8, 1, 0][..], 80u8, 1usize),
            (&[94, 2, 1, 3], 94, 2),
            (&[81, 2, 0, 0], 81, 2),
            (&[151, 0], 151, 0),
            (&[152, 3, 0, 0, 0], 152, 3),
            (&[155, 5, 0, 0, 0, 0, 0], 155, 5),
            // Two consecutive 94s are concatenated to 6 bytes.
            (&[94, 3, 1, 3, 16, 94, 3, 1, 3, 16], 94, 6),
        ] {
            assert_eq!(
                validate(&request(opts)),
                Err(WireError::OptionLength { code, len }),
                "{opts:?}"
            );
        }
        // The same options separated by another one are decoded one by one.
        assert_eq!(
            validate(&request(&[94, 3, 1, 3, 16, 60, 1, b'x', 94, 3, 1, 3, 16])),
            Ok(())
        );
    }

    #[test]
    fn refuses_options_past_the_end() {
        let mut bad = request(&[]);
        bad.pop();
        bad.extend_from_slice(&[60, 9, b'P']);
        assert_eq!(validate(&bad), Err(WireError::Overrun { code: 60 }));
        let mut bad = request(&[]);
        bad.pop();
        bad.push(60);
        assert_eq!(validate(&bad), Err(WireError::Overrun { code: 60 }));
    }
}

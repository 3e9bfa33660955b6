//! The subset of ASN.1 BER that SNMP uses: definite lengths only, every length and count bounded
//! before anything is allocated, and no recursion deeper than [`MAX_DEPTH`].

use std::fmt;

/// Tag of INTEGER.
pub const INTEGER: u8 = 0x02;
/// Tag of OCTET STRING.
pub const OCTET_STRING: u8 = 0x04;
/// Tag of NULL.
pub const NULL: u8 = 0x05;
/// Tag of OBJECT IDENTIFIER.
pub const OID: u8 = 0x06;
/// Tag of SEQUENCE.
pub const SEQUENCE: u8 = 0x30;

/// Largest SNMP message this code reads or writes (RFC 3417's 484 bytes are the minimum; UDP caps it).
pub const MAX_MESSAGE: usize = 65_507;
/// Most sub-identifiers of an OID (RFC 2578: 128).
pub const MAX_OID_ARCS: usize = 128;
/// Deepest nesting of constructed values a message may have (SNMPv3 needs 6).
pub const MAX_DEPTH: usize = 8;

/// Why bytes are not the BER this module reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BerError {
    /// The data ends inside a value.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A tag other than the one expected.
    #[error("expected tag {expected:#04x}, got {got:#04x}")]
    Tag {
        /// The expected tag.
        expected: u8,
        /// The tag found.
        got: u8,
    },
    /// A length form this module refuses (indefinite, more than 4 length bytes, past the end).
    #[error("bad length: {0}")]
    Length(&'static str),
    /// An INTEGER that does not fit 64 bits, or an empty one.
    #[error("integer out of range")]
    Integer,
    /// An OID with too many arcs, an arc over 32 bits or a truncated arc.
    #[error("bad object identifier: {0}")]
    Oid(&'static str),
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH}")]
    Depth,
    /// Bytes left after the value that should end the data.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// An object identifier (`1.3.6.1.2.1.1.1.0`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Oid(pub Vec<u32>);

impl Oid {
    /// Parses dotted decimal (a leading dot is allowed); at least two arcs, the first 0..=2.
    pub fn parse(text: &str) -> Option<Oid> {
        let text = text.strip_prefix('.').unwrap_or(text);
        let arcs: Vec<u32> = text
            .split('.')
            .map(|a| a.parse().ok())
            .collect::<Option<_>>()?;
        let valid = arcs.len() >= 2
            && arcs.len() <= MAX_OID_ARCS
            && arcs[0] <= 2
            && (arcs[0] == 2 || arcs[1] < 40);
        valid.then_some(Oid(arcs))
    }

    /// This OID with `arc` appended.
    pub fn child(&self, arc: u32) -> Oid {
        let mut arcs = self.0.clone();
        arcs.push(arc);
        Oid(arcs)
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&text.join("."))
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

/// Appends a BER length.
fn put_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = (len as u32).to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (4 - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends a value of `tag` with the content `content`.
pub fn put(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    put_length(out, content.len());
    out.extend_from_slice(content);
}

/// Appends a constructed value of `tag` whose content `fill` writes.
pub fn put_constructed(out: &mut Vec<u8>, tag: u8, fill: impl FnOnce(&mut Vec<u8>)) {
    let mut content = Vec::new();
    fill(&mut content);
    put(out, tag, &content);
}

/// The minimal two's-complement content of `value`.
pub fn integer_content(value: i64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

/// The content of an unsigned value (Counter32, Gauge32, TimeTicks, Counter64): a leading zero when the
/// top bit is set.
pub fn unsigned_content(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    let mut out = Vec::with_capacity(9);
    if bytes[skip] & 0x80 != 0 {
        out.push(0);
    }
    out.extend_from_slice(&bytes[skip..]);
    out
}

/// Appends an INTEGER.
pub fn put_integer(out: &mut Vec<u8>, value: i64) {
    put(out, INTEGER, &integer_content(value));
}

/// The content of an OID.
pub fn oid_content(oid: &Oid) -> Vec<u8> {
    let arcs = &oid.0;
    let mut out = Vec::new();
    let (first, rest) = match arcs.as_slice() {
        [a, b, rest @ ..] => (u64::from(*a) * 40 + u64::from(*b), rest),
        [a] => (u64::from(*a) * 40, &[][..]),
        [] => (0, &[][..]),
    };
    let mut put_arc = |mut v: u64| {
        let mut tmp = [0u8; 10];
        let mut n = 0;
        loop {
            tmp[n] = (v & 0x7f) as u8;
            v >>= 7;
            n += 1;
            if v == 0 {
                break;
            }
        }
        for i in (0..n).rev() {
            out.push(tmp[i] | if i > 0 { 0x80 } else { 0 });
        }
    };
    put_arc(first);
    for a in rest {
        put_arc(u64::from(*a));
    }
    out
}

/// Appends an OID.
pub fn put_oid(out: &mut Vec<u8>, oid: &Oid) {
    put(out, OID, &oid_content(oid));
}

/// A cursor over BER data; every read checks the bounds first.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
    depth: usize,
}

impl<'a> Reader<'a> {
    /// Reads `data` (at most [`MAX_MESSAGE`] bytes are accepted by [`Reader::message`]).
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, depth: 0 }
    }

    /// A reader of a whole datagram: refuses more than [`MAX_MESSAGE`] bytes.
    pub fn message(data: &'a [u8]) -> Result<Self, BerError> {
        if data.len() > MAX_MESSAGE {
            return Err(BerError::Length("message larger than 65507 bytes"));
        }
        Ok(Reader::new(data))
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Fails unless everything was read.
    pub fn finish(&self) -> Result<(), BerError> {
        match self.data.len() {
            0 => Ok(()),
            n => Err(BerError::Trailing(n)),
        }
    }

    /// The tag of the next value, without consuming it.
    pub fn peek_tag(&self) -> Result<u8, BerError> {
        self.data.first().copied().ok_or(BerError::Truncated("tag"))
    }

    /// Reads any value: its tag and content.
    pub fn any(&mut self) -> Result<(u8, &'a [u8]), BerError> {
        let (&tag, rest) = self.data.split_first().ok_or(BerError::Truncated("tag"))?;
        if tag & 0x1f == 0x1f {
            return Err(BerError::Length("multi-byte tags are not SNMP"));
        }
        let (&first, rest) = rest.split_first().ok_or(BerError::Truncated("length"))?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 {
                return Err(BerError::Length("indefinite length"));
            }
            if n > 4 {
                return Err(BerError::Length("more than 4 length bytes"));
            }
            if rest.len() < n {
                return Err(BerError::Truncated("length"));
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        if len > rest.len() {
            return Err(BerError::Length("past the end of the data"));
        }
        let (content, rest) = rest.split_at(len);
        self.data = rest;
        Ok((tag, content))
    }

    /// Reads a value of `tag`; its content.
    pub fn expect(&mut self, tag: u8) -> Result<&'a [u8], BerError> {
        let got = self.peek_tag()?;
        if got != tag {
            return Err(BerError::Tag { expected: tag, got });
        }
        Ok(self.any()?.1)
    }

    /// Enters a constructed value of `tag`: a reader of its content, one level deeper.
    pub fn constructed(&mut self, tag: u8) -> Result<Reader<'a>, BerError> {
        if self.depth + 1 > MAX_DEPTH {
            return Err(BerError::Depth);
        }
        let content = self.expect(tag)?;
        Ok(Reader {
            data: content,
            depth: self.depth + 1,
        })
    }

    /// Enters a SEQUENCE.
    pub fn sequence(&mut self) -> Result<Reader<'a>, BerError> {
        self.constructed(SEQUENCE)
    }

    /// Reads an INTEGER.
    pub fn integer(&mut self) -> Result<i64, BerError> {
        let content = self.expect(INTEGER)?;
        decode_integer(content)
    }

    /// Reads an OCTET STRING.
    pub fn octets(&mut self) -> Result<&'a [u8], BerError> {
        self.expect(OCTET_STRING)
    }

    /// Reads an OID.
    pub fn oid(&mut self) -> Result<Oid, BerError> {
        let content = self.expect(OID)?;
        decode_oid(content)
    }
}

/// Decodes a signed INTEGER content (1 to 8 bytes).
pub fn decode_integer(content: &[u8]) -> Result<i64, BerError> {
    if content.is_empty() || content.len() > 8 {
        return Err(BerError::Integer);
    }
    let negative = content[0] & 0x80 != 0;
    let mut value: i64 = if negative { -1 } else { 0 };
    for b in content {
        value = (value << 8) | i64::from(*b);
    }
    Ok(value)
}

/// Decodes an unsigned content (1 to 9 bytes, the ninth only a leading zero).
pub fn decode_unsigned(content: &[u8]) -> Result<u64, BerError> {
    let content = match content {
        [0, rest @ ..] if !rest.is_empty() => rest,
        c => c,
    };
    if content.is_empty() || content.len() > 8 {
        return Err(BerError::Integer);
    }
    Ok(content
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Decodes an OID content: at most [`MAX_OID_ARCS`] arcs of at most 32 bits.
pub fn decode_oid(content: &[u8]) -> Result<Oid, BerError> {
    if content.is_empty() {
        return Err(BerError::Oid("empty"));
    }
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    let mut pending = false;
    for &b in content {
        if !pending && b == 0x80 {
            return Err(BerError::Oid("non-minimal arc"));
        }
        value = (value << 7) | u64::from(b & 0x7f);
        if value > u64::from(u32::MAX) + 80 {
            return Err(BerError::Oid("arc over 32 bits"));
        }
        pending = b & 0x80 != 0;
        if !pending {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first as u32);
                arcs.push(
                    u32::try_from(value - first * 40)
                        .map_err(|_| BerError::Oid("arc over 32 bits"))?,
                );
            } else {
                arcs.push(u32::try_from(value).map_err(|_| BerError::Oid("arc over 32 bits"))?);
            }
            if arcs.len() > MAX_OID_ARCS {
                return Err(BerError::Oid("more than 128 arcs"));
            }
            value = 0;
        }
    }
    if pending {
        return Err(BerError::Oid("truncated arc"));
    }
    Ok(Oid(arcs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integers_round_trip_minimally() {
        for (v, bytes) in [
            (0i64, vec![0u8]),
            (127, vec![0x7f]),
            (128, vec![0, 0x80]),
            (-1, vec![0xff]),
            (-129, vec![0xff, 0x7f]),
            (
                i64::MAX,
                vec![0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
        ] {
            assert_eq!(integer_content(v), bytes, "{v}");
            assert_eq!(decode_integer(&bytes), Ok(v));
        }
        assert_eq!(
            unsigned_content(0xffff_ffff),
            vec![0, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            decode_unsigned(&[0, 0xff, 0xff, 0xff, 0xff]),
            Ok(0xffff_ffff)
        );
    }

    #[test]
    fn oids_round_trip() {
        let oid = Oid::parse("1.3.6.1.4.1.318.1.1.4.4.2.1.3.24").unwrap();
        let content = oid_content(&oid);
        assert_eq!(&content[..3], &[0x2b, 6, 1]);
        assert_eq!(decode_oid(&content), Ok(oid.clone()));
        assert_eq!(oid.to_string(), "1.3.6.1.4.1.318.1.1.4.4.2.1.3.24");
        let big = Oid(vec![2, 999, u32::MAX]);
        assert_eq!(decode_oid(&oid_content(&big)), Ok(big));
        assert!(Oid::parse("1").is_none() && Oid::parse("3.1").is_none());
    }

    #[test]
    fn hostile_lengths_and_nesting_are_errors() {
        // Four length bytes claiming 4 GiB.
        let mut r = Reader::new(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff, 0]);
        assert!(matches!(r.octets(), Err(BerError::Length(_))));
        // Indefinite length.
        assert!(Reader::new(&[0x30, 0x80, 0, 0]).sequence().is_err());
        // Nine nested sequences.
        let mut data = vec![0x05, 0x00];
        for _ in 0..9 {
            let mut outer = Vec::new();
            put(&mut outer, SEQUENCE, &data);
            data = outer;
        }
        let mut r = Reader::new(&data);
        let mut depth = 0;
        let err = loop {
            match r.sequence() {
                Ok(inner) => {
                    r = inner;
                    depth += 1;
                }
                Err(e) => break e,
            }
        };
        assert_eq!((err, depth), (BerError::Depth, MAX_DEPTH));
        // An OID arc of 2^35.
        assert!(decode_oid(&[0x2b, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00]).is_err());
        assert_eq!(decode_integer(&[1; 9]), Err(BerError::Integer));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut r = Reader::new(&data);
            while let Ok((tag, content)) = r.any() {
                let _ = decode_oid(content);
                let _ = decode_integer(content);
                let _ = decode_unsigned(content);
                let _ = tag;
            }
        }

        #[test]
        fn lengths_round_trip(len in 0usize..70_000) {
            let content = vec![7u8; len];
            let mut out = Vec::new();
            put(&mut out, OCTET_STRING, &content);
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.octets().map(<[u8]>::len), Ok(len));
            prop_assert!(r.finish().is_ok());
        }
    }
}

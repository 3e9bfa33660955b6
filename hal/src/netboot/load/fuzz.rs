//! Seeded mutations of real DHCP requests, for robustness tests of a DHCP server: the DISCOVER busybox
//! udhcpc sends (captured), a PXE ROM's DISCOVER and iPXE's REQUEST (option sets as those clients
//! send them), with bytes flipped, option lengths changed, options repeated or inserted, and
//! datagrams truncated.

use super::Rng;

/// BOOTP header length before the magic cookie.
const HEADER: usize = 236;
/// The DHCP magic cookie.
const COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Option codes whose decoders assume a length (dhcproto 0.15), and some structured ones.
const TOUCHY: [u8; 12] = [80, 81, 94, 151, 152, 153, 154, 155, 82, 119, 121, 93];

fn request(xid: u32, mac: [u8; 6], options: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; HEADER];
    b[..4].copy_from_slice(&[1, 1, 6, 0]);
    b[4..8].copy_from_slice(&xid.to_be_bytes());
    b[28..34].copy_from_slice(&mac);
    b.extend_from_slice(&COOKIE);
    b.extend_from_slice(options);
    b
}

/// The udhcpc DISCOVER of busybox 1.35 (`udhcpc -V PXEClient:… -x hostname:node-1`), as captured.
pub fn udhcpc_discover() -> Vec<u8> {
    let mut o = vec![
        53, 1, 1, 57, 2, 2, 64, 55, 7, 1, 3, 6, 12, 15, 28, 42, 12, 6,
    ];
    o.extend_from_slice(b"node-1");
    o.extend_from_slice(&[60, 32]);
    o.extend_from_slice(b"PXEClient:Arch:00000:UNDI:002001");
    o.extend_from_slice(&[61, 7, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 255]);
    request(0x6ebb_2c17, [0x52, 0x54, 0, 0x12, 0x34, 0x56], &o)
}

/// A legacy PXE ROM's DISCOVER (PXE 2.1: options 93, 94, 97 and the PXE parameter list).
pub fn pxe_discover() -> Vec<u8> {
    let mut o = vec![
        53, 1, 1, 57, 2, 0x04, 0xec, 93, 2, 0, 0, 94, 3, 1, 2, 1, 97, 17, 0,
    ];
    o.extend((1..=16u8).map(|i| i.wrapping_mul(37)));
    o.extend_from_slice(&[60, 32]);
    o.extend_from_slice(b"PXEClient:Arch:00000:UNDI:002001");
    o.extend_from_slice(&[
        55, 36, 1, 2, 3, 4, 5, 6, 11, 12, 13, 15, 16, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51,
        54, 58, 59, 60, 66, 67, 128, 129, 130, 131, 132, 133, 134, 135, 255,
    ]);
    let mut b = request(0x1a2b_3c4d, [0x52, 0x54, 0, 0, 0, 1], &o);
    b.resize(b.len().max(300), 0);
    b
}

/// iPXE's REQUEST (user class `iPXE`, its option 175, client FQDN, client id, requested address).
pub fn ipxe_request() -> Vec<u8> {
    let mut o = vec![53, 1, 3, 57, 2, 0x05, 0xdc, 93, 2, 0, 7, 94, 3, 1, 3, 16];
    o.extend_from_slice(&[97, 17, 0]);
    o.extend((1..=16u8).map(|i| i.wrapping_mul(91)));
    o.extend_from_slice(&[77, 4]);
    o.extend_from_slice(b"iPXE");
    o.extend_from_slice(&[175, 9, 0xb1, 1, 1, 0x13, 1, 1, 0x19, 1, 1]);
    o.extend_from_slice(&[61, 7, 1, 0x52, 0x54, 0, 0, 0, 2]);
    o.extend_from_slice(&[50, 4, 10, 0, 0, 100, 54, 4, 10, 0, 0, 1]);
    o.extend_from_slice(&[81, 11, 0, 0, 0, 6]);
    o.extend_from_slice(b"node-2\0");
    o.extend_from_slice(&[60, 32]);
    o.extend_from_slice(b"PXEClient:Arch:00007:UNDI:003016");
    o.extend_from_slice(&[55, 9, 1, 3, 6, 7, 12, 15, 17, 26, 43, 255]);
    request(0x5eed_0002, [0x52, 0x54, 0, 0, 0, 2], &o)
}

/// The three real requests mutated by [`mutate`].
pub fn samples() -> Vec<Vec<u8>> {
    vec![udhcpc_discover(), pxe_discover(), ipxe_request()]
}

/// Offsets of the length bytes of the options in `packet` (pads and End skipped; stops at a length
/// running past the end).
fn option_lengths(packet: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = HEADER + COOKIE.len();
    while let Some(&code) = packet.get(at) {
        match code {
            0 => at += 1,
            255 => break,
            _ => {
                let Some(&len) = packet.get(at + 1) else {
                    break;
                };
                out.push(at + 1);
                at += 2 + usize::from(len);
            }
        }
    }
    out
}

fn below(rng: &mut Rng, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

/// One to four random mutations of `sample`.
pub fn mutate(rng: &mut Rng, sample: &[u8]) -> Vec<u8> {
    let mut p = sample.to_vec();
    for _ in 0..1 + below(rng, 4) {
        let options = HEADER + COOKIE.len();
        match below(rng, 7) {
            // A random byte anywhere.
            0 => {
                let i = below(rng, p.len());
                if let Some(b) = p.get_mut(i) {
                    *b = rng.next_u64() as u8;
                }
            }
            // A byte of the options.
            1 => {
                let i = options + below(rng, p.len().saturating_sub(options));
                if let Some(b) = p.get_mut(i) {
                    *b = rng.next_u64() as u8;
                }
            }
            // An option's length: small values, or anything.
            2 => {
                let lengths = option_lengths(&p);
                if let Some(&i) = lengths.get(below(rng, lengths.len())) {
                    let v = if rng.next_u64().is_multiple_of(2) {
                        below(rng, 6) as u8
                    } else {
                        rng.next_u64() as u8
                    };
                    p[i] = v;
                }
            }
            // An option repeated right after itself (RFC 3396 concatenation).
            3 => {
                let lengths = option_lengths(&p);
                if let Some(&i) = lengths.get(below(rng, lengths.len())) {
                    let end = (i + 1 + usize::from(p[i])).min(p.len());
                    let copy = p[i - 1..end].to_vec();
                    p.splice(end..end, copy);
                }
            }
            // An option with a touchy code and a short length, inserted before the first option.
            4 => {
                let code = TOUCHY[below(rng, TOUCHY.len())];
                let len = below(rng, 7);
                let mut opt = vec![code, len as u8];
                opt.extend((0..len).map(|_| rng.next_u64() as u8));
                let at = options.min(p.len());
                p.splice(at..at, opt);
            }
            // Truncation.
            5 => {
                let at = below(rng, p.len() + 1);
                p.truncate(at);
            }
            // A header byte: op, htype, hlen, hops.
            _ => {
                let i = below(rng, 4);
                if let Some(b) = p.get_mut(i) {
                    *b = below(rng, 20) as u8;
                }
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netboot::dhcp::decode;
    use dhcproto::v4::{DhcpOption, MessageType, OptionCode};

    #[test]
    fn the_samples_decode_as_what_they_are() {
        let kinds: Vec<_> = samples()
            .iter()
            .map(|s| decode(s).unwrap().opts().msg_type())
            .collect();
        assert_eq!(
            kinds,
            [
                Some(MessageType::Discover),
                Some(MessageType::Discover),
                Some(MessageType::Request)
            ]
        );
        assert_eq!(udhcpc_discover().len(), 308, "the captured length");
        let ipxe = decode(&ipxe_request()).unwrap();
        assert!(matches!(
            ipxe.opts().get(OptionCode::ClientFQDN),
            Some(DhcpOption::ClientFQDN(_))
        ));
    }

    #[test]
    fn mutations_are_seeded() {
        let (mut a, mut b) = (Rng::new(3), Rng::new(3));
        let s = pxe_discover();
        for _ in 0..100 {
            assert_eq!(mutate(&mut a, &s), mutate(&mut b, &s));
        }
    }
}

//! Serial-over-LAN payload (IPMI v2.0 §15) of the lab BMC, without I/O: the payload's activation state,
//! the characters going each way, sequence numbers, acknowledgements and retransmissions. Buffers are
//! bounded: output the console does not take in time is dropped oldest first, as a real BMC does, so a
//! stuck console never stalls the VM.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Payload type of SOL packets.
pub const PAYLOAD_SOL: u8 = 0x01;
/// The largest SOL payload either side sends (4 header bytes + characters), told at activation.
pub const MAX_PAYLOAD: u16 = 204;
/// The most characters in one packet.
pub const MAX_CHARS: usize = MAX_PAYLOAD as usize - 4;
/// Output kept for the console at most; older characters are dropped first.
pub const OUTPUT_LIMIT: usize = 16 * 1024;
/// Wait for the console's acknowledgement before sending a packet again.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(500);
/// Transmissions of one packet before its characters are dropped.
pub const MAX_TRIES: u32 = 8;

/// Operation byte (console to BMC): the console cannot take the packet (NACK).
const OP_NACK: u8 = 0x40;
/// Operation byte: flush the BMC's outbound (towards the console) characters.
const OP_FLUSH_OUTBOUND: u8 = 0x01;
/// Status byte (BMC to console): SOL is deactivating.
pub const STATUS_DEACTIVATING: u8 = 0x10;

/// One SOL packet's fields (IPMI v2.0 table 15-2 and 15-3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SolPacket {
    /// Packet sequence number (1-15; 0: acknowledgement only).
    pub seq: u8,
    /// The sequence number acknowledged (0: none).
    pub ack: u8,
    /// Characters accepted of the acknowledged packet.
    pub accepted: u8,
    /// Operation (console to BMC) or status (BMC to console).
    pub flags: u8,
    /// Characters.
    pub data: Vec<u8>,
}

impl SolPacket {
    /// Decodes a payload; `None` when it is shorter than its header.
    pub fn decode(payload: &[u8]) -> Option<SolPacket> {
        let [seq, ack, accepted, flags, data @ ..] = payload else {
            return None;
        };
        Some(SolPacket {
            seq: seq & 0x0f,
            ack: ack & 0x0f,
            accepted: *accepted,
            flags: *flags,
            data: data.to_vec(),
        })
    }

    /// The payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![self.seq, self.ack, self.accepted, self.flags];
        b.extend_from_slice(&self.data);
        b
    }
}

/// A packet sent to the console and not acknowledged yet.
#[derive(Debug)]
struct InFlight {
    seq: u8,
    data: Vec<u8>,
    sent: Instant,
    tries: u32,
}

/// What an inbound packet asks the BMC to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Inbound {
    /// Characters for the VM's serial input.
    pub to_vm: Vec<u8>,
    /// The acknowledgement to send back, if the packet carried characters.
    pub reply: Option<SolPacket>,
}

/// The active SOL payload of one session.
#[derive(Debug)]
pub struct Sol {
    /// The BMC's ID of the session that activated the payload.
    pub session: u32,
    output: VecDeque<u8>,
    in_flight: Option<InFlight>,
    next_seq: u8,
    last_inbound: Option<(u8, usize)>,
    /// Characters dropped because the console did not take them in time.
    pub dropped: u64,
}

impl Sol {
    /// A payload activated by session `session`.
    pub fn new(session: u32) -> Sol {
        Sol {
            session,
            output: VecDeque::new(),
            in_flight: None,
            next_seq: 1,
            last_inbound: None,
            dropped: 0,
        }
    }

    /// Queues characters the VM printed, dropping the oldest beyond [`OUTPUT_LIMIT`].
    pub fn push_output(&mut self, bytes: &[u8]) {
        self.output.extend(bytes);
        let excess = self.output.len().saturating_sub(OUTPUT_LIMIT);
        if excess > 0 {
            self.output.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    /// Characters waiting for the console (in flight included).
    pub fn pending(&self) -> usize {
        self.output.len() + self.in_flight.as_ref().map_or(0, |f| f.data.len())
    }

    /// Handles a packet from the console; `accept` says whether the VM's input queue takes characters
    /// now (if not, the packet is refused with a NACK and the console keeps its characters).
    pub fn inbound(&mut self, p: &SolPacket, accept: bool) -> Inbound {
        if p.ack != 0 {
            self.acknowledged(p);
        }
        if p.flags & OP_FLUSH_OUTBOUND != 0 {
            self.output.clear();
        }
        if p.seq == 0 {
            return Inbound::default();
        }
        let len = p.data.len();
        let ack = |accepted: usize, flags: u8| SolPacket {
            seq: 0,
            ack: p.seq,
            accepted: accepted.min(255) as u8,
            flags,
            data: Vec::new(),
        };
        // A retransmission of the last packet: acknowledged again, not written twice.
        if self.last_inbound == Some((p.seq, len)) {
            return Inbound {
                to_vm: Vec::new(),
                reply: Some(ack(len, 0)),
            };
        }
        if len > MAX_CHARS || !accept {
            return Inbound {
                to_vm: Vec::new(),
                reply: Some(ack(0, OP_NACK)),
            };
        }
        self.last_inbound = Some((p.seq, len));
        Inbound {
            to_vm: p.data.clone(),
            reply: Some(ack(len, 0)),
        }
    }

    fn acknowledged(&mut self, p: &SolPacket) {
        let Some(flight) = self.in_flight.as_mut() else {
            return;
        };
        if flight.seq != p.ack || p.flags & OP_NACK != 0 {
            // Another packet's, or "not now": the retransmission timer resends.
            return;
        }
        let accepted = usize::from(p.accepted).min(flight.data.len());
        let rest = flight.data.split_off(accepted);
        self.in_flight = None;
        // A partial acknowledgement: the rest goes first in the next packet.
        for b in rest.into_iter().rev() {
            self.output.push_front(b);
        }
    }

    /// The next data packet to send, if any: a retransmission when the one in flight waited longer
    /// than [`RETRY_INTERVAL`], else new characters when nothing is in flight.
    pub fn poll(&mut self, now: Instant) -> Option<SolPacket> {
        if let Some(flight) = self.in_flight.as_mut() {
            if now.duration_since(flight.sent) < RETRY_INTERVAL {
                return None;
            }
            if flight.tries >= MAX_TRIES {
                self.dropped += flight.data.len() as u64;
                self.in_flight = None;
            } else {
                flight.tries += 1;
                flight.sent = now;
                return Some(data_packet(flight.seq, flight.data.clone()));
            }
        }
        if self.output.is_empty() {
            return None;
        }
        let n = self.output.len().min(MAX_CHARS);
        let data: Vec<u8> = self.output.drain(..n).collect();
        let seq = self.next_seq;
        self.next_seq = seq % 15 + 1;
        self.in_flight = Some(InFlight {
            seq,
            data: data.clone(),
            sent: now,
            tries: 1,
        });
        Some(data_packet(seq, data))
    }

    /// The packet telling the console that SOL is deactivating.
    pub fn farewell(&mut self) -> SolPacket {
        let seq = self.next_seq;
        self.next_seq = seq % 15 + 1;
        SolPacket {
            seq,
            ack: 0,
            accepted: 0,
            flags: STATUS_DEACTIVATING,
            data: Vec::new(),
        }
    }
}

fn data_packet(seq: u8, data: Vec<u8>) -> SolPacket {
    SolPacket {
        seq,
        ack: 0,
        accepted: 0,
        flags: 0,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_console(seq: u8, ack: u8, accepted: u8, data: &[u8]) -> SolPacket {
        SolPacket {
            seq,
            ack,
            accepted,
            flags: 0,
            data: data.to_vec(),
        }
    }

    #[test]
    fn input_is_acknowledged_once_and_retransmissions_are_not_written_twice() {
        let mut sol = Sol::new(7);
        let p = from_console(3, 0, 0, b"ls\r");
        let first = sol.inbound(&p, true);
        assert_eq!(first.to_vm, b"ls\r");
        let reply = first.reply.unwrap();
        assert_eq!((reply.seq, reply.ack, reply.accepted), (0, 3, 3));
        let again = sol.inbound(&p, true);
        assert!(again.to_vm.is_empty());
        assert_eq!(again.reply.unwrap().accepted, 3);
        // A full VM queue or an oversized packet: NACK, nothing written.
        let refused = sol.inbound(&from_console(4, 0, 0, b"x"), false);
        assert!(refused.to_vm.is_empty());
        assert_eq!(refused.reply.unwrap().flags, OP_NACK);
        let huge = sol.inbound(&from_console(5, 0, 0, &[b'a'; MAX_CHARS + 1]), true);
        assert!(huge.to_vm.is_empty());
        // An acknowledgement alone asks for nothing.
        assert_eq!(
            sol.inbound(&from_console(0, 9, 1, b""), true),
            Inbound::default()
        );
    }

    #[test]
    fn output_is_sent_in_sequence_retransmitted_and_bounded() {
        let mut sol = Sol::new(7);
        let t = Instant::now();
        sol.push_output(&[b'x'; MAX_CHARS + 10]);
        let p1 = sol.poll(t).unwrap();
        assert_eq!((p1.seq, p1.data.len()), (1, MAX_CHARS));
        // Nothing new until acknowledged; the same packet after the retry interval.
        assert_eq!(sol.poll(t), None);
        let again = sol.poll(t + RETRY_INTERVAL).unwrap();
        assert_eq!(again, p1);
        // A partial acknowledgement puts the rest first in the next packet.
        sol.inbound(&from_console(0, 1, 100, b""), true);
        let p2 = sol.poll(t + RETRY_INTERVAL).unwrap();
        assert_eq!((p2.seq, p2.data.len()), (2, 110));
        sol.inbound(&from_console(0, 2, 110, b""), true);
        assert_eq!(sol.poll(t + RETRY_INTERVAL), None);
        // Unacknowledged packets are given up after MAX_TRIES transmissions.
        sol.push_output(b"lost");
        let mut now = t + RETRY_INTERVAL;
        assert!(sol.poll(now).is_some());
        for _ in 1..MAX_TRIES {
            now += RETRY_INTERVAL;
            assert_eq!(sol.poll(now).map(|p| p.data), Some(b"lost".to_vec()));
        }
        now += RETRY_INTERVAL;
        assert_eq!(sol.poll(now), None);
        assert_eq!((sol.pending(), sol.dropped), (0, 4));
        // The output never exceeds its limit.
        sol.push_output(&vec![b'y'; 3 * OUTPUT_LIMIT]);
        assert_eq!(sol.pending(), OUTPUT_LIMIT);
        assert!(sol.dropped >= 2 * OUTPUT_LIMIT as u64);
    }

    #[test]
    fn sequence_numbers_wrap_from_15_to_1() {
        let mut sol = Sol::new(1);
        let t = Instant::now();
        let mut seen = Vec::new();
        for _ in 0..16 {
            sol.push_output(b"a");
            let p = sol.poll(t).unwrap();
            seen.push(p.seq);
            sol.inbound(&from_console(0, p.seq, 1, b""), true);
        }
        assert_eq!(seen[14..], [15, 1]);
        assert!(!seen.contains(&0));
    }
}

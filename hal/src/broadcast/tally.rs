//! What the deployer learns from the agents during one broadcast: each node's reports read to the
//! end ([`collect`]) and the tally of outcomes, write times and lost successors.

use super::wire::{self, AgentTimes, Report};
use crate::node::NodeId;
use crate::outcome::{ErrorKind, NodeError, Outcome, Outcomes};
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Per-node details of one broadcast, beyond the outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BroadcastReport {
    /// One outcome per node, in the order given.
    pub outcomes: Outcomes,
    /// When each node reported its image written, since the start (None if it did not).
    pub written_at: Vec<(NodeId, Option<Duration>)>,
    /// Successors dropped by a node or the server, with why.
    pub lost: Vec<(String, String, String)>,
    /// Whole broadcast, set-up included.
    pub elapsed: Duration,
    /// Corrupted chunks detected by the nodes and fetched again, in total.
    pub refetched: u64,
    /// Multicast: pieces the server sent again on the receivers' requests.
    pub repaired: u64,
    /// Multicast: forward error correction pieces the server sent.
    pub fec_sent: u64,
    /// Each node's timeline, in the order given.
    pub timeline: Vec<(NodeId, NodeTimeline)>,
}

/// When one node reached each step of a broadcast, since the broadcast began (None: it did not).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeTimeline {
    /// The deployer's job connection authenticated.
    pub connected: Option<Duration>,
    /// The node kept its first verified chunk.
    pub first_byte: Option<Duration>,
    /// The node kept its last verified chunk.
    pub last_byte: Option<Duration>,
    /// The node checked the whole image against the manifest.
    pub verified: Option<Duration>,
    /// The node reported its image written.
    pub written: Option<Duration>,
}

/// A node's timeline as instants on the deployer's clock.
#[derive(Clone, Copy, Default)]
struct Instants {
    connected: Option<Instant>,
    first_byte: Option<Instant>,
    last_byte: Option<Instant>,
    verified: Option<Instant>,
    written: Option<Instant>,
}

/// What a broadcast learned so far, per node and in total.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) outcomes: BTreeMap<NodeId, Outcome>,
    written_at: BTreeMap<NodeId, Duration>,
    pub(super) lost: Vec<(String, String, String)>,
    refetched: u64,
    pub(super) repaired: u64,
    pub(super) fec_sent: u64,
    times: BTreeMap<NodeId, Instants>,
}

impl Tally {
    /// Fails `node` with an error of `kind`.
    pub(super) fn fail(&mut self, node: NodeId, kind: ErrorKind, message: String) {
        self.outcomes
            .insert(node, Err(NodeError::new(kind, message)));
    }

    /// Fails every node of `nodes` with `error`.
    pub(super) fn fail_all(&mut self, nodes: &[NodeId], error: &NodeError) {
        for n in nodes {
            self.outcomes.insert(*n, Err(error.clone()));
        }
    }

    /// Notes that `node`'s job connection was authenticated at `at`.
    pub(super) fn connected(&mut self, node: NodeId, at: Instant) {
        self.times.entry(node).or_default().connected = Some(at);
    }

    /// Records what node `node` (named `name`) reported; `t0` is when the stream started.
    pub(super) fn node_end(&mut self, node: NodeId, name: &str, end: NodeEnd, t0: Instant) {
        let (outcome, written, node_lost, node_refetched) = end;
        self.refetched += node_refetched;
        self.outcomes.insert(node, outcome);
        if let Some((at, agent)) = written {
            self.written_at.insert(node, at.duration_since(t0));
            let e = self.times.entry(node).or_default();
            e.written = Some(at);
            if let Some(a) = agent {
                // The agent's times count from its job set-up; it sent the report `report_us` after
                // that, and we read it at `at` (a later time: the times are never placed too early).
                let on_our_clock = |us: Option<u64>| {
                    let back = Duration::from_micros(a.report_us.saturating_sub(us?));
                    at.checked_sub(back)
                };
                e.first_byte = on_our_clock(a.first_byte_us);
                e.last_byte = on_our_clock(a.last_byte_us);
                e.verified = on_our_clock(a.verified_us);
            }
        }
        self.lost
            .extend(node_lost.into_iter().map(|(a, w)| (name.to_string(), a, w)));
    }

    /// The report over `nodes`, in their order (a node without an outcome broke off); `start` is
    /// when the broadcast began.
    pub(super) fn report(self, nodes: &[NodeId], start: Instant) -> BroadcastReport {
        BroadcastReport {
            outcomes: Outcomes::from_fn(nodes, |n| {
                self.outcomes
                    .get(&n)
                    .cloned()
                    .unwrap_or_else(|| Err(NodeError::new(ErrorKind::Transfer, "no outcome")))
            }),
            written_at: nodes
                .iter()
                .map(|n| (*n, self.written_at.get(n).copied()))
                .collect(),
            timeline: nodes
                .iter()
                .map(|n| {
                    let t = self.times.get(n).copied().unwrap_or_default();
                    let since = |i: Option<Instant>| i.map(|i| i.saturating_duration_since(start));
                    let line = NodeTimeline {
                        connected: since(t.connected),
                        first_byte: since(t.first_byte),
                        last_byte: since(t.last_byte),
                        verified: since(t.verified),
                        written: since(t.written),
                    };
                    (*n, line)
                })
                .collect(),
            lost: self.lost,
            elapsed: start.elapsed(),
            refetched: self.refetched,
            repaired: self.repaired,
            fec_sent: self.fec_sent,
        }
    }
}

/// When a node reported its image written, and its own timeline.
pub(super) type WrittenAt = (Instant, Option<AgentTimes>);

/// What a node reported: outcome, when it wrote, successors lost, chunks fetched again.
pub(super) type NodeEnd = (Outcome, Option<WrittenAt>, Vec<(String, String)>, u64);

/// Reads one node's reports to the end: its outcome, when it wrote its image, the successors it lost.
/// Until its first heartbeat the connection's own read timeout (the report timeout) bounds each
/// wait; from then on, `heartbeat_timeout` (a node that stopped mid-job sends nothing, closes
/// nothing).
pub(super) fn collect(mut conn: TcpStream, heartbeat_timeout: Duration) -> NodeEnd {
    let mut outcome = None;
    let mut at = None;
    let mut heard = false;
    loop {
        match wire::recv::<Report>(&mut conn) {
            Ok(Report::Progress { .. }) => {
                if !heard {
                    heard = true;
                    let shorter = match conn.read_timeout() {
                        Ok(Some(now)) => now.min(heartbeat_timeout),
                        _ => heartbeat_timeout,
                    };
                    // A socket that refuses the timeout keeps the report timeout.
                    let _ = conn.set_read_timeout(Some(shorter).filter(|d| !d.is_zero()));
                }
            }
            Ok(Report::Written { result, times, .. }) => {
                at = Some((Instant::now(), times));
                outcome = Some(result.map(|_| ()));
            }
            Ok(Report::Done { lost, refetched }) => {
                let outcome = outcome.unwrap_or_else(|| {
                    Err(NodeError::new(
                        ErrorKind::Transfer,
                        "agent finished without writing",
                    ))
                });
                return (outcome, at, lost, refetched);
            }
            Err(e) => {
                let outcome = outcome.unwrap_or_else(|| {
                    let timed_out = matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    );
                    let silent = conn.read_timeout().ok().flatten().unwrap_or_default();
                    match (timed_out, heard) {
                        (true, true) => Err(NodeError::new(
                            ErrorKind::Timeout,
                            format!(
                                "no heartbeat for {:.1} s: the node or its link went silent mid-job",
                                silent.as_secs_f64()
                            ),
                        )),
                        (true, false) => Err(NodeError::new(
                            ErrorKind::Timeout,
                            format!("no report for {:.1} s", silent.as_secs_f64()),
                        )),
                        (false, _) => Err(NodeError::new(
                            ErrorKind::Unreachable,
                            format!("agent connection: {e}"),
                        )),
                    }
                });
                return (outcome, at, Vec::new(), 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A connected pair on loopback: the agent's end and the server's, with `report_timeout`.
    fn pair(report_timeout: Duration) -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let agent = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_read_timeout(Some(report_timeout)).unwrap();
        (agent, server)
    }

    #[test]
    fn a_node_silent_after_its_heartbeat_is_timed_out_by_the_heartbeat_timeout() {
        let (mut agent, server) = pair(Duration::from_secs(60));
        wire::send(&mut agent, &Report::Progress { have: 3 }).unwrap();
        let started = Instant::now();
        let (outcome, at, _, _) = collect(server, Duration::from_millis(300));
        let e = outcome.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(e.message.contains("no heartbeat for 0.3 s"), "{e:?}");
        assert!(at.is_none());
        assert!(started.elapsed() < Duration::from_secs(30));
        drop(agent);
    }

    #[test]
    fn without_a_heartbeat_the_report_timeout_bounds_the_wait() {
        let (agent, server) = pair(Duration::from_millis(300));
        let (outcome, _, _, _) = collect(server, Duration::from_secs(60));
        let e = outcome.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(e.message.contains("no report for 0.3 s"), "{e:?}");
        drop(agent);
    }

    #[test]
    fn a_closed_connection_is_unreachable_and_a_finished_node_is_ok() {
        let (agent, server) = pair(Duration::from_secs(5));
        drop(agent);
        let (outcome, _, _, _) = collect(server, Duration::from_secs(5));
        assert_eq!(outcome.unwrap_err().kind, ErrorKind::Unreachable);

        let (mut agent, server) = pair(Duration::from_secs(5));
        wire::send(&mut agent, &Report::Progress { have: 1 }).unwrap();
        let written = Report::Written {
            result: Ok(10),
            elapsed_ms: 1,
            times: None,
        };
        wire::send(&mut agent, &written).unwrap();
        let done = Report::Done {
            lost: vec![],
            refetched: 2,
        };
        wire::send(&mut agent, &done).unwrap();
        let (outcome, at, lost, refetched) = collect(server, Duration::from_secs(5));
        assert!(outcome.is_ok() && at.is_some() && lost.is_empty());
        assert_eq!(refetched, 2);
    }
}

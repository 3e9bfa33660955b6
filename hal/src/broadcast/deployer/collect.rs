//! The end of a broadcast on the server: every ready node's reports read to the end, at once.

use super::KaagentBroadcast;
use crate::broadcast::tally::{NodeEnd, Tally, collect};
use crate::node::NodeId;
use crate::outcome::{ErrorKind, NodeError};
use std::net::TcpStream;
use std::time::Instant;

impl KaagentBroadcast {
    /// Reads every ready node's reports to the end, into `tally`; `t0` is when the stream started.
    pub(super) fn collect_all(
        &self,
        ready: Vec<(NodeId, TcpStream)>,
        tally: &mut Tally,
        t0: Instant,
    ) {
        let silence = self.options.heartbeat_timeout;
        std::thread::scope(|s| {
            let collectors: Vec<_> = ready
                .into_iter()
                .map(|(n, conn)| (n, s.spawn(move || collect(conn, silence))))
                .collect();
            for (n, h) in collectors {
                let end: NodeEnd = h.join().unwrap_or_else(|_| {
                    (
                        Err(NodeError::new(ErrorKind::Transfer, "collector panicked")),
                        None,
                        Vec::new(),
                        0,
                    )
                });
                tally.node_end(n, &self.agents[&n].name, end, t0);
            }
        });
    }
}

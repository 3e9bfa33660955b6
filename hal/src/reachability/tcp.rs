//! Reachability by TCP connection probes to the nodes' addresses.

use crate::node::{NodeId, NodeInfo};
use crate::outcome::{ErrorKind, NodeError, Outcome, Outcomes, for_each_node};
use crate::reachability::{PortCheck, Reachability};
use async_trait::async_trait;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// Probes ports with one TCP connection each, bounded by a timeout.
#[derive(Clone)]
pub struct TcpProbe {
    nodes: Arc<Vec<NodeInfo>>,
    timeout: Duration,
    concurrency: usize,
}

impl TcpProbe {
    /// A probe of `nodes` (`NodeId(i)` is `nodes[i]`) where a connection not accepted within `timeout`
    /// counts as closed; at most 256 nodes are probed at a time.
    pub fn new(nodes: Vec<NodeInfo>, timeout: Duration) -> Self {
        TcpProbe {
            nodes: Arc::new(nodes),
            timeout,
            concurrency: 256,
        }
    }

    /// Probes at most `limit` nodes at a time.
    pub fn with_concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit.max(1);
        self
    }
}

/// True when `addr` accepts a TCP connection within `timeout`.
async fn accepts(addr: SocketAddr, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

async fn probe_node(info: NodeInfo, check: Arc<PortCheck>, timeout: Duration) -> Outcome {
    let unreachable = |m: String| Err(NodeError::new(ErrorKind::Unreachable, m));
    for &port in &check.up {
        if !accepts(SocketAddr::new(info.address, port), timeout).await {
            return unreachable(format!("port {port} of {} is not open", info.name));
        }
    }
    for &port in &check.down {
        if accepts(SocketAddr::new(info.address, port), timeout).await {
            return unreachable(format!("port {port} of {} is open", info.name));
        }
    }
    Ok(())
}

#[async_trait]
impl Reachability for TcpProbe {
    async fn probe(&self, nodes: &[NodeId], check: &PortCheck) -> Outcomes {
        let check = Arc::new(check.clone());
        for_each_node(nodes, self.concurrency, |node| {
            let info = crate::outcome::lookup(&self.nodes, node).cloned();
            let check = check.clone();
            let timeout = self.timeout;
            async move { probe_node(info?, check, timeout).await }
        })
        .await
    }
}

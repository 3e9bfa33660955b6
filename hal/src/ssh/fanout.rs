//! Runs one future per node with bounded concurrency and collects the outcomes in the nodes' order.

use crate::node::NodeId;
use crate::outcome::{ErrorKind, NodeError, Outcome, Outcomes};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Calls `f` for every node of `nodes`, at most `limit` at a time; one outcome per node, in order.
/// A panicking task fails its node instead of the whole set.
pub(crate) async fn for_each_node<T, F, Fut>(nodes: &[NodeId], limit: usize, f: F) -> Outcomes<T>
where
    T: Send + 'static,
    F: Fn(NodeId) -> Fut,
    Fut: Future<Output = Outcome<T>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limit.max(1)));
    let mut set = JoinSet::new();
    let mut slots: Vec<Option<Outcome<T>>> = nodes.iter().map(|_| None).collect();
    for (i, &node) in nodes.iter().enumerate() {
        let fut = f(node);
        let permits = permits.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (i, fut.await)
        });
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, outcome)) => slots[i] = Some(outcome),
            Err(e) => tracing::error!("node task failed: {e}"),
        }
    }
    Outcomes(
        nodes
            .iter()
            .zip(slots)
            .map(|(&n, o)| {
                let o = o.unwrap_or_else(|| {
                    Err(NodeError::new(ErrorKind::Cancelled, "node task panicked"))
                });
                (n, o)
            })
            .collect(),
    )
}

//! Runs one future per node with bounded concurrency and collects the outcomes in the nodes' order
//! (a panicking task fails its own node only).

use super::{ErrorKind, NodeError, Outcome, Outcomes};
use crate::node::NodeId;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Calls `f` for every node of `nodes`, at most `limit` at a time (pass `nodes.len()` for no limit);
/// one outcome per node, in order. A panicking task fails its node instead of the whole set.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn outcomes_keep_the_nodes_order_and_the_limit_holds() {
        let nodes: Vec<NodeId> = (0..12).map(NodeId).collect();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let out = for_each_node(&nodes, 3, |node| {
            let (running, peak) = (running.clone(), peak.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                // Later nodes finish first: the order must come from the input, not completion.
                tokio::time::sleep(Duration::from_millis(u64::from(12 - node.0))).await;
                running.fetch_sub(1, Ordering::SeqCst);
                if node.0 % 2 == 0 {
                    Ok(node.0)
                } else {
                    Err(NodeError::new(ErrorKind::CommandFailed, "odd"))
                }
            }
        })
        .await;
        let order: Vec<NodeId> = out.iter().map(|(n, _)| *n).collect();
        assert_eq!(order, nodes);
        assert_eq!(out.ok_nodes().len(), 6);
        assert_eq!(out.0[4].1, Ok(4));
        assert!(peak.load(Ordering::SeqCst) <= 3, "{peak:?}");
    }

    #[tokio::test]
    async fn a_panicking_task_fails_its_node_only() {
        let nodes = [NodeId(0), NodeId(1)];
        let out = for_each_node(&nodes, nodes.len(), |node| async move {
            assert_ne!(node, NodeId(1), "this node's task panics");
            Ok(())
        })
        .await;
        assert_eq!(out.0[0].1, Ok(()));
        let err = out.0[1].1.clone().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Cancelled);
    }
}

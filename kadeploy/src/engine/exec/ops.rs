//! Running node operations and the broadcast on a node set (spec §6).

use crate::engine::context::Context;
use crate::output::secs;
use hal::{ErrorKind, ImageSpec, NodeError, NodeId, Operation, Outcomes, Strategy, WriteTarget};
use std::collections::BTreeMap;

/// Runs `op` on `nodes`.
pub async fn run(ctx: &Context, op: Operation, nodes: &[NodeId]) -> Outcomes {
    ctx.drivers.ops.run(&op, nodes).await
}

/// Runs a sequence of operations: each on the nodes every previous one succeeded on.
pub async fn run_all(ctx: &Context, ops: Vec<Operation>, nodes: &[NodeId]) -> Outcomes {
    let mut failed: BTreeMap<NodeId, NodeError> = BTreeMap::new();
    let mut alive = nodes.to_vec();
    for op in ops {
        if alive.is_empty() {
            break;
        }
        let outcomes = run(ctx, op, &alive).await;
        alive = outcomes.ok_nodes();
        failed.extend(outcomes.failures());
    }
    Outcomes::from_fn(nodes, |n| match failed.remove(&n) {
        Some(e) => Err(e),
        None => Ok(()),
    })
}

/// Fails every node with a configuration error.
pub fn refuse(nodes: &[NodeId], message: impl Into<String>) -> Outcomes {
    Outcomes::all(nodes, Err(NodeError::new(ErrorKind::Config, message)))
}

/// `check_nodes`: runs the root device check; a failed command means a bad root partition.
pub async fn check_root_device(ctx: &Context, op: Operation, nodes: &[NodeId]) -> Outcomes {
    let outcomes = run(ctx, op, nodes).await;
    Outcomes(
        outcomes
            .into_iter()
            .map(|(n, o)| {
                let o = o.map_err(|e| match e.kind {
                    ErrorKind::CommandFailed => NodeError::new(e.kind, "Bad root partition"),
                    _ => e,
                });
                (n, o)
            })
            .collect(),
    )
}

/// `send_environment`: broadcasts `image` to `target` on the nodes in chunks of `chunk` bytes (none: the
/// backend's own size), with its metrics and time.
pub async fn broadcast(
    ctx: &Context,
    image: &ImageSpec,
    target: &WriteTarget,
    strategy: Strategy,
    chunk: Option<u32>,
    nodes: &[NodeId],
) -> Outcomes {
    let start = ctx.now();
    let backend = &ctx.drivers.broadcast;
    let outcomes = match chunk {
        Some(chunk) => {
            backend
                .broadcast_chunked(image, target, strategy, chunk, nodes)
                .await
        }
        None => backend.broadcast(image, target, strategy, nodes).await,
    };
    crate::metrics::broadcast(strategy.name(), image.size, ctx.now() - start, &outcomes);
    ctx.output.push(
        3,
        format!("   * Broadcast time: {}", secs(ctx.now() - start)),
    );
    outcomes
}

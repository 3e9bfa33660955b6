//! `wait_reboot`: Kadeploy's port probing after a reboot (spec §5.6), with the timeout expression of `n`.

use crate::engine::context::Context;
use crate::engine::positions::Positions;
use crate::expr::Expr;
use crate::output::secs;
use hal::{ErrorKind, NodeError, NodeId, Outcomes, PortCheck};
use std::time::Duration;

/// Waits until every node answers `check`, or the timeout `expr` gives for `n` = `nodes.len()`.
pub async fn wait_reboot(
    ctx: &Context,
    nodes: &[NodeId],
    expr: &Expr,
    check: &PortCheck,
) -> Outcomes {
    let timeout = match expr.eval(nodes.len() as f64) {
        Ok(t) => t,
        Err(e) => {
            let msg = format!("Invalid reboot timeout '{}': {e}", expr.source());
            return Outcomes::all(nodes, Err(NodeError::new(ErrorKind::Config, msg)));
        }
    };
    let start = ctx.now();
    let deadline = start + timeout;
    let first = ctx
        .cluster
        .boot
        .sleep_time_before_ping
        .min(timeout)
        .max(0.0);
    tokio::time::sleep(Duration::from_secs_f64(first)).await;

    let mut waiting: Vec<NodeId> = nodes.to_vec();
    let positions = Positions::new(nodes);
    // Whether each node of `nodes` (by position) answered.
    let mut arrived = vec![false; nodes.len()];
    let has_arrived = |arrived: &[bool], n: NodeId| positions.get(n).is_some_and(|i| arrived[i]);
    loop {
        for chunk in waiting.chunks(ctx.windows.check_size) {
            for node in ctx
                .drivers
                .reachability
                .probe(chunk, check)
                .await
                .ok_nodes()
            {
                ctx.output.push_with(5, || {
                    format!(
                        "{} is here after {}",
                        ctx.name(node),
                        secs(ctx.now() - start)
                    )
                });
                if let Some(i) = positions.get(node) {
                    arrived[i] = true;
                }
            }
        }
        waiting.retain(|&n| !has_arrived(&arrived, n));
        let now = ctx.now();
        if waiting.is_empty() || now >= deadline {
            break;
        }
        let period = ctx.cluster.boot.probe_period;
        tokio::time::sleep(Duration::from_secs_f64(period.min(deadline - now))).await;
    }
    Outcomes::from_fn(nodes, |n| {
        if has_arrived(&arrived, n) {
            Ok(())
        } else {
            Err(NodeError::new(
                ErrorKind::Unreachable,
                "Unreachable after the reboot",
            ))
        }
    })
}

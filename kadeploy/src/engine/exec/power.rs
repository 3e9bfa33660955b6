//! `reboot(level)`, `reboot_from_deploy_env` and `power(action, level)`: Kadeploy's escalation over
//! power levels (spec §5.5), run through the server-wide reboot window; and `power(:status)`.

use crate::engine::context::Context;
use hal::{NodeError, NodeId, Outcomes, PowerAction, PowerLevel};
use std::collections::BTreeMap;
use std::time::Duration;

/// Runs `action` from `level` upwards: nodes whose command fails or is missing go to the next level;
/// nodes still failing after `very_hard` are KO with their last error.
pub async fn escalate(
    ctx: &Context,
    action: PowerAction,
    level: PowerLevel,
    nodes: &[NodeId],
) -> Outcomes {
    let mut errors: BTreeMap<NodeId, NodeError> = BTreeMap::new();
    let mut remaining = nodes.to_vec();
    let mut current = Some(level);
    while let Some(level) = current {
        if remaining.is_empty() {
            break;
        }
        let word = match action {
            PowerAction::Reboot => "reboot".to_string(),
            PowerAction::On => "power on".to_string(),
            PowerAction::Off => "power off".to_string(),
        };
        ctx.output.push_with(3, || {
            format!(
                "   * Performing a {level} {word} on {}",
                ctx.fold(&remaining)
            )
        });
        let outcomes = windowed(ctx, &remaining, |chunk| {
            let power = ctx.drivers.power.clone();
            async move { power.power(action, level, &chunk).await }
        })
        .await;
        crate::metrics::power(action, level, &outcomes);
        remaining.clear();
        for (node, outcome) in outcomes {
            match outcome {
                Ok(()) => {
                    errors.remove(&node);
                }
                Err(e) => {
                    errors.insert(node, e);
                    remaining.push(node);
                }
            }
        }
        current = level.next();
    }
    Outcomes::from_fn(nodes, |n| match errors.get(&n) {
        Some(e) => Err(e.clone()),
        None => Ok(()),
    })
}

/// `power(:status)`: reads the power state, kept as each node's output.
pub async fn status(ctx: &Context, nodes: &[NodeId]) -> Outcomes {
    let outcomes = ctx.drivers.power.status(nodes).await;
    Outcomes(
        outcomes
            .into_iter()
            .map(|(n, o)| {
                let o = o.map(|state| {
                    ctx.log(&[n], |l| l.out = Some(state.to_string()));
                });
                (n, o)
            })
            .collect(),
    )
}

/// Runs `op` over `nodes` in chunks no larger than the reboot window, waiting for free places.
pub async fn windowed<F, Fut, T>(ctx: &Context, nodes: &[NodeId], op: F) -> Outcomes<T>
where
    F: Fn(Vec<NodeId>) -> Fut,
    Fut: std::future::Future<Output = Outcomes<T>>,
{
    let windows = &ctx.windows;
    let mut all = Vec::with_capacity(nodes.len());
    for chunk in nodes.chunks(windows.reboot_size) {
        let permits = loop {
            match windows.reboot.try_acquire_many(chunk.len() as u32) {
                Ok(p) => break p,
                Err(_) => {
                    tokio::time::sleep(Duration::from_secs_f64(windows.reboot_sleep.max(0.001)))
                        .await
                }
            }
        };
        let outcomes = op(chunk.to_vec()).await;
        drop(permits);
        all.extend(outcomes);
    }
    Outcomes(all)
}

//! BroadcastEnvAuto's `send_environment`: ask the cluster's broadcast planner which strategy and chunk
//! size deliver the image fastest, say so in the deployment's log, broadcast with them, and log the
//! measured time beside the prediction. Without a planner, or when it gives no plan, the broadcast falls
//! back to [`FALLBACK_STRATEGY`] with the backend's chunk size, and the log says why.

use super::ops;
use crate::engine::context::Context;
use crate::engine::planner::{BroadcastPlan, FALLBACK_STRATEGY, PlanError, PlanNode, PlanRequest};
use hal::{ImageSpec, NodeId, Outcomes, WriteTarget};

/// The verbose level of the `auto:` lines (shown at the clients' default level, like the step lines).
const LEVEL: u8 = 1;

/// What the planner is asked for `image` on `nodes` of the context's cluster.
pub fn request(ctx: &Context, image: &ImageSpec, nodes: &[NodeId]) -> PlanRequest {
    let cluster = &ctx.cluster;
    let ratio = image
        .uncompressed_size
        .filter(|&u| u > 0 && image.size > 0)
        .map(|u| u as f64 / image.size as f64);
    PlanRequest {
        cluster: cluster.name.clone(),
        nodes: nodes
            .iter()
            .map(|&n| {
                let name = ctx.name(n).to_string();
                PlanNode {
                    index: n.index(),
                    switch: cluster.switches.get(&name).cloned(),
                    name,
                }
            })
            .collect(),
        image_size: image.size,
        ratio,
    }
}

/// The context's planner's plan for `request`.
pub fn plan(ctx: &Context, request: &PlanRequest) -> Result<BroadcastPlan, PlanError> {
    let Some(planner) = &ctx.planner else {
        return Err(PlanError::Model(format!(
            "the cluster {} has no broadcast planner",
            request.cluster
        )));
    };
    let plan = planner.plan(request)?;
    if plan.chunk == 0 || !plan.predicted.is_finite() || plan.predicted < 0.0 {
        return Err(PlanError::Model(format!(
            "the planner answered {} with chunk {} B in {} s",
            plan.strategy, plan.chunk, plan.predicted
        )));
    }
    Ok(plan)
}

/// A chunk size for people: `64 KiB`, `1 MiB`, else bytes.
pub fn show_chunk(chunk: u32) -> String {
    match chunk {
        c if c >= 1 << 20 && c % (1 << 20) == 0 => format!("{} MiB", c >> 20),
        c if c >= 1 << 10 && c % (1 << 10) == 0 => format!("{} KiB", c >> 10),
        c => format!("{c} B"),
    }
}

/// Broadcasts `image` to `target` on `nodes` with the planner's choice (or the fallback).
pub async fn broadcast(
    ctx: &Context,
    image: &ImageSpec,
    target: &WriteTarget,
    nodes: &[NodeId],
) -> Outcomes {
    let request = request(ctx, image, nodes);
    let plan = match plan(ctx, &request) {
        Ok(plan) => plan,
        Err(e) => {
            ctx.output.push(
                LEVEL,
                format!(
                    "auto: {e}; falling back to {FALLBACK_STRATEGY} with the backend's chunk size"
                ),
            );
            return ops::broadcast(ctx, image, target, FALLBACK_STRATEGY, None, nodes).await;
        }
    };
    ctx.output.push(
        LEVEL,
        format!(
            "auto: chose {} with chunk {}, predicted {:.1} s",
            plan.strategy,
            show_chunk(plan.chunk),
            plan.predicted
        ),
    );
    let start = ctx.now();
    let outcomes = ops::broadcast(ctx, image, target, plan.strategy, Some(plan.chunk), nodes).await;
    ctx.output.push(
        LEVEL,
        format!(
            "auto: measured {:.1} s (predicted {:.1} s)",
            ctx.now() - start,
            plan.predicted
        ),
    );
    outcomes
}

//! Running a workflow: the top-level manager over the plan's macro-steps, Kadeploy's start and end
//! lines, cancellation, and the final per-node report.

use super::context::Context;
use super::manager::{self, Batch, Hooks};
use super::plan::{self, Plan};
use super::positions::Positions;
use super::report::{Failure, NodeStatus, Report};
use super::request::{DeployRequest, PowerRequest, RebootRequest};
use crate::error::RequestError;
use crate::output::secs;
use hal::{ErrorKind, NodeId};
use std::collections::BTreeSet;
use std::sync::Arc;
use tracing::Instrument;

/// Runs a deployment; refuses bad requests before touching any node.
pub async fn deploy(ctx: &Context, req: &DeployRequest) -> Result<Report, RequestError> {
    let plan = plan::deploy(&ctx.server, &ctx.cluster, req)?;
    Ok(run(ctx, plan, req.nodes.clone()).await)
}

/// Runs a reboot.
pub async fn reboot(ctx: &Context, req: &RebootRequest) -> Result<Report, RequestError> {
    let plan = plan::reboot(&ctx.cluster, req)?;
    Ok(run(ctx, plan, req.nodes.clone()).await)
}

/// Runs a power operation.
pub async fn power(ctx: &Context, req: &PowerRequest) -> Report {
    run(ctx, plan::power(req), req.nodes.clone()).await
}

struct WorkflowHooks {
    operation: &'static str,
    /// Where each node of the workflow is in `statuses`.
    positions: Positions,
    /// The status each node ended with, in the workflow's node order (allocated when the first node ends:
    /// not held through the whole run).
    statuses: Vec<Option<NodeStatus>>,
    /// Number of nodes in the workflow.
    len: usize,
}

impl WorkflowHooks {
    fn set(&mut self, node: NodeId, status: NodeStatus) {
        if self.statuses.is_empty() {
            self.statuses.resize(self.len, None);
        }
        if let Some(slot) = self
            .positions
            .get(node)
            .and_then(|i| self.statuses.get_mut(i))
        {
            *slot = Some(status);
        }
    }
}

impl Hooks for WorkflowHooks {
    fn done(&mut self, ctx: &Context, batch: Batch) {
        let op = self.operation;
        let capitalised = capitalise(op);
        let elapsed = secs(ctx.now());
        match batch {
            Batch::Ok(nodes) => {
                ctx.output.push_with(1, || {
                    format!("End of {op} for {} after {elapsed}", ctx.fold(&nodes))
                });
                for n in nodes {
                    self.set(n, NodeStatus::Ok);
                }
            }
            Batch::Ko(failures) => {
                let nodes: Vec<NodeId> = failures.iter().map(|(n, _)| *n).collect();
                ctx.output.push_with(1, || {
                    format!(
                        "{capitalised} failed for {} after {elapsed}",
                        ctx.fold(&nodes)
                    )
                });
                for (n, f) in failures {
                    self.set(n, NodeStatus::Ko(f));
                }
            }
            Batch::Brk(nodes, at) => {
                ctx.output
                    .push_with(1, || format!("Breakpoint reached for {}", ctx.fold(&nodes)));
                for n in nodes {
                    self.set(n, NodeStatus::Brk { at: at.clone() });
                }
            }
        }
    }

    fn retried(&mut self, ctx: &Context, slot: usize, nodes: &[NodeId], _fallback: bool) {
        ctx.log(nodes, |l| {
            if let Some(r) = l.retries.get_mut(slot) {
                *r += 1;
            }
        });
    }
}

/// Runs `plan` on `nodes` (each once, in their first order) until every node is done or the workflow is cancelled.
pub async fn run(ctx: &Context, plan: Plan, mut nodes: Vec<NodeId>) -> Report {
    // Node lists are usually sorted: only an unsorted one needs the set.
    if !nodes.windows(2).all(|w| w[0] < w[1]) {
        let mut seen = BTreeSet::new();
        nodes.retain(|&n| seen.insert(n));
    }
    let span = tracing::info_span!("workflow", operation = plan.operation, cluster = %ctx.cluster.name, nodes = nodes.len());
    async move {
        let op = plan.operation;
        ctx.output
            .push_with(0, || format!("Launching a {op} on {}", ctx.fold(&nodes)));
        for notice in &plan.notices {
            ctx.output.push(0, notice.clone());
        }
        let mut hooks = WorkflowHooks {
            operation: op,
            positions: Positions::new(&nodes),
            statuses: Vec::new(),
            len: nodes.len(),
        };
        let aborted = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => true,
            _ = manager::run(ctx, &plan.slots, nodes.clone(), 0, 1, &mut hooks) => false,
        };
        if aborted {
            ctx.output.push(0, format!("{} aborted", capitalise(op)));
        }
        let statuses = nodes
            .iter()
            .zip(
                std::mem::take(&mut hooks.statuses)
                    .into_iter()
                    .chain(std::iter::repeat(None)),
            )
            .map(|(&n, status)| {
                // Kadeploy's kill moves every node to the KO list; nodes that had failed keep their reason.
                let status = match status {
                    Some(status @ NodeStatus::Ko(_)) => status,
                    Some(status) if !aborted => status,
                    _ => {
                        let pos = ctx.position(n);
                        NodeStatus::Ko(Failure {
                            macro_step: pos.macro_step.unwrap_or_else(|| Arc::from("")),
                            micro_step: pos.micro_step.unwrap_or_else(|| Arc::from("")),
                            error: format!("{} aborted", capitalise(op)),
                            kind: ErrorKind::Cancelled,
                        })
                    }
                };
                (n, status)
            })
            .collect();
        let seconds = ctx.now();
        ctx.output.push(
            0,
            format!(
                "End of {op} on cluster {} after {}",
                ctx.cluster.name,
                secs(seconds)
            ),
        );
        Report {
            nodes: statuses,
            logs: ctx.take_logs(&nodes),
            seconds,
            macro_durations: ctx.spans(),
            aborted,
        }
    }
    .instrument(span)
    .await
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

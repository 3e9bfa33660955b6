//! `tracing` spans that let one node's history be followed in the logs (`RUST_LOG=kadeploy=debug`): one per node
//! group a task runs on (`nodeset`), per run of a macro-step instance (`macro_step`) and per run of a micro-step
//! (`micro_step`), nested in that order under the workflow's span. Each carries its nodes as a folded list
//! (`node-[1-5].site`) and, when it ends, records how many nodes ended OK and KO and which failed. Field values are
//! only computed when the span is enabled, so disabled tracing costs the simulator nothing.

use super::context::Context;

use super::report::{Batch, Failure};
use hal::NodeId;
use tracing::Span;
use tracing::field::Empty;

/// How the nodes of a span ended.
#[derive(Debug, Default)]
pub struct Tally {
    ok: usize,
    brk: usize,
    ko: Vec<NodeId>,
}

impl Tally {
    /// Counts the nodes of `batch`.
    pub fn add(&mut self, batch: &Batch) {
        match batch {
            Batch::Ok(nodes) => self.ok += nodes.len(),
            Batch::Brk(nodes, _) => self.brk += nodes.len(),
            Batch::Ko(failures) => self.ko.extend(failures.iter().map(|(n, _)| *n)),
        }
    }
}

/// The span of the group of `nodes` running task `task` (try `attempt`), numbered `id` like Kadeploy's nodesets.
pub fn nodeset(ctx: &Context, id: u64, task: &str, attempt: u32, nodes: &[NodeId]) -> Span {
    tracing::debug_span!(
        "nodeset",
        id,
        task = %task,
        attempt,
        nodes = %ctx.fold(nodes),
        ok = Empty,
        ko = Empty,
        brk = Empty,
        failed = Empty,
        timed_out = Empty,
    )
}

/// The span of a run of macro-step instance `name` on `nodes`.
pub fn macro_step(ctx: &Context, name: &str, attempt: u32, nodes: &[NodeId]) -> Span {
    tracing::debug_span!(
        "macro_step",
        name = %name,
        attempt,
        nodes = %ctx.fold(nodes),
        ok = Empty,
        ko = Empty,
        brk = Empty,
        failed = Empty,
    )
}

/// The span of a run of micro-step `name` on `nodes`.
pub fn micro_step(ctx: &Context, name: &str, attempt: u32, nodes: &[NodeId]) -> Span {
    tracing::debug_span!(
        "micro_step",
        name = %name,
        attempt,
        nodes = %ctx.fold(nodes),
        ok = Empty,
        ko = Empty,
        failed = Empty,
    )
}

/// Logs, inside the current span, that `node` failed with `failure`.
pub fn node_failed(ctx: &Context, node: NodeId, failure: &Failure) {
    tracing::debug!(
        node = %ctx.name(node),
        kind = %failure.kind,
        error = %failure.error,
        "node failed"
    );
}

/// Logs, inside `span`, that its group split: `left` leaves now, `rest` stays as nodeset `rest_id`.
pub fn split(ctx: &Context, span: &Span, left: &[NodeId], rest: &[NodeId], rest_id: u64) {
    if !span.is_disabled() {
        tracing::debug!(
            parent: span,
            left = %ctx.fold(left),
            rest = %ctx.fold(rest),
            rest_id,
            "nodeset split"
        );
    }
}

/// Records `tally` on `span` and logs its end inside it; `timed_out` is recorded when given.
pub fn close(ctx: &Context, span: &Span, tally: &Tally, timed_out: Option<bool>) {
    if span.is_disabled() {
        return;
    }
    span.record("ok", tally.ok);
    span.record("ko", tally.ko.len());
    if tally.brk > 0 {
        span.record("brk", tally.brk);
    }
    if !tally.ko.is_empty() {
        span.record("failed", tracing::field::display(ctx.fold(&tally.ko)));
    }
    if let Some(timed_out) = timed_out {
        span.record("timed_out", timed_out);
    }
    tracing::debug!(parent: span, "done");
}

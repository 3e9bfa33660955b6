//! Kadeploy's task manager (`TaskManager#start`, spec §5.2), used at both levels: a workflow runs
//! macro-step instances, a macro-step instance runs micro-steps.
//!
//! Each slot holds alternative implementations in fallback order. Nodes advance in groups: a group that
//! ends OK moves to the next slot; a group that ends KO is retried while the task allows it, then handed
//! to the next alternative, then reported failed. A task reports its nodes in batches as they finish,
//! so a group splits when part of it is done; nodes a task leaves without outcome count as KO.

use super::context::Context;
pub use super::report::Batch;
use super::report::Failure;
use super::trace::{self, Tally};
use futures_util::stream::{FuturesUnordered, StreamExt};
use hal::NodeId;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{Instrument, Span};

/// Settings of one task: Kadeploy's `{timeout, retries, raisable, breakpoint}`.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskSpec {
    /// Task name (macro-step instance or micro-step).
    pub name: Arc<str>,
    /// Extra tries after the first.
    pub retries: u32,
    /// Seconds for one run of the task; 0 = none.
    pub timeout: f64,
    /// Report nodes as soon as they are done (true) or all together at the end of the run.
    pub raisable: bool,
    /// Stop the nodes before running the task.
    pub breakpoint: bool,
}

/// How a running task hands batches back to its manager.
#[derive(Clone)]
pub struct Reporter {
    run: u64,
    tx: mpsc::UnboundedSender<(u64, Batch)>,
}

impl Reporter {
    /// Reports `batch`; empty batches are dropped.
    pub fn send(&self, batch: Batch) {
        if !batch.nodes().is_empty() {
            // The manager outlives its runs; a closed channel only means the manager was dropped.
            let _ = self.tx.send((self.run, batch));
        }
    }
}

/// One runnable task of a slot.
#[async_trait::async_trait]
pub trait Task: Send + Sync {
    /// The task's settings.
    fn spec(&self) -> &TaskSpec;

    /// Runs the task on `nodes`; `attempt` counts retries of this task (0 = first try),
    /// `parent_attempt` those of the enclosing task. Reports outcomes through `report`.
    async fn run(
        &self,
        ctx: &Context,
        nodes: Vec<NodeId>,
        attempt: u32,
        parent_attempt: u32,
        report: Reporter,
    );

    /// The failure of a node still inside the task when its timeout fires; also records what Kadeploy's
    /// `timeout!` logs for the node.
    fn timeout_failure(&self, ctx: &Context, node: NodeId) -> Failure;

    /// The failure of a node the task left without outcome.
    fn missing_failure(&self, ctx: &Context, node: NodeId) -> Failure;

    /// Called when nodes reach the task's breakpoint; returns where they stopped.
    fn breakpoint_reached(&self, ctx: &Context, nodes: &[NodeId]) -> String;
}

/// What the owner of a manager hears.
pub trait Hooks: Send {
    /// Nodes left the manager for good.
    fn done(&mut self, ctx: &Context, batch: Batch);
    /// Nodes are retried (`fallback` false) or handed to the next alternative (`fallback` true) in `slot`.
    fn retried(&mut self, _ctx: &Context, _slot: usize, _nodes: &[NodeId], _fallback: bool) {}
}

/// A task in its slot.
pub type Slots = Vec<Vec<Arc<dyn Task>>>;

struct Message {
    slot: usize,
    alt: usize,
    retries: u32,
    batch: Option<Batch>,
    nodes: Vec<NodeId>,
}

/// A task running on a group of nodes.
struct Run {
    slot: usize,
    alt: usize,
    retries: u32,
    nsid: u64,
    pending: Vec<NodeId>,
    span: Span,
    tally: Tally,
}

type RunFuture<'a> = Pin<Box<dyn Future<Output = (u64, bool)> + Send + 'a>>;

/// The state of one manager: what waits to run, what runs, and the numbering of runs and nodesets.
struct Manager<'a> {
    ctx: &'a Context,
    slots: &'a [Vec<Arc<dyn Task>>],
    parent_attempt: u32,
    split_level: u8,
    tx: mpsc::UnboundedSender<(u64, Batch)>,
    queue: VecDeque<Message>,
    runs: BTreeMap<u64, Run>,
    futures: FuturesUnordered<RunFuture<'a>>,
    next_run: u64,
    nsid: u64,
    holders: Holders,
}

/// Which run holds each node of a manager (a node is in at most one of its runs at a time), by node index:
/// a batch is checked against its run in constant time per node.
struct Holders {
    /// The smallest node index of the manager's nodes.
    base: usize,
    /// The run id holding each node from `base` on; 0 (no run has id 0), or an ended run's id, when none.
    run: Vec<u64>,
    /// The same for node indices too sparse for a table (a few nodes far apart in a huge cluster).
    sparse: BTreeMap<NodeId, u64>,
}

/// Largest table kept per node of the manager (plus `SLACK`): sparser indices use the tree.
const DENSITY: usize = 8;
const SLACK: usize = 4096;

impl Holders {
    /// Room for the indices of `nodes` (the only nodes a manager ever runs).
    fn new(nodes: &[NodeId]) -> Self {
        let base = nodes.iter().map(|n| n.index()).min().unwrap_or(0);
        let end = nodes.iter().map(|n| n.index() + 1).max().unwrap_or(0);
        let span = end.saturating_sub(base);
        let dense = span <= DENSITY.saturating_mul(nodes.len()).saturating_add(SLACK);
        Holders {
            base,
            run: if dense { vec![0; span] } else { Vec::new() },
            sparse: BTreeMap::new(),
        }
    }

    fn slot(&mut self, node: NodeId) -> Option<&mut u64> {
        if self.run.is_empty() {
            return self.sparse.get_mut(&node);
        }
        let i = node.index().checked_sub(self.base)?;
        self.run.get_mut(i)
    }

    /// Run `id` now holds `nodes`.
    fn hold(&mut self, nodes: &[NodeId], id: u64) {
        for &n in nodes {
            if self.run.is_empty() {
                self.sparse.insert(n, id);
            } else if let Some(r) = self.slot(n) {
                *r = id;
            }
        }
    }

    /// Whether run `id` holds `node`.
    fn holds(&self, node: NodeId, id: u64) -> bool {
        if self.run.is_empty() {
            return self.sparse.get(&node).is_some_and(|&r| r == id);
        }
        let i = node.index().checked_sub(self.base);
        i.and_then(|i| self.run.get(i)).is_some_and(|&r| r == id)
    }

    /// Takes `node` from run `id`; false when the run does not hold it (any more).
    fn release(&mut self, node: NodeId, id: u64) -> bool {
        match self.slot(node) {
            Some(r) if *r == id => {
                *r = 0;
                true
            }
            _ => false,
        }
    }
}

/// Runs `slots` over `nodes` until every node is done; `split_level` is the verbosity of split notices.
pub async fn run(
    ctx: &Context,
    slots: &[Vec<Arc<dyn Task>>],
    nodes: Vec<NodeId>,
    parent_attempt: u32,
    split_level: u8,
    hooks: &mut dyn Hooks,
) {
    if nodes.is_empty() {
        return; // Kadeploy's manager is done at once without nodes
    }
    if slots.is_empty() {
        hooks.done(ctx, Batch::Ok(nodes));
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Batch)>();
    let holders = Holders::new(&nodes);
    let mut m = Manager {
        ctx,
        slots,
        parent_attempt,
        split_level,
        tx,
        queue: VecDeque::from([Message {
            slot: 0,
            alt: 0,
            retries: 0,
            batch: None,
            nodes,
        }]),
        runs: BTreeMap::new(),
        futures: FuturesUnordered::new(),
        next_run: 0,
        nsid: 0,
        holders,
    };
    loop {
        m.start_queued(hooks);
        if m.futures.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            Some((id, batch)) = rx.recv() => m.accept(id, batch),
            Some((id, timed_out)) = m.futures.next() => {
                while let Ok((rid, batch)) = rx.try_recv() {
                    m.accept(rid, batch);
                }
                m.finish(id, timed_out);
            }
        }
    }
}

impl<'a> Manager<'a> {
    /// Starts the next task of every queued message (or ends its nodes).
    fn start_queued(&mut self, hooks: &mut dyn Hooks) {
        let ctx = self.ctx;
        while let Some(msg) = self.queue.pop_front() {
            let Some((slot, alt, retries, nodes)) = next_task(self.slots, msg, ctx, hooks) else {
                continue;
            };
            let task = self.slots[slot][alt].clone();
            if task.spec().breakpoint {
                let at = task.breakpoint_reached(ctx, &nodes);
                hooks.done(ctx, Batch::Brk(nodes, at));
                continue;
            }
            self.next_run += 1;
            self.nsid += 1;
            let id = self.next_run;
            let span = trace::nodeset(ctx, self.nsid, &task.spec().name, retries, &nodes);
            let reporter = Reporter {
                run: id,
                tx: self.tx.clone(),
            };
            let future = run_task(
                ctx,
                task,
                nodes.clone(),
                retries,
                self.parent_attempt,
                reporter,
                id,
            );
            self.futures.push(Box::pin(future.instrument(span.clone())));
            self.holders.hold(&nodes, id);
            self.runs.insert(
                id,
                Run {
                    slot,
                    alt,
                    retries,
                    nsid: self.nsid,
                    pending: nodes,
                    span,
                    tally: Tally::default(),
                },
            );
        }
    }

    /// Takes a batch reported by run `id`: removes its nodes from the run and queues them.
    fn accept(&mut self, id: u64, batch: Batch) {
        let ctx = self.ctx;
        let Some(run) = self.runs.get_mut(&id) else {
            return;
        };
        // Keep only nodes still pending in this run, in their reported order.
        let holders = &mut self.holders;
        let batch = match batch {
            Batch::Ok(n) => Batch::Ok(n.into_iter().filter(|&x| holders.release(x, id)).collect()),
            Batch::Brk(n, at) => Batch::Brk(
                n.into_iter().filter(|&x| holders.release(x, id)).collect(),
                at,
            ),
            Batch::Ko(f) => Batch::Ko(
                f.into_iter()
                    .filter(|&(x, _)| holders.release(x, id))
                    .collect(),
            ),
        };
        let nodes = batch.nodes();
        if nodes.is_empty() {
            return;
        }
        run.tally.add(&batch);
        let rest: Vec<NodeId> = if nodes.len() == run.pending.len() {
            Vec::new() // the batch took every pending node
        } else {
            let holders = &self.holders;
            run.pending
                .iter()
                .copied()
                .filter(|&n| holders.holds(n, id))
                .collect()
        };
        if !rest.is_empty() {
            let (a, b) = (self.nsid + 1, self.nsid + 2);
            let level = self.split_level;
            ctx.output
                .push_with(level, || format!("Nodeset [{}] split into :", run.nsid));
            ctx.output
                .push_with(level, || format!("  Nodeset [{a}]: {}", ctx.fold(&nodes)));
            ctx.output
                .push_with(level, || format!("  Nodeset [{b}]: {}", ctx.fold(&rest)));
            trace::split(ctx, &run.span, &nodes, &rest, b);
            self.nsid += 2;
            run.nsid = b;
        }
        run.pending = rest;
        self.queue.push_back(Message {
            slot: run.slot,
            alt: run.alt,
            retries: run.retries,
            batch: Some(batch),
            nodes,
        });
    }

    /// Ends run `id`: the nodes it left without outcome fail (by timeout when `timed_out`).
    fn finish(&mut self, id: u64, timed_out: bool) {
        let ctx = self.ctx;
        let Some(mut run) = self.runs.remove(&id) else {
            return;
        };
        let task = &self.slots[run.slot][run.alt];
        if !run.pending.is_empty() {
            let failures = run
                .pending
                .iter()
                .map(|&n| {
                    let f = if timed_out {
                        task.timeout_failure(ctx, n)
                    } else {
                        task.missing_failure(ctx, n)
                    };
                    (n, f)
                })
                .collect::<Vec<_>>();
            if timed_out {
                ctx.output
                    .push(1, format!("Timeout in the {} step", task.spec().name));
            }
            let batch = Batch::Ko(failures);
            run.tally.add(&batch);
            self.queue.push_back(Message {
                slot: run.slot,
                alt: run.alt,
                retries: run.retries,
                batch: Some(batch),
                nodes: run.pending.clone(),
            });
        }
        trace::close(ctx, &run.span, &run.tally, Some(timed_out));
    }
}

/// Kadeploy's decision for a message: which task runs next on its nodes, or `None` when they are done.
fn next_task(
    slots: &[Vec<Arc<dyn Task>>],
    msg: Message,
    ctx: &Context,
    hooks: &mut dyn Hooks,
) -> Option<(usize, usize, u32, Vec<NodeId>)> {
    let Message {
        slot,
        alt,
        retries,
        batch,
        nodes,
    } = msg;
    match batch {
        None => Some((0, 0, 0, nodes)),
        Some(Batch::Brk(nodes, at)) => {
            hooks.done(ctx, Batch::Brk(nodes, at));
            None
        }
        Some(Batch::Ok(nodes)) => {
            if slot + 1 < slots.len() {
                Some((slot + 1, 0, 0, nodes))
            } else {
                hooks.done(ctx, Batch::Ok(nodes));
                None
            }
        }
        Some(Batch::Ko(failures)) => {
            let spec = slots[slot][alt].spec();
            if retries < spec.retries {
                hooks.retried(ctx, slot, &nodes, false);
                Some((slot, alt, retries + 1, nodes))
            } else if alt + 1 < slots[slot].len() {
                hooks.retried(ctx, slot, &nodes, true);
                Some((slot, alt + 1, 0, nodes))
            } else {
                hooks.done(ctx, Batch::Ko(failures));
                None
            }
        }
    }
}

/// Runs one task under its timeout; yields the run id and whether the timeout fired.
async fn run_task(
    ctx: &Context,
    task: Arc<dyn Task>,
    nodes: Vec<NodeId>,
    attempt: u32,
    parent_attempt: u32,
    reporter: Reporter,
    id: u64,
) -> (u64, bool) {
    let timeout = task.spec().timeout;
    let fut = task.run(ctx, nodes, attempt, parent_attempt, reporter);
    if timeout > 0.0 {
        match tokio::time::timeout(Duration::from_secs_f64(timeout), fut).await {
            Ok(()) => (id, false),
            Err(_) => (id, true),
        }
    } else {
        fut.await;
        (id, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u32]) -> Vec<NodeId> {
        v.iter().map(|&i| NodeId(i)).collect()
    }

    /// Dense (a table) and sparse (a tree) holders answer alike: a node is released once, only by the run
    /// holding it, and nodes the manager never had are held by nobody.
    #[test]
    fn holders_release_each_node_once_and_only_to_its_run() {
        for nodes in [ids(&[10, 11, 12]), ids(&[3, u32::MAX - 2, 7])] {
            let mut h = Holders::new(&nodes);
            assert_eq!(
                h.run.is_empty(),
                nodes[1].0 > 1000,
                "table or tree as the span asks"
            );
            h.hold(&nodes[..2], 1);
            h.hold(&nodes[2..], 2);
            assert!(h.holds(nodes[0], 1) && !h.holds(nodes[0], 2));
            assert!(!h.release(nodes[2], 1), "run 1 does not hold it");
            assert!(h.release(nodes[2], 2));
            assert!(!h.release(nodes[2], 2), "released once");
            assert!(!h.holds(NodeId(5), 1) && !h.release(NodeId(5), 1));
            h.hold(&nodes[..1], 3);
            assert!(!h.holds(nodes[0], 1) && h.holds(nodes[0], 3));
        }
    }
}

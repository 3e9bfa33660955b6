//! Kadeploy's task manager (`TaskManager#start`, spec §5.2), used at both levels: a workflow runs
//! macro-step instances, a macro-step instance runs micro-steps.
//!
//! Each slot holds alternative implementations in fallback order. Nodes advance in groups: a group that
//! ends OK moves to the next slot; a group that ends KO is retried while the task allows it, then handed
//! to the next alternative, then reported failed. A task reports its nodes in batches as they finish,
//! so a group splits when part of it is done; nodes a task leaves without outcome count as KO.

use super::context::Context;
use super::report::Failure;
use futures_util::stream::{FuturesUnordered, StreamExt};
use hal::NodeId;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

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

/// A group of nodes leaving a task.
#[derive(Clone, Debug)]
pub enum Batch {
    /// Nodes that succeeded.
    Ok(Vec<NodeId>),
    /// Nodes that failed, with why.
    Ko(Vec<(NodeId, Failure)>),
    /// Nodes stopped at a breakpoint, with where.
    Brk(Vec<NodeId>, String),
}

impl Batch {
    fn nodes(&self) -> Vec<NodeId> {
        match self {
            Batch::Ok(n) | Batch::Brk(n, _) => n.clone(),
            Batch::Ko(f) => f.iter().map(|(n, _)| *n).collect(),
        }
    }
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

struct Run {
    slot: usize,
    alt: usize,
    retries: u32,
    nsid: u64,
    pending: Vec<NodeId>,
}

type RunFuture<'a> = Pin<Box<dyn Future<Output = (u64, bool)> + Send + 'a>>;

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
    let mut queue = VecDeque::from([Message {
        slot: 0,
        alt: 0,
        retries: 0,
        batch: None,
        nodes,
    }]);
    let mut runs: BTreeMap<u64, Run> = BTreeMap::new();
    let mut futures: FuturesUnordered<RunFuture<'_>> = FuturesUnordered::new();
    let mut next_run = 0u64;
    let mut nsid = 0u64;

    loop {
        while let Some(msg) = queue.pop_front() {
            let Some((slot, alt, retries, nodes)) = next_task(slots, msg, ctx, hooks) else {
                continue;
            };
            let task = slots[slot][alt].clone();
            if task.spec().breakpoint {
                let at = task.breakpoint_reached(ctx, &nodes);
                hooks.done(ctx, Batch::Brk(nodes, at));
                continue;
            }
            next_run += 1;
            nsid += 1;
            let id = next_run;
            runs.insert(
                id,
                Run {
                    slot,
                    alt,
                    retries,
                    nsid,
                    pending: nodes.clone(),
                },
            );
            let reporter = Reporter {
                run: id,
                tx: tx.clone(),
            };
            futures.push(Box::pin(run_task(
                ctx,
                task,
                nodes,
                retries,
                parent_attempt,
                reporter,
                id,
            )));
        }
        if futures.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            Some((id, batch)) = rx.recv() => {
                accept(ctx, &mut runs, id, batch, &mut queue, &mut nsid, split_level);
            }
            Some((id, timed_out)) = futures.next() => {
                while let Ok((rid, batch)) = rx.try_recv() {
                    accept(ctx, &mut runs, rid, batch, &mut queue, &mut nsid, split_level);
                }
                if let Some(run) = runs.remove(&id) {
                    let task = &slots[run.slot][run.alt];
                    if !run.pending.is_empty() {
                        let failures = run
                            .pending
                            .iter()
                            .map(|&n| {
                                let f = if timed_out { task.timeout_failure(ctx, n) } else { task.missing_failure(ctx, n) };
                                (n, f)
                            })
                            .collect::<Vec<_>>();
                        if timed_out {
                            ctx.output.push(1, format!("Timeout in the {} step", task.spec().name));
                        }
                        let nodes = run.pending.clone();
                        queue.push_back(Message {
                            slot: run.slot,
                            alt: run.alt,
                            retries: run.retries,
                            batch: Some(Batch::Ko(failures)),
                            nodes,
                        });
                    }
                }
            }
        }
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

/// Takes a batch reported by run `id`: removes its nodes from the run and queues them.
fn accept(
    ctx: &Context,
    runs: &mut BTreeMap<u64, Run>,
    id: u64,
    batch: Batch,
    queue: &mut VecDeque<Message>,
    nsid: &mut u64,
    split_level: u8,
) {
    let Some(run) = runs.get_mut(&id) else { return };
    // Keep only nodes still pending in this run, in their reported order.
    let mut pending_mask: BTreeMap<NodeId, ()> = run.pending.iter().map(|&n| (n, ())).collect();
    let batch = match batch {
        Batch::Ok(n) => Batch::Ok(
            n.into_iter()
                .filter(|x| pending_mask.remove(x).is_some())
                .collect(),
        ),
        Batch::Brk(n, at) => Batch::Brk(
            n.into_iter()
                .filter(|x| pending_mask.remove(x).is_some())
                .collect(),
            at,
        ),
        Batch::Ko(f) => Batch::Ko(
            f.into_iter()
                .filter(|(x, _)| pending_mask.remove(x).is_some())
                .collect(),
        ),
    };
    let nodes = batch.nodes();
    if nodes.is_empty() {
        return;
    }
    let rest: Vec<NodeId> = run
        .pending
        .iter()
        .copied()
        .filter(|n| pending_mask.contains_key(n))
        .collect();
    if !rest.is_empty() {
        let (a, b) = (*nsid + 1, *nsid + 2);
        ctx.output
            .push(split_level, format!("Nodeset [{}] split into :", run.nsid));
        ctx.output.push(
            split_level,
            format!("  Nodeset [{a}]: {}", ctx.fold(&nodes)),
        );
        ctx.output
            .push(split_level, format!("  Nodeset [{b}]: {}", ctx.fold(&rest)));
        *nsid += 2;
        run.nsid = b;
    }
    run.pending = rest;
    queue.push_back(Message {
        slot: run.slot,
        alt: run.alt,
        retries: run.retries,
        batch: Some(batch),
        nodes,
    });
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

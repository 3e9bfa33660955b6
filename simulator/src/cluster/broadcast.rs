//! Broadcast on simulated nodes: the nodes running the deploy environment become the receivers of a
//! flow-level [`crate::bcast`] job (in the given chain order), the model's outcomes become per-node
//! outcomes, and the call returns at the model's last event.
//!
//! Deaths (`failures.die_during_broadcast`): a node dies `at_fraction` × its failure-free completion
//! time after the start, so the model first runs once without deaths to find that time. A dead node
//! stays down for good. Images of kind `fsa` go to a temporary file in RAM (no disk, no disk error);
//! the other kinds are decompressed and written to `target.device`.
//!
//! Hangs (`failures.hang` in step `broadcast`): the fault-tolerant chain, multicast and the swarm drop a
//! hung receiver after its stall detection (`fault_tolerance.detect_timeout`), as kaagent does; other
//! strategies wait forever.

use super::journal::NodeEvent;
use super::state::{Env, NodeState};
use super::{BroadcastRun, SimCluster, hang_forever, ssh_refused};
use crate::bcast::{self, FailureReason, Receiver, ReceiverOutcome};
use crate::model_input;
use crate::params::SimParams;
use async_trait::async_trait;
use hal::{
    Broadcast, ErrorKind, ImageKind, ImageSpec, NodeError, NodeId, Outcome, Outcomes, Strategy,
    WriteTarget,
};
use tracing::debug;

/// Compressed size and decompression ratio of `image` (the parameters' image when it has no size).
fn image_dims(image: &ImageSpec, params: &SimParams) -> (f64, f64) {
    if image.size == 0 {
        return (params.image.size, params.image.ratio);
    }
    let size = image.size as f64;
    match image.uncompressed_size {
        Some(u) if u > 0 => (size, u as f64 / size),
        _ => (size, params.image.ratio),
    }
}

/// Records on `node` that it received `image` (`bytes` once decompressed) and wrote it when `to_disk`.
fn received(
    node: &mut NodeState,
    image: &ImageSpec,
    target: &WriteTarget,
    to_disk: bool,
    bytes: f64,
) {
    let r = &mut node.record;
    r.image_bytes = Some(bytes);
    if to_disk {
        r.image_written = true;
        r.disk_touched = true;
        r.image_device = Some(target.device.clone());
    }
    node.journal.push(|| NodeEvent::Image {
        image: image.clone(),
        target: target.clone(),
        to_disk,
    });
}

/// The record of a broadcast started at `t0` whose receivers `members` had the outcomes `model`.
fn run_of(
    strategy: Strategy,
    t0: f64,
    end: f64,
    members: &[(usize, usize)],
    model: &[ReceiverOutcome],
) -> BroadcastRun {
    BroadcastRun {
        strategy,
        start: t0,
        end,
        receivers: members
            .iter()
            .enumerate()
            .map(|(k, &(_, i))| (i as u32, (t0 + time_of(model.get(k))) as f32))
            .collect(),
    }
}

/// The time of an outcome of the model.
fn time_of(outcome: Option<&ReceiverOutcome>) -> f64 {
    match outcome {
        Some(ReceiverOutcome::Done { at } | ReceiverOutcome::Failed { at, .. }) => *at,
        None => 0.0,
    }
}

impl SimCluster {
    /// The model's receiver for the node at `index`.
    fn receiver(&self, index: usize, to_disk: bool) -> Receiver {
        let rate = self
            .disk_rates
            .get(index)
            .copied()
            .unwrap_or(self.params.disk.write_rate);
        Receiver {
            write_error: to_disk && self.plan.node(index).disk_write_error,
            ..model_input::receiver(&self.params, index, rate, to_disk)
        }
    }

    /// The per-node outcome of one receiver's model outcome (`members` maps receivers to nodes).
    fn receiver_outcome(
        &self,
        outcome: Option<&ReceiverOutcome>,
        members: &[(usize, usize)],
        device: &str,
    ) -> Outcome {
        match outcome {
            Some(ReceiverOutcome::Done { .. }) => Ok(()),
            Some(ReceiverOutcome::Failed {
                reason: FailureReason::Died,
                ..
            }) => Err(NodeError::new(
                ErrorKind::Unreachable,
                "Node died during the broadcast",
            )),
            Some(ReceiverOutcome::Failed {
                reason: FailureReason::CutOff { by },
                ..
            }) => {
                let upstream = members
                    .get(*by)
                    .map_or_else(|| format!("#{by}"), |&(_, i)| self.name(i));
                let message =
                    format!("Connection lost during the broadcast (upstream node {upstream} died)");
                Err(NodeError::new(ErrorKind::Transfer, message))
            }
            Some(ReceiverOutcome::Failed {
                reason: FailureReason::WriteError,
                ..
            }) => Err(NodeError::new(
                ErrorKind::Disk,
                format!("write error on {device}: Input/output error"),
            )),
            None => Err(NodeError::new(
                ErrorKind::Transfer,
                "The broadcast model gave no outcome for the node",
            )),
        }
    }
}

/// Who takes part in a broadcast, and what the others get at once.
struct Members {
    /// Per position in the call's `nodes`: the outcome decided before the broadcast (unknown node, not in
    /// the deployment environment), or `None` for a member.
    results: Vec<Option<Outcome>>,
    /// The members: (position in `nodes`, table index), in chain order.
    members: Vec<(usize, usize)>,
    /// A member hangs in the broadcast.
    hung: bool,
}

impl SimCluster {
    /// Sorts `nodes` into the broadcast's members (nodes running the deployment environment at `t0`) and
    /// the others, with their errors.
    fn members(&self, nodes: &[NodeId], t0: f64) -> Members {
        let mut results: Vec<Option<Outcome>> = vec![None; nodes.len()];
        let mut members: Vec<(usize, usize)> = Vec::new();
        let mut hung = false;
        let st = self.lock();
        for (pos, &node) in nodes.iter().enumerate() {
            let i = match self.index(node) {
                Ok(i) => i,
                Err(e) => {
                    results[pos] = Some(Err(e));
                    continue;
                }
            };
            match st[i].env_at(t0) {
                Some(Env::Deploy) => {
                    members.push((pos, i));
                    hung |= self.plan.node(i).hang_step.as_deref() == Some("broadcast");
                }
                Some(env) => {
                    let message = format!(
                        "{} runs the {} environment, not the deployment one",
                        self.name(i),
                        env.name()
                    );
                    results[pos] = Some(Err(NodeError::new(ErrorKind::Unreachable, message)));
                }
                None => results[pos] = Some(Err(ssh_refused(&self.name(i)))),
            }
        }
        Members {
            results,
            members,
            hung,
        }
    }
}

#[async_trait]
impl Broadcast for SimCluster {
    async fn broadcast(
        &self,
        image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        nodes: &[NodeId],
    ) -> Outcomes {
        let chunk = self.params.network.chunk;
        self.broadcast_in(image, target, strategy, chunk, nodes)
            .await
    }

    async fn broadcast_chunked(
        &self,
        image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        chunk: u32,
        nodes: &[NodeId],
    ) -> Outcomes {
        self.broadcast_in(image, target, strategy, f64::from(chunk.max(1)), nodes)
            .await
    }
}

impl SimCluster {
    /// A broadcast of `strategy` in chunks of `chunk` bytes.
    async fn broadcast_in(
        &self,
        image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        chunk: f64,
        nodes: &[NodeId],
    ) -> Outcomes {
        let t0 = self.now();
        let to_disk = image.kind != ImageKind::Fsa;
        let (size, ratio) = image_dims(image, &self.params);
        let Members {
            mut results,
            members,
            hung,
        } = self.members(nodes, t0);
        // A hung receiver stalls the pipeline: the fault-tolerant chain drops it after its stall
        // detection, like a receiver dead from the start; the other strategies wait forever.
        let fault_tolerant = matches!(
            strategy,
            Strategy::FaultTolerantChain | Strategy::Multicast | Strategy::Swarm
        );
        if hung && !fault_tolerant {
            debug!(%strategy, nodes = nodes.len(), "simulated broadcast hangs");
            hang_forever().await;
        }
        let ft = &self.params.fault_tolerance;
        let receivers = members
            .iter()
            .map(|&(_, i)| self.receiver(i, to_disk))
            .collect();
        let mut job = model_input::job(&self.params, self.seed, strategy, size, ratio, receivers);
        job.chunk = model_input::fill_chunk(&self.params, self.nodes.len(), strategy, chunk);
        let topo = model_input::topology_of(&self.params, self.nodes.len());
        let stalled: Vec<bool> = members
            .iter()
            .map(|&(_, i)| {
                fault_tolerant && self.plan.node(i).hang_step.as_deref() == Some("broadcast")
            })
            .collect();
        for (k, _) in stalled.iter().enumerate().filter(|(_, s)| **s) {
            job.receivers[k].dies_at = Some(0.0);
        }
        let dying: Vec<(usize, f64)> = members
            .iter()
            .enumerate()
            .filter(|(k, _)| !stalled[*k])
            .filter_map(|(k, &(_, i))| self.plan.node(i).die_at_fraction.map(|f| (k, f)))
            .collect();
        if !dying.is_empty() {
            let free = bcast::simulate(&job, &topo);
            for &(k, fraction) in &dying {
                job.receivers[k].dies_at = Some(fraction * time_of(free.get(k)));
            }
        }
        let model = if members.is_empty() {
            Vec::new()
        } else {
            bcast::simulate(&job, &topo)
        };
        // The deployer's SSH commands around the broadcast (`ops.broadcast_commands`): the first
        // before the stream starts, the others after it.
        let commands = self.params.ops.broadcast_commands;
        let command = self.ssh_command_cost();
        let start = t0 + command * f64::from(commands.min(1));
        let streamed = start
            + (0..members.len())
                .map(|k| time_of(model.get(k)))
                .fold(0.0, f64::max);
        let end = streamed + command * f64::from(commands.saturating_sub(1));
        {
            // Deaths are visible to every other call from the instant they happen.
            let mut st = self.lock();
            for &(k, _) in &dying {
                let (_, i) = members[k];
                st[i].dead_at = job.receivers[k].dies_at.map(|d| start + d);
            }
        }
        self.record_run(run_of(strategy, start, streamed, &members, &model));
        self.sleep_until(end).await;
        let mut st = self.lock();
        for (k, &(pos, i)) in members.iter().enumerate() {
            let outcome = if stalled[k] {
                Err(NodeError::new(
                    ErrorKind::Timeout,
                    format!(
                        "No progress for {} s: the node was dropped from the broadcast",
                        ft.detect_timeout
                    ),
                ))
            } else {
                self.receiver_outcome(model.get(k), &members, &target.device)
            };
            if outcome.is_ok() {
                received(&mut st[i], image, target, to_disk, size * ratio);
            }
            results[pos] = Some(outcome);
        }
        drop(st);
        let outcomes = Outcomes(
            nodes
                .iter()
                .zip(results)
                .map(|(&node, r)| {
                    (
                        node,
                        r.unwrap_or_else(|| Err(NodeError::new(ErrorKind::Transfer, "no outcome"))),
                    )
                })
                .collect(),
        );
        debug!(%strategy, nodes = nodes.len(), failed = outcomes.failures().len(), seconds = end - t0, "simulated broadcast");
        outcomes
    }
}

//! Node operations on simulated nodes: each operation needs the node up with sshd (except `dummy`,
//! which like Kadeploy's touches no node), takes a modelled time per node, can hit injected disk errors
//! or hang (failing alone after `ops.command_timeout`, or holding the whole call when it is `null`), and
//! records what it did so that later boots and checks see a consistent node.
//!
//! Costs (seconds): `ops.ssh_latency` plus partitioning `ops.partition`, bootloader `ops.bootloader`,
//! other scripts and archives `ops.postinstall`, format `ops.partition_size / ops.mkfs_rate`, swap
//! `ops.swap`, mount/umount `ops.mount`, sync `ops.sync`, file `size / min(bandwidth, server_bandwidth)`,
//! image write `decompressed size / min(node disk rate, disk.decompress_rate)`; the rest nothing more.
//! On a shared host the connection's `ops.cpu` share and the work's `ops.work_cpu` share (else `cpu`)
//! stretch with the nodes per core.
//! Dummy takes exactly `ops.dummy`. Effects apply when the node finishes, if it is still up then.

use super::journal::NodeEvent;
use super::state::{BootKind, Env, NodeState};
use super::{SimCluster, connection_lost, hang_forever, ssh_refused};
use async_trait::async_trait;
use hal::{ErrorKind, NodeError, NodeId, NodeOps, Operation, Outcome, Outcomes};
use tracing::debug;

/// The device an operation writes, when it is one of those a disk error breaks.
fn written_device(op: &Operation) -> Option<&str> {
    match op {
        Operation::RunScript { purpose, env, .. } if purpose == "partitioning" => Some(
            env.iter()
                .find(|(k, _)| k == "KADEPLOY_BLOCK_DEVICE")
                .map_or("the block device", |(_, v)| v.as_str()),
        ),
        Operation::Format { device, .. } | Operation::MakeSwap { device } => Some(device),
        Operation::WriteImage { target, .. } => Some(&target.device),
        _ => None,
    }
}

impl SimCluster {
    /// Seconds `op` takes on the node at `index`.
    fn op_cost(&self, op: &Operation, s: &NodeState, index: usize) -> f64 {
        let o = &self.params.ops;
        let net = &self.params.network;
        let work = match op {
            Operation::Dummy => return o.dummy,
            Operation::RunScript { purpose, .. } => match purpose.as_str() {
                "partitioning" => o.partition,
                "bootloader" => o.bootloader,
                _ => o.postinstall,
            },
            Operation::Format { .. } => o.partition_size / o.mkfs_rate,
            Operation::MakeSwap { .. } => o.swap,
            Operation::Mount { .. } | Operation::Umount { .. } => o.mount,
            Operation::SendFile { size, .. } => {
                *size as f64 / net.bandwidth.min(net.server_bandwidth)
            }
            Operation::InstallArchive { .. } => o.postinstall,
            Operation::WriteImage { .. } => {
                let image = &self.params.image;
                let bytes = s.record.image_bytes.unwrap_or(image.size * image.ratio);
                let rate = self
                    .disk_rates
                    .get(index)
                    .copied()
                    .unwrap_or(self.params.disk.write_rate);
                bytes / rate.min(self.params.disk.decompress_rate)
            }
            Operation::Sync => o.sync,
            Operation::Kexec { .. } => o.kexec,
            _ => 0.0,
        };
        let stretch = self.stretch();
        let stretched = |t: f64, share: f64| t * (1.0 - share) + t * share * stretch;
        match o.work_cpu {
            Some(share) => stretched(o.ssh_latency, o.cpu) + stretched(work, share),
            None => stretched(o.ssh_latency + work, o.cpu),
        }
    }

    /// Seconds of one bare SSH command (a connection running nothing long) on a node.
    pub(super) fn ssh_command_cost(&self) -> f64 {
        let o = &self.params.ops;
        o.ssh_latency * (1.0 - o.cpu) + o.ssh_latency * o.cpu * self.stretch()
    }

    /// Applies the effect of `op`, finished at `done` on the node at `index`, and gives its outcome.
    fn op_effect(&self, op: &Operation, s: &mut NodeState, index: usize, done: f64) -> Outcome {
        if self.plan.node(index).disk_write_error
            && let Some(device) = written_device(op)
        {
            let message = format!(
                "{}: write error on {device}: Input/output error",
                self.name(index)
            );
            return Err(NodeError::new(ErrorKind::Disk, message));
        }
        let env = s.env;
        let r = &mut s.record;
        match op {
            Operation::SendKey { .. } => r.keys_installed = true,
            Operation::RunScript { purpose, .. } => match purpose.as_str() {
                "partitioning" => {
                    r.partitioned = true;
                    r.disk_touched = true;
                    r.image_written = false;
                }
                "bootloader" => r.bootloader = true,
                _ => r.scripts += 1,
            },
            Operation::Format { device, .. } => {
                r.formats += 1;
                r.disk_touched = true;
                if r.image_device.as_deref() == Some(device.as_str()) {
                    r.image_written = false;
                }
            }
            Operation::MakeSwap { .. } => r.swap = true,
            Operation::Mount { .. } => r.mounted = true,
            Operation::Umount { .. } => r.mounted = false,
            Operation::SendFile { .. } => r.files += 1,
            Operation::InstallArchive { .. } => r.scripts += 1,
            Operation::WriteImage { target, .. } => {
                r.image_written = true;
                r.disk_touched = true;
                r.image_device = Some(target.device.clone());
            }
            Operation::CheckKernelFiles { dir, kernel, .. } if !r.image_written => {
                let message =
                    format!("Environment kernel file {kernel} not found in tarball ({dir})");
                return Err(NodeError::new(ErrorKind::CommandFailed, message));
            }
            Operation::Kexec { kernel, .. } => {
                // From the production system a kexec enters the deploy kernel, from elsewhere the image.
                let target = match env {
                    Env::Production => Env::Deploy,
                    _ if r.image_written => Env::Deployed,
                    _ => {
                        let message =
                            format!("kexec: cannot open {kernel}: No such file or directory");
                        return Err(NodeError::new(ErrorKind::CommandFailed, message));
                    }
                };
                s.boot(done, BootKind::Kexec(target), &self.boot_ctx(index));
            }
            Operation::RebootFromDeployEnv => s.boot(done, BootKind::Soft, &self.boot_ctx(index)),
            Operation::CheckRootDevice { device } => {
                let ok = env == Env::Production
                    || (env == Env::Deployed && r.image_device.as_deref() == Some(device.as_str()));
                if !ok {
                    return Err(NodeError::new(
                        ErrorKind::CommandFailed,
                        "Bad root partition",
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[async_trait]
impl NodeOps for SimCluster {
    async fn run(&self, op: &Operation, nodes: &[NodeId]) -> Outcomes {
        let t0 = self.now();
        let needs_ssh = !matches!(op, Operation::Dummy);
        let mut end = t0;
        let mut hung = false;
        let command_timeout = self.params.ops.command_timeout;
        let planned: Vec<Result<(usize, u64, f64), NodeError>> = {
            let st = self.lock();
            nodes
                .iter()
                .map(|&node| {
                    let i = self.index(node)?;
                    let s = &st[i];
                    if needs_ssh && s.env_at(t0).is_none() {
                        return Err(ssh_refused(&self.nodes[i].name));
                    }
                    if self.plan.node(i).hang_step.as_deref() == Some(op.name()) {
                        // The command never ends: the backend's command timeout fails the node alone.
                        let Some(limit) = command_timeout else {
                            hung = true;
                            return Ok((i, s.boots, t0));
                        };
                        end = end.max(t0 + limit);
                        return Err(command_timed_out(limit));
                    }
                    let done = t0 + self.op_cost(op, s, i);
                    end = end.max(done);
                    Ok((i, s.boots, done))
                })
                .collect()
        };
        if hung {
            debug!(
                op = op.name(),
                nodes = nodes.len(),
                "simulated operation hangs"
            );
            hang_forever().await;
        }
        self.sleep_until(end).await;
        let mut st = self.lock();
        let outcomes = Outcomes(
            nodes
                .iter()
                .zip(planned)
                .map(|(&node, plan)| {
                    let outcome = plan.and_then(|(i, boots, done)| {
                        let s = &mut st[i];
                        if needs_ssh && (s.boots != boots || s.env_at(done).is_none()) {
                            return Err(connection_lost(&self.nodes[i].name));
                        }
                        let outcome = self.op_effect(op, s, i, done);
                        if outcome.is_ok() && needs_ssh {
                            s.journal.push(|| NodeEvent::Operation(op.clone()));
                        }
                        outcome
                    });
                    (node, outcome)
                })
                .collect(),
        );
        drop(st);
        debug!(
            op = op.name(),
            nodes = nodes.len(),
            failed = outcomes.failures().len(),
            seconds = end - t0,
            "simulated operation"
        );
        outcomes
    }
}

/// What a node hung in a command reports once the backend's command timeout has passed.
fn command_timed_out(limit: f64) -> NodeError {
    NodeError::new(
        ErrorKind::Timeout,
        format!("command timed out after {limit} s"),
    )
}

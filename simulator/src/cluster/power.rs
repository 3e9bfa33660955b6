//! Power control of simulated nodes: a seeded latency per command, commands that fail at the levels the
//! failure plan names, soft commands (ssh) that need a running system, and the boots they start.
//!
//! A command is accepted on a node at the call's start plus that node's latency; the call returns after
//! the slowest node. Accepted reboots and power-ons start the node's boot at its acceptance instant.

use super::state::{BootKind, NodeState};
use super::{SimCluster, ssh_refused};
use crate::rng::Rng;
use async_trait::async_trait;
use hal::{
    ErrorKind, NodeError, NodeId, Outcome, Outcomes, Power, PowerAction, PowerLevel, PowerState,
};
use tracing::debug;

/// Per node: its table index and the instant its command is accepted, or why it has none.
type Accepted = Result<(usize, f64), NodeError>;

impl SimCluster {
    /// Draws each node's command latency (counting the command) and returns, per node, its table index
    /// and acceptance time, with the time the last command is accepted.
    fn accept_commands(&self, nodes: &[NodeId], t0: f64) -> (Vec<Accepted>, f64) {
        let latency = &self.params.power.command_latency;
        let mut end = t0;
        let mut st = self.lock();
        let accepted = nodes
            .iter()
            .map(|&node| {
                let i = self.index(node)?;
                let s = &mut st[i];
                s.power_cmds += 1;
                let mut rng = Rng::for_event(self.seed, "power", i as u64, s.power_cmds);
                let at = t0 + latency.sample(&mut rng);
                end = end.max(at);
                Ok((i, at))
            })
            .collect();
        (accepted, end)
    }

    /// Applies `action` at `level`, accepted at `at`, to the node at `index`.
    fn apply_power(
        &self,
        s: &mut NodeState,
        index: usize,
        action: PowerAction,
        level: PowerLevel,
        at: f64,
    ) -> Outcome {
        if self.plan.node(index).power_fails.contains(&level) {
            let message = format!(
                "{level}_{} command failed on {}: exit status 1",
                action.as_str(),
                self.name(index)
            );
            return Err(NodeError::new(ErrorKind::CommandFailed, message));
        }
        if level == PowerLevel::Soft && s.env_at(at).is_none() {
            // The soft commands run over ssh: a node that is not running refuses them.
            return Err(NodeError {
                kind: ErrorKind::CommandFailed,
                ..ssh_refused(&self.name(index))
            });
        }
        let kind = if level == PowerLevel::Soft {
            BootKind::Soft
        } else {
            BootKind::Cold
        };
        match action {
            PowerAction::Reboot => s.boot(at, kind, &self.boot_ctx(index)),
            PowerAction::On if !s.powered => s.boot(at, BootKind::Cold, &self.boot_ctx(index)),
            PowerAction::On => {}
            PowerAction::Off => s.power_off(),
        }
        Ok(())
    }
}

#[async_trait]
impl Power for SimCluster {
    async fn power(&self, action: PowerAction, level: PowerLevel, nodes: &[NodeId]) -> Outcomes {
        if action == PowerAction::On && level == PowerLevel::Soft {
            // Nothing can switch a node on over ssh.
            let error = NodeError::new(
                ErrorKind::NotSupported,
                "soft_power_on command is not provided",
            );
            return Outcomes::all(nodes, Err(error));
        }
        let t0 = self.now();
        let (accepted, end) = self.accept_commands(nodes, t0);
        self.sleep_until(end).await;
        let mut st = self.lock();
        let outcomes = Outcomes(
            nodes
                .iter()
                .zip(accepted)
                .map(|(&node, acc)| {
                    let outcome =
                        acc.and_then(|(i, at)| self.apply_power(&mut st[i], i, action, level, at));
                    (node, outcome)
                })
                .collect(),
        );
        drop(st);
        debug!(
            action = action.as_str(),
            level = level.as_str(),
            nodes = nodes.len(),
            failed = outcomes.failures().len(),
            seconds = end - t0,
            "simulated power command"
        );
        outcomes
    }

    async fn status(&self, nodes: &[NodeId]) -> Outcomes<PowerState> {
        let t0 = self.now();
        let (accepted, end) = self.accept_commands(nodes, t0);
        self.sleep_until(end).await;
        let st = self.lock();
        Outcomes(
            nodes
                .iter()
                .zip(accepted)
                .map(|(&node, acc)| {
                    let state = acc.map(|(i, _)| {
                        if st[i].powered {
                            PowerState::On
                        } else {
                            PowerState::Off
                        }
                    });
                    (node, state)
                })
                .collect(),
        )
    }
}

//! [`SshPower`]: the `soft` power level over SSH (a detached `reboot` or `poweroff` on the node).

use super::client::{Input, SshClient};
use super::config::{SshConfig, SshError};
use super::nodeops::{DEFAULT_CONCURRENCY, SshNodeOps, not_provided};
use super::script::detached;
use crate::node::{NodeId, NodeInfo};
use crate::outcome::{Outcomes, for_each_node};
use crate::power::{Power, PowerAction, PowerLevel, PowerState};
use async_trait::async_trait;
use std::sync::Arc;

/// Soft reboot and power-off over SSH; every other level, power-on and status are not supported.
#[derive(Clone)]
pub struct SshPower {
    client: Arc<SshClient>,
    concurrency: usize,
}

impl SshPower {
    /// A backend for `nodes` (`NodeId(i)` is `nodes[i]`), loading the key of `config`.
    pub fn new(nodes: Vec<NodeInfo>, config: SshConfig) -> Result<SshPower, SshError> {
        Ok(SshPower {
            client: Arc::new(SshClient::new(nodes, config)?),
            concurrency: DEFAULT_CONCURRENCY,
        })
    }

    /// The same connections, node table and concurrency as `ops`.
    pub fn from_node_ops(ops: &SshNodeOps) -> SshPower {
        SshPower {
            client: ops.client.clone(),
            concurrency: ops.concurrency,
        }
    }

    /// The command of `action` at `level`, if this backend has one.
    fn command(action: PowerAction, level: PowerLevel) -> Option<String> {
        match (level, action) {
            (PowerLevel::Soft, PowerAction::Reboot) => Some(detached("reboot")),
            (PowerLevel::Soft, PowerAction::Off) => Some(detached("poweroff")),
            _ => None,
        }
    }
}

#[async_trait]
impl Power for SshPower {
    async fn power(&self, action: PowerAction, level: PowerLevel, nodes: &[NodeId]) -> Outcomes {
        let Some(command) = Self::command(action, level) else {
            let what = format!("{}_{}", level.as_str(), action.as_str());
            return Outcomes::all(nodes, Err(not_provided(&what)));
        };
        let command: Arc<str> = command.into();
        for_each_node(nodes, self.concurrency, |node| {
            let client = self.client.clone();
            let command = command.clone();
            async move { client.check(node, &command, Input::Empty).await }
        })
        .await
    }

    async fn status(&self, nodes: &[NodeId]) -> Outcomes<PowerState> {
        Outcomes::all(nodes, Err(not_provided("power_status")))
    }
}

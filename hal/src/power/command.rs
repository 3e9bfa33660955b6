//! Power through Kadeploy-style command templates (`remoteops`), run per node with a timeout.
//!
//! Each action and level has a shell command template (the cluster's `remoteops/reboot`, `power_on`,
//! `power_off`, `power_status`), which a node may override (Kadeploy's `command.conf`). `HOSTNAME_FQDN`
//! and `HOSTNAME_SHORT` are replaced by the node's names, the result runs through `sh -c`: exit 0 means
//! the command was accepted, otherwise the node fails with the command's stderr. Grouped commands
//! (`GROUP_FQDN`, `GROUP_SHORT`) are in [`groups`].

mod groups;

use crate::node::{NodeId, NodeInfo};
use crate::outcome::{ErrorKind, NodeError, Outcome, Outcomes, for_each_node};
use crate::power::{Power, PowerAction, PowerLevel, PowerState};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::process::Command;

/// The keys of Kadeploy's `command.conf` (per-node overrides).
pub const COMMAND_KEYS: [&str; 11] = [
    "reboot_soft",
    "reboot_hard",
    "reboot_very_hard",
    "power_on_soft",
    "power_on_hard",
    "power_on_very_hard",
    "power_off_soft",
    "power_off_hard",
    "power_off_very_hard",
    "power_status",
    "console",
];

/// Why a command table was refused.
#[derive(Debug, thiserror::Error)]
pub enum PowerConfigError {
    /// A key that `command.conf` does not allow.
    #[error("unknown command key {key:?} for node {node}")]
    UnknownKey {
        /// The node of the entry.
        node: String,
        /// The key.
        key: String,
    },
    /// An override names a node that is not in the node table.
    #[error("command override for unknown node {0}")]
    UnknownNode(String),
}

/// Command templates by Kadeploy key (`reboot_soft`, `power_off_hard`, `power_status`, `console`...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PowerCommands {
    commands: BTreeMap<String, String>,
}

impl PowerCommands {
    /// An empty table (every action unsupported).
    pub fn new() -> Self {
        Self::default()
    }

    /// The Kadeploy key of `action` at `level` (`reboot_soft`, `power_on_very_hard`).
    pub fn key(action: PowerAction, level: PowerLevel) -> String {
        format!("{}_{}", action.as_str(), level.as_str())
    }

    /// Sets the template of `action` at `level`.
    pub fn with(
        mut self,
        action: PowerAction,
        level: PowerLevel,
        template: impl Into<String>,
    ) -> Self {
        self.commands
            .insert(Self::key(action, level), template.into());
        self
    }

    /// Sets the `power_status` template.
    pub fn with_status(mut self, template: impl Into<String>) -> Self {
        self.commands.insert("power_status".into(), template.into());
        self
    }

    /// One node's entry of `command.conf` (key → template); `node` names it in errors.
    pub fn from_command_conf(
        node: &str,
        entries: BTreeMap<String, String>,
    ) -> Result<Self, PowerConfigError> {
        if let Some(key) = entries.keys().find(|k| !COMMAND_KEYS.contains(&k.as_str())) {
            return Err(PowerConfigError::UnknownKey {
                node: node.to_string(),
                key: key.clone(),
            });
        }
        Ok(PowerCommands { commands: entries })
    }

    /// The template of `action` at `level`, if any.
    pub fn get(&self, action: PowerAction, level: PowerLevel) -> Option<&str> {
        self.commands
            .get(&Self::key(action, level))
            .map(String::as_str)
    }

    /// The template of a raw key (`power_status`, `console`), if any.
    pub fn get_key(&self, key: &str) -> Option<&str> {
        self.commands.get(key).map(String::as_str)
    }
}

/// Replaces `HOSTNAME_FQDN` and `HOSTNAME_SHORT` in `template` with the names of `node`.
pub fn substitute(template: &str, node: &NodeInfo) -> String {
    template
        .replace("HOSTNAME_FQDN", &node.name)
        .replace("HOSTNAME_SHORT", node.short_name())
}

/// Kills the process group `pgid` (a template's shell and everything it started).
pub(crate) fn kill_process_group(pgid: u32) {
    // The shell's `kill` builtin: no dependency on procps.
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -KILL -{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(e) = status {
        tracing::warn!("cannot kill process group {pgid}: {e}");
    }
}

/// Runs `command` through `sh -c` in its own process group, killed after `timeout`; returns stdout.
async fn run_shell(command: &str, timeout: Duration) -> Outcome<String> {
    let child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| NodeError::new(ErrorKind::CommandFailed, format!("cannot run sh: {e}")))?;
    let pid = child.id();
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() {
                return Ok(stdout);
            }
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            let message = if !stderr.is_empty() {
                stderr
            } else if !stdout.is_empty() {
                stdout
            } else {
                format!("command {command:?} failed ({})", out.status)
            };
            Err(NodeError::new(ErrorKind::CommandFailed, message))
        }
        Ok(Err(e)) => Err(NodeError::new(
            ErrorKind::CommandFailed,
            format!("waiting for {command:?}: {e}"),
        )),
        Err(_) => {
            if let Some(pid) = pid {
                kill_process_group(pid);
            }
            Err(NodeError::new(
                ErrorKind::Timeout,
                format!("command {command:?} timed out after {timeout:?}"),
            ))
        }
    }
}

/// Parses a power status output: the last word `on` or `off` (`Chassis Power is on`).
pub fn parse_power_state(output: &str) -> Option<PowerState> {
    output
        .split(|c: char| !c.is_ascii_alphanumeric())
        .rev()
        .find_map(|w| match w.to_ascii_lowercase().as_str() {
            "on" => Some(PowerState::On),
            "off" => Some(PowerState::Off),
            _ => None,
        })
}

/// Power control by command templates, with per-node overrides.
#[derive(Clone)]
pub struct CommandPower {
    inner: Arc<Inner>,
}

struct Inner {
    nodes: Vec<NodeInfo>,
    cluster: PowerCommands,
    overrides: BTreeMap<String, PowerCommands>,
    groups: BTreeMap<String, Vec<Vec<String>>>,
    timeout: Duration,
    concurrency: usize,
}

impl CommandPower {
    /// Commands of `cluster` for `nodes` (`NodeId(i)` is `nodes[i]`), each run with `timeout`,
    /// at most 64 at a time.
    pub fn new(nodes: Vec<NodeInfo>, cluster: PowerCommands, timeout: Duration) -> Self {
        CommandPower {
            inner: Arc::new(Inner {
                nodes,
                cluster,
                overrides: BTreeMap::new(),
                groups: BTreeMap::new(),
                timeout,
                concurrency: 64,
            }),
        }
    }

    /// Adds per-node overrides (node name → its templates): a node's own template of a key wins over
    /// the cluster's. Every node must be in the table.
    pub fn with_overrides(
        self,
        overrides: BTreeMap<String, PowerCommands>,
    ) -> Result<Self, PowerConfigError> {
        let mut inner = self.into_inner();
        if let Some(name) = overrides
            .keys()
            .find(|n| !inner.nodes.iter().any(|i| &i.name == *n))
        {
            return Err(PowerConfigError::UnknownNode(name.clone()));
        }
        inner.overrides = overrides;
        Ok(CommandPower {
            inner: Arc::new(inner),
        })
    }

    /// Adds Kadeploy's node groups: by command key (`reboot_hard`), the groups of host names whose
    /// members share one command (see [`groups`]).
    pub fn with_groups(self, groups: BTreeMap<String, Vec<Vec<String>>>) -> Self {
        let mut inner = self.into_inner();
        inner.groups = groups;
        CommandPower {
            inner: Arc::new(inner),
        }
    }

    /// Runs at most `limit` commands at a time.
    pub fn with_concurrency(self, limit: usize) -> Self {
        let mut inner = self.into_inner();
        inner.concurrency = limit.max(1);
        CommandPower {
            inner: Arc::new(inner),
        }
    }

    fn into_inner(self) -> Inner {
        Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            nodes: shared.nodes.clone(),
            cluster: shared.cluster.clone(),
            overrides: shared.overrides.clone(),
            groups: shared.groups.clone(),
            timeout: shared.timeout,
            concurrency: shared.concurrency,
        })
    }
}

impl Inner {
    /// The substituted command of `key` for `node`, or why there is none.
    fn command(&self, node: NodeId, key: &str, what: &str) -> Outcome<String> {
        let info = crate::outcome::lookup(&self.nodes, node)?;
        let template = self
            .overrides
            .get(&info.name)
            .and_then(|o| o.get_key(key))
            .or_else(|| self.cluster.get_key(key))
            .ok_or_else(|| {
                NodeError::new(
                    ErrorKind::NotSupported,
                    format!("{what} command is not provided"),
                )
            })?;
        Ok(substitute(template, info))
    }

    /// Runs the command of `key` on every node; `parse` turns its stdout into the result.
    async fn run_all<T, F>(
        self: &Arc<Self>,
        nodes: &[NodeId],
        key: String,
        what: String,
        parse: F,
    ) -> Outcomes<T>
    where
        T: Send + 'static,
        F: Fn(String) -> Outcome<T> + Send + Sync + 'static,
    {
        let parse = Arc::new(parse);
        for_each_node(nodes, self.concurrency, |node| {
            let inner = self.clone();
            let key = key.clone();
            let what = what.clone();
            let parse = parse.clone();
            async move {
                let command = inner.command(node, &key, &what)?;
                tracing::debug!(%node, command, "power command");
                parse(run_shell(&command, inner.timeout).await?)
            }
        })
        .await
    }
}

#[async_trait]
impl Power for CommandPower {
    async fn power(&self, action: PowerAction, level: PowerLevel, nodes: &[NodeId]) -> Outcomes {
        let what = format!("{}_{}", level.as_str(), action.as_str());
        let key = PowerCommands::key(action, level);
        if let Some(groups) = self.inner.groups.get(&key) {
            return groups::run_grouped(&self.inner, groups, nodes, &key, &what).await;
        }
        self.inner.run_all(nodes, key, what, |_| Ok(())).await
    }

    async fn status(&self, nodes: &[NodeId]) -> Outcomes<PowerState> {
        self.inner
            .run_all(nodes, "power_status".into(), "power_status".into(), |out| {
                parse_power_state(&out).ok_or_else(|| {
                    NodeError::new(
                        ErrorKind::CommandFailed,
                        format!("cannot read a power state from {out:?}"),
                    )
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_power_states() {
        assert_eq!(
            parse_power_state("Chassis Power is on\n"),
            Some(PowerState::On)
        );
        assert_eq!(parse_power_state("OFF"), Some(PowerState::Off));
        assert_eq!(parse_power_state("status: off."), Some(PowerState::Off));
        assert_eq!(parse_power_state("unknown"), None);
        assert_eq!(parse_power_state("one offset"), None);
    }

    #[test]
    fn substitutes_names() {
        let node = NodeInfo {
            name: "node-1.lab.lan".into(),
            address: "10.0.0.1".parse().unwrap(),
        };
        assert_eq!(
            substitute("ipmi -H HOSTNAME_SHORT-bmc x HOSTNAME_FQDN", &node),
            "ipmi -H node-1-bmc x node-1.lab.lan"
        );
    }

    #[test]
    fn command_conf_keys_are_checked() {
        let ok: BTreeMap<String, String> = [("reboot_soft".to_string(), "x".to_string())].into();
        let t = PowerCommands::from_command_conf("n", ok).unwrap();
        assert_eq!(t.get(PowerAction::Reboot, PowerLevel::Soft), Some("x"));
        let bad: BTreeMap<String, String> = [("soft_reboot".to_string(), "x".to_string())].into();
        assert!(matches!(
            PowerCommands::from_command_conf("n", bad),
            Err(PowerConfigError::UnknownKey { .. })
        ));
    }
}

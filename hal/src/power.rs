//! Power control: reboot at a level, power on/off at a level, and power status.
//!
//! A real backend runs the configured command of that level for each node (Kadeploy's `remoteops`
//! templates, `ipmitool`, a PDU, `ssh reboot`), or speaks IPMI/Redfish natively. Success means the command
//! was accepted, not that the node rebooted: the engine checks that with [`crate::Reachability`]. A backend
//! with no command at a level answers [`crate::ErrorKind::NotSupported`] with the message
//! `<level>_<action> command is not provided`, so the engine can escalate. Escalation, windows and retries
//! live in the engine, protocol retries in the backend.
//!
//! The simulator models a per-command latency, commands that fail, and the node's boot phases
//! (firmware, PXE, kernel) that start when a reboot or power-on is accepted.

pub mod command;
pub mod ipmi;
pub mod levels;
pub mod next_boot;
#[cfg(feature = "redfish")]
pub mod redfish;
pub mod snmp;

use crate::node::NodeId;
use crate::outcome::Outcomes;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The refusal of a level a backend does not serve, `<level>_<action> command is not provided`, which
/// makes the engine escalate to the next level (as Kadeploy does when a cluster lacks that command).
pub fn not_provided(level: PowerLevel, action: PowerAction) -> crate::NodeError {
    crate::NodeError::new(
        crate::ErrorKind::NotSupported,
        format!(
            "{}_{} command is not provided",
            level.as_str(),
            action.as_str()
        ),
    )
}

/// Kadeploy's escalation levels, in escalation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerLevel {
    /// A clean reboot from the running system (`ssh root@node reboot`).
    Soft,
    /// A reset through the management controller (`ipmitool chassis power cycle`).
    Hard,
    /// The last resort (a PDU outlet cycle).
    VeryHard,
}

impl PowerLevel {
    /// Every level, in escalation order.
    pub const ALL: [PowerLevel; 3] = [PowerLevel::Soft, PowerLevel::Hard, PowerLevel::VeryHard];

    /// Kadeploy's name of the level (`soft`, `hard`, `very_hard`).
    pub fn as_str(self) -> &'static str {
        match self {
            PowerLevel::Soft => "soft",
            PowerLevel::Hard => "hard",
            PowerLevel::VeryHard => "very_hard",
        }
    }

    /// Parses Kadeploy's name of a level.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The next level of the escalation, if any.
    pub fn next(self) -> Option<Self> {
        match self {
            PowerLevel::Soft => Some(PowerLevel::Hard),
            PowerLevel::Hard => Some(PowerLevel::VeryHard),
            PowerLevel::VeryHard => None,
        }
    }
}

impl fmt::Display for PowerLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a power command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerAction {
    /// Restart the node.
    Reboot,
    /// Switch the node on.
    On,
    /// Switch the node off.
    Off,
}

impl PowerAction {
    /// Kadeploy's name of the action (`reboot`, `power_on`, `power_off`).
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::Reboot => "reboot",
            PowerAction::On => "power_on",
            PowerAction::Off => "power_off",
        }
    }
}

/// A node's power state as read by [`Power::status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    /// Powered on.
    On,
    /// Powered off.
    Off,
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerState::On => "on",
            PowerState::Off => "off",
        })
    }
}

/// Power control of a node set.
#[async_trait]
pub trait Power: Send + Sync {
    /// Runs `action` at `level` on every node of `nodes`, concurrently; one outcome per node, in order.
    async fn power(&self, action: PowerAction, level: PowerLevel, nodes: &[NodeId]) -> Outcomes;

    /// Reads the power state of every node of `nodes`; one outcome per node, in order. Once a power-off
    /// has taken effect a node reads off, once a power-on or a reboot has, on (a model applies a command
    /// when it is accepted, so it reads the new state at once). A backend that cannot read states answers
    /// [`crate::ErrorKind::NotSupported`] `power_status command is not provided`.
    async fn status(&self, nodes: &[NodeId]) -> Outcomes<PowerState>;
}

//! Power through Redfish BMCs (DMTF DSP0266): `ComputerSystem.Reset` (On, ForceOff, GracefulShutdown,
//! ForceRestart, PowerCycle), the system's `PowerState`, and the one-time boot override (Pxe, Hdd,
//! UefiHttp), over HTTPS with basic or session authentication.
//!
//! [`RedfishPower`] serves one escalation level (the hard one, where sites put the BMC) and the status:
//! on is `On`, off is `ForceOff`, reboot is the configured reset (`ForceRestart` by default) or `On` when
//! the system is off. One session (or basic-authenticated connection) per node and operation.

pub mod client;
pub mod next_boot;

use crate::node::NodeId;
use crate::outcome::{ErrorKind, NodeError, Outcome, Outcomes, for_each_node};
use crate::power::{Power, PowerAction, PowerLevel, PowerState};
use async_trait::async_trait;
pub use client::{AuthMode, RedfishClient, RedfishError};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// `ComputerSystem.Reset`'s `ResetType` values this backend sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetType {
    /// Power on.
    On,
    /// Immediate power off.
    ForceOff,
    /// An orderly shutdown through the OS (ACPI).
    GracefulShutdown,
    /// Immediate reset.
    ForceRestart,
    /// Off then on.
    PowerCycle,
}

impl ResetType {
    /// The Redfish name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResetType::On => "On",
            ResetType::ForceOff => "ForceOff",
            ResetType::GracefulShutdown => "GracefulShutdown",
            ResetType::ForceRestart => "ForceRestart",
            ResetType::PowerCycle => "PowerCycle",
        }
    }

    /// Every value.
    pub const ALL: [ResetType; 5] = [
        ResetType::On,
        ResetType::ForceOff,
        ResetType::GracefulShutdown,
        ResetType::ForceRestart,
        ResetType::PowerCycle,
    ];

    /// Parses the Redfish name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// `Boot.BootSourceOverrideTarget` values this backend sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootTarget {
    /// Network boot (PXE).
    Pxe,
    /// The local disk.
    Hdd,
    /// UEFI HTTP boot.
    UefiHttp,
    /// No override.
    None,
}

impl BootTarget {
    /// The Redfish name.
    pub fn as_str(self) -> &'static str {
        match self {
            BootTarget::Pxe => "Pxe",
            BootTarget::Hdd => "Hdd",
            BootTarget::UefiHttp => "UefiHttp",
            BootTarget::None => "None",
        }
    }

    /// Parses the Redfish name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            BootTarget::Pxe,
            BootTarget::Hdd,
            BootTarget::UefiHttp,
            BootTarget::None,
        ]
        .into_iter()
        .find(|t| t.as_str() == name)
    }
}

/// One node's Redfish service.
#[derive(Clone, PartialEq, Eq)]
pub struct RedfishTarget {
    /// The service's base URL (`https://node-1-bmc`).
    pub base: String,
    /// The user.
    pub user: String,
    /// The password.
    pub password: String,
    /// The system's `@odata.id`; found in `/redfish/v1/Systems` when `None`.
    pub system: Option<String>,
}

impl std::fmt::Debug for RedfishTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedfishTarget")
            .field("base", &self.base)
            .field("user", &self.user)
            .field("system", &self.system)
            .finish_non_exhaustive()
    }
}

/// What every node shares.
#[derive(Clone, Debug)]
pub struct RedfishSettings {
    /// Basic or session authentication.
    pub auth: AuthMode,
    /// The reset of a reboot of a running system.
    pub reboot: ResetType,
    /// Each HTTP request's limit.
    pub timeout: Duration,
    /// The level served.
    pub level: PowerLevel,
}

/// Power through Redfish.
#[derive(Clone)]
pub struct RedfishPower {
    targets: Arc<BTreeMap<NodeId, RedfishTarget>>,
    settings: Arc<RedfishSettings>,
    http: reqwest::Client,
}

impl RedfishPower {
    /// A backend for these services.
    pub fn new(
        targets: BTreeMap<NodeId, RedfishTarget>,
        settings: RedfishSettings,
    ) -> Result<Self, RedfishError> {
        if let Some((node, _)) = targets
            .iter()
            .find(|(_, t)| !t.base.starts_with("https://") && !t.base.starts_with("http://"))
        {
            return Err(RedfishError::Client(format!(
                "node {node}: the Redfish URL must start with https:// or http://"
            )));
        }
        let http = client::http_client(settings.timeout)?;
        Ok(RedfishPower {
            targets: Arc::new(targets),
            settings: Arc::new(settings),
            http,
        })
    }

    /// Logs in to `node`'s service and runs `op` with the client and the system's URI, then logs out.
    async fn with_system<T>(
        &self,
        node: NodeId,
        op: impl AsyncFnOnce(&RedfishClient, &str) -> Result<T, RedfishError>,
    ) -> Outcome<T> {
        let t = self.targets.get(&node).ok_or_else(|| {
            NodeError::new(
                ErrorKind::Config,
                format!("node {node} has no Redfish service"),
            )
        })?;
        let mut client = RedfishClient::new(self.http.clone(), &t.base, &t.user, &t.password);
        client.login(self.settings.auth).await.map_err(node_error)?;
        let result = async {
            let system = match &t.system {
                Some(s) => s.clone(),
                None => client.first_system().await?,
            };
            op(&client, &system).await
        }
        .await;
        client.logout().await;
        result.map_err(node_error)
    }

    /// Reads one node's power state.
    pub async fn node_status(&self, node: NodeId) -> Outcome<PowerState> {
        self.with_system(node, async |c, system| power_state(c, system).await)
            .await
    }

    /// Sends `ComputerSystem.Reset` with `reset` to one node.
    pub async fn reset(&self, node: NodeId, reset: ResetType) -> Outcome {
        self.with_system(node, async |c, system| send_reset(c, system, reset).await)
            .await
    }

    /// Sets a one-time boot override on one node (`Once`; `None` clears it).
    pub async fn boot_once(&self, node: NodeId, target: BootTarget) -> Outcome {
        self.set_boot_override(node, target, false, false).await
    }

    /// Sets a boot override on one node: `Continuous` when `persistent`, else `Once` (`None` clears it);
    /// with `uefi`, `BootSourceOverrideMode` is `UEFI`.
    pub async fn set_boot_override(
        &self,
        node: NodeId,
        target: BootTarget,
        persistent: bool,
        uefi: bool,
    ) -> Outcome {
        self.with_system(node, async |c, system| {
            let enabled = match (target, persistent) {
                (BootTarget::None, _) => "Disabled",
                (_, true) => "Continuous",
                (_, false) => "Once",
            };
            let mut boot = json!({
                "BootSourceOverrideEnabled": enabled,
                "BootSourceOverrideTarget": target.as_str(),
            });
            if uefi && target != BootTarget::None {
                boot["BootSourceOverrideMode"] = json!("UEFI");
            }
            c.send(reqwest::Method::PATCH, system, &json!({ "Boot": boot }))
                .await
                .map(|_| ())
        })
        .await
    }

    /// The boot override of one node: (`BootSourceOverrideEnabled`, `BootSourceOverrideTarget`).
    pub async fn boot_override(&self, node: NodeId) -> Outcome<(String, String)> {
        self.with_system(node, async |c, system| {
            let s = c.get(system).await?;
            let field = |k: &str| s["Boot"][k].as_str().unwrap_or("").to_string();
            Ok((
                field("BootSourceOverrideEnabled"),
                field("BootSourceOverrideTarget"),
            ))
        })
        .await
    }

    /// Runs one action on one node.
    pub async fn node_power(&self, node: NodeId, action: PowerAction) -> Outcome {
        let reboot = self.settings.reboot;
        self.with_system(node, async move |c, system| {
            let state = power_state(c, system).await?;
            let reset = match (action, state) {
                (PowerAction::On, PowerState::On) | (PowerAction::Off, PowerState::Off) => {
                    return Ok(());
                }
                (PowerAction::On, _) | (PowerAction::Reboot, PowerState::Off) => ResetType::On,
                (PowerAction::Off, _) => ResetType::ForceOff,
                (PowerAction::Reboot, PowerState::On) => reboot,
            };
            tracing::debug!(%node, reset = reset.as_str(), "Redfish reset");
            send_reset(c, system, reset).await
        })
        .await
    }
}

/// The system's `PowerState` (`PoweringOn` counts as off, `PoweringOff` as on, until they settle).
async fn power_state(c: &RedfishClient, system: &str) -> Result<PowerState, RedfishError> {
    let s = c.get(system).await?;
    match s["PowerState"].as_str() {
        Some("On") | Some("PoweringOff") => Ok(PowerState::On),
        Some("Off") | Some("PoweringOn") => Ok(PowerState::Off),
        other => Err(RedfishError::Protocol {
            url: system.into(),
            message: format!("PowerState is {other:?}"),
        }),
    }
}

/// POSTs the reset to the system's `#ComputerSystem.Reset` target.
async fn send_reset(c: &RedfishClient, system: &str, reset: ResetType) -> Result<(), RedfishError> {
    let s = c.get(system).await?;
    let target = s["Actions"]["#ComputerSystem.Reset"]["target"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{system}/Actions/ComputerSystem.Reset"));
    c.send(
        reqwest::Method::POST,
        &target,
        &json!({"ResetType": reset.as_str()}),
    )
    .await
    .map(|_| ())
}

/// Maps a Redfish failure to the engine's error kinds.
pub fn node_error(e: RedfishError) -> NodeError {
    let kind = match &e {
        RedfishError::Unreachable { .. } => ErrorKind::Unreachable,
        RedfishError::Auth { .. } | RedfishError::Client(_) => ErrorKind::Config,
        RedfishError::Status { .. } | RedfishError::Protocol { .. } => ErrorKind::CommandFailed,
    };
    NodeError::new(kind, e.to_string())
}

#[async_trait]
impl Power for RedfishPower {
    async fn power(&self, action: PowerAction, level: PowerLevel, nodes: &[NodeId]) -> Outcomes {
        if level != self.settings.level {
            return Outcomes::all(nodes, Err(super::not_provided(level, action)));
        }
        let this = self.clone();
        for_each_node(nodes, 32, move |node| {
            let this = this.clone();
            async move { this.node_power(node, action).await }
        })
        .await
    }

    async fn status(&self, nodes: &[NodeId]) -> Outcomes<PowerState> {
        let this = self.clone();
        for_each_node(nodes, 32, move |node| {
            let this = this.clone();
            async move { this.node_status(node).await }
        })
        .await
    }
}

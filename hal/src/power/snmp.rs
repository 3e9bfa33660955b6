//! Power through switched PDUs over SNMP (v2c or v3 with USM): each node is an outlet of a PDU, switched
//! on, off or through a reboot by the model's OID template, and read back for the power status.
//!
//! [`SnmpPower`] serves one escalation level (Kadeploy sites put PDUs at `very_hard`) and the status; the
//! other levels answer [`ErrorKind::NotSupported`]. The BER codec, the v3 security and the PDUs are
//! public: the lab's PDU agent is built on them.

pub mod ber;
pub mod client;
pub mod models;
pub mod pdu;
pub mod usm;
pub mod v3;

use crate::node::NodeId;
use crate::outcome::{ErrorKind, NodeError, Outcome, Outcomes, for_each_node};
use crate::power::{Power, PowerAction, PowerLevel, PowerState};
use async_trait::async_trait;
use client::{Security, SnmpClient, SnmpError};
use models::{OutletModel, SetTemplate, instantiate};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One node's outlet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outlet {
    /// The PDU's host name or address.
    pub host: String,
    /// Its SNMP port (161).
    pub port: u16,
    /// The outlet number (from 1).
    pub outlet: u32,
}

/// What every outlet shares: the PDU model, the security, the pace.
#[derive(Clone, Debug)]
pub struct PduSettings {
    /// The OID templates.
    pub model: OutletModel,
    /// v2c community or v3 user.
    pub security: Security,
    /// Wait for each answer.
    pub timeout: Duration,
    /// Retransmissions.
    pub retries: u32,
    /// The level served.
    pub level: PowerLevel,
    /// Pause between off and on when the model has no reboot command.
    pub off_on_delay: Duration,
}

/// Power through PDU outlets.
#[derive(Clone, Debug)]
pub struct SnmpPower {
    outlets: Arc<BTreeMap<NodeId, Outlet>>,
    settings: Arc<PduSettings>,
}

impl SnmpPower {
    /// A backend for these outlets; fails when the model's templates are not OIDs.
    pub fn new(outlets: BTreeMap<NodeId, Outlet>, settings: PduSettings) -> Result<Self, String> {
        settings.model.validate()?;
        if let Some((node, _)) = outlets
            .iter()
            .find(|(_, o)| o.outlet == 0 || o.host.is_empty())
        {
            return Err(format!(
                "node {node}: an outlet needs a PDU host and a number from 1"
            ));
        }
        Ok(SnmpPower {
            outlets: Arc::new(outlets),
            settings: Arc::new(settings),
        })
    }

    fn client(&self, node: NodeId) -> Result<(SnmpClient, u32), NodeError> {
        let o = self.outlets.get(&node).ok_or_else(|| {
            NodeError::new(ErrorKind::Config, format!("node {node} has no PDU outlet"))
        })?;
        let target = if o.host.contains(':') {
            format!("[{}]:{}", o.host, o.port)
        } else {
            format!("{}:{}", o.host, o.port)
        };
        Ok((
            SnmpClient {
                target,
                security: self.settings.security.clone(),
                timeout: self.settings.timeout,
                retries: self.settings.retries,
            },
            o.outlet,
        ))
    }

    async fn write(&self, client: &SnmpClient, outlet: u32, set: &SetTemplate) -> Outcome {
        let oid = instantiate(&set.oid, outlet).ok_or_else(|| {
            NodeError::new(ErrorKind::Config, format!("OID template {:?}", set.oid))
        })?;
        client
            .set_integer(&oid, set.value)
            .await
            .map_err(node_error)
    }

    /// Reads one node's outlet state.
    pub async fn node_status(&self, node: NodeId) -> Outcome<PowerState> {
        let (client, outlet) = self.client(node)?;
        let m = &self.settings.model;
        let oid = instantiate(&m.status, outlet).ok_or_else(|| {
            NodeError::new(ErrorKind::Config, format!("OID template {:?}", m.status))
        })?;
        let value = client.get_integer(&oid).await.map_err(node_error)?;
        if value == m.status_on {
            Ok(PowerState::On)
        } else if value == m.status_off {
            Ok(PowerState::Off)
        } else {
            Err(NodeError::new(
                ErrorKind::CommandFailed,
                format!(
                    "outlet {outlet} of {}: state {value} is neither on nor off",
                    client.target
                ),
            ))
        }
    }

    /// Runs one action on one node's outlet.
    pub async fn node_power(&self, node: NodeId, action: PowerAction) -> Outcome {
        let (client, outlet) = self.client(node)?;
        let m = &self.settings.model;
        tracing::debug!(%node, outlet, target = %client.target, ?action, "PDU outlet");
        match action {
            PowerAction::On => self.write(&client, outlet, &m.on).await,
            PowerAction::Off => self.write(&client, outlet, &m.off).await,
            PowerAction::Reboot => match &m.reboot {
                Some(reboot) => self.write(&client, outlet, reboot).await,
                None => {
                    self.write(&client, outlet, &m.off).await?;
                    tokio::time::sleep(self.settings.off_on_delay).await;
                    self.write(&client, outlet, &m.on).await
                }
            },
        }
    }
}

/// Maps an SNMP failure to the engine's error kinds.
pub fn node_error(e: SnmpError) -> NodeError {
    let kind = match &e {
        SnmpError::Io { .. } | SnmpError::Timeout(_) => ErrorKind::Unreachable,
        SnmpError::Auth(..) => ErrorKind::Config,
        SnmpError::Agent { .. } | SnmpError::Unexpected(..) => ErrorKind::CommandFailed,
    };
    NodeError::new(kind, e.to_string())
}

#[async_trait]
impl Power for SnmpPower {
    async fn power(&self, action: PowerAction, level: PowerLevel, nodes: &[NodeId]) -> Outcomes {
        if level != self.settings.level {
            return Outcomes::all(nodes, Err(super::not_provided(level, action)));
        }
        let this = self.clone();
        // A PDU serves its outlets one request at a time anyway; 16 in flight bound the sockets.
        for_each_node(nodes, 16, move |node| {
            let this = this.clone();
            async move { this.node_power(node, action).await }
        })
        .await
    }

    async fn status(&self, nodes: &[NodeId]) -> Outcomes<PowerState> {
        let this = self.clone();
        for_each_node(nodes, 16, move |node| {
            let this = this.clone();
            async move { this.node_status(node).await }
        })
        .await
    }
}

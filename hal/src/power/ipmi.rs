//! Native IPMI-over-LAN power control (RMCP+, `ipmitool -I lanplus` compatible).
//!
//! [`IpmiPower`] opens one RMCP+ session per node and command (cipher suite 17 when the BMC lists it, else
//! 3), like one `ipmitool -I lanplus` run. `hard` reboot is `chassis power cycle` (power on when the
//! chassis is off), `hard` on/off are `chassis power on/off`; the other levels are not provided. `timeout`
//! is the wait after each datagram and `retries` the retransmissions, so a silent BMC answers
//! [`ErrorKind::Unreachable`] after `(retries + 1) × timeout`.

pub mod bootdev;
pub mod commands;
pub mod crypto;
pub mod rakp;
pub mod session;
pub mod wire;

use crate::node::NodeId;
use crate::outcome::{ErrorKind, NodeError, Outcome, Outcomes, for_each_node};
use crate::power::{Power, PowerAction, PowerLevel, PowerState};
use async_trait::async_trait;
use bootdev::BootFlags;
use commands::ChassisControl;
use session::{IpmiError, Session, SessionParams};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One node's BMC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpmiTarget {
    /// BMC host name or address.
    pub host: String,
    /// UDP port (623 on real BMCs).
    pub port: u16,
    /// IPMI user name.
    pub user: String,
    /// IPMI password.
    pub password: String,
}

/// Power control through each node's BMC over RMCP+.
#[derive(Clone, Debug)]
pub struct IpmiPower {
    targets: Arc<BTreeMap<NodeId, IpmiTarget>>,
    timeout: Duration,
    retries: u32,
}

impl IpmiPower {
    /// A backend for these BMCs; `timeout` per datagram, `retries` retransmissions.
    pub fn new(targets: BTreeMap<NodeId, IpmiTarget>, timeout: Duration, retries: u32) -> Self {
        IpmiPower {
            targets: Arc::new(targets),
            timeout,
            retries,
        }
    }

    /// Checks the configuration without touching hardware: IPMI limits user names to 16 bytes and
    /// passwords to 20.
    pub fn validate(&self) -> Result<(), String> {
        for (node, t) in self.targets.iter() {
            if t.user.len() > 16 {
                return Err(format!("node {node}: IPMI user name longer than 16 bytes"));
            }
            if t.password.len() > 20 {
                return Err(format!("node {node}: IPMI password longer than 20 bytes"));
            }
            if t.host.is_empty() {
                return Err(format!("node {node}: empty BMC host"));
            }
        }
        Ok(())
    }

    async fn session(&self, node: NodeId) -> Result<Session, NodeError> {
        let t = self.targets.get(&node).ok_or_else(|| {
            NodeError::new(ErrorKind::Config, format!("node {node} has no IPMI target"))
        })?;
        let params = SessionParams {
            host: &t.host,
            port: t.port,
            user: &t.user,
            password: &t.password,
            timeout: self.timeout,
            retries: self.retries,
        };
        Session::open(&params).await.map_err(node_error)
    }

    /// Reads one node's chassis power state.
    pub async fn node_status(&self, node: NodeId) -> Outcome<PowerState> {
        let mut s = self.session(node).await?;
        let on = s.chassis_power_on().await.map_err(node_error);
        s.close().await;
        Ok(if on? { PowerState::On } else { PowerState::Off })
    }

    /// Runs one `hard` action on one node.
    pub async fn node_power(&self, node: NodeId, action: PowerAction) -> Outcome {
        let mut s = self.session(node).await?;
        let result = async {
            let op = match action {
                PowerAction::On => ChassisControl::PowerUp,
                PowerAction::Off => ChassisControl::PowerDown,
                PowerAction::Reboot if s.chassis_power_on().await? => ChassisControl::PowerCycle,
                PowerAction::Reboot => ChassisControl::PowerUp,
            };
            tracing::debug!(%node, ?op, "IPMI chassis control");
            s.chassis_control(op).await
        }
        .await
        .map_err(node_error);
        s.close().await;
        result
    }

    /// Sets one node's next boot device (`ipmitool chassis bootdev`).
    pub async fn node_set_boot_flags(&self, node: NodeId, flags: BootFlags) -> Outcome {
        let mut s = self.session(node).await?;
        tracing::debug!(%node, %flags, "IPMI boot flags");
        let result = s.set_boot_flags(flags).await.map_err(node_error);
        s.close().await;
        result
    }

    /// Reads one node's boot flags (`ipmitool chassis bootparam get 5`).
    pub async fn node_boot_flags(&self, node: NodeId) -> Outcome<BootFlags> {
        let mut s = self.session(node).await?;
        let result = s.boot_flags().await.map_err(node_error);
        s.close().await;
        result
    }

    /// Sets the next boot device of every node of `nodes`, concurrently; one outcome per node, in order.
    pub async fn set_boot_flags(&self, nodes: &[NodeId], flags: BootFlags) -> Outcomes {
        let this = self.clone();
        for_each_node(nodes, nodes.len(), move |node| {
            let this = this.clone();
            async move { this.node_set_boot_flags(node, flags).await }
        })
        .await
    }

    /// Reads the boot flags of every node of `nodes`, concurrently; one outcome per node, in order.
    pub async fn boot_flags(&self, nodes: &[NodeId]) -> Outcomes<BootFlags> {
        let this = self.clone();
        for_each_node(nodes, nodes.len(), move |node| {
            let this = this.clone();
            async move { this.node_boot_flags(node).await }
        })
        .await
    }
}

/// Maps a protocol failure to the engine's error kinds.
pub fn node_error(e: IpmiError) -> NodeError {
    let kind = match &e {
        IpmiError::Unreachable { .. } | IpmiError::Address { .. } => ErrorKind::Unreachable,
        IpmiError::Auth { .. } => ErrorKind::Config,
        IpmiError::Protocol { .. } | IpmiError::Completion { .. } => ErrorKind::CommandFailed,
    };
    NodeError::new(kind, e.to_string())
}

#[async_trait]
impl Power for IpmiPower {
    async fn power(&self, action: PowerAction, level: PowerLevel, nodes: &[NodeId]) -> Outcomes {
        if level != PowerLevel::Hard {
            return Outcomes::all(nodes, Err(super::not_provided(level, action)));
        }
        let this = self.clone();
        // Every node's BMC at once: no limit on sessions in flight.
        for_each_node(nodes, nodes.len(), move |node| {
            let this = this.clone();
            async move { this.node_power(node, action).await }
        })
        .await
    }

    async fn status(&self, nodes: &[NodeId]) -> Outcomes<PowerState> {
        let this = self.clone();
        for_each_node(nodes, nodes.len(), move |node| {
            let this = this.clone();
            async move { this.node_status(node).await }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn other_levels_are_not_provided() {
        let p = IpmiPower::new(BTreeMap::new(), Duration::from_millis(10), 0);
        let out = p
            .power(PowerAction::Reboot, PowerLevel::Soft, &[NodeId(1)])
            .await;
        let err = out.failures()[0].1.clone();
        assert_eq!(err.kind, ErrorKind::NotSupported);
        assert_eq!(err.message, "soft_reboot command is not provided");
        let out = p
            .power(PowerAction::On, PowerLevel::VeryHard, &[NodeId(1)])
            .await;
        assert_eq!(
            out.failures()[0].1.message,
            "very_hard_power_on command is not provided"
        );
    }

    #[tokio::test]
    async fn unknown_nodes_are_config_errors() {
        let p = IpmiPower::new(BTreeMap::new(), Duration::from_millis(10), 0);
        let out = p.status(&[NodeId(3)]).await;
        assert_eq!(out.failures()[0].1.kind, ErrorKind::Config);
    }

    #[tokio::test]
    async fn a_silent_port_is_unreachable_after_the_retries() {
        // A bound socket that never answers.
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let target = IpmiTarget {
            host: "127.0.0.1".into(),
            port,
            user: "u".into(),
            password: "p".into(),
        };
        let p = IpmiPower::new(
            BTreeMap::from([(NodeId(0), target)]),
            Duration::from_millis(100),
            2,
        );
        let start = std::time::Instant::now();
        let out = p.status(&[NodeId(0)]).await;
        let err = out.failures()[0].1.clone();
        assert_eq!(err.kind, ErrorKind::Unreachable, "{err}");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }

    #[test]
    fn validate_checks_ipmi_length_limits() {
        let t = IpmiTarget {
            host: "h".into(),
            port: 623,
            user: "u".repeat(17),
            password: "p".into(),
        };
        let p = IpmiPower::new(BTreeMap::from([(NodeId(0), t)]), Duration::from_secs(1), 0);
        assert!(p.validate().is_err());
    }
}

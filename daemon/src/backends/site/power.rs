//! The `site` backend's power: the cluster's `remoteops` command templates with `command.conf`'s per-node
//! overrides and group files, SSH for soft reboots when the cluster has no soft command, and, with
//! `backend/ipmi` or `backend/redfish`, native IPMI-over-LAN or Redfish for the hard level and the status;
//! with `backend/pdu`, SNMP PDU outlets for the very_hard level (and the status when nothing else reads it);
//! with the cluster's `boot/next_boot_device`, the boot device set through the BMCs before each reboot and
//! power-on.

use hal::power::command::{CommandPower, PowerCommands};
use hal::power::ipmi::{IpmiPower, IpmiTarget};
use hal::power::levels::PowerByLevel;
use hal::power::next_boot::NextBootPower;
use hal::ssh::{SshNodeOps, SshPower};
use hal::{NodeId, NodeInfo, Power, PowerAction, PowerLevel};
use kadeploy::config::{ClusterConfig, Commands, IpmiKeys, RemoteOps, SiteKeys};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Power: the `remoteops` templates per level (with `commands`, the `command.conf` overrides of the
/// cluster's nodes); soft reboots over SSH when the cluster has no soft command; the hard level and status
/// through native IPMI when configured.
pub(super) fn power(
    cluster: &ClusterConfig,
    remoteops: &RemoteOps,
    commands: &Commands,
    keys: &SiteKeys,
    ops: &SshNodeOps,
) -> anyhow::Result<Arc<dyn Power>> {
    let mut table = PowerCommands::new();
    let mut groups = BTreeMap::new();
    for (action, list) in [
        (PowerAction::Reboot, &remoteops.reboot),
        (PowerAction::On, &remoteops.power_on),
        (PowerAction::Off, &remoteops.power_off),
    ] {
        for op in list {
            table = table.with(action, op.name, op.cmd.clone());
            if !op.groups.is_empty() {
                groups.insert(PowerCommands::key(action, op.name), op.groups.clone());
            }
        }
    }
    if let Some(status) = &remoteops.power_status {
        table = table.with_status(status.clone());
    }
    let mut overrides = BTreeMap::new();
    for (node, entries) in commands {
        overrides.insert(
            node.clone(),
            PowerCommands::from_command_conf(node, entries.clone())?,
        );
    }
    let commands: Arc<dyn Power> = Arc::new(
        CommandPower::new(cluster.nodes.clone(), table.clone(), keys.power_timeout)
            .with_overrides(overrides)?
            .with_groups(groups),
    );
    let has = |level: PowerLevel| {
        [PowerAction::Reboot, PowerAction::On, PowerAction::Off]
            .iter()
            .any(|a| table.get(*a, level).is_some())
    };
    let mut by_level = PowerByLevel::new().status_from(commands.clone());
    by_level = if has(PowerLevel::Soft) {
        by_level.level(PowerLevel::Soft, commands.clone())
    } else {
        by_level.level(PowerLevel::Soft, Arc::new(SshPower::from_node_ops(ops)))
    };
    by_level = by_level
        .level(PowerLevel::Hard, commands.clone())
        .level(PowerLevel::VeryHard, commands);
    let mut native_status = false;
    let bmcs = keys
        .ipmi
        .as_ref()
        .map(|ipmi| ipmi_power(&cluster.nodes, ipmi))
        .transpose()?;
    if let Some(bmcs) = &bmcs {
        let native: Arc<dyn Power> = Arc::new(bmcs.clone());
        by_level = by_level
            .level(PowerLevel::Hard, native.clone())
            .status_from(native);
        native_status = true;
    }
    if let Some(redfish) = &keys.redfish {
        let native: Arc<dyn Power> = Arc::new(super::oob::redfish_power(&cluster.nodes, redfish)?);
        by_level = by_level
            .level(PowerLevel::Hard, native.clone())
            .status_from(native);
        native_status = true;
    }
    if let Some(pdu) = &keys.pdu {
        let outlets: Arc<dyn Power> = Arc::new(super::oob::pdu_power(&cluster.nodes, pdu)?);
        by_level = by_level.level(PowerLevel::VeryHard, outlets.clone());
        if !native_status && remoteops.power_status.is_none() {
            by_level = by_level.status_from(outlets);
        }
    }
    let power: Arc<dyn Power> = Arc::new(by_level);
    match (remoteops.next_boot, bmcs) {
        (None, _) => Ok(power),
        (Some(flags), Some(bmcs)) => Ok(Arc::new(NextBootPower::new(power, bmcs, flags))),
        (Some(_), None) => anyhow::bail!(
            "cluster {}: boot/next_boot_device needs backend/ipmi in server.conf (the BMCs that set it)",
            cluster.name
        ),
    }
}

/// The native IPMI backend of `backend/ipmi` (its password read at load).
fn ipmi_power(nodes: &[NodeInfo], keys: &IpmiKeys) -> anyhow::Result<IpmiPower> {
    let targets = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                NodeId(i as u32),
                IpmiTarget {
                    host: hal::power::command::substitute(&keys.host, n),
                    port: keys.port,
                    user: keys.user.clone(),
                    password: keys.password.clone(),
                },
            )
        })
        .collect();
    let power = IpmiPower::new(targets, Duration::from_secs(1), 3);
    power.validate().map_err(anyhow::Error::msg)?;
    Ok(power)
}

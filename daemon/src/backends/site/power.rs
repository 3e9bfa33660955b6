//! The `site` backend's power: the cluster's `remoteops` command templates with `command.conf`'s per-node
//! overrides and group files, SSH for soft reboots when the cluster has no soft command, and, with
//! `backend/ipmi` or `backend/redfish`, native IPMI-over-LAN or Redfish for the hard level and the status;
//! with `backend/pdu`, SNMP PDU outlets for the very_hard level (and the status when nothing else reads it);
//! with the cluster's `boot/next_boot_device`, the boot device set out of band (IPMI, else Redfish) before
//! each reboot and power-on, fixed or following each node's last boot profile.

use hal::power::command::{CommandPower, PowerCommands};
use hal::power::ipmi::{IpmiPower, IpmiTarget};
use hal::power::levels::PowerByLevel;
use hal::power::next_boot::ipmi::IpmiNextBoot;
use hal::power::next_boot::{BootDeviceSetter, BootIntents, NextBootChoice, NextBootPower};
use hal::power::redfish::next_boot::RedfishNextBoot;
use hal::ssh::{SshNodeOps, SshPower};
use hal::{NodeId, NodeInfo, Power, PowerAction, PowerLevel};
use kadeploy::config::{ClusterConfig, Commands, IpmiKeys, RemoteOps, SiteKeys};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What sets the next boot device as profiles are written (`boot/next_boot_device: {device: auto}`).
pub(super) type DeviceSetter = Arc<dyn BootDeviceSetter>;

/// Power: the `remoteops` templates per level (with `commands`, the `command.conf` overrides of the
/// cluster's nodes); soft reboots over SSH when the cluster has no soft command; the hard level and status
/// through native IPMI when configured; `intents` are the nodes' last boot profiles, read when the next
/// boot device follows them; with `boot/next_boot_device: {device: auto}`, also what sets the device.
pub(super) fn power(
    cluster: &ClusterConfig,
    remoteops: &RemoteOps,
    commands: &Commands,
    keys: &SiteKeys,
    ops: &SshNodeOps,
    intents: &BootIntents,
) -> anyhow::Result<(Arc<dyn Power>, Option<DeviceSetter>)> {
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
    let services = keys
        .redfish
        .as_ref()
        .map(|redfish| super::oob::redfish_power(&cluster.nodes, redfish))
        .transpose()?;
    if let Some(services) = &services {
        let native: Arc<dyn Power> = Arc::new(services.clone());
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
    let Some(next) = remoteops.next_boot else {
        return Ok((power, None));
    };
    // The BMCs over IPMI when the site has them, else the Redfish services.
    let setter: Arc<dyn BootDeviceSetter> = match (bmcs, services) {
        (Some(bmcs), _) => Arc::new(IpmiNextBoot::new(bmcs, next.persistent, next.efi)),
        (None, Some(services)) => {
            Arc::new(RedfishNextBoot::new(services, next.persistent, next.efi))
        }
        (None, None) => anyhow::bail!(
            "cluster {}: boot/next_boot_device needs backend/ipmi or backend/redfish in server.conf \
             (what sets it)",
            cluster.name
        ),
    };
    tracing::info!(cluster = %cluster.name, device = %next.choice, "next boot device set before each boot");
    let power = Arc::new(NextBootPower::new(
        power,
        setter.clone(),
        next.choice,
        intents.clone(),
    ));
    // `auto` also sets the device as each profile is written (see `RecordingNetBoot`).
    let follows = next.choice == NextBootChoice::FollowProfile;
    Ok((power, follows.then_some(setter)))
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

//! A power step that sets each node's next boot device out of band (a BMC over IPMI, a Redfish service)
//! before the node is rebooted or powered on, for machines whose firmware boot order is not network-first
//! (UEFI machines that put the disk first once a system is installed).
//!
//! The device is either fixed, or follows the node's last boot profile ([`NextBootChoice::FollowProfile`]):
//! the network (PXE) before the deploy kernel, the disk before the deployed system.
//!
//! A node whose BMC refuses or does not answer fails the step with the BMC's error at the soft and hard
//! levels; at the very_hard level (the last resort, often a PDU that does not need the BMC) the power
//! command runs anyway. Power off and the status are passed through.

pub mod intents;
pub mod ipmi;

use super::ipmi::bootdev::BootDevice;
use super::{Power, PowerAction, PowerLevel, PowerState};
use crate::node::NodeId;
use crate::outcome::{NodeError, Outcome, Outcomes};
use async_trait::async_trait;
pub use intents::{BootIntents, RecordingNetBoot};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What sets nodes' next boot device out of band.
#[async_trait]
pub trait BootDeviceSetter: Send + Sync {
    /// Makes `device` the next boot of every node of `nodes`; one outcome per node, in order.
    async fn set_next_boot(&self, nodes: &[NodeId], device: BootDevice) -> Outcomes;
}

/// Which device each reboot or power-on asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextBootChoice {
    /// Always this device.
    Fixed(BootDevice),
    /// The device of the node's last boot profile: PXE for the deploy kernel (and any network profile), the
    /// disk for the deployed system; PXE when no profile was written yet.
    FollowProfile,
}

impl std::fmt::Display for NextBootChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NextBootChoice::Fixed(device) => write!(f, "{device}"),
            NextBootChoice::FollowProfile => f.write_str("auto"),
        }
    }
}

/// A cluster's `boot/next_boot_device`: the device and how long the override lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextBootSettings {
    /// The device.
    pub choice: NextBootChoice,
    /// For every future boot, not only the next one.
    pub persistent: bool,
    /// Ask for an EFI boot.
    pub efi: bool,
}

/// Another power backend, with the next boot device set out of band before each reboot and power-on.
pub struct NextBootPower {
    inner: Arc<dyn Power>,
    setter: Arc<dyn BootDeviceSetter>,
    choice: NextBootChoice,
    intents: BootIntents,
}

impl NextBootPower {
    /// Sets the device of `choice` through `setter` before `inner` reboots or powers nodes on; `intents` are
    /// the nodes' last profiles (read with [`NextBootChoice::FollowProfile`]).
    pub fn new(
        inner: Arc<dyn Power>,
        setter: Arc<dyn BootDeviceSetter>,
        choice: NextBootChoice,
        intents: BootIntents,
    ) -> Self {
        NextBootPower {
            inner,
            setter,
            choice,
            intents,
        }
    }

    /// Sets each node's device (grouped by device); gives each node's failure.
    async fn set_devices(&self, nodes: &[NodeId]) -> BTreeMap<NodeId, (BootDevice, NodeError)> {
        let mut by_device: Vec<(BootDevice, Vec<NodeId>)> = Vec::new();
        for node in nodes {
            let device = match self.choice {
                NextBootChoice::Fixed(device) => device,
                NextBootChoice::FollowProfile => self.intents.device(*node),
            };
            match by_device.iter_mut().find(|(d, _)| *d == device) {
                Some((_, group)) => group.push(*node),
                None => by_device.push((device, vec![*node])),
            }
        }
        let mut failed = BTreeMap::new();
        for (device, group) in by_device {
            tracing::debug!(%device, nodes = group.len(), "setting the next boot device");
            for (node, error) in self.setter.set_next_boot(&group, device).await.failures() {
                failed.insert(node, (device, error));
            }
        }
        failed
    }
}

#[async_trait]
impl Power for NextBootPower {
    async fn power(&self, action: PowerAction, level: PowerLevel, nodes: &[NodeId]) -> Outcomes {
        if action == PowerAction::Off {
            return self.inner.power(action, level, nodes).await;
        }
        let mut refused: BTreeMap<NodeId, (BootDevice, NodeError)> = BTreeMap::new();
        for (node, (device, error)) in self.set_devices(nodes).await {
            tracing::warn!(%node, %device, "cannot set the next boot device: {error}");
            if level != PowerLevel::VeryHard {
                refused.insert(node, (device, error));
            }
        }
        let go: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|n| !refused.contains_key(n))
            .collect();
        let done: BTreeMap<NodeId, Outcome> = if go.is_empty() {
            BTreeMap::new()
        } else {
            self.inner
                .power(action, level, &go)
                .await
                .into_iter()
                .collect()
        };
        Outcomes::from_fn(nodes, |node| match refused.get(&node) {
            Some((device, error)) => Err(NodeError::new(
                error.kind,
                format!("setting the next boot device to {device}: {error}"),
            )),
            None => done.get(&node).cloned().unwrap_or_else(|| {
                Err(NodeError::new(
                    crate::ErrorKind::CommandFailed,
                    "the power backend gave no outcome",
                ))
            }),
        })
    }

    async fn status(&self, nodes: &[NodeId]) -> Outcomes<PowerState> {
        self.inner.status(nodes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::power::ipmi::{IpmiPower, IpmiTarget};
    use std::sync::Mutex;
    use std::time::Duration;

    /// Records the power calls it is given and accepts them.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(PowerAction, PowerLevel, Vec<NodeId>)>>);

    #[async_trait]
    impl Power for Recorder {
        async fn power(
            &self,
            action: PowerAction,
            level: PowerLevel,
            nodes: &[NodeId],
        ) -> Outcomes {
            self.0.lock().unwrap().push((action, level, nodes.to_vec()));
            Outcomes::all(nodes, Ok(()))
        }

        async fn status(&self, nodes: &[NodeId]) -> Outcomes<PowerState> {
            Outcomes::all(nodes, Ok(PowerState::On))
        }
    }

    /// Node 0's BMC never answers; node 1 has none.
    async fn setup() -> (Arc<Recorder>, NextBootPower, tokio::net::UdpSocket) {
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = IpmiTarget {
            host: "127.0.0.1".into(),
            port: silent.local_addr().unwrap().port(),
            user: "u".into(),
            password: "p".into(),
        };
        let bmcs = IpmiPower::new(
            BTreeMap::from([(NodeId(0), target)]),
            Duration::from_millis(50),
            0,
        );
        let inner = Arc::new(Recorder::default());
        let power = NextBootPower::new(
            inner.clone(),
            Arc::new(ipmi::IpmiNextBoot::new(bmcs, false, false)),
            NextBootChoice::Fixed(BootDevice::Pxe),
            BootIntents::default(),
        );
        (inner, power, silent)
    }

    #[tokio::test]
    async fn a_bmc_that_cannot_set_the_device_fails_the_node_below_very_hard() {
        let (inner, power, _silent) = setup().await;
        let nodes = [NodeId(1), NodeId(0)];
        let out = power
            .power(PowerAction::Reboot, PowerLevel::Hard, &nodes)
            .await;
        let failures = out.failures();
        assert_eq!(failures.len(), 2, "{out:?}");
        assert_eq!(failures[0].0, NodeId(1));
        assert_eq!(failures[0].1.kind, ErrorKind::Config);
        assert_eq!(failures[1].1.kind, ErrorKind::Unreachable);
        assert!(
            failures[1]
                .1
                .message
                .starts_with("setting the next boot device to pxe: "),
            "{}",
            failures[1].1
        );
        assert!(
            inner.0.lock().unwrap().is_empty(),
            "the nodes were rebooted"
        );
    }

    #[tokio::test]
    async fn very_hard_power_and_power_off_go_through() {
        let (inner, power, _silent) = setup().await;
        let nodes = [NodeId(1), NodeId(0)];
        let out = power
            .power(PowerAction::On, PowerLevel::VeryHard, &nodes)
            .await;
        assert!(out.failures().is_empty(), "{out:?}");
        let out = power
            .power(PowerAction::Off, PowerLevel::Hard, &nodes)
            .await;
        assert!(out.failures().is_empty(), "{out:?}");
        assert_eq!(
            *inner.0.lock().unwrap(),
            vec![
                (PowerAction::On, PowerLevel::VeryHard, nodes.to_vec()),
                (PowerAction::Off, PowerLevel::Hard, nodes.to_vec())
            ]
        );
    }

    /// Records the devices it is asked to set.
    #[derive(Default)]
    struct Devices(Mutex<Vec<(BootDevice, Vec<NodeId>)>>);

    #[async_trait]
    impl BootDeviceSetter for Devices {
        async fn set_next_boot(&self, nodes: &[NodeId], device: BootDevice) -> Outcomes {
            self.0.lock().unwrap().push((device, nodes.to_vec()));
            Outcomes::all(nodes, Ok(()))
        }
    }

    /// Writes every profile but node 2's.
    struct Profiles;

    #[async_trait]
    impl crate::netboot::NetBoot for Profiles {
        async fn set_profile(
            &self,
            nodes: &[NodeId],
            _profile: &crate::netboot::BootProfile,
        ) -> Outcomes {
            Outcomes::from_fn(nodes, |n| {
                if n == NodeId(2) {
                    Err(NodeError::new(ErrorKind::CommandFailed, "disk full"))
                } else {
                    Ok(())
                }
            })
        }
    }

    /// `auto`: PXE before the deploy kernel (and before any profile), the disk before the deployed system;
    /// a profile that could not be written leaves the node's device as it was.
    #[tokio::test]
    async fn the_device_follows_each_nodes_last_profile() {
        use crate::netboot::{BootProfile, NetBoot};
        let intents = BootIntents::default();
        let devices = Arc::new(Devices::default());
        let netboot = RecordingNetBoot::new(Arc::new(Profiles), intents.clone(), None);
        let power = NextBootPower::new(
            Arc::new(Recorder::default()),
            devices.clone(),
            NextBootChoice::FollowProfile,
            intents,
        );
        let nodes = [NodeId(0), NodeId(1), NodeId(2)];
        let deploy = BootProfile::DeployKernel {
            kernel: "k".into(),
            initrd: "i".into(),
            params: String::new(),
        };
        let local = BootProfile::LocalDisk {
            device: "/dev/sda".into(),
            partition: 3,
            system: None,
        };
        let reboot = async |nodes: &[NodeId]| {
            let out = power
                .power(PowerAction::Reboot, PowerLevel::Soft, nodes)
                .await;
            assert!(out.failures().is_empty(), "{out:?}");
            std::mem::take(&mut *devices.0.lock().unwrap())
        };
        assert_eq!(
            reboot(&nodes).await,
            [(BootDevice::Pxe, nodes.to_vec())],
            "no profile yet"
        );
        assert_eq!(
            netboot.set_profile(&nodes, &deploy).await.failures().len(),
            1
        );
        assert_eq!(reboot(&nodes).await, [(BootDevice::Pxe, nodes.to_vec())]);
        let written = netboot.set_profile(&nodes, &local).await;
        assert_eq!(written.failures()[0].0, NodeId(2));
        assert_eq!(
            reboot(&nodes).await,
            [
                (BootDevice::Disk, vec![NodeId(0), NodeId(1)]),
                (BootDevice::Pxe, vec![NodeId(2)])
            ]
        );
        assert_eq!(NextBootChoice::FollowProfile.to_string(), "auto");
    }

    /// Sets every device but node 1's.
    struct RefusesNode1;

    #[async_trait]
    impl BootDeviceSetter for RefusesNode1 {
        async fn set_next_boot(&self, nodes: &[NodeId], _device: BootDevice) -> Outcomes {
            Outcomes::from_fn(nodes, |n| {
                if n == NodeId(1) {
                    Err(NodeError::new(ErrorKind::Unreachable, "no answer"))
                } else {
                    Ok(())
                }
            })
        }
    }

    /// The device is set as the profile is written (the deploy kernel's own `reboot` into the deployed
    /// system is no power step); a node whose device cannot be set fails with the setter's error kind.
    #[tokio::test]
    async fn writing_a_profile_sets_its_device() {
        use crate::netboot::{BootProfile, NetBoot};
        let nodes = [NodeId(0), NodeId(1), NodeId(2)];
        let local = BootProfile::LocalDisk {
            device: "/dev/sda".into(),
            partition: 3,
            system: None,
        };
        let devices = Arc::new(Devices::default());
        let netboot = RecordingNetBoot::new(
            Arc::new(Profiles),
            BootIntents::default(),
            Some(devices.clone()),
        );
        let out = netboot.set_profile(&nodes, &local).await;
        assert_eq!(out.failures().len(), 1, "node 2's profile: {out:?}");
        assert_eq!(
            *devices.0.lock().unwrap(),
            [(BootDevice::Disk, vec![NodeId(0), NodeId(1)])],
            "only the written profiles' devices are set"
        );
        let refusing = RecordingNetBoot::new(
            Arc::new(Profiles),
            BootIntents::default(),
            Some(Arc::new(RefusesNode1)),
        );
        let out = refusing.set_profile(&nodes, &local).await;
        let failures = out.failures();
        assert_eq!(failures.len(), 2, "{out:?}");
        assert_eq!(failures[0].0, NodeId(1));
        assert_eq!(failures[0].1.kind, ErrorKind::Unreachable);
        assert!(
            failures[0]
                .1
                .message
                .starts_with("setting the next boot device to disk: "),
            "{}",
            failures[0].1
        );
        assert_eq!(failures[1].0, NodeId(2));
    }
}

//! The boot each node's last profile asks for (the network or the local disk), recorded by a wrapper of the
//! profile writer and read by the next-boot power step when the device follows the profile. The wrapper
//! also sets the device as it writes the profile: the reboot into the deployed system is often the deploy
//! kernel's own `reboot`, which no power step sees.

use super::BootDeviceSetter;
use crate::netboot::{BootProfile, NetBoot};
use crate::node::NodeId;
use crate::outcome::{NodeError, Outcome, Outcomes};
use crate::power::ipmi::bootdev::BootDevice;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Each node's device of its last profile, shared by [`RecordingNetBoot`] and the next-boot step.
#[derive(Clone, Debug, Default)]
pub struct BootIntents(Arc<Mutex<BTreeMap<NodeId, BootDevice>>>);

impl BootIntents {
    /// The device of `node`'s last profile: PXE when none was written (a node's first boot of a
    /// deployment is the deploy kernel's).
    pub fn device(&self, node: NodeId) -> BootDevice {
        self.0
            .lock()
            .ok()
            .and_then(|map| map.get(&node).copied())
            .unwrap_or(BootDevice::Pxe)
    }

    fn record(&self, nodes: impl Iterator<Item = NodeId>, device: BootDevice) {
        if let Ok(mut map) = self.0.lock() {
            for node in nodes {
                map.insert(node, device);
            }
        }
    }
}

/// The device a profile boots: the disk for the deployed system, the network for every other profile.
pub fn profile_device(profile: &BootProfile) -> BootDevice {
    match profile {
        BootProfile::LocalDisk { .. } => BootDevice::Disk,
        BootProfile::DeployKernel { .. } | BootProfile::Custom { .. } => BootDevice::Pxe,
    }
}

/// A profile writer that records, for the nodes it wrote a profile for, the device that profile boots, and
/// sets it through `setter` when one is given.
pub struct RecordingNetBoot {
    inner: Arc<dyn NetBoot>,
    intents: BootIntents,
    setter: Option<Arc<dyn BootDeviceSetter>>,
}

impl RecordingNetBoot {
    /// Wraps `inner`, recording into `intents`; with `setter`, a node whose device cannot be set fails.
    pub fn new(
        inner: Arc<dyn NetBoot>,
        intents: BootIntents,
        setter: Option<Arc<dyn BootDeviceSetter>>,
    ) -> Self {
        RecordingNetBoot {
            inner,
            intents,
            setter,
        }
    }
}

#[async_trait]
impl NetBoot for RecordingNetBoot {
    async fn set_profile(&self, nodes: &[NodeId], profile: &BootProfile) -> Outcomes {
        let out = self.inner.set_profile(nodes, profile).await;
        let device = profile_device(profile);
        let written = out
            .iter()
            .filter(|(_, o)| o.is_ok())
            .map(|(node, _)| *node)
            .collect::<Vec<_>>();
        self.intents.record(written.iter().copied(), device);
        let Some(setter) = &self.setter else {
            return out;
        };
        if written.is_empty() {
            return out;
        }
        let refused: BTreeMap<NodeId, NodeError> = setter
            .set_next_boot(&written, device)
            .await
            .failures()
            .into_iter()
            .collect();
        let done: BTreeMap<NodeId, Outcome> = out.into_iter().collect();
        Outcomes::from_fn(nodes, |node| match refused.get(&node) {
            Some(error) => Err(NodeError::new(
                error.kind,
                format!("setting the next boot device to {device}: {error}"),
            )),
            None => done.get(&node).cloned().unwrap_or_else(|| {
                Err(NodeError::new(
                    crate::ErrorKind::CommandFailed,
                    "the profile writer gave no outcome",
                ))
            }),
        })
    }
}

//! The next boot device set through each node's Redfish service (`Boot.BootSourceOverrideTarget`): `Pxe`
//! for the network, `Hdd` for the disk.

use super::{BootTarget, RedfishPower};
use crate::node::NodeId;
use crate::outcome::{ErrorKind, NodeError, Outcomes, for_each_node};
use crate::power::ipmi::bootdev::BootDevice;
use crate::power::next_boot::BootDeviceSetter;
use async_trait::async_trait;

/// Redfish services, with how long every override lasts and its mode.
pub struct RedfishNextBoot {
    services: RedfishPower,
    persistent: bool,
    uefi: bool,
}

impl RedfishNextBoot {
    /// Sets overrides through `services`: `Continuous` when `persistent`, else `Once`; in UEFI mode when
    /// `uefi`.
    pub fn new(services: RedfishPower, persistent: bool, uefi: bool) -> Self {
        RedfishNextBoot {
            services,
            persistent,
            uefi,
        }
    }
}

/// The Redfish target of an IPMI boot device, when Redfish has one.
pub fn target_of(device: BootDevice) -> Option<BootTarget> {
    match device {
        BootDevice::Pxe => Some(BootTarget::Pxe),
        BootDevice::Disk => Some(BootTarget::Hdd),
        BootDevice::None => Some(BootTarget::None),
        _ => None,
    }
}

#[async_trait]
impl BootDeviceSetter for RedfishNextBoot {
    async fn set_next_boot(&self, nodes: &[NodeId], device: BootDevice) -> Outcomes {
        let Some(target) = target_of(device) else {
            return Outcomes::all(
                nodes,
                Err(NodeError::new(
                    ErrorKind::NotSupported,
                    format!("no Redfish boot override for the device {device}"),
                )),
            );
        };
        let (services, persistent, uefi) = (self.services.clone(), self.persistent, self.uefi);
        for_each_node(nodes, nodes.len(), move |node| {
            let services = services.clone();
            async move {
                services
                    .set_boot_override(node, target, persistent, uefi)
                    .await
            }
        })
        .await
    }
}

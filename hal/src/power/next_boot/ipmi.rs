//! The next boot device set through BMCs over IPMI (`Set System Boot Options`, parameter 5).

use super::BootDeviceSetter;
use crate::node::NodeId;
use crate::outcome::Outcomes;
use crate::power::ipmi::IpmiPower;
use crate::power::ipmi::bootdev::{BootDevice, BootFlags};
use async_trait::async_trait;

/// The BMCs of the nodes, with the flags (persistent, EFI) every device is set with.
pub struct IpmiNextBoot {
    bmcs: IpmiPower,
    persistent: bool,
    efi: bool,
}

impl IpmiNextBoot {
    /// Sets devices through `bmcs`, for every future boot when `persistent`, as an EFI boot when `efi`.
    pub fn new(bmcs: IpmiPower, persistent: bool, efi: bool) -> Self {
        IpmiNextBoot {
            bmcs,
            persistent,
            efi,
        }
    }
}

#[async_trait]
impl BootDeviceSetter for IpmiNextBoot {
    async fn set_next_boot(&self, nodes: &[NodeId], device: BootDevice) -> Outcomes {
        let flags = BootFlags {
            persistent: self.persistent,
            efi: self.efi,
            ..BootFlags::next(device)
        };
        self.bmcs.set_boot_flags(nodes, flags).await
    }
}

//! The next boot device (System Boot Options parameter 5, "boot flags"): its encoding, shared by the
//! native client and the lab BMC, and the client's `chassis bootdev` / `chassis bootparam get 5`.

use super::commands::NETFN_CHASSIS;
use super::session::{IpmiError, Session};
use super::wire::WireError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Chassis: Set System Boot Options.
pub const CMD_SET_SYSTEM_BOOT_OPTIONS: u8 = 0x08;
/// Chassis: Get System Boot Options.
pub const CMD_GET_SYSTEM_BOOT_OPTIONS: u8 = 0x09;
/// Boot option parameter 0: set in progress.
pub const PARAM_SET_IN_PROGRESS: u8 = 0;
/// Boot option parameter 4: boot info acknowledge.
pub const PARAM_BOOT_INFO_ACK: u8 = 4;
/// Boot option parameter 5: boot flags.
pub const PARAM_BOOT_FLAGS: u8 = 5;
/// Version of the boot option parameters in Get System Boot Options responses.
pub const PARAM_VERSION: u8 = 0x01;

/// Boot flags byte 1: the flags are valid.
const VALID: u8 = 0x80;
/// Boot flags byte 1: they apply to every future boot, not only the next one.
const PERSISTENT: u8 = 0x40;
/// Boot flags byte 1: EFI boot (else PC compatible, "legacy").
const EFI: u8 = 0x20;

/// A boot device selector (boot flags byte 2, bits 5:2), named as `ipmitool chassis bootdev` does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BootDevice {
    /// No override: the firmware's own order.
    #[default]
    None,
    /// Force PXE (network) boot.
    Pxe,
    /// Force boot from the default hard disk.
    Disk,
    /// Force boot from the default hard disk, safe mode.
    Safe,
    /// Force boot from the diagnostic partition.
    Diag,
    /// Force boot from CD/DVD.
    Cdrom,
    /// Force boot into the firmware setup.
    Bios,
    /// Force boot from the floppy or primary removable media.
    Floppy,
}

impl BootDevice {
    /// Every device, in selector order.
    pub const ALL: [BootDevice; 8] = [
        BootDevice::None,
        BootDevice::Pxe,
        BootDevice::Disk,
        BootDevice::Safe,
        BootDevice::Diag,
        BootDevice::Cdrom,
        BootDevice::Bios,
        BootDevice::Floppy,
    ];

    /// The 4-bit selector.
    pub fn selector(self) -> u8 {
        match self {
            BootDevice::None => 0x0,
            BootDevice::Pxe => 0x1,
            BootDevice::Disk => 0x2,
            BootDevice::Safe => 0x3,
            BootDevice::Diag => 0x4,
            BootDevice::Cdrom => 0x5,
            BootDevice::Bios => 0x6,
            BootDevice::Floppy => 0xf,
        }
    }

    /// The device of a 4-bit selector (`None` for the remote-media selectors this crate does not name).
    pub fn from_selector(selector: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.selector() == selector)
    }

    /// `ipmitool`'s name (`none`, `pxe`, `disk`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            BootDevice::None => "none",
            BootDevice::Pxe => "pxe",
            BootDevice::Disk => "disk",
            BootDevice::Safe => "safe",
            BootDevice::Diag => "diag",
            BootDevice::Cdrom => "cdrom",
            BootDevice::Bios => "bios",
            BootDevice::Floppy => "floppy",
        }
    }

    /// Parses `ipmitool`'s name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == name)
    }
}

impl fmt::Display for BootDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Boot flags: the device to boot and how long the choice holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BootFlags {
    /// The flags are valid (the firmware obeys them).
    pub valid: bool,
    /// They apply to every future boot (`options=persistent`), else to the next one only.
    pub persistent: bool,
    /// EFI boot (`options=efiboot`), else PC compatible.
    pub efi: bool,
    /// The device.
    pub device: BootDevice,
}

impl BootFlags {
    /// Valid flags that boot `device` once, PC compatible.
    pub fn next(device: BootDevice) -> Self {
        BootFlags {
            valid: true,
            persistent: false,
            efi: false,
            device,
        }
    }

    /// The 5 data bytes of parameter 5.
    pub fn encode(&self) -> [u8; 5] {
        let mut first = 0;
        if self.valid {
            first |= VALID;
        }
        if self.persistent {
            first |= PERSISTENT;
        }
        if self.efi {
            first |= EFI;
        }
        [first, self.device.selector() << 2, 0, 0, 0]
    }

    /// Reads the data bytes of parameter 5 (at least the first two; unknown selectors are refused).
    pub fn decode(data: &[u8]) -> Result<Self, WireError> {
        let [first, second, ..] = data else {
            return Err(WireError::Truncated);
        };
        let device = BootDevice::from_selector((second >> 2) & 0x0f)
            .ok_or(WireError::Unsupported("boot device selector"))?;
        Ok(BootFlags {
            valid: first & VALID != 0,
            persistent: first & PERSISTENT != 0,
            efi: first & EFI != 0,
            device,
        })
    }

    /// The device the firmware boots next: the override when the flags are valid, else none.
    pub fn effective(&self) -> BootDevice {
        if self.valid {
            self.device
        } else {
            BootDevice::None
        }
    }
}

impl fmt::Display for BootFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.device)?;
        let mut options = Vec::new();
        if self.persistent {
            options.push("persistent");
        }
        if self.efi {
            options.push("efiboot");
        }
        if !self.valid {
            options.push("invalid");
        }
        if !options.is_empty() {
            write!(f, " (options={})", options.join(","))?;
        }
        Ok(())
    }
}

impl Session {
    /// Sets the boot flags as `ipmitool chassis bootdev` does: set in progress, clear the BIOS's
    /// acknowledgement, write parameter 5, commit, set complete. The progress and acknowledgement
    /// steps are optional for BMCs (their errors are ignored); the flags' write must succeed.
    pub async fn set_boot_flags(&mut self, flags: BootFlags) -> Result<(), IpmiError> {
        let _ = self.set_boot_param(PARAM_SET_IN_PROGRESS, &[0x01]).await;
        let _ = self
            .set_boot_param(PARAM_BOOT_INFO_ACK, &[0x01, 0x01])
            .await;
        let written = self.set_boot_param(PARAM_BOOT_FLAGS, &flags.encode()).await;
        if written.is_ok() {
            let _ = self.set_boot_param(PARAM_SET_IN_PROGRESS, &[0x02]).await;
        }
        let _ = self.set_boot_param(PARAM_SET_IN_PROGRESS, &[0x00]).await;
        written
    }

    /// Reads the boot flags (`ipmitool chassis bootparam get 5`).
    pub async fn boot_flags(&mut self) -> Result<BootFlags, IpmiError> {
        let data = self
            .command(
                NETFN_CHASSIS,
                CMD_GET_SYSTEM_BOOT_OPTIONS,
                &[PARAM_BOOT_FLAGS, 0, 0],
                "Get System Boot Options",
            )
            .await?;
        let protocol = |reason: String| IpmiError::Protocol {
            addr: self.addr().to_string(),
            reason,
        };
        match data.as_slice() {
            [_version, param, flags @ ..] if param & 0x7f == PARAM_BOOT_FLAGS => {
                BootFlags::decode(flags).map_err(|e| protocol(format!("boot flags: {e}")))
            }
            _ => Err(protocol(format!(
                "Get System Boot Options answered {data:02x?} for the boot flags"
            ))),
        }
    }

    async fn set_boot_param(&mut self, param: u8, data: &[u8]) -> Result<(), IpmiError> {
        let mut request = vec![param & 0x7f];
        request.extend_from_slice(data);
        self.command(
            NETFN_CHASSIS,
            CMD_SET_SYSTEM_BOOT_OPTIONS,
            &request,
            "Set System Boot Options",
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_encode_as_ipmitool_sends_them() {
        // `ipmitool chassis bootdev pxe`: 80 04 00 00 00.
        assert_eq!(
            BootFlags::next(BootDevice::Pxe).encode(),
            [0x80, 0x04, 0, 0, 0]
        );
        // `... bootdev disk options=persistent,efiboot`: e0 08 00 00 00.
        let flags = BootFlags {
            persistent: true,
            efi: true,
            ..BootFlags::next(BootDevice::Disk)
        };
        assert_eq!(flags.encode(), [0xe0, 0x08, 0, 0, 0]);
        assert_eq!(BootFlags::decode(&flags.encode()), Ok(flags));
        assert_eq!(flags.to_string(), "disk (options=persistent,efiboot)");
        // `bootdev floppy` is selector 0xf.
        assert_eq!(BootFlags::next(BootDevice::Floppy).encode()[1], 0x3c);
    }

    #[test]
    fn every_device_round_trips_and_bad_data_is_refused() {
        for device in BootDevice::ALL {
            assert_eq!(BootDevice::parse(device.as_str()), Some(device));
            let flags = BootFlags::next(device);
            assert_eq!(BootFlags::decode(&flags.encode()), Ok(flags));
        }
        assert_eq!(BootFlags::decode(&[0x80]), Err(WireError::Truncated));
        assert_eq!(
            BootFlags::decode(&[0x80, 0x09 << 2]),
            Err(WireError::Unsupported("boot device selector"))
        );
        let invalid = BootFlags {
            valid: false,
            ..BootFlags::next(BootDevice::Disk)
        };
        assert_eq!(invalid.effective(), BootDevice::None);
    }
}

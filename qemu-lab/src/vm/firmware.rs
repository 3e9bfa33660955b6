//! A lab VM's firmware (SeaBIOS or OVMF) and what drives its network boot (QEMU's iPXE ROM, or the
//! UEFI firmware's own PXE or HTTP boot), as QEMU arguments.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// OVMF's code (read-only, shared by every VM), from Debian's `ovmf`.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
/// OVMF's variable store template, copied once per VM (the boot order OVMF writes survives reboots).
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// The per-VM copy of [`OVMF_VARS`] in the VM's directory.
pub const VARS_FILE: &str = "OVMF_VARS.fd";

/// The firmware of a VM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    /// SeaBIOS, QEMU's default.
    #[default]
    Bios,
    /// OVMF (EDK II), with a per-VM variable store.
    Uefi,
}

/// What network-boots the VM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NicBoot {
    /// QEMU's iPXE option ROM of the NIC (BIOS or EFI build, after the firmware): a DHCP client of
    /// user class `iPXE`.
    #[default]
    IpxeRom,
    /// No option ROM: OVMF's own UEFI PXE (option 93 = 7, `PXEClient`); IPv6 PXE disabled.
    UefiPxe,
    /// No option ROM: OVMF's UEFI HTTP boot (option 93 = 16, `HTTPClient`); PXE disabled so that the
    /// firmware tries HTTP boot first.
    UefiHttp,
}

impl Firmware {
    /// The OVMF files this firmware needs on the host and their package (none for SeaBIOS).
    pub fn host_files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Firmware::Bios => &[],
            Firmware::Uefi => &[(OVMF_CODE, "ovmf"), (OVMF_VARS, "ovmf")],
        }
    }
}

/// The QEMU arguments of the firmware and of the NIC's boot: pflash drives for OVMF (code read-only,
/// variables in `vm_dir`), and the `fw_cfg` switches that leave only the wanted UEFI boot option.
pub fn firmware_args(firmware: Firmware, nic: NicBoot, vm_dir: &Path) -> Vec<String> {
    let mut args = Vec::new();
    if firmware == Firmware::Uefi {
        let vars: PathBuf = vm_dir.join(VARS_FILE);
        args.extend([
            "-drive".to_string(),
            format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"),
            "-drive".to_string(),
            format!(
                "if=pflash,format=raw,unit=1,file={}",
                vars.display().to_string().replace(',', ",,")
            ),
        ]);
        let disabled: &[&str] = match nic {
            NicBoot::IpxeRom => &[],
            NicBoot::UefiPxe => &["IPv6PXESupport"],
            NicBoot::UefiHttp => &["IPv4PXESupport", "IPv6PXESupport"],
        };
        for name in disabled {
            args.push("-fw_cfg".into());
            args.push(format!("name=opt/org.tianocore/{name},string=n"));
        }
    }
    args
}

/// The `virtio-net-pci` option that removes the iPXE ROM when the firmware boots by itself.
pub fn nic_rom_option(nic: NicBoot) -> &'static str {
    match nic {
        NicBoot::IpxeRom => "",
        NicBoot::UefiPxe | NicBoot::UefiHttp => ",romfile=",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bios_adds_nothing_and_uefi_gets_its_own_variables() {
        let dir = Path::new("/lab/vms/node-1");
        assert!(firmware_args(Firmware::Bios, NicBoot::IpxeRom, dir).is_empty());
        let args = firmware_args(Firmware::Uefi, NicBoot::UefiHttp, dir).join(" ");
        assert!(args.contains(&format!("unit=0,readonly=on,file={OVMF_CODE}")));
        assert!(args.contains("unit=1,file=/lab/vms/node-1/OVMF_VARS.fd"));
        assert!(args.contains("name=opt/org.tianocore/IPv4PXESupport,string=n"));
        let pxe = firmware_args(Firmware::Uefi, NicBoot::UefiPxe, dir).join(" ");
        assert!(!pxe.contains("IPv4PXESupport"));
        assert!(pxe.contains("IPv6PXESupport"));
        assert_eq!(nic_rom_option(NicBoot::IpxeRom), "");
        assert_eq!(nic_rom_option(NicBoot::UefiPxe), ",romfile=");
    }
}

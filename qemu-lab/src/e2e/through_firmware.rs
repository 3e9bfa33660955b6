//! `kalab e2e --boot-env classical` on UEFI: reads a VM's serial log to show that the deployed system was
//! started by a reboot through OVMF (between the deploy kernel and the deployed system, its boot manager's
//! `BdsDxe: starting` line, or the banner of iPXE's EFI build, which only UEFI firmware runs: OVMF prints
//! no boot manager line for the NIC's option ROM) and which network boot loaders ran on the way.

/// What the serial log shows of the last boot into the deployed system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirmwareBoot {
    /// OVMF's boot option that started the boot (`Boot0001 "UEFI PXEv4 (MAC:...)"`), or `iPXE EFI
    /// option ROM`.
    pub option: String,
    /// The loaders' own lines on the way (`kalab ipxe: profile ...`, `kalab grub: profile ...`).
    pub loaders: Vec<String>,
}

/// Why the log does not show a boot through the firmware.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FirmwareBootError {
    /// The deployed system never said it was ready.
    #[error("the serial log has no `kalab-env ready` line")]
    NoSystem,
    /// The deploy kernel never said it was ready before the system.
    #[error("the serial log has no deploy kernel before the deployed system")]
    NoDeployKernel,
    /// No OVMF boot between the deploy kernel and the system (kexec, or another firmware).
    #[error(
        "no OVMF `BdsDxe: starting` line nor iPXE EFI banner between the deploy kernel and the deployed system"
    )]
    NoFirmwareBoot,
}

/// The last boot into the deployed system in `log` (a VM's serial console, across reboots).
pub fn last_boot(log: &str) -> Result<FirmwareBoot, FirmwareBootError> {
    let lines: Vec<&str> = log.lines().map(|l| l.trim_matches(['\r', '\n'])).collect();
    let system = lines
        .iter()
        .rposition(|l| l.contains("kalab-env ready"))
        .ok_or(FirmwareBootError::NoSystem)?;
    let deploy = lines[..system]
        .iter()
        .rposition(|l| l.contains("kalab-deploy-kernel ready"))
        .ok_or(FirmwareBootError::NoDeployKernel)?;
    let between = &lines[deploy + 1..system];
    let bds = between.iter().rposition(|l| l.contains("BdsDxe: starting"));
    // iPXE's banner is followed by its feature list, which names EFI in the EFI build.
    let rom = between
        .iter()
        .rposition(|l| l.contains("Features:") && l.split_whitespace().any(|w| w == "EFI"));
    // OVMF's own line when it printed one (PXE, HTTP boot), else the ROM's banner.
    let (start, option) = match (bds, rom) {
        (Some(b), _) => (b, boot_option(between[b])),
        (None, Some(r)) => (r, "iPXE EFI option ROM".to_string()),
        (None, None) => return Err(FirmwareBootError::NoFirmwareBoot),
    };
    let loaders = between[start..]
        .iter()
        .filter_map(|l| l.find("kalab ").map(|at| l[at..].trim().to_string()))
        .filter(|l| l.starts_with("kalab ipxe:") || l.starts_with("kalab grub:"))
        .collect();
    Ok(FirmwareBoot { option, loaders })
}

/// The boot option of OVMF's `BdsDxe: starting Boot0002 "UEFI PXEv4 (...)" from <path>` line.
fn boot_option(line: &str) -> String {
    line.split_once("BdsDxe: starting ")
        .map_or("", |(_, rest)| rest)
        .split(" from ")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOY: &str = "BdsDxe: loading Boot0002 \"UEFI PXEv4 (MAC:525400000001)\" from PciRoot(0x0)/Pci(0x3,0x0)\n\
        BdsDxe: starting Boot0002 \"UEFI PXEv4 (MAC:525400000001)\" from PciRoot(0x0)/Pci(0x3,0x0)\n\
        kalab grub: profile grub.cfg/10.250.0.11\n\
        kalab-deploy-kernel ready node-1.lab 10.250.0.11\n";

    #[test]
    fn a_reboot_through_ovmf_is_found_with_its_loaders() {
        let log = format!(
            "{DEPLOY}reboot: Restarting system\r\n\
             BdsDxe: failed to load Boot0001 \"UEFI Misc Device\" from PciRoot(0x0)/Pci(0x4,0x0): Not Found\n\
             BdsDxe: starting Boot0003 \"UEFI HTTPv4 (MAC:525400000001)\" from PciRoot(0x0)/Pci(0x3,0x0)/MAC(525400000001,0x1)\n\
             \x1b[2Jkalab ipxe: profile ipxe.cfg/10.250.0.11\n\
             kalab grub: profile grub.cfg/10.250.0.11\n\
             kalab-env marker kalab-linux node-1.lab\nkalab-env ready node-1.lab\n"
        );
        let boot = last_boot(&log).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(boot.option, "Boot0003 \"UEFI HTTPv4 (MAC:525400000001)\"");
        assert_eq!(
            boot.loaders,
            [
                "kalab ipxe: profile ipxe.cfg/10.250.0.11",
                "kalab grub: profile grub.cfg/10.250.0.11"
            ]
        );
    }

    /// OVMF prints no boot manager line for the NIC's iPXE ROM; the EFI build's banner shows the firmware.
    #[test]
    fn the_efi_ipxe_rom_counts_as_a_boot_through_ovmf() {
        let log = "iPXE 1.0.0+git -- Open Source Network Boot Firmware -- http://ipxe.org\n\
                   Features: DNS HTTP iSCSI NFS TFTP AoE EFI Menu\n\
                   kalab ipxe: profile ipxe.cfg/10.250.0.11\n\
                   kalab-deploy-kernel ready node-1.lab 10.250.0.11\n\
                   reboot: Restarting system\n\
                   iPXE 1.0.0+git -- Open Source Network Boot Firmware -- http://ipxe.org\n\
                   Features: DNS HTTP iSCSI NFS TFTP AoE EFI Menu\n\
                   kalab ipxe: profile ipxe.cfg/10.250.0.11\n\
                   \x1b[0mkalab grub: profile grub.cfg/10.250.0.11\n\
                   kalab-env ready node-1.lab\n";
        let boot = last_boot(log).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(boot.option, "iPXE EFI option ROM");
        assert_eq!(boot.loaders.len(), 2, "{:?}", boot.loaders);
        let bios = log.replace(" EFI Menu", " Menu");
        assert_eq!(last_boot(&bios), Err(FirmwareBootError::NoFirmwareBoot));
    }

    #[test]
    fn kexec_and_missing_boots_are_refused() {
        let kexec =
            format!("{DEPLOY}kexec_core: Starting new kernel\nkalab-env ready node-1.lab\n");
        assert_eq!(last_boot(&kexec), Err(FirmwareBootError::NoFirmwareBoot));
        assert_eq!(last_boot(DEPLOY), Err(FirmwareBootError::NoSystem));
        assert_eq!(
            last_boot("kalab-env ready node-1.lab\n"),
            Err(FirmwareBootError::NoDeployKernel)
        );
    }
}

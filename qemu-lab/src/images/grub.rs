//! GRUB's network boot images, made with `grub-mkimage` from Debian's GRUB module packages: the BIOS PXE
//! image (`i386-pc-pxe`, loaded by QEMU's iPXE ROM) and the UEFI one (`x86_64-efi`, loaded by OVMF's PXE or
//! HTTP boot). Each embeds a configuration that reads the node's GrubPXE profile
//! (`grub.cfg/<ip>`, written by kadeploy3d) from the boot server, so that no module or `grub.cfg` is
//! fetched one small file at a time.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use super::run::output;
use super::{ImageError, Result, io};

/// The BIOS image, relative to the boot tree.
pub const BIOS_IMAGE: &str = "grub/core.0";
/// The UEFI image fetched over TFTP by UEFI PXE.
pub const EFI_IMAGE: &str = "grub/grubx64.efi";
/// The UEFI image chained by iPXE (local boots of `--boot ipxe|http` on UEFI): it configures its
/// interface by DHCP itself (`net_dhcp`: no cached DHCP answer is needed) and reads the profiles over
/// TFTP (GRUB 2.06's HTTP client, tried first, left the chained image at its prompt without the profile
/// under TCG: seen in the lab).
pub const EFI_CHAINED_IMAGE: &str = "grub/grubx64-dhcp.efi";
/// Where a node's GrubPXE profile is, relative to the boot tree (`profiles/directory` of server.conf).
pub const PROFILES: &str = "grub.cfg";

/// Modules every image carries (the platform's network driver is added).
const MODULES: &[&str] = &[
    "net",
    "tftp",
    "http",
    "normal",
    "configfile",
    "linux",
    "echo",
    "test",
    "part_msdos",
    "part_gpt",
    "ext2",
    "fat",
    "chain",
    "sleep",
    "reboot",
    "halt",
    "ls",
    "cat",
    "serial",
    "terminal",
];

/// The GRUB platforms: (`grub-mkimage -O` format, module directory, package, platform drivers: the
/// network's, and on BIOS the disks' (`biosdisk`: a local boot chained from iPXE reads `(hd0,N)`)).
const BIOS: (&str, &str, &str, &str) = (
    "i386-pc-pxe",
    "/usr/lib/grub/i386-pc",
    "grub-pc-bin",
    "pxe biosdisk",
);
const EFI: (&str, &str, &str, &str) = (
    "x86_64-efi",
    "/usr/lib/grub/x86_64-efi",
    "grub-efi-amd64-bin",
    "efinet",
);

/// How an image reaches the profiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    /// The firmware (PXE) configured the interface; profiles over TFTP.
    PxeTftp,
    /// GRUB configures the interface by DHCP (`net_dhcp`); profiles over TFTP.
    DhcpTftp,
}

/// The configuration embedded in an image (GRUB's rescue parser runs it: no `if`).
fn embedded_config(server: Ipv4Addr, transport: Transport, serial: bool) -> String {
    let mut cfg = String::new();
    if serial {
        // SeaBIOS and GRUB's BIOS console print on the VGA screen only; OVMF mirrors to the serial port.
        cfg.push_str("serial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n");
    }
    if transport == Transport::DhcpTftp {
        // net_bootp sends BOOTP requests (no DHCP message type), which the DHCP server ignores.
        cfg.push_str("net_dhcp\n");
    }
    let device = format!("tftp,{server}");
    cfg.push_str(&format!(
        "set root=({device})\nset prefix=({device})/grub\necho \"kalab grub: profile {PROFILES}/$net_default_ip\"\nconfigfile ({device})/{PROFILES}/$net_default_ip\n"
    ));
    cfg
}

/// Writes into the boot tree `dest` the GRUB images the lab's boot needs: the BIOS image when `bios`,
/// the UEFI PXE and HTTP boot images when `efi`; `server` is the boot server's address.
pub fn write_images(dest: &Path, server: Ipv4Addr, bios: bool, efi: bool) -> Result<()> {
    let dir = dest.join("grub");
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    std::fs::create_dir_all(dest.join(PROFILES))
        .map_err(io(format!("creating {}", dest.join(PROFILES).display())))?;
    let mut images = Vec::new();
    if bios {
        images.push((BIOS, BIOS_IMAGE, Transport::PxeTftp, true));
    }
    if efi {
        images.push((EFI, EFI_IMAGE, Transport::PxeTftp, false));
        images.push((EFI, EFI_CHAINED_IMAGE, Transport::DhcpTftp, false));
    }
    for ((format, modules, package, driver), name, transport, serial) in images {
        if !Path::new(modules).join("linux.mod").is_file() {
            return Err(ImageError::Missing {
                path: modules.into(),
                package: package.into(),
            });
        }
        let config = dir.join(format!(".{format}-{transport:?}.cfg"));
        std::fs::write(&config, embedded_config(server, transport, serial))
            .map_err(io(format!("writing {}", config.display())))?;
        let image = dest.join(name);
        let made = output(
            Command::new("grub-mkimage")
                .args(["-O", format, "-d", modules, "-c"])
                .arg(&config)
                .args(["-p", &format!("(tftp,{server})/grub"), "-o"])
                .arg(&image)
                .args(driver.split_whitespace())
                .args(MODULES),
        );
        let _ = std::fs::remove_file(&config);
        match made {
            Err(ImageError::Command { output, .. }) if output.contains("No such file") => {
                return Err(ImageError::Missing {
                    path: "grub-mkimage".into(),
                    package: "grub-common".into(),
                });
            }
            other => other?,
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_configuration_reads_the_nodes_profile() {
        let server = Ipv4Addr::new(10, 250, 0, 1);
        let tftp = embedded_config(server, Transport::PxeTftp, true);
        assert!(tftp.starts_with("serial --unit=0"));
        assert!(!tftp.contains("net_dhcp"));
        assert!(tftp.ends_with("configfile (tftp,10.250.0.1)/grub.cfg/$net_default_ip\n"));
        let chained = embedded_config(server, Transport::DhcpTftp, false);
        assert!(chained.starts_with("net_dhcp\n"));
        assert!(chained.ends_with("configfile (tftp,10.250.0.1)/grub.cfg/$net_default_ip\n"));
        assert!(!chained.contains(" if "), "the rescue parser has no `if`");
    }
}

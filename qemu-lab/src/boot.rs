//! How the lab's VMs network-boot: the firmware (`--firmware bios|uefi`) and the boot method
//! (`--boot pxelinux|ipxe|grub|http`), and what each choice asks of the site: the VMs' boot ROM, the
//! DHCP boot files of `netboot.conf`, the PXE methods of `server.conf`, the profile headers of the
//! cluster, and the files of the boot tree.

use crate::images::{self, grub};
use crate::vm::{Firmware, NicBoot};
use std::net::Ipv4Addr;
use std::path::Path;

/// The network boot method.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BootMethod {
    /// PXElinux over TFTP (BIOS only; the lab's historical boot).
    #[default]
    Pxelinux,
    /// iPXE (QEMU's ROM, BIOS or EFI build): scripts, kernels and initrds over HTTP.
    Ipxe,
    /// GRUB's network image (GrubPXE profiles): the image, profiles, kernels and initrds over TFTP
    /// (UEFI: through OVMF's own PXE).
    Grub,
    /// UEFI HTTP boot (DHCP class `HTTPClient`): OVMF fetches iPXE (`snponly.efi`, on the firmware's
    /// network driver) from the HTTP boot server; iPXE then reads its profiles, kernels and initrds
    /// over HTTP.
    Http,
}

/// A firmware and boot method that do not go together.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The combination cannot boot.
    #[error("--firmware {firmware} --boot {method}: {why}")]
    Unsupported {
        /// The firmware asked.
        firmware: &'static str,
        /// The method asked.
        method: &'static str,
        /// Why.
        why: &'static str,
    },
}

/// The lab's boot: firmware and method, checked to go together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabBoot {
    firmware: Firmware,
    method: BootMethod,
}

impl Default for LabBoot {
    fn default() -> Self {
        LabBoot {
            firmware: Firmware::Bios,
            method: BootMethod::Pxelinux,
        }
    }
}

impl BootMethod {
    /// The name on kalab's command line.
    pub fn name(self) -> &'static str {
        match self {
            BootMethod::Pxelinux => "pxelinux",
            BootMethod::Ipxe => "ipxe",
            BootMethod::Grub => "grub",
            BootMethod::Http => "http",
        }
    }
}

fn firmware_name(f: Firmware) -> &'static str {
    match f {
        Firmware::Bios => "bios",
        Firmware::Uefi => "uefi",
    }
}

impl LabBoot {
    /// `method` on `firmware`; PXElinux needs BIOS, UEFI HTTP boot needs UEFI.
    pub fn new(firmware: Firmware, method: BootMethod) -> Result<LabBoot, BootError> {
        let why = match (firmware, method) {
            (Firmware::Uefi, BootMethod::Pxelinux) => {
                Some("pxelinux.0 is a BIOS program: use --boot ipxe, grub or http")
            }
            (Firmware::Bios, BootMethod::Http) => {
                Some("HTTP boot is a UEFI firmware feature: add --firmware uefi")
            }
            _ => None,
        };
        match why {
            Some(why) => Err(BootError::Unsupported {
                firmware: firmware_name(firmware),
                method: method.name(),
                why,
            }),
            None => Ok(LabBoot { firmware, method }),
        }
    }

    /// The firmware.
    pub fn firmware(self) -> Firmware {
        self.firmware
    }

    /// The method.
    pub fn method(self) -> BootMethod {
        self.method
    }

    /// `bios-pxelinux`, `uefi-http`... (reports and file names).
    pub fn label(self) -> String {
        format!("{}-{}", firmware_name(self.firmware), self.method.name())
    }

    /// What network-boots the VMs: QEMU's iPXE ROM, except for GRUB and HTTP boot on UEFI, where
    /// OVMF's own PXE and HTTP boot do.
    pub fn nic_boot(self) -> NicBoot {
        match (self.firmware, self.method) {
            (Firmware::Uefi, BootMethod::Grub) => NicBoot::UefiPxe,
            (Firmware::Uefi, BootMethod::Http) => NicBoot::UefiHttp,
            _ => NicBoot::IpxeRom,
        }
    }

    /// True when the boot server must serve HTTP (every method but PXElinux).
    pub fn needs_http(self) -> bool {
        self.method != BootMethod::Pxelinux
    }

    /// The `dhcp/boot` section of `netboot.conf` (indented for it).
    pub fn dhcp_boot(self, server: Ipv4Addr) -> String {
        match self.method {
            // iPXE (QEMU's ROM) is handed pxelinux.0 too.
            BootMethod::Pxelinux => "    bios: pxelinux.0\n    ipxe: pxelinux.0\n".into(),
            BootMethod::Ipxe => format!("    ipxe: http://{server}/{IPXE_SCRIPT}\n"),
            BootMethod::Grub => format!(
                "    bios: {bios}\n    ipxe: {bios}\n    uefi: {efi}\n",
                bios = grub::BIOS_IMAGE,
                efi = grub::EFI_IMAGE
            ),
            BootMethod::Http => format!(
                "    uefi_http: http://{server}/{IPXE_EFI}\n    ipxe: http://{server}/{IPXE_SCRIPT}\n"
            ),
        }
    }

    /// The `pxe` section of `server.conf` (after `pxe:`): the method nodes get from DHCP and, for iPXE,
    /// GRUB as the local-boot method it chains to (iPXE cannot run PXElinux's chain.c32): GRUB reads the
    /// node's GrubPXE local profile over TFTP and loads the deployed system's kernel and initrd from its
    /// partition, on BIOS and UEFI alike.
    pub fn pxe_conf(self, server: Ipv4Addr) -> String {
        let userfiles = "    userfiles:\n      directory: userfiles\n      max_size: 200\n";
        match self.method {
            BootMethod::Pxelinux => format!(
                "  dhcp:\n    method: PXElinux\n    repository: tftpboot\n    export:\n      kind: tftp\n      server: {server}\n    profiles:\n      directory: pxelinux.cfg\n      filename: ip_hex\n{userfiles}"
            ),
            BootMethod::Ipxe | BootMethod::Http => {
                let local = match self.firmware {
                    Firmware::Bios => grub::BIOS_IMAGE,
                    Firmware::Uefi => grub::EFI_CHAINED_IMAGE,
                };
                format!(
                    "  dhcp:\n    method: IPXE\n    repository: tftpboot\n    export:\n      kind: http\n      server: {server}\n    profiles:\n      directory: {IPXE_PROFILES}\n      filename: ip\n{userfiles}  localboot:\n    method: GrubPXE\n    repository: tftpboot\n    binary: {local}\n    export:\n      kind: tftp\n      server: {server}\n    profiles:\n      directory: {grub}\n      filename: ip\n",
                    grub = grub::PROFILES
                )
            }
            // GRUB 2.06's HTTP client times out on an 8 MB kernel under TCG (seen in the lab with both
            // its BIOS image, through the ROM's UNDI, and its UEFI image): its kernels come over TFTP.
            BootMethod::Grub => format!(
                "  dhcp:\n    method: GrubPXE\n    repository: tftpboot\n    export:\n      kind: tftp\n      server: {server}\n    profiles:\n      directory: {grub}\n      filename: ip\n{userfiles}",
                grub = grub::PROFILES,
            ),
        }
    }

    /// The cluster's `pxe/headers` section (after `headers:`): PXElinux's serial console and no
    /// prompt; none for iPXE and GRUB, whose images set their console themselves.
    pub fn headers(self) -> &'static str {
        match self.method {
            BootMethod::Pxelinux => {
                "    dhcp: |\n      SERIAL 0 115200\n      PROMPT 0\n      TIMEOUT 0\n    localboot: |\n      SERIAL 0 115200\n      PROMPT 0\n      TIMEOUT 0\n    networkboot: |\n      SERIAL 0 115200\n      PROMPT 0\n      TIMEOUT 0\n"
            }
            BootMethod::Ipxe | BootMethod::Grub | BootMethod::Http => {
                "    dhcp: ''\n    localboot: ''\n    networkboot: ''\n"
            }
        }
    }

    /// Writes the boot tree's loaders for this boot into `tftp` (the repository): PXElinux and its
    /// modules, GRUB's images, iPXE's first script; `server` is the boot server's address.
    pub fn write_files(self, tftp: &Path, server: Ipv4Addr) -> images::Result<()> {
        match self.method {
            BootMethod::Pxelinux => images::pxe_files_into(tftp),
            BootMethod::Ipxe | BootMethod::Http => {
                if self.method == BootMethod::Http {
                    copy_package_file(IPXE_EFI_HOST, "ipxe", &tftp.join(IPXE_EFI))?;
                }
                std::fs::create_dir_all(tftp.join(IPXE_PROFILES)).map_err(|source| {
                    images::ImageError::Io {
                        what: format!("creating {IPXE_PROFILES}"),
                        source,
                    }
                })?;
                std::fs::write(tftp.join(IPXE_SCRIPT), ipxe_script(server)).map_err(|source| {
                    images::ImageError::Io {
                        what: format!("writing {IPXE_SCRIPT}"),
                        source,
                    }
                })?;
                // Local boots chain to GRUB.
                let bios = self.firmware == Firmware::Bios;
                grub::write_images(tftp, server, bios, !bios)
            }
            BootMethod::Grub => {
                let bios = self.firmware == Firmware::Bios;
                grub::write_images(tftp, server, bios, !bios)
            }
        }
    }
}

/// iPXE for UEFI HTTP boot, on the host (Debian's `ipxe`): the build that drives the NIC through the
/// firmware's own network driver, ~170 KiB.
const IPXE_EFI_HOST: &str = "/usr/lib/ipxe/snponly.efi";
/// Where UEFI HTTP boot fetches it, relative to the boot tree.
pub const IPXE_EFI: &str = "ipxe/snponly.efi";

/// Copies an installed package's file to `dest`, or fails naming the package.
fn copy_package_file(host: &str, package: &str, dest: &Path) -> images::Result<()> {
    if !Path::new(host).is_file() {
        return Err(images::ImageError::Missing {
            path: host.into(),
            package: package.into(),
        });
    }
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|source| images::ImageError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
    }
    std::fs::copy(host, dest).map_err(|source| images::ImageError::Io {
        what: format!("copying {host}"),
        source,
    })?;
    Ok(())
}

/// iPXE's first script (its DHCP boot file), relative to the boot tree.
pub const IPXE_SCRIPT: &str = "boot.ipxe";
/// Directory of the iPXE profiles (`profiles/directory` of server.conf), named by node address.
pub const IPXE_PROFILES: &str = "ipxe.cfg";

/// The first script: iPXE reads the node's profile, named by its address, over HTTP.
fn ipxe_script(server: Ipv4Addr) -> String {
    format!(
        "#!ipxe\necho kalab ipxe: profile {IPXE_PROFILES}/${{ip}}\nchain http://{server}/{IPXE_PROFILES}/${{ip}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 1);

    #[test]
    fn only_combinations_that_boot_are_accepted() {
        assert!(LabBoot::new(Firmware::Uefi, BootMethod::Pxelinux).is_err());
        assert!(LabBoot::new(Firmware::Bios, BootMethod::Http).is_err());
        for m in [BootMethod::Ipxe, BootMethod::Grub] {
            assert!(LabBoot::new(Firmware::Bios, m).is_ok());
            assert!(LabBoot::new(Firmware::Uefi, m).is_ok());
        }
        assert_eq!(LabBoot::default().nic_boot(), NicBoot::IpxeRom);
        let http = LabBoot::new(Firmware::Uefi, BootMethod::Http).unwrap();
        assert_eq!(http.nic_boot(), NicBoot::UefiHttp);
        assert_eq!(http.label(), "uefi-http");
    }

    #[test]
    fn the_default_is_the_labs_historical_pxelinux_boot() {
        let b = LabBoot::default();
        assert_eq!(
            b.dhcp_boot(SERVER),
            "    bios: pxelinux.0\n    ipxe: pxelinux.0\n"
        );
        assert!(b.pxe_conf(SERVER).contains("method: PXElinux"));
        assert!(b.headers().contains("SERIAL 0 115200"));
        assert!(!b.needs_http());
    }

    #[test]
    fn http_boot_hands_out_a_url_and_ipxe_chains_its_profile() {
        let http = LabBoot::new(Firmware::Uefi, BootMethod::Http).unwrap();
        assert_eq!(
            http.dhcp_boot(SERVER),
            "    uefi_http: http://10.250.0.1/ipxe/snponly.efi\n    ipxe: http://10.250.0.1/boot.ipxe\n"
        );
        assert!(http.pxe_conf(SERVER).contains("method: IPXE"));
        assert!(
            http.pxe_conf(SERVER)
                .contains("binary: grub/grubx64-dhcp.efi")
        );
        assert!(!http.headers().contains("SERIAL"));
        let ipxe = LabBoot::new(Firmware::Bios, BootMethod::Ipxe).unwrap();
        assert!(ipxe.pxe_conf(SERVER).contains("binary: grub/core.0"));
        assert_eq!(
            ipxe_script(SERVER),
            "#!ipxe\necho kalab ipxe: profile ipxe.cfg/${ip}\nchain http://10.250.0.1/ipxe.cfg/${ip}\n"
        );
    }
}

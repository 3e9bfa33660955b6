//! Profile text in the four syntaxes (Kadeploy's `labelize`, spec §7): network, local and chain boots.

use super::config::{PxeMethod, Syntax};
use crate::netboot::LocalSystem;

/// What a generated profile boots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Boot<'a> {
    /// A kernel from the repository (`network`); `initrd` may be empty (nfsroot).
    Network {
        /// Kernel, relative to the repository.
        kernel: &'a str,
        /// Initrd, relative to the repository, or empty.
        initrd: &'a str,
        /// Kernel command line.
        params: &'a str,
    },
    /// The local disk `hd<disk>`, partition `part` (`local`).
    Local {
        /// Disk number (`/dev/sda` → 0).
        disk: u32,
        /// Partition number.
        part: u32,
        /// The block device (`/dev/sda`): GRUB's `root=` is this device followed by `part`.
        device: &'a str,
        /// The deployed system GRUB boots directly; `None` chain-loads the partition.
        system: Option<&'a LocalSystem>,
    },
    /// Another NBP of the repository (`chain`).
    Chain {
        /// The NBP, relative to the repository.
        binary: &'a str,
    },
}

impl Boot<'_> {
    fn label(&self) -> &'static str {
        match self {
            Boot::Network { .. } => "network",
            Boot::Local { .. } => "local",
            Boot::Chain { .. } => "chain",
        }
    }
}

/// Disk number of a block device: its last letter minus `a` (`/dev/sdb` → 1, `/dev/vda` → 0).
pub fn disk_number(device: &str) -> u32 {
    device
        .bytes()
        .rev()
        .find(|b| b.is_ascii_lowercase())
        .map_or(0, |b| u32::from(b - b'a'))
}

/// The profile text of `boot` written with `method`, after `header` (may be empty).
pub fn render(method: &PxeMethod, header: &str, boot: &Boot<'_>) -> String {
    let lines = lines(method, boot);
    let header = header.trim_end_matches('\n');
    let mut out = String::new();
    match method.syntax {
        Syntax::PxeLinux | Syntax::GPxeLinux => {
            push_header(&mut out, header);
            let label = boot.label();
            out.push_str(&format!("DEFAULT {label}\nLABEL {label}\n"));
            for line in lines {
                out.push_str(&format!("\t{line}\n"));
            }
        }
        Syntax::Ipxe => {
            out.push_str("#!ipxe\n");
            push_header(&mut out, header);
            out.push_str(&lines.join("\n"));
            out.push('\n');
        }
        Syntax::GrubPxe => {
            push_header(&mut out, header);
            if !header.contains("timeout") {
                out.push_str("timeout=0\n");
            }
            out.push_str(&format!("default=0\nmenuentry {} {{\n", boot.label()));
            for line in lines {
                out.push_str(&format!("\t{line}\n"));
            }
            out.push_str("}\n");
        }
    }
    out
}

fn push_header(out: &mut String, header: &str) {
    if !header.is_empty() {
        out.push_str(header);
        out.push('\n');
    }
}

fn lines(m: &PxeMethod, boot: &Boot<'_>) -> Vec<String> {
    let x = |p: &str| m.export_path(p);
    let join = |a: String, b: &str| if b.is_empty() { a } else { format!("{a} {b}") };
    match (m.syntax, boot) {
        (
            Syntax::PxeLinux | Syntax::GPxeLinux,
            Boot::Network {
                kernel,
                initrd,
                params,
            },
        ) => {
            let append = if initrd.is_empty() {
                join("APPEND".into(), params)
            } else {
                join(format!("APPEND initrd={}", x(initrd)), params)
            };
            vec![format!("KERNEL {}", x(kernel)), append]
        }
        (Syntax::PxeLinux | Syntax::GPxeLinux, Boot::Local { disk, part, .. }) => {
            vec![
                format!("COM32 {}", x("chain.c32")),
                format!("APPEND hd{disk} {part}"),
            ]
        }
        (Syntax::PxeLinux | Syntax::GPxeLinux, Boot::Chain { binary }) => {
            vec![format!("KERNEL {}", x(binary)), "APPEND keeppxe".into()]
        }
        (
            Syntax::Ipxe,
            Boot::Network {
                kernel,
                initrd,
                params,
            },
        ) => {
            let mut v = Vec::new();
            let mut chain = format!("chain {}", x(kernel));
            if !initrd.is_empty() {
                v.push(format!("initrd {}", x(initrd)));
                // UEFI iPXE hands the kernel its initrd only when the command line names it (the
                // EFI stub loads `initrd=<image name>`; the name is the file's); BIOS kernels ignore it.
                let name = initrd.rsplit('/').next().unwrap_or(initrd);
                chain = format!("{chain} initrd={name}");
            }
            v.push(join(chain, params));
            v
        }
        (Syntax::Ipxe, Boot::Local { disk, part, .. }) => {
            vec![format!("chain {} hd{disk} {part}", x("chain.c32"))]
        }
        (Syntax::Ipxe, Boot::Chain { binary }) => vec![format!("chain {}", x(binary))],
        (
            Syntax::GrubPxe,
            Boot::Network {
                kernel,
                initrd,
                params,
            },
        ) => {
            let mut v = vec![join(format!("linux {}", x(kernel)), params)];
            if !initrd.is_empty() {
                v.push(format!("initrd {}", x(initrd)));
            }
            v
        }
        (
            Syntax::GrubPxe,
            Boot::Local {
                disk,
                part,
                device,
                system,
            },
        ) => grub_local(*disk, *part, device, *system),
        (Syntax::GrubPxe, Boot::Chain { binary }) => {
            vec![format!("pxechainloader {}", x(binary)), "boot".into()]
        }
    }
}

/// GrubPXE's local boot (Kadeploy's `GrubPXE#boot_local`): the deployed system's kernel by its `os`, or a
/// chain-load of the partition when the system is not known.
fn grub_local(disk: u32, part: u32, device: &str, system: Option<&LocalSystem>) -> Vec<String> {
    let mut v = vec![format!("set root=(hd{disk},{part})")];
    let Some(s) = system else {
        v.push("chainloader +1".into());
        return v;
    };
    let root = format!("root={device}{part}");
    let params = if s.params.is_empty() {
        root
    } else {
        format!("{} {root}", s.params)
    };
    match s.os.as_str() {
        "linux" => {
            v.push(format!("linux {} {params}", s.kernel));
            if !s.initrd.is_empty() {
                v.push(format!("initrd {}", s.initrd));
            }
        }
        "xen" => {
            v.push(format!(
                "multiboot {} {}",
                s.hypervisor, s.hypervisor_params
            ));
            v.push(format!("module {} {params}", s.kernel));
            if !s.initrd.is_empty() {
                v.push(format!("module {}", s.initrd));
            }
        }
        "bsd" => v.extend(
            ["insmod ufs1", "insmod ufs2", "insmod zfs", "chainloader +1"].map(String::from),
        ),
        "windows" => v.extend(["insmod fat", "insmod ntfs", "ntldr /bootmgr"].map(String::from)),
        _ => v.push("chainloader +1".into()),
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(name: &str, export: &str) -> PxeMethod {
        PxeMethod::new(
            name,
            "/srv/tftp",
            None,
            export,
            "10.0.0.1",
            "pxelinux.cfg",
            "ip_hex",
        )
        .unwrap()
    }

    fn local(disk: u32, part: u32, system: Option<&LocalSystem>) -> Boot<'_> {
        Boot::Local {
            disk,
            part,
            device: "/dev/sda",
            system,
        }
    }

    const NET: Boot<'static> = Boot::Network {
        kernel: "kernels/vmlinuz",
        initrd: "kernels/initrd",
        params: "console=ttyS0 quiet",
    };

    #[test]
    fn pxelinux_network_with_header() {
        let text = render(
            &method("PXElinux", "tftp"),
            "PROMPT 1\nSERIAL 0 38400",
            &NET,
        );
        assert_eq!(
            text,
            "PROMPT 1\nSERIAL 0 38400\nDEFAULT network\nLABEL network\n\tKERNEL /kernels/vmlinuz\n\t\
             APPEND initrd=/kernels/initrd console=ttyS0 quiet\n"
        );
    }

    #[test]
    fn pxelinux_local_and_chain() {
        let m = method("PXElinux", "tftp");
        assert_eq!(
            render(&m, "", &local(1, 3, None)),
            "DEFAULT local\nLABEL local\n\tCOM32 /chain.c32\n\tAPPEND hd1 3\n"
        );
        assert_eq!(
            render(
                &m,
                "",
                &Boot::Chain {
                    binary: "grubpxe.0"
                }
            ),
            "DEFAULT chain\nLABEL chain\n\tKERNEL /grubpxe.0\n\tAPPEND keeppxe\n"
        );
    }

    #[test]
    fn ipxe_over_http() {
        let text = render(&method("IPXE", "http"), "", &NET);
        assert_eq!(
            text,
            "#!ipxe\ninitrd http://10.0.0.1/kernels/initrd\nchain http://10.0.0.1/kernels/vmlinuz initrd=initrd console=ttyS0 quiet\n"
        );
        let nfs = Boot::Network {
            kernel: "k",
            initrd: "",
            params: "",
        };
        assert_eq!(
            render(&method("IPXE", "tftp"), "", &nfs),
            "#!ipxe\nchain /k\n"
        );
    }

    #[test]
    fn grub_timeout_only_without_header_timeout() {
        let m = method("GrubPXE", "tftp");
        assert_eq!(
            render(&m, "", &local(0, 2, None)),
            "timeout=0\ndefault=0\nmenuentry local {\n\tset root=(hd0,2)\n\tchainloader +1\n}\n"
        );
        let text = render(&method("GrubPXE", "http"), "set timeout=5", &NET);
        assert!(
            text.starts_with("set timeout=5\ndefault=0\nmenuentry network {\n"),
            "{text}"
        );
        assert!(text.contains("\tlinux (http,10.0.0.1)/kernels/vmlinuz console=ttyS0 quiet\n"));
        assert!(text.contains("\tinitrd (http,10.0.0.1)/kernels/initrd\n"));
    }

    /// GrubPXE boots the deployed kernel with its parameters and root partition (Kadeploy's `boot_local`);
    /// before, every GrubPXE local boot was `chainloader +1`, which needs a bootloader on the partition
    /// although Kadeploy skips `install_bootloader` with GrubPXE.
    #[test]
    fn grub_local_boots_the_environment_kernel() {
        let m = method("GrubPXE", "tftp");
        let mut system = LocalSystem {
            os: "linux".into(),
            kernel: "/vmlinuz".into(),
            initrd: "/initrd.img".into(),
            params: "console=ttyS0".into(),
            ..LocalSystem::default()
        };
        assert_eq!(
            render(&m, "", &local(0, 3, Some(&system))),
            "timeout=0\ndefault=0\nmenuentry local {\n\tset root=(hd0,3)\n\t\
             linux /vmlinuz console=ttyS0 root=/dev/sda3\n\tinitrd /initrd.img\n}\n"
        );
        system.os = "xen".into();
        system.hypervisor = "/xen.gz".into();
        system.hypervisor_params = "dom0_mem=1G".into();
        let xen = render(&m, "", &local(0, 3, Some(&system)));
        assert!(
            xen.contains("\tmultiboot /xen.gz dom0_mem=1G\n\tmodule /vmlinuz console=ttyS0 root=/dev/sda3\n\tmodule /initrd.img\n"),
            "{xen}"
        );
        system.os = "windows".into();
        let win = render(&m, "", &local(0, 1, Some(&system)));
        assert!(win.contains("\tinsmod ntfs\n\tntldr /bootmgr\n"), "{win}");
        let pxelinux = render(&method("PXElinux", "tftp"), "", &local(0, 3, Some(&system)));
        assert!(
            pxelinux.contains("COM32 /chain.c32"),
            "other loaders chain-load"
        );
    }

    #[test]
    fn disk_numbers() {
        assert_eq!(disk_number("/dev/sda"), 0);
        assert_eq!(disk_number("/dev/sdb"), 1);
        assert_eq!(disk_number("/dev/vdc"), 2);
        assert_eq!(disk_number(""), 0);
    }
}

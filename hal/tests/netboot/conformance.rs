//! The conformance suite (`hal::testing::conformance`) against the PXE profile writer: profiles of every
//! kind written for three nodes (PXElinux chaining to GRUB for local boots) into a scratch TFTP tree.

use hal::netboot::pxe::{PxeConfig, PxeMethod, PxeWriter};
use hal::testing::conformance::{NetBootSubject, Nodes, check_netboot};
use hal::{BootProfile, NodeInfo};

#[tokio::test]
async fn pxe_profile_writer_conforms() {
    let root = std::env::temp_dir().join(format!("hal-conformance-pxe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for dir in ["pxelinux.cfg", "grub.cfg"] {
        std::fs::create_dir_all(root.join(dir)).expect("profile directory");
    }
    let method = |name: &str, binary: Option<&str>, dir: &str, naming: &str| {
        PxeMethod::new(
            name,
            &root,
            binary.map(String::from),
            "tftp",
            "srv",
            dir,
            naming,
        )
        .expect("PXE method")
    };
    let mut config = PxeConfig::single(
        method("PXElinux", None, "pxelinux.cfg", "ip_hex"),
        "userfiles",
    );
    config.localboot = method("GrubPXE", Some("grubpxe.0"), "grub.cfg", "ip");
    config.validate().expect("valid PXE configuration");
    let nodes = (0..3)
        .map(|i| NodeInfo {
            name: format!("node-{i}.site"),
            address: [10, 0, 0, 10 + i].into(),
        })
        .collect();
    let writer = PxeWriter::new(config, nodes);
    let subject = NetBootSubject {
        nodes: Nodes::table(3),
        profiles: vec![
            BootProfile::DeployKernel {
                kernel: "kernels/deploy-vmlinuz".into(),
                initrd: "kernels/deploy-initrd".into(),
                params: "console=ttyS0".into(),
            },
            BootProfile::LocalDisk {
                device: "/dev/sda".into(),
                partition: 3,
                system: None,
            },
            BootProfile::Custom {
                name: "rescue".into(),
                content: "DEFAULT rescue".into(),
                singularities: None,
            },
        ],
    };
    let checked = check_netboot(&writer, &subject).await;
    let written = std::fs::read_dir(root.join("grub.cfg")).map_or(0, |d| d.count());
    let _ = std::fs::remove_dir_all(&root);
    checked.unwrap();
    assert_eq!(written, 3, "one GRUB profile per node");
}

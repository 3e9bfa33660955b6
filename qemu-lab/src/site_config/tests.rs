//! Tests of the lab's site configuration: what kadeploy3d and kasim load for each power driver and boot.

use super::*;

/// `--power redfish` and `--power pdu` give `backend/redfish` and `backend/pdu` keys the deployer
/// accepts, with an outlet per node; the PDU cluster has no hard commands.
#[test]
fn out_of_band_power_keys_parse_with_the_deployers_parser() {
    let dir = std::env::temp_dir().join(format!("kalab-site-oob-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in [
        "ipmi.pass",
        "pdu-auth.pass",
        "pdu-priv.pass",
        "pdu-community.pass",
    ] {
        std::fs::write(dir.join(name), "lab-password-1\n").unwrap();
    }
    let mut spec = spec(vec![PathBuf::from("/var/cache/kalab/env-1")]);
    spec.dir = dir.clone();
    spec.nodes = (1..=2)
        .map(|i| SiteNode {
            name: format!("node-{i}.lab"),
            ip: Ipv4Addr::new(10, 250, 0, 10 + i),
            mac: format!("52:54:00:1a:00:0{i}"),
            bmc_ip: Ipv4Addr::new(10, 250, 0, 200 + i),
        })
        .collect();
    spec.power = PowerDriver::Redfish;
    let conf = kadeploy::config::parse_server_conf(&server_conf(&spec), "server.conf", &dir)
        .unwrap_or_else(|e| panic!("{e}"));
    let site = conf
        .value
        .backend
        .site
        .unwrap_or_else(|| panic!("site keys"));
    let redfish = site.redfish.unwrap_or_else(|| panic!("redfish keys"));
    assert_eq!(
        (redfish.url.as_str(), redfish.auth.as_str()),
        ("https://HOSTNAME_SHORT-bmc", "session")
    );
    spec.power = PowerDriver::Pdu;
    let conf = kadeploy::config::parse_server_conf(&server_conf(&spec), "server.conf", &dir)
        .unwrap_or_else(|e| panic!("{e}"));
    let pdu = conf
        .value
        .backend
        .site
        .and_then(|s| s.pdu)
        .unwrap_or_else(|| panic!("pdu keys"));
    assert_eq!(pdu.outlets["node-2.lab"], (PDU_HOST.to_string(), 2));
    assert!(pdu.v3.is_some_and(|v| v.priv_password.is_some()));
    assert!(
        !cluster_conf(&spec).contains("ipmitool"),
        "no hard commands"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every firmware and boot method gives a configuration the deployer loads (its PXE methods and the
/// cluster's headers) and boot services that hand each kind of client its boot file.
#[test]
fn every_boot_writes_a_configuration_the_deployer_loads() {
    use crate::boot::{BootMethod, LabBoot};
    use crate::vm::Firmware;
    let scratch = std::env::temp_dir().join(format!("kalab-site-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    for name in ["vmlinuz", "initrd", "key"] {
        std::fs::write(scratch.join(name), name).unwrap();
    }
    for (firmware, method) in [
        (Firmware::Bios, BootMethod::Pxelinux),
        (Firmware::Bios, BootMethod::Ipxe),
        (Firmware::Bios, BootMethod::Grub),
        (Firmware::Uefi, BootMethod::Ipxe),
        (Firmware::Uefi, BootMethod::Grub),
        (Firmware::Uefi, BootMethod::Http),
    ] {
        let boot = LabBoot::new(firmware, method).unwrap();
        let dir = scratch.join(boot.label());
        let spec = SiteSpec {
            dir: dir.clone(),
            server_ip: Ipv4Addr::new(10, 250, 0, 1),
            bridge: "br0".into(),
            nodes: vec![SiteNode {
                name: "node-1.lab".into(),
                ip: Ipv4Addr::new(10, 250, 0, 11),
                mac: "52:54:00:1a:00:00".into(),
                bmc_ip: Ipv4Addr::new(10, 250, 0, 201),
            }],
            deploy_vmlinuz: scratch.join("vmlinuz"),
            deploy_initrd: scratch.join("initrd"),
            deploy_params: "console=ttyS0".into(),
            ssh_key: scratch.join("key"),
            bmc_password: "pw".into(),
            vm_dir: scratch.join("vms"),
            power: PowerDriver::Ipmitool,
            install_bootloader: "#!/bin/sh\n".into(),
            block_device: "/dev/vda".into(),
            agent_binary: None,
            server_files: Vec::new(),
            boot,
        };
        write(&spec).unwrap();
        for d in ["grub.cfg", "ipxe.cfg"] {
            std::fs::create_dir_all(dir.join("tftpboot").join(d)).unwrap();
        }
        let loaded =
            kadeploy::config::load_dir(&dir).unwrap_or_else(|e| panic!("{}: {e:#}", boot.label()));
        let grub_local = loaded.pxe.localboot.syntax == hal::netboot::pxe::Syntax::GrubPxe;
        assert_eq!(
            grub_local,
            method != BootMethod::Pxelinux,
            "{}",
            boot.label()
        );
        // The deploy kernel's profile, as kadeploy3d writes it for node-1.
        let cluster = &loaded.config.clusters[0];
        let writer = hal::netboot::pxe::PxeWriter::new(
            loaded.pxe_of(cluster),
            vec![hal::NodeInfo {
                name: "node-1.lab".into(),
                address: "10.250.0.11".parse().unwrap(),
            }],
        );
        let deploy = hal::netboot::BootProfile::DeployKernel {
            kernel: "kernels/deploy-vmlinuz".into(),
            initrd: "kernels/deploy-initrd".into(),
            params: "console=ttyS0".into(),
        };
        writer.write_node(hal::NodeId(0), &deploy).unwrap();
        let (file, line) = match method {
            BootMethod::Pxelinux => ("pxelinux.cfg/0AFA000B", "KERNEL /kernels/deploy-vmlinuz"),
            BootMethod::Ipxe | BootMethod::Http => (
                "ipxe.cfg/10.250.0.11",
                "chain http://10.250.0.1/kernels/deploy-vmlinuz initrd=deploy-initrd console=ttyS0",
            ),
            BootMethod::Grub => (
                "grub.cfg/10.250.0.11",
                "linux (pxe)/kernels/deploy-vmlinuz console=ttyS0",
            ),
        };
        let profile = std::fs::read_to_string(dir.join("tftpboot").join(file)).unwrap();
        assert!(profile.contains(line), "{}: {profile}", boot.label());
        let services = hal::netboot::services::ServicesConfig::from_yaml(
            &std::fs::read_to_string(dir.join("netboot.conf")).unwrap(),
        )
        .unwrap();
        let dhcp = services.dhcp.unwrap();
        assert_eq!(services.http.is_some(), boot.needs_http());
        assert!(services.http.is_none_or(|h| !h.keep_alive));
        match method {
            BootMethod::Http => assert_eq!(
                dhcp.boot.uefi_http.as_deref(),
                Some("http://10.250.0.1/ipxe/snponly.efi")
            ),
            BootMethod::Grub => assert_eq!(dhcp.boot.uefi.as_deref(), Some("grub/grubx64.efi")),
            BootMethod::Ipxe => assert_eq!(
                dhcp.boot.ipxe.as_deref(),
                Some("http://10.250.0.1/boot.ipxe")
            ),
            BootMethod::Pxelinux => assert_eq!(dhcp.boot.bios.as_deref(), Some("pxelinux.0")),
        }
    }
    std::fs::remove_dir_all(&scratch).unwrap();
}

/// The lab's `server://` references (the environments' image and postinstall) stay allowed.
#[test]
fn server_conf_allows_the_environment_directories() {
    let envs = PathBuf::from("/var/cache/kalab/env-1");
    let spec = spec(vec![envs.clone()]);
    let settings = kadeploy_server::Settings::parse(&server_conf(&spec), &spec.dir)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(settings.server_files.dirs(), [envs]);
}

fn spec(server_files: Vec<PathBuf>) -> SiteSpec {
    SiteSpec {
        dir: PathBuf::from("/tmp/kalab"),
        server_ip: Ipv4Addr::new(10, 250, 0, 1),
        bridge: "br-lab".into(),
        nodes: Vec::new(),
        deploy_vmlinuz: PathBuf::new(),
        deploy_initrd: PathBuf::new(),
        deploy_params: String::new(),
        ssh_key: PathBuf::new(),
        bmc_password: String::new(),
        vm_dir: PathBuf::new(),
        power: PowerDriver::Ipmitool,
        install_bootloader: String::new(),
        block_device: "/dev/vda".into(),
        agent_binary: None,
        server_files,
        boot: crate::boot::LabBoot::default(),
    }
}

/// With native power the cluster asks for PXE through the BMCs before each reboot and its console
/// is serial-over-LAN; with Redfish the device follows the boot profile; with `ipmitool` templates
/// neither.
#[test]
fn native_power_sets_the_next_boot_device_and_attaches_consoles_over_sol() {
    use hal::power::ipmi::bootdev::BootDevice;
    use hal::power::next_boot::{NextBootChoice, NextBootSettings};
    let mut spec = spec(Vec::new());
    spec.deploy_params = "console=ttyS0".into();
    let next = |choice| NextBootSettings {
        choice,
        persistent: false,
        efi: false,
    };
    for (power, next_boot, console) in [
        (
            PowerDriver::Native,
            Some(next(NextBootChoice::Fixed(BootDevice::Pxe))),
            "sol activate",
        ),
        (
            PowerDriver::Redfish,
            Some(next(NextBootChoice::FollowProfile)),
            "socat - UNIX-CONNECT:",
        ),
        (PowerDriver::Ipmitool, None, "socat - UNIX-CONNECT:"),
    ] {
        spec.power = power;
        let parsed = kadeploy::config::parse_cluster_specific_with(
            &cluster_conf(&spec),
            "lab-cluster.conf",
            &spec.dir,
            &mut |_: &Path| Ok(String::new()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let ops = parsed.value.remoteops;
        assert_eq!(ops.next_boot, next_boot);
        assert!(ops.console.unwrap_or_default().contains(console));
    }
}

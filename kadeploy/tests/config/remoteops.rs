//! Remote operations read at load: `DEFAULT_CONNECTOR`, group files, the next boot device.

use super::super::*;

/// `boot/next_boot_device`: off by default; `pxe`, `disk` or `auto` with their options; other devices
/// refused.
#[test]
fn next_boot_device_is_off_by_default_and_checked() {
    use hal::power::ipmi::bootdev::BootDevice;
    use hal::power::next_boot::{NextBootChoice, NextBootSettings};
    let parsed = cluster(&cluster_text("")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.value.remoteops.next_boot, None);
    let with = |value: &str| {
        cluster_text("").replace(
            "  install_bootloader: grub\n",
            &format!("  install_bootloader: grub\n  next_boot_device: {value}\n"),
        )
    };
    let parsed = cluster(&with("{device: pxe, efiboot: true}")).unwrap_or_else(|e| panic!("{e}"));
    let pxe = NextBootSettings {
        choice: NextBootChoice::Fixed(BootDevice::Pxe),
        persistent: false,
        efi: true,
    };
    assert_eq!(parsed.value.remoteops.next_boot, Some(pxe));
    let parsed =
        cluster(&with("{device: disk, persistent: true}")).unwrap_or_else(|e| panic!("{e}"));
    let disk = NextBootSettings {
        choice: NextBootChoice::Fixed(BootDevice::Disk),
        persistent: true,
        efi: false,
    };
    assert_eq!(parsed.value.remoteops.next_boot, Some(disk));
    let parsed = cluster(&with("{device: auto}")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        parsed.value.remoteops.next_boot.map(|n| n.choice),
        Some(NextBootChoice::FollowProfile)
    );
    assert!(
        message(cluster(&with("{device: cdrom}")))
            .starts_with("c.conf: boot/next_boot_device/device: `cdrom` is not a boot device"),
    );
    assert!(message(cluster(&with("{efiboot: true}"))).contains("boot/next_boot_device/device"));
}

/// `DEFAULT_CONNECTOR` in `remoteops`, `command.conf` and `external/taktuk/connector` is replaced at load by
/// `external/default_connector`, given the deploy key when it is ssh (Kadeploy's sample soft reboot
/// `DEFAULT_CONNECTOR HOSTNAME_FQDN /sbin/reboot` then runs; before, the word stayed, the command failed
/// and every soft reboot escalated to hard); group files are read at load.
#[test]
fn default_connector_and_group_files_are_resolved_at_load() {
    let scratch = Scratch::sim300("connector", |t| {
        t.replace(
            "external:\n",
            "external:\n  default_connector: ssh -A -l root -q\n",
        )
    });
    let cluster_file = scratch.0.join("sim-cluster.conf");
    let text = std::fs::read_to_string(&cluster_file).expect("cluster file");
    let text = text.replacen(
        "    - name: soft\n      cmd: ssh -q -o BatchMode=yes -o StrictHostKeyChecking=no -o PreferredAuthentications=publickey -o ConnectTimeout=2 -o UserKnownHostsFile=/dev/null -i /etc/kadeploy3/keys/id_deploy root@HOSTNAME_FQDN reboot\n",
        "    - name: soft\n      cmd: DEFAULT_CONNECTOR HOSTNAME_FQDN /sbin/reboot\n",
        1,
    );
    let text = text.replacen(
        "    - name: hard\n      cmd: ipmitool -I lanplus -H HOSTNAME_SHORT-bmc -U ADMIN -f /etc/kadeploy3/ipmi.pass chassis power cycle\n",
        "    - name: hard\n      cmd: pdu-reset GROUP_SHORT\n      group: chassis.txt\n",
        1,
    );
    std::fs::write(&cluster_file, text).expect("cluster file");
    std::fs::write(
        scratch.0.join("chassis.txt"),
        "# chassis 1\nnode-1.sim.kadeploy, node-2.sim.kadeploy\n\nnode-3.sim.kadeploy,node-4.sim.kadeploy\n",
    )
    .expect("group file");
    std::fs::write(
        scratch.0.join("command.conf"),
        "node-1.sim.kadeploy:\n  reboot_soft: DEFAULT_CONNECTOR node-1-mgmt reboot\n",
    )
    .expect("command.conf");
    let loaded = load_dir(&scratch.0).unwrap_or_else(|e| panic!("{e}"));
    let key = scratch.0.join("keys/id_deploy");
    let connector = format!("ssh -i {} -A -l root -q", key.display());
    let ops = &loaded.remoteops["sim"];
    assert_eq!(
        ops.reboot[0].cmd,
        format!("{connector} HOSTNAME_FQDN /sbin/reboot")
    );
    assert_eq!(
        ops.reboot[1].groups,
        [
            ["node-1.sim.kadeploy", "node-2.sim.kadeploy"],
            ["node-3.sim.kadeploy", "node-4.sim.kadeploy"]
        ]
    );
    assert_eq!(
        loaded.commands["node-1.sim.kadeploy"]["reboot_soft"],
        format!("{connector} node-1-mgmt reboot")
    );
    assert_eq!(
        loaded.config.server.taktuk_connector, connector,
        "external/taktuk/connector is DEFAULT_CONNECTOR"
    );
}

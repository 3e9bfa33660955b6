//! The VM obeys `chassis bootdev`: a real QEMU (TCG, SeaBIOS, QEMU's iPXE ROM, a blank disk, no
//! network) started and reset by the lab BMC boots the device the boot flags name, once or for good;
//! SeaBIOS's debug output (`bios.log`) shows which device each boot tried first. And the power step
//! of `boot/next_boot_device` sets the flags before the reboot. At `f72496d`, `chassis bootdev`
//! answered "Invalid command".

#[path = "support/bmc.rs"]
mod support;

use hal::node::NodeId;
use hal::power::ipmi::bootdev::BootDevice;
use hal::power::next_boot::ipmi::IpmiNextBoot;
use hal::power::next_boot::{BootIntents, NextBootChoice, NextBootPower};
use hal::testing::process::require;
use hal::{Power, PowerAction, PowerLevel};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Bmc, Options, power};

/// QEMU with a NIC (boot index 1, iPXE) and a blank virtio disk (boot index 2).
const QEMU_SCRIPT: &str = "set -e\ncd {dir}\n[ -e disk.raw ] || truncate -s 1M disk.raw\nrm -f qmp.sock\n\
qemu-system-x86_64 ${KALAB_START_PAUSED:+-S} -name kalab-bmc-test -machine pc -accel tcg -nodefaults -display none -m 64 \
-netdev hubport,id=n0,hubid=0 -device virtio-net-pci,netdev=n0,bootindex=1 \
-drive file={dir}/disk.raw,if=none,id=d0,format=raw -device virtio-blk-pci,drive=d0,bootindex=2 \
-chardev file,id=dbg,path={dir}/bios.log -device isa-debugcon,iobase=0x402,chardev=dbg \
-qmp unix:{dir}/qmp.sock,server=on,wait=off -daemonize -pidfile {dir}/vm.pid 2>/dev/null\n";

/// The device each boot of the current QEMU tried first, from SeaBIOS's `Booting from` lines.
fn boots(bmc: &Bmc) -> Vec<String> {
    let log = std::fs::read(bmc.dir.join("bios.log")).unwrap_or_default();
    let log = String::from_utf8_lossy(&log);
    // Only whole lines: a line still being written may hold half a device name.
    let log = &log[..log.rfind('\n').map_or(0, |i| i + 1)];
    log.split("SeaBIOS (version")
        .filter_map(|boot| {
            boot.lines()
                .find_map(|l| l.strip_prefix("Booting from "))
                .map(|d| d.trim_end_matches('.').to_string())
        })
        .collect()
}

/// Waits until a boot after the first `before` ones tried `device` first.
fn wait_boot(bmc: &Bmc, before: usize, device: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = boots(bmc);
        if seen.len() > before && seen.last().map(String::as_str) == Some(device) {
            return;
        }
        if Instant::now() >= deadline {
            let bios = std::fs::read(bmc.dir.join("bios.log")).unwrap_or_default();
            let bios = String::from_utf8_lossy(&bios);
            let tail: Vec<&str> = bios.lines().rev().take(15).collect();
            panic!(
                "no boot from {device} after boot {before}: {seen:?}\nBMC log:\n{}\nbios.log ends:\n{}",
                bmc.log(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until a QEMU process other than `old` runs.
fn wait_new_vm(bmc: &Bmc, old: Option<u32>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while bmc.vm_running() == old || bmc.vm_running().is_none() {
        assert!(Instant::now() < deadline, "no new VM:\n{}", bmc.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn qemu_bmc(name: &str) -> Bmc {
    require("ipmitool", "ipmitool");
    require("qemu-system-x86_64", "qemu-system-x86");
    Bmc::launch(
        name,
        Options {
            qmp: true,
            start_script: Some(QEMU_SCRIPT.to_string()),
            ..Options::default()
        },
    )
}

#[test]
fn the_vm_boots_the_device_of_the_boot_flags_once_or_for_good() {
    let bmc = qemu_bmc("bootorder");
    bmc.ipmitool_ok(&["chassis", "power", "on"]);
    bmc.wait_vm(true);
    wait_boot(&bmc, 0, "ROM");
    // Once: the next reset boots the disk, the one after the network again.
    bmc.ipmitool_ok(&["chassis", "bootdev", "disk"]);
    let n = boots(&bmc).len();
    bmc.ipmitool_ok(&["chassis", "power", "reset"]);
    wait_boot(&bmc, n, "Hard Disk");
    let param = bmc.ipmitool_ok(&["chassis", "bootparam", "get", "5"]);
    assert!(param.contains("Boot Flag Invalid"), "consumed:\n{param}");
    let n = boots(&bmc).len();
    bmc.ipmitool_ok(&["chassis", "power", "reset"]);
    wait_boot(&bmc, n, "ROM");
    // For good, across a power cycle (a new QEMU process) and the resets after it.
    bmc.ipmitool_ok(&["chassis", "bootdev", "disk", "options=persistent"]);
    let pid = bmc.vm_running();
    bmc.ipmitool_ok(&["chassis", "power", "cycle"]);
    wait_new_vm(&bmc, pid);
    wait_boot(&bmc, 0, "Hard Disk");
    let n = boots(&bmc).len();
    bmc.ipmitool_ok(&["chassis", "power", "reset"]);
    wait_boot(&bmc, n, "Hard Disk");
    // `bootdev none`: the VM's own order.
    bmc.ipmitool_ok(&["chassis", "bootdev", "none"]);
    let n = boots(&bmc).len();
    bmc.ipmitool_ok(&["chassis", "power", "reset"]);
    wait_boot(&bmc, n, "ROM");
    bmc.ipmitool_ok(&["chassis", "power", "off"]);
    bmc.wait_vm(false);
}

/// The power step of a cluster's `boot/next_boot_device`: the flags are set through the BMC, then the
/// node is rebooted, and that boot tries the disk first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_boot_power_step_sets_the_device_before_the_reboot() {
    let bmc = qemu_bmc("nextboot");
    let bmcs = power(&bmc, Duration::from_secs(1), 2);
    let step = NextBootPower::new(
        Arc::new(bmcs.clone()),
        Arc::new(IpmiNextBoot::new(bmcs, false, false)),
        NextBootChoice::Fixed(BootDevice::Disk),
        BootIntents::default(),
    );
    let out = step
        .power(PowerAction::On, PowerLevel::Hard, &[NodeId(0)])
        .await;
    assert!(out.failures().is_empty(), "{out:?}");
    bmc.wait_vm(true);
    wait_boot(&bmc, 0, "Hard Disk");
    let pid = bmc.vm_running();
    let out = step
        .power(PowerAction::Reboot, PowerLevel::Hard, &[NodeId(0)])
        .await;
    assert!(out.failures().is_empty(), "{out:?}");
    // A power cycle: a new QEMU process whose boot (after the BMC's reset) tries the disk first.
    wait_new_vm(&bmc, pid);
    wait_boot(&bmc, 0, "Hard Disk");
    let log = bmc.log();
    let set = log.rfind("boot flags set").unwrap_or(usize::MAX);
    let cycle = log.rfind("PowerCycle").unwrap_or(0);
    assert!(
        set < cycle,
        "the flags were not set before the cycle:\n{log}"
    );
}

//! What a site's `ipmitool` scripts send besides power, against the lab BMC: `chassis bootdev` and
//! `chassis bootparam get 5` (also through the native client), `sdr list`, `lan print`, `user list`,
//! `chassis identify`, `mc guid` and `sol info`. At `f72496d` each of them answered "Invalid command".

#[path = "support/bmc.rs"]
mod support;

use hal::node::NodeId;
use hal::power::ipmi::bootdev::{BootDevice, BootFlags};
use hal::testing::process::require;
use std::time::Duration;
use support::{Bmc, Options, power};

/// `ipmitool chassis bootdev` with and without options, read back by `bootparam get 5` and by the
/// native client; the native client's writes read back by `ipmitool`.
#[test]
fn bootdev_is_set_and_read_by_ipmitool_and_the_native_client() {
    require("ipmitool", "ipmitool");
    let bmc = Bmc::start("bootdev");
    let out = bmc.ipmitool_ok(&["chassis", "bootdev", "pxe"]);
    assert!(out.contains("Set Boot Device to pxe"), "{out}");
    let param = bmc.ipmitool_ok(&["chassis", "bootparam", "get", "5"]);
    for line in [
        "Boot parameter 5 is valid/unlocked",
        "Boot Flag Valid",
        "Options apply to only next boot",
        "BIOS PC Compatible (legacy) boot",
        "Boot Device Selector : Force PXE",
    ] {
        assert!(param.contains(line), "{line:?} not in:\n{param}");
    }
    bmc.ipmitool_ok(&["chassis", "bootdev", "disk", "options=persistent,efiboot"]);
    let param = bmc.ipmitool_ok(&["chassis", "bootparam", "get", "5"]);
    for line in [
        "Options apply to all future boots",
        "BIOS EFI boot",
        "Boot Device Selector : Force Boot from default Hard-Drive",
    ] {
        assert!(param.contains(line), "{line:?} not in:\n{param}");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let native = power(&bmc, Duration::from_secs(1), 2);
    let read = rt.block_on(native.node_boot_flags(NodeId(0)));
    let disk = BootFlags {
        persistent: true,
        efi: true,
        ..BootFlags::next(BootDevice::Disk)
    };
    assert_eq!(read, Ok(disk));
    let out = rt.block_on(native.set_boot_flags(&[NodeId(0)], BootFlags::next(BootDevice::Pxe)));
    assert!(out.failures().is_empty(), "{out:?}");
    let param = bmc.ipmitool_ok(&["chassis", "bootparam", "get", "5"]);
    assert!(
        param.contains("Force PXE") && param.contains("only next boot"),
        "{param}"
    );
    // `ipmitool` wrote the flags between set-in-progress and commit, and so did the native client.
    let log = bmc.log();
    assert_eq!(log.matches("boot flags set").count(), 3, "{log}");
}

/// The inventory commands answer with content, never "Invalid command".
#[test]
fn a_sites_inventory_queries_are_answered() {
    require("ipmitool", "ipmitool");
    let bmc = Bmc::launch(
        "inventory",
        Options {
            serial: true,
            ..Options::default()
        },
    );
    let port = bmc.port.to_string();
    let checks: [(&[&str], &[&str]); 6] = [
        (
            &["sdr", "list"],
            &["CPU Temp", "System Temp", "no reading", "ns"],
        ),
        (
            &["lan", "print"],
            &[
                "IP Address              : 127.0.0.1",
                "MAC Address             : 02:00:7f:00:00:01",
                "RMCP+ Cipher Suites     : 3,17",
                "Cipher Suite Priv Max   : aaXXXXXXXXXXXXX",
            ],
        ),
        (&["user", "list"], &["ADMIN", "ADMINISTRATOR", "NO ACCESS"]),
        (
            &["chassis", "identify"],
            &["Chassis identify interval: default (15 seconds)"],
        ),
        (&["mc", "guid"], &["System GUID"]),
        (
            &["sol", "info"],
            &[
                "Enabled                         : true",
                "Volatile Bit Rate (kbps)        : 115.2",
                &port,
            ],
        ),
    ];
    for (args, wanted) in checks {
        let out = bmc.ipmitool(support::PASSWORD, args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "ipmitool {args:?}:\n{text}");
        assert!(
            !text.contains("Invalid command"),
            "ipmitool {args:?}:\n{text}"
        );
        for w in wanted {
            assert!(text.contains(w), "{w:?} not in ipmitool {args:?}:\n{text}");
        }
    }
    // Powered on, the sensors read.
    bmc.ipmitool_ok(&["chassis", "power", "on"]);
    bmc.wait_vm(true);
    let sdr = bmc.ipmitool_ok(&["sdr", "list"]);
    assert!(sdr.contains("42 degrees C") && sdr.contains("ok"), "{sdr}");
}

//! How the lab BMC makes a VM boot the device `chassis bootdev` names: QEMU's boot order is the
//! `bootindex` property of its devices, which QMP `qom-set` changes while the VM runs; the firmware
//! reads the new order (fw_cfg `bootorder`) at the next reset. Blocking: runs on the BMC's blocking pool.

use crate::qmp::{Qmp, QmpError};
use hal::power::ipmi::bootdev::BootDevice;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The QOM containers of user-created devices (with and without an `id`).
const CONTAINERS: [&str; 2] = ["/machine/peripheral", "/machine/peripheral-anon"];
/// At most this many devices are looked at (a VM has a handful).
const MAX_DEVICES: usize = 64;

/// A device with a boot index in the VM's own order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootEntry {
    /// QOM path (`/machine/peripheral-anon/device[0]`).
    pub path: String,
    /// QOM type (`virtio-net-pci`).
    pub class: String,
    /// The `bootindex` QEMU was started with.
    pub index: i64,
}

impl BootEntry {
    /// A network card.
    pub fn is_nic(&self) -> bool {
        let c = self.class.as_str();
        c.contains("-net") || c.starts_with("e1000") || c.starts_with("rtl8139") || c == "vmxnet3"
    }

    /// A disk.
    pub fn is_disk(&self) -> bool {
        let c = self.class.as_str();
        c.contains("-blk") || c.ends_with("-hd") || c == "nvme" || c == "usb-storage"
    }
}

/// The devices that have a boot index (≥ 0) now, in boot order.
pub fn boot_entries(qmp: &mut Qmp) -> Result<Vec<BootEntry>, QmpError> {
    let mut entries = Vec::new();
    for container in CONTAINERS {
        let children = match qmp.execute("qom-list", Some(json!({"path": container}))) {
            Ok(Value::Array(children)) => children,
            Ok(_) => continue,
            // `peripheral` is absent when no device has an id.
            Err(QmpError::Command { .. }) => continue,
            Err(e) => return Err(e),
        };
        for child in children.iter().take(MAX_DEVICES) {
            let (Some(name), Some(kind)) = (
                child.get("name").and_then(Value::as_str),
                child.get("type").and_then(Value::as_str),
            ) else {
                continue;
            };
            let Some(class) = kind
                .strip_prefix("child<")
                .and_then(|k| k.strip_suffix('>'))
            else {
                continue;
            };
            let path = format!("{container}/{name}");
            let index = match qmp.execute(
                "qom-get",
                Some(json!({"path": path, "property": "bootindex"})),
            ) {
                Ok(v) => v.as_i64().unwrap_or(-1),
                // Devices without the property cannot boot.
                Err(QmpError::Command { .. }) => continue,
                Err(e) => return Err(e),
            };
            if index >= 0 {
                entries.push(BootEntry {
                    path,
                    class: class.to_string(),
                    index,
                });
            }
        }
    }
    entries.sort_by_key(|e| e.index);
    Ok(entries)
}

/// The order that boots `device` first: its kind's devices moved to the front, the rest kept in the
/// VM's own order (`None` and kinds the VM has not: its own order).
pub fn order_for(defaults: &[BootEntry], device: BootDevice) -> Vec<BootEntry> {
    let first: fn(&BootEntry) -> bool = match device {
        BootDevice::Pxe => BootEntry::is_nic,
        BootDevice::Disk | BootDevice::Safe => BootEntry::is_disk,
        _ => |_| false,
    };
    let mut order: Vec<BootEntry> = defaults.iter().filter(|e| first(e)).cloned().collect();
    order.extend(defaults.iter().filter(|e| !first(e)).cloned());
    order
}

/// Gives the devices of `order` the boot indexes 1, 2, ... in that order (all are unset first: QEMU
/// refuses two devices with one index).
pub fn set_order(qmp: &mut Qmp, order: &[BootEntry]) -> Result<(), QmpError> {
    for e in order {
        set_index(qmp, &e.path, -1)?;
    }
    for (i, e) in order.iter().enumerate() {
        set_index(qmp, &e.path, i as i64 + 1)?;
    }
    Ok(())
}

/// Puts the VM's own boot indexes back.
pub fn restore(qmp: &mut Qmp, defaults: &[BootEntry]) -> Result<(), QmpError> {
    for e in defaults {
        set_index(qmp, &e.path, -1)?;
    }
    for e in defaults {
        set_index(qmp, &e.path, e.index)?;
    }
    Ok(())
}

fn set_index(qmp: &mut Qmp, path: &str, index: i64) -> Result<(), QmpError> {
    qmp.execute(
        "qom-set",
        Some(json!({"path": path, "property": "bootindex", "value": index})),
    )
    .map(|_| ())
}

/// Resets the VM and waits until QEMU has done it (its `RESET` event): `system_reset` only requests
/// the reset, and the boot order is read when it happens.
pub fn reset_and_wait(qmp: &mut Qmp, limit: Duration) -> Result<(), QmpError> {
    qmp.take_events();
    qmp.system_reset()?;
    let deadline = Instant::now() + limit;
    loop {
        if qmp
            .take_events()
            .iter()
            .any(|e| e.get("event").and_then(Value::as_str) == Some("RESET"))
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(QmpError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "QMP: no RESET event after system_reset",
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
        // Any command reads the events that arrived before its reply.
        qmp.query_status()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, class: &str, index: i64) -> BootEntry {
        BootEntry {
            path: path.into(),
            class: class.into(),
            index,
        }
    }

    #[test]
    fn the_asked_kind_goes_first_and_the_rest_keeps_its_order() {
        let defaults = vec![
            entry("n", "virtio-net-pci", 1),
            entry("d", "virtio-blk-pci", 2),
            entry("c", "ide-cd", 3),
        ];
        let paths = |order: Vec<BootEntry>| order.into_iter().map(|e| e.path).collect::<Vec<_>>();
        assert_eq!(
            paths(order_for(&defaults, BootDevice::Disk)),
            ["d", "n", "c"]
        );
        assert_eq!(
            paths(order_for(&defaults, BootDevice::Pxe)),
            ["n", "d", "c"]
        );
        assert_eq!(
            paths(order_for(&defaults, BootDevice::None)),
            ["n", "d", "c"]
        );
        assert_eq!(
            paths(order_for(&defaults, BootDevice::Cdrom)),
            ["n", "d", "c"]
        );
        assert!(entry("x", "e1000e", 1).is_nic() && entry("x", "scsi-hd", 1).is_disk());
        assert!(!entry("x", "virtio-blk-pci", 1).is_nic());
    }
}

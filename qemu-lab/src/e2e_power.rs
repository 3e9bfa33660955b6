//! `kalab e2e --power redfish|pdu`: checks that the deployment's power actions went through the chosen
//! out-of-band path (the Redfish services' resets, the PDU's outlet switches at the very_hard level).

use crate::lab::Lab;
use crate::site_config::PowerDriver;

/// The check of the lab's power driver, when it is an out-of-band one: (name, `ok: ...` or `failed: ...`).
pub fn check(lab: &Lab, output: &[String]) -> Option<(String, String)> {
    let read = |path: std::path::PathBuf| std::fs::read_to_string(path).unwrap_or_default();
    match lab.power() {
        PowerDriver::Redfish => {
            let resets: usize = lab
                .vms
                .iter()
                .map(|vm| {
                    read(vm.spec().vm_dir().join("redfish.log"))
                        .matches("ComputerSystem.Reset")
                        .count()
                })
                .sum();
            let hard = output.iter().any(|l| l.contains("Performing a hard"));
            let (pxe, hdd) = boot_overrides(lab);
            // `boot/next_boot_device: {device: auto}`: a Pxe override before every deploy-kernel boot.
            let result = if resets >= lab.nodes.len() && hard && pxe >= lab.nodes.len() {
                format!(
                    "ok: {resets} Redfish resets for hard power steps, boot overrides: {pxe} Pxe, {hdd} Hdd"
                )
            } else {
                format!(
                    "failed: {resets} Redfish resets, hard step seen: {hard}, boot overrides: {pxe} Pxe, {hdd} Hdd"
                )
            };
            Some(("power through Redfish".into(), result))
        }
        PowerDriver::Pdu => {
            let switches = read(lab.dir().join("pdu.log"))
                .matches("PDU outlet switched")
                .count();
            let very_hard = output.iter().any(|l| l.contains("Performing a very_hard"));
            let result = if switches >= lab.nodes.len() && very_hard {
                format!("ok: {switches} outlet switches for very_hard power steps")
            } else {
                format!("failed: {switches} outlet switches, very_hard step seen: {very_hard}")
            };
            Some(("power through the PDU".into(), result))
        }
        PowerDriver::Ipmitool | PowerDriver::Native => None,
    }
}

/// The one-time boot overrides the lab's Redfish services were given: (to Pxe, to Hdd).
pub fn boot_overrides(lab: &Lab) -> (usize, usize) {
    let mut counts = (0, 0);
    for vm in &lab.vms {
        let log =
            std::fs::read_to_string(vm.spec().vm_dir().join("redfish.log")).unwrap_or_default();
        for line in log.lines().filter(|l| l.contains("boot override")) {
            // The log may be coloured (escape codes around `=`): the target's quoted name is enough.
            let target = |t: &str| line.contains(&format!("\"{t}\""));
            if target("Pxe") {
                counts.0 += 1;
            } else if target("Hdd") {
                counts.1 += 1;
            }
        }
    }
    counts
}

//! The simulator against the lab: simulation parameters measured on a lab run (boot phases, power
//! latency, operation costs, broadcast rate, image size) and `kasim`'s prediction of a lab deployment.
//!
//! Parameters come from the per-micro-step times `kadeploy3 -V 4` prints (`~ Time in wait_reboot: 61s`,
//! `Broadcast time: 3s`), first instance of each micro-step: the deploy kernel's boot is the
//! SetDeploymentEnv `wait_reboot`, the environment kernel's boot the BootNewEnvKexec `wait_reboot`, and so on.
//! Calibrate on one run, predict another (another boot path, another environment) to test the model.

use crate::e2e::options::BootPath;
use anyhow::{Context as _, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Micro-step durations of a run, by `(macro-step implementation, micro-step)`.
#[derive(Clone, Debug, Default)]
pub struct StepTimes {
    times: BTreeMap<(String, String), f64>,
    broadcast: Option<f64>,
}

impl StepTimes {
    /// Reads `kadeploy3 -V 4` output lines; keeps the first instance of each micro-step.
    pub fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> StepTimes {
        let mut out = StepTimes::default();
        let mut current = String::new();
        for line in lines {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("Performing a ") {
                if let (Some(a), Some(b)) = (rest.find('['), rest.find(']')) {
                    current = rest[a + 1..b].to_string();
                }
            } else if let Some(rest) = line.strip_prefix("*  ~ Time in ") {
                if let Some((micro, secs)) = rest.split_once(": ") {
                    let secs: f64 = secs.trim_end_matches('s').parse().unwrap_or(0.0);
                    out.times
                        .entry((current.clone(), micro.to_string()))
                        .or_insert(secs);
                }
            } else if let Some(rest) = line.strip_prefix("* Broadcast time: ") {
                out.broadcast
                    .get_or_insert(rest.trim_end_matches('s').parse().unwrap_or(0.0));
            }
        }
        out
    }

    fn get(&self, macro_step: &str, micro: &str) -> Option<f64> {
        self.times
            .get(&(macro_step.to_string(), micro.to_string()))
            .copied()
    }

    fn any(&self, micro: &str) -> Option<f64> {
        self.times
            .iter()
            .find(|((_, m), _)| m == micro)
            .map(|(_, t)| *t)
    }
}

/// The measured parameters written as `simulation.conf`.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    /// Deploy kernel boot after a power cycle: firmware + PXE + kernel (s).
    pub deploy_boot: f64,
    /// Environment kernel boot after kexec (s).
    pub kexec_boot: f64,
    /// One power command (s).
    pub power_command: f64,
    /// Compressed image size (bytes) and the broadcast time (s).
    pub image_size: f64,
    /// Uncompressed / compressed.
    pub image_ratio: f64,
    /// Broadcast time (s).
    pub broadcast: f64,
    /// Fixed costs of operations (s): partition, mkfs, swap, mount, postinstall, bootloader, sync.
    pub ops: BTreeMap<String, f64>,
}

/// Derives the parameters from a calibration run; `image` is the environment's image file.
pub fn measure(steps: &StepTimes, image: &Path) -> anyhow::Result<Measured> {
    let deploy_boot = steps
        .get("SetDeploymentEnvUntrusted", "wait_reboot")
        .context("no SetDeploymentEnvUntrusted wait_reboot time in the run")?;
    let kexec_boot = steps
        .get("BootNewEnvKexec", "wait_reboot")
        .or_else(|| steps.get("BootNewEnvClassical", "wait_reboot"))
        .context("no BootNewEnv wait_reboot time in the run")?;
    let image_size = std::fs::metadata(image)
        .with_context(|| format!("reading {}", image.display()))?
        .len() as f64;
    let uncompressed = uncompressed_size(image).unwrap_or(image_size * 2.5);
    let mut ops = BTreeMap::new();
    for (key, micro) in [
        ("partition", "create_partition_table"),
        ("mkfs", "format_deploy_part"),
        ("swap", "format_swap_part"),
        ("mount", "mount_deploy_part"),
        ("postinstall", "manage_user_post_install"),
        ("bootloader", "install_bootloader"),
        ("sync", "sync"),
    ] {
        ops.insert(key.to_string(), steps.any(micro).unwrap_or(0.0));
    }
    Ok(Measured {
        deploy_boot,
        kexec_boot,
        power_command: steps.any("reboot").unwrap_or(2.0) / 2.0,
        image_size,
        image_ratio: (uncompressed / image_size).max(1.0),
        broadcast: steps.broadcast.unwrap_or(1.0),
        ops,
    })
}

/// The uncompressed size of a gzip file (its trailer's ISIZE, modulo 4 GiB).
fn uncompressed_size(path: &Path) -> Option<f64> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    f.seek(SeekFrom::End(-4)).ok()?;
    let mut b = [0u8; 4];
    f.read_exact(&mut b).ok()?;
    Some(u32::from_le_bytes(b) as f64)
}

/// `simulation.conf` for the measured parameters. Integer-second step times are spread over the
/// phases they cover; a classical boot of the environment is modelled like the deploy kernel's boot.
pub fn simulation_conf(m: &Measured, seed: u64) -> String {
    // The environment's kernel after kexec: kexec_delay (1 s) plus the kernel.
    let kernel = (m.kexec_boot - 1.0).max(1.0);
    // After a power cycle: firmware and PXE take the rest of the deploy kernel's boot.
    let pxe = 3.0_f64.min(m.deploy_boot / 4.0);
    let firmware = (m.deploy_boot - kernel - pxe).max(1.0);
    let partition_size = 700.0e6;
    let mkfs_rate = partition_size / m.ops["mkfs"].max(0.5);
    // The broadcast moves the compressed image; its time (integer seconds) gives the goodput.
    let bandwidth = m.image_size / m.broadcast.max(0.5);
    let op = |k: &str| m.ops[k].max(0.05);
    format!(
        r#"# Simulation parameters measured on a kalab run (written by kalab).
seed: {seed}
network:
  bandwidth: {bandwidth:.1}
  latency: 0.0002
  server_bandwidth: {bandwidth:.1}
  nodes_per_switch: 0
  uplink_bandwidth: null
  latency_model: per_connection
  chunk: 65536
disk:
  write_rate: 1.0e9
  write_rate_sd: 0.0
  decompress_rate: 1.0e9
boot:
  firmware: {{mean: {firmware:.1}, sd: {fsd:.1}, min: 1}}
  pxe: {{mean: {pxe:.1}, sd: 0.2, min: 0.5}}
  kernel: {{mean: {kernel:.1}, sd: {ksd:.1}, min: 1}}
  kexec_delay: 1.0
  shutdown: {{mean: 1, sd: 0.1, min: 0.5}}
power:
  command_latency: {{mean: {power:.2}, sd: 0.1, min: 0.1}}
ops: {{ssh_latency: 0.05, partition: {partition:.2}, mkfs_rate: {mkfs_rate:.1}, partition_size: {partition_size:.1}, swap: {swap:.2},
      mount: {mount:.2}, sync: {sync:.2}, postinstall: {postinstall:.2}, bootloader: {bootloader:.2}, dummy: 0.5, probe: 0.01}}
image: {{size: {size:.1}, ratio: {ratio:.3}}}
fault_tolerance: {{detect_timeout: 3.0, reconnect: 0.5}}
"#,
        fsd = firmware * 0.05,
        ksd = kernel * 0.05,
        power = m.power_command,
        partition = op("partition"),
        swap = op("swap"),
        mount = op("mount"),
        sync = op("sync"),
        postinstall = op("postinstall"),
        bootloader = op("bootloader"),
        size = m.image_size,
        ratio = m.image_ratio,
    )
}

/// Runs `kasim` on a copy of the lab's configuration whose BootNewEnv is `boot`, with `params`
/// (a `simulation.conf` text); the predicted deployment time in seconds.
pub fn predict(
    kasim: &Path,
    config_dir: &Path,
    work: &Path,
    params: &str,
    boot: BootPath,
    nodes: usize,
) -> anyhow::Result<f64> {
    let dir: PathBuf = work.join("sim");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    for file in [
        "server.conf",
        "clusters.conf",
        "partition.sh",
        "install_bootloader",
    ] {
        std::fs::copy(config_dir.join(file), dir.join(file))?;
    }
    // The configuration is loaded whole: the power backends' password files (IPMI, Redfish, the PDU's
    // community and SNMPv3 keys, all `*.pass`) come along.
    for entry in std::fs::read_dir(config_dir)? {
        let path = entry?.path();
        if let Some(name) = path.file_name()
            && path.is_file()
            && path.extension().is_some_and(|e| e == "pass")
        {
            std::fs::copy(&path, dir.join(name))?;
        }
    }
    let other = match boot {
        BootPath::Kexec => "type: Classical",
        BootPath::Classical => "type: Kexec",
    };
    let cluster = std::fs::read_to_string(config_dir.join("lab-cluster.conf"))?;
    let mut in_boot_new_env = false;
    let cluster: String = cluster
        .lines()
        .filter(|l| {
            if l.trim_start().starts_with("BootNewEnv:") {
                in_boot_new_env = true;
            } else if !l.trim_start().starts_with('-') {
                in_boot_new_env = false;
            }
            !(in_boot_new_env && l.contains(other))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("lab-cluster.conf"), cluster)?;
    std::fs::write(dir.join("simulation.conf"), params)?;
    let out = Command::new(kasim)
        .args([
            "deploy",
            "--json",
            "-V",
            "0",
            "--nodes",
            &nodes.to_string(),
            "--config",
        ])
        .arg(&dir)
        .output()
        .with_context(|| format!("running {}", kasim.display()))?;
    if !out.status.success() {
        bail!(
            "kasim: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).context("kasim's JSON line")?;
    v["virtual_seconds"]
        .as_f64()
        .context("kasim's JSON has no virtual_seconds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_times_are_read_per_macro_step_and_first_instance() {
        let text = "Performing a Deploy[SetDeploymentEnvUntrusted] step\n  reboot\n   *  ~ Time in reboot: 3s\n  wait_reboot\n   *  ~ Time in wait_reboot: 61s\n\
                    Performing a Deploy[BroadcastEnvKascade] step\n   * Broadcast time: 3s\n   *  ~ Time in send_environment: 3s\n\
                    Performing a Deploy[BootNewEnvKexec] step\n   *  ~ Time in wait_reboot: 19s\n\
                    Performing a Deploy[SetDeploymentEnvUntrusted] step\n   *  ~ Time in wait_reboot: 99s\n";
        let s = StepTimes::parse(text.lines());
        assert_eq!(
            s.get("SetDeploymentEnvUntrusted", "wait_reboot"),
            Some(61.0)
        );
        assert_eq!(s.get("BootNewEnvKexec", "wait_reboot"), Some(19.0));
        assert_eq!(s.any("reboot"), Some(3.0));
        assert_eq!(s.broadcast, Some(3.0));
    }
}

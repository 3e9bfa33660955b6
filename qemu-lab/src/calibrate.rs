//! The simulator against the lab: simulation parameters measured on a lab run (boot phases, power
//! latency, operation costs, broadcast rate, image size) and `kasim`'s prediction of a lab deployment.
//!
//! Parameters come from the per-micro-step times `kadeploy3 -V 4` prints (`~ Time in wait_reboot: 61s`,
//! `Broadcast time: 3s`), first instance of each micro-step: the deploy kernel's boot is the
//! SetDeploymentEnv `wait_reboot`, the environment kernel's boot the BootNewEnvKexec `wait_reboot`, and so on.
//! Calibrate on one run, predict another (another boot path, another environment) to test the model.

pub mod kasim;
pub mod phases;
pub mod replay;
pub mod server_log;
pub mod spread;

pub use kasim::{Prediction, SEEDS, predict};
pub use phases::{Phase, Phases};

use crate::vm::firmware_time::FirmwareTime;
use crate::vm::{Firmware, NicBoot};
use anyhow::Context as _;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Micro-step durations of a run, by `(macro-step implementation, micro-step)`.
#[derive(Clone, Debug, Default)]
pub struct StepTimes {
    times: BTreeMap<(String, String), f64>,
    broadcast: Option<f64>,
    /// The first reboot escalated to a hard one (the soft reboot failed).
    hard_reboot_first: bool,
}

impl StepTimes {
    /// Takes the broadcast's time from kadeploy3d's log ([`server_log::broadcast_seconds`]) where it
    /// gives one that rounds to kadeploy's whole seconds (the same broadcast).
    pub fn with_server_log(mut self, log: &str) -> StepTimes {
        if let Some(precise) = server_log::broadcast_seconds(log)
            && self
                .broadcast
                .is_none_or(|whole| (precise - whole).abs() <= 0.51)
        {
            self.broadcast = Some(precise);
        }
        self
    }

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
            } else if line.starts_with("* Performing a hard reboot")
                && current.starts_with("SetDeploymentEnv")
                && !out
                    .times
                    .contains_key(&(current.clone(), "reboot".to_string()))
            {
                out.hard_reboot_first = true;
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
    /// Power-on to the network loader, uncontended (s).
    pub firmware: f64,
    /// The loader to the kernel's start, uncontended (s).
    pub pxe: f64,
    /// A kernel's boot to its system ready, uncontended (s).
    pub kernel: f64,
    /// Processor share of each (firmware, pxe, kernel).
    pub cpu: [f64; 3],
    /// Relative spread (sd over mean) of each across the run's VMs ([`spread::relative_sds`]).
    pub spread: [f64; 3],
    /// Processors of the host the VMs share.
    pub host_cores: f64,
    /// VMs per free core in the calibration run (at least 1).
    pub stretch: f64,
    /// Processors an idle VM keeps busy (measured on the idle deployed VMs).
    pub idle_load: f64,
    /// Processors a VM keeps busy beyond its work while it works and waits for a processor (measured
    /// on the deployed VMs, [`crate::e2e`]'s busy-load probe); `None`: not measured (the idle load
    /// stands for it).
    pub busy_load: Option<f64>,
    /// VMs of the calibration run.
    pub vms: usize,
    /// The broadcast's chunk (bytes): kaagent's pipeline forwards whole chunks.
    pub chunk: f64,
    /// One power command (s).
    pub power_command: f64,
    /// The lab's soft reboots fail (the VMs are off when the deployment starts).
    pub soft_reboot_fails: bool,
    /// Compressed image size (bytes) and the broadcast time (s).
    pub image_size: f64,
    /// Uncompressed / compressed.
    pub image_ratio: f64,
    /// Broadcast time (s).
    pub broadcast: f64,
    /// Fixed costs of operations (s): partition, mkfs, swap, mount, postinstall, bootloader, sync, kexec.
    pub ops: BTreeMap<String, f64>,
    /// One SSH command on an idle node (s), and the share of it that was the VM's processor work.
    pub ssh: SshCost,
    /// Where the boot phases come from: the serial consoles' timeline, or the step times alone.
    pub boots_from: &'static str,
}

/// The load each VM puts on the host beyond its work: idle (measured on the idle deployed VMs) and,
/// when measured, busy (a VM that works and waits for a processor).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct HostLoad {
    /// Processors an idle VM keeps busy.
    pub idle: f64,
    /// Processors a busy VM keeps busy beyond its work, per second of its work's wall time.
    pub busy: Option<f64>,
}

impl HostLoad {
    /// What a working VM adds to the host's load: the busy load when measured, else the idle one.
    pub fn working(&self) -> f64 {
        self.busy.unwrap_or(self.idle)
    }
}

impl From<f64> for HostLoad {
    fn from(idle: f64) -> Self {
        HostLoad { idle, busy: None }
    }
}

/// SSH commands the site backend runs on every node around a broadcast: the token written before it
/// and removed after it (`hal::broadcast::over_ssh`).
pub const BROADCAST_COMMANDS: u32 = 2;

/// One SSH command (connection, authentication, `true`) to an idle deployed node.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SshCost {
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Share of it the VM's QEMU spent on the processor.
    pub cpu_share: f64,
}

impl Default for SshCost {
    fn default() -> Self {
        SshCost {
            seconds: 0.05,
            cpu_share: 0.0,
        }
    }
}

/// The delay of the detached `kexec -e` (hal's `detached`: `sleep 1`) before the jump.
const KEXEC_DELAY: f64 = 1.0;
/// How long the site backend's TCP probe waits for a node that does not answer: the lab cluster's
/// `boot/probe_timeout`.
pub const PROBE_TIMEOUT: f64 = crate::site_config::PROBE_TIMEOUT;

/// Derives the parameters from a calibration run: its step times, the boot phases of its timeline
/// (`None`: from the step times alone), and the environment's image file.
pub fn measure(
    steps: &StepTimes,
    phases: Option<&Phases>,
    ssh: SshCost,
    load: impl Into<HostLoad>,
    image: &Path,
) -> anyhow::Result<Measured> {
    let load: HostLoad = load.into();
    let working = load.working();
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
    let host_cores = phases.map_or(1, |p| p.host_cores.max(1)) as f64;
    let vms = phases.map_or(1, |p| p.vms.max(1));
    let stretch = phases.map_or(1.0, |p| phases::stretch(p.vms, host_cores, working));
    // A micro-step measured with `stretch` VMs per core: its connection took `1 + cpu (stretch - 1)`
    // times its time alone, and its work (all of it the VM's processor work) `stretch` times.
    let connection = ssh.seconds * (1.0 + ssh.cpu_share * (stretch - 1.0));
    let alone = |step: f64| ((step - connection) / stretch).max(0.0);
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
        // Each micro-step is one SSH command or more: what is left beyond one connection is the work.
        let step = steps.any(micro).unwrap_or(0.0);
        ops.insert(key.to_string(), alone(step));
    }
    // kexec's micro-step: one SSH command that loads the kernel and initrd (`kexec -l`).
    let kexec_op = steps.get("BootNewEnvKexec", "kexec").unwrap_or(0.0);
    ops.insert("kexec".into(), alone(kexec_op));
    let soft_reboot_fails = steps.hard_reboot_first;
    let commands = if soft_reboot_fails { 2.0 } else { 1.0 };
    let timed = phases.and_then(|p| Some((p, boot_phases(p, working)?)));
    let (firmware, pxe, kernel, cpu, spread, boots_from) = match timed {
        Some((p, (f, x, k, cpu))) => (f, x, k, cpu, spread::relative_sds(p, x, k), "timeline"),
        None => {
            // The wait_reboot times: each is when a probe round found the node, not when it came up.
            let kernel = (kexec_boot - KEXEC_DELAY).max(1.0);
            let pxe = 3.0_f64.min(deploy_boot / 4.0);
            let firmware = (deploy_boot - kernel - pxe).max(1.0);
            let unmeasured = [spread::UNMEASURED; 3];
            (firmware, pxe, kernel, [0.0; 3], unmeasured, "step times")
        }
    };
    Ok(Measured {
        firmware,
        pxe,
        kernel,
        cpu,
        spread,
        host_cores,
        stretch,
        idle_load: load.idle,
        busy_load: load.busy,
        vms,
        chunk: f64::from(hal::image::DEFAULT_CHUNK_SIZE),
        power_command: steps.any("reboot").unwrap_or(2.0) / commands,
        soft_reboot_fails,
        image_size,
        image_ratio: (uncompressed / image_size).max(1.0),
        broadcast: steps.broadcast.unwrap_or(1.0),
        ops,
        ssh,
        boots_from,
    })
}

/// (firmware, pxe, kernel, processor shares), uncontended, from the timeline's phases, with each
/// working VM's load `idle_load` beyond its work; `None` when the timeline lacks the deploy kernel's
/// boot or the environment's kexec boot.
fn boot_phases(p: &Phases, idle_load: f64) -> Option<(f64, f64, f64, [f64; 3])> {
    let stretch = phases::stretch(p.vms, p.host_cores.max(1) as f64, idle_load);
    let Some(kexec_boot) = p.kexec_boot else {
        return cold_boot_phases(p, stretch, idle_load);
    };
    let (kernel, k_cpu) = phases::uncontended(kexec_boot, stretch, idle_load);
    let rest = |phase: Phase| {
        let (u, share) = phases::uncontended(phase, stretch, idle_load);
        let work = (u * share - kernel * k_cpu).max(0.0);
        let t = (u - kernel).max(0.1);
        (t, (work / t).min(1.0))
    };
    match (p.firmware, p.loader_to_ready) {
        (Some(f), Some(l)) => {
            let (firmware, f_cpu) = phases::uncontended(f, stretch, idle_load);
            let (pxe, p_cpu) = rest(l);
            Some((firmware, pxe, kernel, [f_cpu, p_cpu, k_cpu]))
        }
        _ => {
            let (firmware, f_cpu) = rest(p.deploy_boot?);
            Some((firmware, 0.0, kernel, [f_cpu, 0.0, k_cpu]))
        }
    }
}

/// A classical run's phases: the environment, too, boots through the firmware, so no kernel boot was
/// timed alone and every boot the model makes is a cold one, whose length is what counts: the deploy
/// boot, cut at the loader when the timeline saw it, the kernel taking all of the loader-to-ready phase
/// (the loader's own share then predicts a kexec a little long).
fn cold_boot_phases(p: &Phases, stretch: f64, idle_load: f64) -> Option<(f64, f64, f64, [f64; 3])> {
    const PXE: f64 = 0.1;
    let alone = |phase: Phase| phases::uncontended(phase, stretch, idle_load);
    let ((firmware, f_cpu), (rest, r_cpu)) = match (p.firmware, p.loader_to_ready) {
        (Some(f), Some(l)) => (alone(f), alone(l)),
        _ => {
            let (whole, cpu) = alone(p.deploy_boot?);
            ((PXE, 0.0), (whole - PXE, cpu))
        }
    };
    Some((firmware, PXE, (rest - PXE).max(0.1), [f_cpu, 0.0, r_cpu]))
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

/// `simulation.conf` for the measured parameters: the VMs share the host's processors (`host`), each
/// boot phase stretching its processor share with the VMs per core; probes of a booting VM wait for
/// the site backend's probe timeout, as the real ones do.
pub fn simulation_conf(m: &Measured, seed: u64) -> String {
    let partition_size = 700.0e6;
    let mkfs_rate = partition_size / m.ops["mkfs"].max(1e-3);
    let bandwidth = broadcast_goodput(m);
    let op = |k: &str| m.ops[k];
    let failures = if m.soft_reboot_fails {
        "failures: {power_command_fails: {probability: 1.0, levels: [soft]}}\n"
    } else {
        ""
    };
    format!(
        r#"# Simulation parameters measured on a kalab run (written by kalab; boots from the {from}).
seed: {seed}
network:
  bandwidth: {bandwidth:.1}
  latency: 0.0002
  server_bandwidth: {bandwidth:.1}
  nodes_per_switch: 0
  uplink_bandwidth: null
  latency_model: per_connection
  chunk: {chunk}
disk:
  write_rate: 1.0e9
  write_rate_sd: 0.0
  decompress_rate: 1.0e9
host: {{cores: {cores}, idle_load: {idle:.4}{busy}}}
boot:
  firmware: {{mean: {firmware:.2}, sd: {fsd:.2}, min: 0.1}}
  pxe: {{mean: {pxe:.2}, sd: {psd:.2}, min: 0.1}}
  kernel: {{mean: {kernel:.2}, sd: {ksd:.2}, min: 0.1}}
  kexec_delay: {KEXEC_DELAY}
  shutdown: {{mean: 1, sd: 0.1, min: 0.5}}
  cpu: {{firmware: {cf:.3}, pxe: {cp:.3}, kernel: {ck:.3}}}
power:
  command_latency: {{mean: {power:.2}, sd: 0.1, min: 0.1}}
ops: {{ssh_latency: {ssh:.3}, cpu: {ssh_cpu:.3}, work_cpu: 1.0, broadcast_commands: {BROADCAST_COMMANDS}, kexec: {kexec:.2}, partition: {partition:.2}, mkfs_rate: {mkfs_rate:.1}, partition_size: {partition_size:.1}, swap: {swap:.2},
      mount: {mount:.2}, sync: {sync:.2}, postinstall: {postinstall:.2}, bootloader: {bootloader:.2}, dummy: 0.5, probe: 0.01,
      probe_timeout: {PROBE_TIMEOUT}}}
image: {{size: {size:.1}, ratio: {ratio:.3}}}
fault_tolerance: {{detect_timeout: 3.0, reconnect: 0.5}}
{failures}"#,
        from = m.boots_from,
        cores = m.host_cores,
        idle = m.idle_load,
        busy = m
            .busy_load
            .map_or(String::new(), |b| format!(", busy_load: {b:.4}")),
        chunk = m.chunk,
        firmware = m.firmware,
        pxe = m.pxe,
        kernel = m.kernel,
        fsd = m.firmware * m.spread[0],
        psd = m.pxe * m.spread[1],
        ksd = m.kernel * m.spread[2],
        cf = m.cpu[0],
        cp = m.cpu[1],
        ck = m.cpu[2],
        power = m.power_command,
        partition = op("partition"),
        swap = op("swap"),
        mount = op("mount"),
        sync = op("sync"),
        postinstall = op("postinstall"),
        bootloader = op("bootloader"),
        ssh = m.ssh.seconds,
        ssh_cpu = m.ssh.cpu_share,
        kexec = m.ops["kexec"],
        size = m.image_size,
        ratio = m.image_ratio,
    )
}

/// The uncontended goodput of a node's link that gives back the calibration's broadcast time: the
/// kaagent chain's last node is done `(size + vms × chunk × fill) / goodput` after the stream starts
/// (each of the `vms` hops forwards whole chunks), and the broadcast also holds the backend's SSH
/// commands (its token written, then removed); the goodput measured with `stretch` VMs per core is
/// `stretch` times slower than alone, the pipeline's fill `(1 + stretch) / 2` times (the nodes that
/// have started grow from one to all: `fill`, as the simulator's `model_input::fill_chunk`).
pub fn broadcast_goodput(m: &Measured) -> f64 {
    let command = m.ssh.seconds * (1.0 + m.ssh.cpu_share * (m.stretch - 1.0));
    let stream = (m.broadcast - f64::from(BROADCAST_COMMANDS) * command).max(0.5);
    let stretch = m.stretch.max(1.0);
    let fill = (1.0 + stretch) / (2.0 * stretch);
    (m.image_size + m.vms as f64 * m.chunk * fill) / stream * stretch
}

/// The first line of a lab run's `simulation.conf`: the firmware and boot ROM its boots went through.
pub fn firmware_header(firmware: Firmware, nic: NicBoot) -> String {
    format!(
        "# kalab: firmware {} nic {}\n",
        firmware_name(firmware),
        nic_name(nic)
    )
}

fn firmware_name(f: Firmware) -> &'static str {
    match f {
        Firmware::Bios => "bios",
        Firmware::Uefi => "uefi",
    }
}

fn nic_name(n: NicBoot) -> &'static str {
    match n {
        NicBoot::IpxeRom => "ipxe_rom",
        NicBoot::UefiPxe => "uefi_pxe",
        NicBoot::UefiHttp => "uefi_http",
    }
}

/// The firmware and boot ROM named by a `simulation.conf`'s [`firmware_header`], if any.
pub fn firmware_of(params: &str) -> Option<(Firmware, NicBoot)> {
    let rest = params.lines().next()?.strip_prefix("# kalab: firmware ")?;
    let (f, n) = rest.split_once(" nic ")?;
    let firmware = [Firmware::Bios, Firmware::Uefi]
        .into_iter()
        .find(|x| firmware_name(*x) == f.trim())?;
    let nic = [NicBoot::IpxeRom, NicBoot::UefiPxe, NicBoot::UefiHttp]
        .into_iter()
        .find(|x| nic_name(*x) == n.trim())?;
    Some((firmware, nic))
}

/// `params` with its firmware phase moved from the firmware measured as `from` to the one measured as
/// `to` (each alone on the host: uncontended): the phase grows by the difference, its processor
/// share follows the processor seconds added, its spread stays.
pub fn swap_firmware(params: &str, from: FirmwareTime, to: FirmwareTime) -> anyhow::Result<String> {
    let field = |line: &str, key: &str| -> Option<f64> {
        let at = line.find(key)? + key.len();
        line[at..].split([',', '}']).next()?.trim().parse().ok()
    };
    let mut mean = None;
    let mut share = None;
    for line in params.lines() {
        let l = line.trim_start();
        if l.starts_with("firmware: {mean:") {
            mean = field(l, "mean:");
        } else if l.starts_with("cpu: {firmware:") {
            share = field(l, "firmware:");
        }
    }
    let (mean, share) = (
        mean.context("no boot.firmware mean in the parameters")?,
        share.unwrap_or(0.0),
    );
    let new_mean = (mean + to.seconds - from.seconds).max(0.1);
    let new_share = ((mean * share + to.cpu - from.cpu) / new_mean).clamp(0.0, 1.0);
    Ok(params
        .lines()
        .map(|line| {
            let l = line.trim_start();
            let indent = &line[..line.len() - l.len()];
            if l.starts_with("firmware: {mean:") {
                // The spread the calibration's VMs showed stays (the firmware timed alone is one
                // boot of one VM: it measures no spread).
                let sd = field(l, "sd:").unwrap_or(0.0);
                format!("{indent}firmware: {{mean: {new_mean:.2}, sd: {sd:.2}, min: 0.1}}\n")
            } else if let Some(rest) = l.strip_prefix("cpu: {firmware:") {
                let tail = rest.split_once(',').map_or("}", |(_, t)| t);
                format!("{indent}cpu: {{firmware: {new_share:.3},{tail}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect())
}

#[cfg(test)]
mod tests;

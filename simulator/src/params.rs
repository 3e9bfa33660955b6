//! Simulation parameters, read from `simulation.conf` (YAML; our extension to Kadeploy's configuration
//! directory): network, disks, boot phases, power, node operations, default image, fault tolerance and
//! failure injection. Every key has a default; unknown keys are errors; durations are in seconds, sizes
//! in bytes and rates in bytes per second.

mod ssh;

pub use crate::rng::Dist;
use serde::Deserialize;
pub use ssh::{MAX_LOOPBACK_NODES, SshAddresses, SshParams};
use std::path::{Path, PathBuf};

pub use crate::cluster::faults::{DieRule, FailureParams, HANG_STEPS, HangRule, PowerRule, Rule};
use crate::range::{Check, in_range};

/// Why parameters could not be loaded or resolved. Every message names the file or the key.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML is malformed, has an unknown key or a value of the wrong type.
    #[error("{origin}: {message}")]
    Syntax {
        /// The file (or `simulation.conf` for a string).
        origin: String,
        /// The parser's message (it names the key and the line).
        message: String,
    },
    /// A value is out of range, or a failure rule names a node the cluster does not have.
    #[error("{origin}: key `{key}`: {message}")]
    Invalid {
        /// The file (`simulation.conf` for a string, `failure plan` when resolving node names).
        origin: String,
        /// Dotted path of the key, e.g. `boot.firmware.sd`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// How the broadcast model charges latency (see `bcast::LatencyModel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyModelName {
    /// Each hop pays its latency once, when its connection opens.
    #[default]
    PerConnection,
    /// Every chunk pays the latency at every hop.
    PerChunk,
}

/// The whole parameter file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimParams {
    /// Seed of every random draw (a command-line seed overrides it).
    pub seed: u64,
    /// `network`.
    pub network: NetworkParams,
    /// `disk`.
    pub disk: DiskParams,
    /// `boot`.
    pub boot: BootParams,
    /// `power`.
    pub power: PowerParams,
    /// `ops`.
    pub ops: OpsParams,
    /// `image`.
    pub image: ImageParams,
    /// `fault_tolerance`.
    pub fault_tolerance: FaultToleranceParams,
    /// `failures`.
    pub failures: FailureParams,
    /// `ssh`: the nodes' SSH endpoints (none when absent).
    pub ssh: Option<SshParams>,
    /// `swarm`.
    pub swarm: SwarmKnobs,
    /// `host`: the one machine whose processors the nodes share when they are virtual machines (the
    /// QEMU lab); `null` (the default) for real nodes, each with its own processors.
    pub host: Option<HostParams>,
}

/// `host`: nodes that are virtual machines of one host. Every node of the simulated cluster boots at
/// once (a deployment reboots them together), so the processor part of each boot phase
/// ([`BootParams::cpu`]) stretches by `nodes / cores` when there are more nodes than cores.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostParams {
    /// Processors of the host the nodes share.
    pub cores: f64,
    /// Processors an idle node keeps busy anyway (an emulated guest's timer ticks and polling loops):
    /// `nodes` of them leave `cores - nodes * idle_load` for the work, which stretches by `nodes` over
    /// that.
    #[serde(default)]
    pub idle_load: f64,
    /// Processors a node keeps busy beyond its work while it works and waits for a processor (an
    /// emulated guest's timer interrupts and QEMU's main loop, for as long as the work takes): with
    /// every node busy at once the work stretches by `nodes / (cores - nodes * busy_load)`. `null`
    /// (the default): `idle_load`.
    #[serde(default)]
    pub busy_load: Option<f64>,
}

/// `network`: links, switches and the broadcast latency model.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkParams {
    /// Goodput of a node's link per direction (117.7e6 = 1 GbE).
    pub bandwidth: f64,
    /// One-way latency of a link.
    pub latency: f64,
    /// Goodput of the server's link.
    pub server_bandwidth: f64,
    /// Nodes per switch (node index / this = switch); 0 = one non-blocking switch.
    pub nodes_per_switch: usize,
    /// Switch uplink capacity; `null` = non-blocking fabric.
    pub uplink_bandwidth: Option<f64>,
    /// `per_connection` or `per_chunk`.
    pub latency_model: LatencyModelName,
    /// Chunk size of the broadcast pipelines.
    pub chunk: f64,
    /// Probability that a multicast packet is lost on its way to one receiver (repaired by NAKs).
    pub loss: f64,
}

/// `swarm`: the BitTorrent-like broadcast's pieces, slots and neighbours.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwarmKnobs {
    /// At most this many pieces (a piece is the larger of the chunk and size / max_pieces).
    pub max_pieces: u32,
    /// Concurrent uploads per node and for the server.
    pub upload_slots: u32,
    /// Concurrent downloads per node.
    pub download_slots: u32,
    /// Random peers per node.
    pub neighbours: u32,
}

impl Default for SwarmKnobs {
    fn default() -> Self {
        SwarmKnobs {
            max_pieces: 128,
            upload_slots: 4,
            download_slots: 4,
            neighbours: 8,
        }
    }
}

/// `disk`: per-node disk write rate (seeded normal, truncated at a tenth of the mean) and decompression.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiskParams {
    /// Mean write rate of decompressed data.
    pub write_rate: f64,
    /// Standard deviation of the write rate across nodes.
    pub write_rate_sd: f64,
    /// Decompression rate (bytes of output per second).
    pub decompress_rate: f64,
}

/// `boot`: boot phases, drawn per node and per boot.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootParams {
    /// Power-on to network boot (BIOS/UEFI, POST).
    pub firmware: Dist,
    /// DHCP and kernel/initrd fetch.
    pub pxe: Dist,
    /// Kernel and init until sshd listens.
    pub kernel: Dist,
    /// The kexec command's `sleep 1` before it jumps.
    pub kexec_delay: f64,
    /// Clean shutdown before a soft reboot of a running system.
    pub shutdown: Dist,
    /// Share of each phase that is processor work (0 to 1): under `host`, that share stretches with
    /// the nodes per core; the rest (waits on the network, timers) does not.
    pub cpu: CpuShare,
}

/// Processor-bound share of each boot phase (0 = waits only, 1 = processor work only).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CpuShare {
    /// Of `boot.firmware`.
    pub firmware: f64,
    /// Of `boot.pxe`.
    pub pxe: f64,
    /// Of `boot.kernel`.
    pub kernel: f64,
}

/// `power`: the power commands.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PowerParams {
    /// Time a command takes to be accepted, per node and per command.
    pub command_latency: Dist,
}

/// `ops`: costs of node operations (each also pays `ssh_latency`, except `dummy`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpsParams {
    /// Connection set-up of every remote operation.
    pub ssh_latency: f64,
    /// The partitioning script (`run_script` with purpose `partitioning`).
    pub partition: f64,
    /// `mkfs` speed: a format takes `partition_size / mkfs_rate`.
    pub mkfs_rate: f64,
    /// Size of the partition a format covers (10 GB by default).
    pub partition_size: f64,
    /// `mkswap`.
    pub swap: f64,
    /// `mount` and `umount`.
    pub mount: f64,
    /// `sync`.
    pub sync: f64,
    /// A pre/post-install archive, or any script other than partitioning and bootloader.
    pub postinstall: f64,
    /// The bootloader script.
    pub bootloader: f64,
    /// The `dummy` micro-step.
    pub dummy: f64,
    /// `kexec -l`: loading the next kernel and initrd before the jump.
    pub kexec: f64,
    /// Share of each operation's time (connection included) that is the node's processor work: under
    /// `host`, it stretches with the nodes per core like the boots' (0: none).
    pub cpu: f64,
    /// Share of an operation's own work (beyond its connection, `ssh_latency`) that is processor work,
    /// when it differs from the connection's (`cpu`): under `host`, the work stretches by this share
    /// and the connection by `cpu`. `null` (the default): `cpu` for both.
    pub work_cpu: Option<f64>,
    /// SSH commands the deployer runs on every node around each broadcast, each costing `ssh_latency`
    /// (kadeploy-rs's kaagent backend: 2, the broadcast's token written before and removed after).
    pub broadcast_commands: u32,
    /// One reachability probe round.
    pub probe: f64,
    /// How long a probe waits for a node that does not answer (down or booting): the deployer's
    /// connection timeout (the site backend's TCP probe: 2 s). 0: a down node fails at once.
    pub probe_timeout: f64,
    /// A node hung in an operation fails alone after this long ("command timed out"), as the site
    /// backend's `backend/command_timeout` makes SSH commands do; `null`: the whole call waits forever
    /// (until the engine's micro- or macro-step timeout).
    pub command_timeout: Option<f64>,
}

/// `image`: the image assumed when a broadcast does not give its size.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageParams {
    /// Compressed size.
    pub size: f64,
    /// Decompressed / compressed ratio.
    pub ratio: f64,
}

/// `fault_tolerance`: the fault-tolerant chain's detection and reconnection times.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultToleranceParams {
    /// Time to notice a dead successor.
    pub detect_timeout: f64,
    /// Time to reconnect to the next live node.
    pub reconnect: f64,
}

impl Default for SimParams {
    fn default() -> Self {
        SimParams {
            seed: 42,
            network: NetworkParams::default(),
            disk: DiskParams::default(),
            boot: BootParams::default(),
            power: PowerParams::default(),
            ops: OpsParams::default(),
            image: ImageParams::default(),
            fault_tolerance: FaultToleranceParams::default(),
            failures: FailureParams::default(),
            ssh: None,
            swarm: SwarmKnobs::default(),
            host: None,
        }
    }
}

impl Default for NetworkParams {
    fn default() -> Self {
        NetworkParams {
            bandwidth: 117.7e6,
            latency: 1e-4,
            server_bandwidth: 117.7e6,
            nodes_per_switch: 0,
            uplink_bandwidth: None,
            latency_model: LatencyModelName::PerConnection,
            chunk: 65_536.0,
            loss: 0.0,
        }
    }
}

impl Default for DiskParams {
    fn default() -> Self {
        DiskParams {
            write_rate: 150e6,
            write_rate_sd: 10e6,
            decompress_rate: 400e6,
        }
    }
}

impl Default for BootParams {
    fn default() -> Self {
        BootParams {
            firmware: Dist::new(30.0, 5.0, 10.0),
            pxe: Dist::new(4.0, 1.0, 1.0),
            kernel: Dist::new(12.0, 3.0, 4.0),
            kexec_delay: 1.0,
            shutdown: Dist::new(5.0, 1.0, 1.0),
            cpu: CpuShare::default(),
        }
    }
}

impl Default for PowerParams {
    fn default() -> Self {
        PowerParams {
            command_latency: Dist::new(1.5, 0.3, 0.2),
        }
    }
}

impl Default for OpsParams {
    fn default() -> Self {
        OpsParams {
            ssh_latency: 0.05,
            partition: 2.0,
            mkfs_rate: 2e9,
            partition_size: 10e9,
            swap: 0.5,
            mount: 0.1,
            sync: 0.5,
            postinstall: 4.0,
            bootloader: 3.0,
            dummy: 0.5,
            kexec: 0.0,
            cpu: 0.0,
            work_cpu: None,
            broadcast_commands: 0,
            probe: 0.01,
            probe_timeout: 0.0,
            command_timeout: Some(600.0),
        }
    }
}

impl Default for ImageParams {
    fn default() -> Self {
        ImageParams {
            size: 1e9,
            ratio: 2.5,
        }
    }
}

impl Default for FaultToleranceParams {
    fn default() -> Self {
        FaultToleranceParams {
            detect_timeout: 3.0,
            reconnect: 0.5,
        }
    }
}

impl SimParams {
    /// Parses and validates a `simulation.conf` text (an empty text gives the defaults).
    pub fn from_yaml_str(text: &str) -> Result<Self, ParamsError> {
        Self::parse(text, "simulation.conf")
    }

    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ParamsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ParamsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates a `simulation.conf` text read from `origin` (named in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Self, ParamsError> {
        let blank = text.lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#') || l == "---"
        });
        let params: SimParams = if blank {
            SimParams::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| ParamsError::Syntax {
                origin: origin.to_string(),
                message: e.to_string(),
            })?
        };
        params
            .validate()
            .map_err(|(key, message)| ParamsError::Invalid {
                origin: origin.to_string(),
                key,
                message,
            })?;
        Ok(params)
    }

    /// Checks every value's range; on error returns the dotted key and what is wrong.
    pub fn validate(&self) -> Check {
        let n = &self.network;
        positive("network.bandwidth", n.bandwidth)?;
        non_negative("network.latency", n.latency)?;
        positive("network.server_bandwidth", n.server_bandwidth)?;
        if let Some(u) = n.uplink_bandwidth {
            positive("network.uplink_bandwidth", u)?;
        }
        positive("network.chunk", n.chunk)?;
        in_range("network.loss", n.loss, 0.0, false, 0.9)?;
        let w = &self.swarm;
        for (key, v, hi) in [
            ("swarm.max_pieces", w.max_pieces, 65_536.0),
            ("swarm.upload_slots", w.upload_slots, 1024.0),
            ("swarm.download_slots", w.download_slots, 1024.0),
            ("swarm.neighbours", w.neighbours, 1024.0),
        ] {
            in_range(key, f64::from(v), 1.0, false, hi)?;
        }
        positive("disk.write_rate", self.disk.write_rate)?;
        non_negative("disk.write_rate_sd", self.disk.write_rate_sd)?;
        positive("disk.decompress_rate", self.disk.decompress_rate)?;
        let b = &self.boot;
        dist("boot.firmware", &b.firmware)?;
        dist("boot.pxe", &b.pxe)?;
        dist("boot.kernel", &b.kernel)?;
        non_negative("boot.kexec_delay", b.kexec_delay)?;
        dist("boot.shutdown", &b.shutdown)?;
        for (key, v) in [
            ("boot.cpu.firmware", b.cpu.firmware),
            ("boot.cpu.pxe", b.cpu.pxe),
            ("boot.cpu.kernel", b.cpu.kernel),
        ] {
            in_range(key, v, 0.0, false, 1.0)?;
        }
        if let Some(host) = &self.host {
            in_range("host.cores", host.cores, 0.0, true, 1e6)?;
            in_range("host.idle_load", host.idle_load, 0.0, false, 1.0)?;
            if let Some(b) = host.busy_load {
                in_range("host.busy_load", b, 0.0, false, 1.0)?;
            }
        }
        dist("power.command_latency", &self.power.command_latency)?;
        let o = &self.ops;
        for (key, v) in [
            ("ops.ssh_latency", o.ssh_latency),
            ("ops.partition", o.partition),
            ("ops.partition_size", o.partition_size),
            ("ops.swap", o.swap),
            ("ops.mount", o.mount),
            ("ops.sync", o.sync),
            ("ops.postinstall", o.postinstall),
            ("ops.bootloader", o.bootloader),
            ("ops.dummy", o.dummy),
            ("ops.kexec", o.kexec),
            ("ops.probe", o.probe),
            ("ops.probe_timeout", o.probe_timeout),
        ] {
            non_negative(key, v)?;
        }
        positive("ops.mkfs_rate", o.mkfs_rate)?;
        in_range("ops.cpu", o.cpu, 0.0, false, 1.0)?;
        if let Some(w) = o.work_cpu {
            in_range("ops.work_cpu", w, 0.0, false, 1.0)?;
        }
        if let Some(t) = o.command_timeout {
            positive("ops.command_timeout", t)?;
        }
        non_negative("image.size", self.image.size)?;
        positive("image.ratio", self.image.ratio)?;
        non_negative(
            "fault_tolerance.detect_timeout",
            self.fault_tolerance.detect_timeout,
        )?;
        non_negative("fault_tolerance.reconnect", self.fault_tolerance.reconnect)?;
        if let Some(ssh) = &self.ssh {
            ssh.validate()?;
        }
        self.failures.validate()
    }
}

/// Checks that `v` is finite and > 0.
fn positive(key: &str, v: f64) -> Check {
    in_range(key, v, 0.0, true, f64::INFINITY)
}

/// Checks that `v` is finite and >= 0.
fn non_negative(key: &str, v: f64) -> Check {
    in_range(key, v, 0.0, false, f64::INFINITY)
}

fn dist(key: &str, d: &Dist) -> Check {
    non_negative(&format!("{key}.mean"), d.mean)?;
    non_negative(&format!("{key}.sd"), d.sd)?;
    non_negative(&format!("{key}.min"), d.min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_take_defaults() {
        assert_eq!(SimParams::from_yaml_str("").unwrap(), SimParams::default());
        assert_eq!(
            SimParams::from_yaml_str("# nothing\n").unwrap(),
            SimParams::default()
        );
        let p = SimParams::from_yaml_str("boot: {pxe: {mean: 2}}\nops: {dummy: 1}\n").unwrap();
        assert_eq!(p.boot.pxe, Dist::new(2.0, 0.0, 0.0));
        assert_eq!(p.boot.firmware, BootParams::default().firmware);
        assert_eq!(p.ops.dummy, 1.0);
        assert_eq!(p.ops.probe, OpsParams::default().probe);
    }
}

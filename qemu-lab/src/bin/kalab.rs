//! `kalab`: bring a QEMU lab up, run an end-to-end deployment on it with the real deployer, tear it down.

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use qemu_lab::boot::{BootMethod, LabBoot};
use qemu_lab::e2e::busy_load::DEFAULT_PROBE;
use qemu_lab::e2e::{self, BootPath, Options};
use qemu_lab::lab::{Lab, LabSpec};
use qemu_lab::site_config::PowerDriver;
use qemu_lab::vm::{self, Accel, Firmware};
use std::path::PathBuf;

/// QEMU lab of the Kadeploy reimplementation.
#[derive(Parser)]
#[command(name = "kalab", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Bring a lab up, deploy every node, verify them over SSH, tear down. The last stdout line is a
    /// JSON report; the exit status is 0 only when every node verified (with --faults: when exactly
    /// the two faulty nodes failed).
    E2e {
        #[command(flatten)]
        lab: LabArgs,
        /// Environment to deploy: a lab environment (kalab-linux, kalab-linux-dd) or the kaenv3
        /// description (YAML file) of your own, registered and deployed.
        #[arg(long, default_value = "kalab-linux")]
        env: String,
        /// How the deployed environment is started: kexec from the deploy kernel, or classical (a
        /// reboot through the firmware and the boot method's local-boot profile).
        #[arg(long, value_enum)]
        boot_env: Option<BootEnvArg>,
        /// A command run over SSH as root on every deployed node; a node fails when it exits non-zero
        /// (repeatable).
        #[arg(long = "check", value_name = "COMMAND")]
        checks: Vec<String>,
        /// Power one VM off through its BMC during the broadcast and make another BMC unresponsive.
        #[arg(long)]
        faults: bool,
        /// Also check kapower3, kareboot3 and kaconsole3 on a deployed node.
        #[arg(long)]
        tools: bool,
        /// Stop the deploy kernel's agents before the broadcast so that kadeploy3d sends kaagent over SSH.
        #[arg(long)]
        agent_over_ssh: bool,
        /// Predict the deployment with kasim and this simulation.conf (written by an earlier run into
        /// its --dir); default: the parameters measured on this run.
        #[arg(long)]
        sim_params: Option<PathBuf>,
        /// The busy-load probe run after the deployment (not timed): what crowds the VMs
        /// (`vms:N` throwaway VMs booting the lab's kernel, `spinners:N` host loops) and `xR` rounds;
        /// repeatable (the first one calibrates, the others are reported); `none` skips it.
        #[arg(long = "busy-probe", value_name = "CROWD", default_value = DEFAULT_PROBE)]
        busy_probes: Vec<String>,
    },
    /// Bring a lab up and keep it until Ctrl-C (prints how to use the clients against it).
    Up {
        #[command(flatten)]
        lab: LabArgs,
        /// The kaenv3 description (YAML file) of your own environment, registered for the lab's user.
        #[arg(long, value_name = "FILE")]
        env: Option<PathBuf>,
    },
    /// Rebuild a finished run's simulation.conf (printed) from what it left: kadeploy3's `-V 4` output
    /// (kalab's stderr), the run's timeline.json, kalab's JSON report and the environment's image.
    Calibrate {
        /// kadeploy3's `-V 4` output (kalab e2e's stderr holds it).
        #[arg(long)]
        output: PathBuf,
        /// The run's `<dir>/timeline.json`.
        #[arg(long)]
        timeline: PathBuf,
        /// kalab e2e's stdout (its last line is the JSON report).
        #[arg(long)]
        report: PathBuf,
        /// The deployed environment's image file.
        #[arg(long)]
        image: PathBuf,
        /// The VMs' busy load measured since on this host, for a run made before kalab measured it.
        #[arg(long)]
        busy_load: Option<f64>,
        /// The run's `<dir>/kadeploy3d.log`: the broadcast's time to the microsecond (kadeploy3's
        /// output gives whole seconds).
        #[arg(long)]
        server_log: Option<PathBuf>,
    },
    /// Remove labs left behind by dead kalab processes.
    Clean,
}

#[derive(clap::Args)]
struct LabArgs {
    /// Number of VMs.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Working directory (emptied first).
    #[arg(long, default_value = "/tmp/kalab")]
    dir: PathBuf,
    /// Cache of built images.
    #[arg(long, env = "KALAB_CACHE", default_value = "/var/cache/kalab")]
    cache: PathBuf,
    /// Static kaagent binary (default: next to kalab, then the static release build).
    #[arg(long, env = "KALAB_KAAGENT")]
    kaagent: Option<PathBuf>,
    /// Memory per VM (MiB).
    #[arg(long, default_value_t = 512)]
    memory: u32,
    /// Disk per VM (MiB).
    #[arg(long, default_value_t = 1024)]
    disk: u64,
    /// Accelerator: auto probes KVM and falls back to TCG.
    #[arg(long, value_enum, default_value = "tcg")]
    accel: AccelArg,
    /// Power driver of kadeploy3d.
    #[arg(long, value_enum, default_value = "ipmitool")]
    power: PowerArg,
    /// Firmware of the VMs: SeaBIOS, or OVMF (UEFI).
    #[arg(long, value_enum, default_value = "bios")]
    firmware: FirmwareArg,
    /// Network boot method (default: ipxe on BIOS, grub on UEFI); `kexec` and `classical` are the
    /// former spelling of `--boot-env` (with the default method).
    #[arg(long, value_enum)]
    boot: Option<BootArg>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BootArg {
    /// PXElinux over TFTP (BIOS).
    Pxelinux,
    /// iPXE (QEMU's ROM): profiles, kernels and initrds over HTTP.
    Ipxe,
    /// GRUB's network image over TFTP (UEFI: the firmware's own PXE), kernels over HTTP.
    Grub,
    /// UEFI HTTP boot of iPXE from the HTTP boot server (needs --firmware uefi).
    Http,
    /// Same as --boot-env kexec.
    Kexec,
    /// Same as --boot-env classical.
    Classical,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BootEnvArg {
    Kexec,
    Classical,
}

#[derive(Clone, Copy, ValueEnum)]
enum FirmwareArg {
    Bios,
    Uefi,
}

#[derive(Clone, Copy, ValueEnum)]
enum AccelArg {
    Auto,
    Tcg,
    Kvm,
}

#[derive(Clone, Copy, ValueEnum)]
enum PowerArg {
    Ipmitool,
    Native,
    Redfish,
    Pdu,
}

impl LabArgs {
    /// The firmware and boot method asked (kexec/classical leave the default method).
    fn boot(&self) -> anyhow::Result<LabBoot> {
        let firmware = match self.firmware {
            FirmwareArg::Bios => Firmware::Bios,
            FirmwareArg::Uefi => Firmware::Uefi,
        };
        let method = match (self.boot, firmware) {
            (Some(BootArg::Pxelinux), _) => BootMethod::Pxelinux,
            (Some(BootArg::Ipxe), _) => BootMethod::Ipxe,
            (Some(BootArg::Grub), _) => BootMethod::Grub,
            (Some(BootArg::Http), _) => BootMethod::Http,
            // iPXE fetches the deploy kernel and initrd over HTTP: 4 VMs' first boot took 24 s
            // instead of 43 s with PXElinux's TFTP.
            (_, Firmware::Bios) => BootMethod::Ipxe,
            (_, Firmware::Uefi) => BootMethod::Grub,
        };
        Ok(LabBoot::new(firmware, method)?)
    }

    /// `--boot kexec|classical`, the former spelling of `--boot-env`.
    fn legacy_boot_env(&self) -> Option<BootEnvArg> {
        match self.boot {
            Some(BootArg::Kexec) => Some(BootEnvArg::Kexec),
            Some(BootArg::Classical) => Some(BootEnvArg::Classical),
            _ => None,
        }
    }

    fn spec(&self) -> anyhow::Result<LabSpec> {
        let exe = std::env::current_exe()?;
        let bin_dir = exe.parent().map(PathBuf::from).unwrap_or_default();
        let kaagent = match &self.kaagent {
            Some(p) => p.clone(),
            None => [
                bin_dir.join("kaagent-static"),
                bin_dir.join("../x86_64-unknown-linux-gnu/release/kaagent"),
            ]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no static kaagent: build it with RUSTFLAGS=\"-C target-feature=+crt-static\" \
                     cargo build --release -p hal --bin kaagent --target x86_64-unknown-linux-gnu, \
                     or pass --kaagent"
                )
            })?,
        };
        Ok(LabSpec {
            nodes: self.nodes,
            dir: self.dir.clone(),
            cache: self.cache.clone(),
            kaagent,
            bin_dir,
            memory_mib: self.memory,
            disk_mib: self.disk,
            accel: match self.accel {
                AccelArg::Auto => vm::probe_accel(),
                AccelArg::Tcg => Accel::Tcg,
                AccelArg::Kvm => Accel::Kvm,
            },
            power: match self.power {
                PowerArg::Ipmitool => PowerDriver::Ipmitool,
                PowerArg::Native => PowerDriver::Native,
                PowerArg::Redfish => PowerDriver::Redfish,
                PowerArg::Pdu => PowerDriver::Pdu,
            },
            agent_over_ssh: false,
            boot: self.boot()?,
            env_file: None,
        })
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kalab: {e:#}");
            2
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Cmd::Calibrate {
            output,
            timeline,
            report,
            image,
            busy_load,
            server_log,
        } => calibrate(
            &output,
            &timeline,
            &report,
            &image,
            busy_load,
            server_log.as_deref(),
        ),
        Cmd::E2e {
            lab,
            env,
            boot_env,
            checks,
            faults,
            tools,
            agent_over_ssh,
            sim_params,
            busy_probes,
        } => {
            let busy_probes = busy_probes
                .iter()
                .filter(|p| p.as_str() != "none")
                .map(|p| p.parse().with_context(|| format!("--busy-probe {p}")))
                .collect::<anyhow::Result<Vec<e2e::busy_load::ProbeSpec>>>()?;
            let (start, before) = quiet_start();
            let clock = qemu_lab::host_speed::Clock::start();
            let boot_env = match (boot_env, lab.legacy_boot_env()) {
                (Some(a), Some(b)) if a != b => {
                    anyhow::bail!("--boot and --boot-env name different boot paths")
                }
                (a, b) => a.or(b).unwrap_or(BootEnvArg::Kexec),
            };
            let mut spec = lab.spec()?;
            spec.agent_over_ssh = agent_over_ssh;
            // A file is a user's environment description; anything else names a lab environment.
            if std::path::Path::new(&env).is_file() {
                spec.env_file = Some(PathBuf::from(&env));
            }
            let nodes = spec.nodes;
            let lab = Lab::up(spec)?;
            let env = match lab.user_environment() {
                Some(user) => user.name.clone(),
                None => env,
            };
            let options = Options {
                env,
                boot: match boot_env {
                    BootEnvArg::Kexec => BootPath::Kexec,
                    BootEnvArg::Classical => BootPath::Classical,
                },
                faults,
                tools,
                agent_over_ssh,
                sim_params,
                checks,
                busy_probes,
            };
            let result = e2e::run(&lab, &options, clock);
            drop(lab);
            let report = stamped(result?, start, before);
            let tools_ok = report.tools.values().all(|v| v.starts_with("ok"));
            let passed = if faults && nodes >= 3 {
                report.nodes_ko == 2
                    && report.ko.contains_key(&format!("node-{}.lab", nodes - 1))
                    && report.ko.contains_key(&format!("node-{nodes}.lab"))
            } else {
                report.nodes_ko == 0
            };
            println!("{}", serde_json::to_string(&report)?);
            Ok(if passed && tools_ok { 0 } else { 1 })
        }
        Cmd::Up { lab, env } => {
            let mut spec = lab.spec()?;
            spec.env_file = env;
            let lab = Lab::up(spec)?;
            e2e::register(&lab)?;
            if let Some(user) = lab.user_environment() {
                println!(
                    "environment {} registered for user {}",
                    user.name,
                    qemu_lab::lab::USER
                );
            }
            println!(
                "nodes: {}",
                lab.nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            println!(
                "lab up in namespace {}; clients: ip netns exec {} env KADEPLOY3_CONFIG_DIR={} USER=root kadeploy3 ...",
                lab.net.ns(),
                lab.net.ns(),
                lab.client_dir.display()
            );
            println!("Ctrl-C tears it down.");
            let (tx, rx) = std::sync::mpsc::channel();
            ctrlc_wait(tx);
            let _ = rx.recv();
            drop(lab);
            Ok(0)
        }
        Cmd::Clean => {
            let removed = qemu_lab::net::cleanup_stale()?;
            println!("removed {} stale lab(s)", removed.len());
            Ok(0)
        }
    }
}

/// Before a run's clock: an earlier lab's dying QEMUs must not share the processors with it. Waits for
/// them (not timed), reads how busy the host is, then times the host-speed reference work.
fn quiet_start() -> (qemu_lab::quiet::Start, qemu_lab::host_speed::HostSpeed) {
    let start = qemu_lab::quiet::wait_for_lab_qemus();
    eprintln!(
        "kalab: {} lab QEMU(s) of an earlier run waited for {:.1} s ({} still alive); host busy {:.0}% before the start",
        start.leftover_qemus,
        start.waited_seconds,
        start.still_alive,
        start.host_busy.unwrap_or(f64::NAN) * 100.0
    );
    let host = qemu_lab::host_speed::HostSpeed {
        reference: Some(qemu_lab::host_speed::reference()),
        reference_all: qemu_lab::host_speed::reference_all(),
        ..Default::default()
    };
    eprintln!(
        "kalab: host-speed reference before the clock: one processor {:?}, every processor {:?}",
        host.reference, host.reference_all
    );
    (start, host)
}

/// The run's report with what was read before its clock: the start and the host-speed references.
fn stamped(
    report: e2e::Report,
    start: qemu_lab::quiet::Start,
    before: qemu_lab::host_speed::HostSpeed,
) -> e2e::Report {
    let host = qemu_lab::host_speed::HostSpeed {
        reference: before.reference,
        reference_all: before.reference_all,
        ..report.host
    };
    e2e::Report {
        start,
        host,
        ..report
    }
}

/// `kalab calibrate`: prints the `simulation.conf` a finished run's files give.
fn calibrate(
    output: &std::path::Path,
    timeline: &std::path::Path,
    report: &std::path::Path,
    image: &std::path::Path,
    busy_load: Option<f64>,
    server_log: Option<&std::path::Path>,
) -> anyhow::Result<i32> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    let timeline: qemu_lab::timeline::Timeline = serde_json::from_str(&read(timeline)?)?;
    let text = read(report)?;
    let last = text.lines().last().unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(last)?;
    let server_log = server_log.map(read).transpose()?;
    print!(
        "{}",
        qemu_lab::calibrate::replay::simulation_conf_of(
            &read(output)?,
            &timeline,
            &report,
            image,
            busy_load,
            server_log.as_deref(),
        )?
    );
    Ok(0)
}

/// Sends on `tx` at SIGINT/SIGTERM.
fn ctrlc_wait(tx: std::sync::mpsc::Sender<()>) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(rt) = rt {
            rt.block_on(async {
                let _ = tokio::signal::ctrl_c().await;
            });
        }
        let _ = tx.send(());
    });
}

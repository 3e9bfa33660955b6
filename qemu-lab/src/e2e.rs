//! The end-to-end run: register the lab's environments, deploy every node with `kadeploy3`, verify each
//! deployed node over SSH, optionally exercise the other clients and inject BMC faults, and report.

use crate::calibrate;
use crate::lab::Lab;
use crate::site_config::SiteNode;
use anyhow::{Context as _, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

pub mod busy_load;
pub(crate) mod options;
pub mod through_firmware;

pub use options::{BootPath, Options};

/// The result, printed as the last line of `kalab e2e`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Nodes deployed and verified.
    pub nodes_ok: usize,
    /// Nodes that failed (deployment or verification).
    pub nodes_ko: usize,
    /// Wall-clock seconds of the whole run (lab up to verification; the `--tools` checks and the
    /// calibration's measurements come after).
    pub seconds: f64,
    /// Seconds of the `kadeploy3` run alone.
    pub deploy_seconds: f64,
    /// Seconds spent building or fetching images.
    pub build_seconds: f64,
    /// Per-macro-step durations (max over nodes, seconds) from kastat3.
    pub steps: BTreeMap<String, f64>,
    /// Environment deployed.
    pub env: String,
    /// Boot path.
    pub boot: BootPath,
    /// Firmware and network boot method (`bios-pxelinux`, `uefi-http`...).
    pub netboot: String,
    /// Why each KO node failed (kadeploy3's KO file, or the verification).
    pub ko: BTreeMap<String, String>,
    /// Results of the client checks (`--tools`).
    pub tools: BTreeMap<String, String>,
    /// `kasim`'s predicted deployment time (s), when `kasim` is next to `kalab`: the mean over
    /// [`calibrate::SEEDS`] seeds.
    pub predicted_seconds: Option<f64>,
    /// The seeds' spread around it.
    pub prediction: Option<calibrate::Prediction>,
    /// (predicted - deploy_seconds) / deploy_seconds.
    pub prediction_error: Option<f64>,
    /// Where the prediction's parameters come from (`this run` or a file).
    pub calibration: String,
    /// The boot phases seen on the serial consoles (means over the VMs; all of them in
    /// `<dir>/timeline.json`).
    pub boots: calibrate::Phases,
    /// The host's 1-minute load average at the end of the deployment.
    pub load_average: f64,
    /// One SSH command to an idle deployed node (the prediction's connection cost).
    pub ssh: calibrate::SshCost,
    /// Processors an idle deployed VM keeps busy (timer ticks under TCG).
    pub idle_load: f64,
    /// Processors a deployed VM keeps busy beyond its work while it works and waits for a processor
    /// ([`busy_load`]); `None` when not measured.
    pub busy_load: Option<f64>,
    /// Every busy-load probe run (`--busy-probe`), the first one's load being `busy_load`.
    pub busy_probes: Vec<busy_load::Probe>,
    /// What the run's start found: earlier labs' QEMUs waited for, the host's busy share.
    pub start: crate::quiet::Start,
    /// The host's speed: steal over the run and the deployment, the reference work before the clock.
    pub host: crate::host_speed::HostSpeed,
}

/// Runs the deployment on `lab` and verifies it; `clock` started when the lab began coming up.
pub fn run(
    lab: &Lab,
    options: &Options,
    clock: crate::host_speed::Clock,
) -> anyhow::Result<Report> {
    register(lab)?;
    let watcher =
        crate::timeline::Watcher::start(lab.vms.iter().map(|v| v.spec().vm_dir()).collect());
    let d = deploy(lab, options);
    let timeline = watcher.stop();
    let d = d?;
    std::fs::write(
        lab.dir().join("timeline.json"),
        serde_json::to_string(&timeline)?,
    )?;
    let boots = calibrate::phases::measure(&timeline);
    let (verified, ko) = verify_all(lab, options, &d.reasons);
    // Deployed and verified: what follows measures the calibration's extras.
    let (seconds, steal_seconds) = (clock.seconds(), clock.steal_seconds());
    let idle_load = idle_load(lab);
    let ssh = (0..lab.nodes.len())
        .find(|i| !ko.contains_key(&lab.nodes[*i].name))
        .and_then(|i| ssh_cost(lab, i))
        .unwrap_or_default();
    let deployed: Vec<usize> = (0..lab.nodes.len())
        .filter(|i| !ko.contains_key(&lab.nodes[*i].name))
        .collect();
    let probes: Vec<Option<busy_load::Probe>> = options
        .busy_probes
        .iter()
        .map(|spec| busy_load::measure(lab, &deployed, *spec))
        .collect();
    // The first probe calibrates; the others are only reported.
    let busy_load = probes.first().and_then(Option::as_ref).and_then(|p| p.load);
    let busy_probes: Vec<busy_load::Probe> = probes.into_iter().flatten().collect();
    let load = calibrate::HostLoad {
        idle: idle_load,
        busy: busy_load,
    };
    let steps = step_durations(lab).unwrap_or_default();
    let mut tools = BTreeMap::new();
    if options.agent_over_ssh {
        let (check, result) = agents_sent_over_ssh(lab, &d.output);
        tools.insert(check, result);
    }
    if let Some((check, result)) = crate::e2e_power::check(lab, &d.output) {
        tools.insert(check, result);
    }
    if let Some(result) = firmware_path(lab, options, &ko) {
        tools.insert("deployed system booted through OVMF".into(), result);
    }
    let (prediction, calibration) = match predict(lab, options, &d.output, &boots, ssh, load) {
        Ok(p) => p,
        Err(e) => (None, format!("no prediction: {e:#}")),
    };
    let predicted_seconds = prediction.map(|p| p.mean);
    let prediction_error = predicted_seconds.map(|p| (p - d.seconds) / d.seconds);
    if options.tools {
        let ok: Vec<usize> = (0..lab.nodes.len())
            .filter(|i| !ko.contains_key(&lab.nodes[*i].name))
            .collect();
        if let Some(&first) = ok.first() {
            tools.extend(crate::tools::check(lab, first)?);
        }
    }
    Ok(Report {
        nodes_ok: verified,
        nodes_ko: lab.nodes.len() - verified,
        seconds,
        deploy_seconds: d.seconds,
        build_seconds: lab.build_seconds,
        steps,
        env: options.env.clone(),
        boot: options.boot,
        netboot: lab.boot().label(),
        ko,
        tools,
        predicted_seconds,
        prediction,
        prediction_error,
        calibration,
        boots,
        load_average: timeline.load_average,
        ssh,
        idle_load,
        busy_load,
        busy_probes,
        start: crate::quiet::Start::default(),
        host: crate::host_speed::HostSpeed {
            reference: None,
            reference_all: None,
            steal_seconds,
            deploy_steal_seconds: d.steal_seconds,
            steal_share: steal_seconds.and_then(|s| {
                crate::host_speed::steal_share(s, seconds, crate::host_speed::processors())
            }),
        },
    })
}

/// Gives the lab's user every partition of every node (karights3, as the administrator) and registers
/// the lab's environments and the user's one (kaenv3).
pub fn register(lab: &Lab) -> anyhow::Result<()> {
    let names: Vec<String> = lab.nodes.iter().map(|n| n.name.clone()).collect();
    let out = lab
        .client_as("karights3", "root")
        .args(["-a", "-u", crate::lab::USER, "-p", "*"])
        .args(names.iter().flat_map(|n| ["-m", n.as_str()]))
        .output()?;
    if !out.status.success() {
        bail!(
            "karights3 -a: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for env in &lab.environments {
        let out = lab
            .client("kaenv3")
            .arg("-a")
            .arg(&env.description)
            .output()?;
        if !out.status.success() {
            bail!(
                "kaenv3 -a {}: {}{}",
                env.description.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

/// What the `kadeploy3` run gave.
struct Deployment {
    /// Seconds the run took.
    seconds: f64,
    /// Why each failed node failed, from kadeploy3's summary.
    reasons: BTreeMap<String, String>,
    /// kadeploy3's output lines.
    output: Vec<String>,
    /// Processor seconds stolen from the host meanwhile.
    steal_seconds: Option<f64>,
}

/// The faults of `--faults` on 3 nodes or more: the node whose BMC powers it off during the broadcast,
/// and the node whose BMC is stopped.
fn fault_nodes(lab: &Lab, options: &Options) -> (Option<usize>, Option<usize>) {
    if options.faults && lab.nodes.len() >= 3 {
        (Some(lab.nodes.len() - 2), Some(lab.nodes.len() - 1))
    } else {
        (None, None)
    }
}

/// Runs `kadeploy3` on every node (with the faults of `--faults`), echoing and keeping its output.
fn deploy(lab: &Lab, options: &Options) -> anyhow::Result<Deployment> {
    let all: Vec<&SiteNode> = lab.nodes.iter().collect();
    let nodes = lab.node_file(&all)?;
    let automata = format!(
        "SetDeploymentEnv|SetDeploymentEnvUntrusted:1:900&BroadcastEnv|BroadcastEnvKascade:1:900&BootNewEnv|{}:1:900",
        options.boot.step()
    );
    let (powered_off, hung) = fault_nodes(lab, options);
    if let Some(i) = hung {
        let pid = lab.bmc_pid(i).context("BMC pid")?;
        crate::net::signal(pid, "STOP");
        eprintln!("fault: BMC of {} stopped (SIGSTOP)", lab.nodes[i].name);
    }
    let mut kadeploy3 = lab.client("kadeploy3");
    if options.agent_over_ssh {
        let custom_steps = lab.dir().join("custom-steps.yml");
        std::fs::write(
            &custom_steps,
            "BroadcastEnvKascade:\n  send_environment:\n    pre-ops:\n      - {action: exec, name: stop_agent, command: 'killall kaagent 2>/dev/null; sleep 1; true'}\n",
        )?;
        kadeploy3.arg("--custom-steps").arg(&custom_steps);
    }
    let clock = crate::host_speed::Clock::start();
    let mut child = kadeploy3
        .args(["-e", &options.env, "-f"])
        .arg(&nodes)
        .arg("-o")
        .arg(lab.dir().join("ok"))
        .arg("-n")
        .arg(lab.dir().join("ko"))
        .arg("-k")
        .arg(lab.key.with_extension("pub"))
        .args(["--force-steps", &automata, "-V", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting kadeploy3")?;
    let stdout = child.stdout.take().context("kadeploy3 stdout")?;
    let mut fault_done = powered_off.is_none();
    let mut reasons: BTreeMap<String, String> = BTreeMap::new();
    let mut output: Vec<String> = Vec::new();
    let mut in_failed = false;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        eprintln!("{line}");
        output.push(line.clone());
        // `The deployment failed on nodes` is followed by `<node> (<reason>)` lines.
        if line.ends_with("failed on nodes") {
            in_failed = true;
        } else if in_failed {
            match line.split_once(" (") {
                Some((node, why)) => {
                    reasons.insert(node.to_string(), why.trim_end_matches(')').to_string());
                }
                None => in_failed = false,
            }
        }
        if !fault_done && line.contains("BroadcastEnv") {
            fault_done = true;
            power_off_through_bmc(lab, powered_off.unwrap_or_default())?;
        }
    }
    let status = child.wait()?;
    let (seconds, steal_seconds) = (clock.seconds(), clock.steal_seconds());
    eprintln!("kadeploy3 exited with {status} after {seconds:.1} s");
    if let Some(i) = hung {
        crate::net::signal(lab.bmc_pid(i).unwrap_or_default(), "CONT");
    }
    Ok(Deployment {
        seconds,
        reasons,
        output,
        steal_seconds,
    })
}

/// Lets the broadcast start, then pulls the plug of node `i` through its BMC.
fn power_off_through_bmc(lab: &Lab, i: usize) -> anyhow::Result<()> {
    std::thread::sleep(Duration::from_secs(2));
    let out = lab
        .net
        .command("ipmitool")
        .args(["-I", "lanplus", "-H"])
        .arg(lab.nodes[i].bmc_ip.to_string())
        .args(["-U", crate::site_config::BMC_USER, "-f"])
        .arg(lab.config_dir.join("ipmi.pass"))
        .args(["chassis", "power", "off"])
        .output()?;
    eprintln!(
        "fault: {} powered off through its BMC during the broadcast: {}",
        lab.nodes[i].name,
        String::from_utf8_lossy(&out.stdout).trim()
    );
    Ok(())
}

/// Verifies every node of the OK file over SSH; gives the verified count and why each other node is KO.
fn verify_all(
    lab: &Lab,
    options: &Options,
    reasons: &BTreeMap<String, String>,
) -> (usize, BTreeMap<String, String>) {
    let ok_names: Vec<String> = read_lines(&lab.dir().join("ok"));
    let mut ko: BTreeMap<String, String> = read_lines(&lab.dir().join("ko"))
        .into_iter()
        .map(|node| {
            let why = reasons.get(&node).cloned().unwrap_or_default();
            (node, why)
        })
        .collect();
    let mut verified = 0;
    for (i, node) in lab.nodes.iter().enumerate() {
        if !ok_names.contains(&node.name) {
            ko.entry(node.name.clone())
                .or_insert_with(|| "not in the OK file".into());
            continue;
        }
        match verify(lab, i, options) {
            Ok(()) => verified += 1,
            Err(e) => {
                ko.insert(node.name.clone(), format!("verification: {e:#}"));
            }
        }
    }
    (verified, ko)
}

/// `--agent-over-ssh`: the agents the custom pre-op stopped were sent and started over SSH.
fn agents_sent_over_ssh(lab: &Lab, output: &[String]) -> (String, String) {
    let log = std::fs::read_to_string(lab.dir().join("kadeploy3d.log")).unwrap_or_default();
    let ran = output
        .iter()
        .any(|l| l.contains("send_environment-stop_agent"));
    let uploaded = log.contains("sending kaagent over SSH");
    let result = if ran && uploaded {
        "ok: agents stopped by a custom pre-op were sent and started over SSH".to_string()
    } else {
        format!("failed: custom pre-op seen: {ran}, upload logged: {uploaded}")
    };
    ("kaagent sent over SSH".to_string(), result)
}

/// Writes `<dir>/simulation.conf` measured on this run and predicts the run with `kasim`.
fn predict(
    lab: &Lab,
    options: &Options,
    output: &[String],
    boots: &calibrate::Phases,
    ssh: calibrate::SshCost,
    load: calibrate::HostLoad,
) -> anyhow::Result<(Option<calibrate::Prediction>, String)> {
    let steps = calibrate::StepTimes::parse(output.iter().map(String::as_str)).with_server_log(
        &std::fs::read_to_string(lab.dir().join("kadeploy3d.log")).unwrap_or_default(),
    );
    let env = lab
        .environments
        .iter()
        .find(|e| e.name == options.env)
        .context("unknown environment")?;
    let measured = calibrate::measure(&steps, Some(boots), ssh, load, &env.image)?;
    let boot = lab.boot();
    let own = calibrate::firmware_header(boot.firmware(), boot.nic_boot())
        + &calibrate::simulation_conf(&measured, 1);
    std::fs::write(lab.dir().join("simulation.conf"), &own)?;
    let (mut params, mut source) = match &options.sim_params {
        Some(file) => (
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
            file.display().to_string(),
        ),
        None => (own, "this run".to_string()),
    };
    // Calibrated on another firmware: both firmwares are timed alone on one throwaway VM each, and the
    // firmware phase moves by the difference.
    let here = (boot.firmware(), boot.nic_boot());
    if let Some(there) = calibrate::firmware_of(&params).filter(|t| *t != here) {
        let probe = |(f, n): (crate::vm::Firmware, crate::vm::NicBoot)| {
            crate::vm::firmware_time::measure(
                f,
                n,
                &lab.dir().join(format!("firmware-{f:?}-{n:?}")),
            )
        };
        let (from, to) = (probe(there)?, probe(here)?);
        params = calibrate::swap_firmware(&params, from, to)?;
        source = format!(
            "{source}, firmware {:.1} s -> {:.1} s ({:.1} -> {:.1} processor s) measured alone",
            from.seconds, to.seconds, from.cpu, to.cpu
        );
        std::fs::write(lab.dir().join("simulation-swapped.conf"), &params)?;
    }
    let kasim = lab.bin("kasim");
    if !kasim.is_file() {
        return Ok((None, format!("{source} (no kasim next to kalab)")));
    }
    let predicted = calibrate::predict(
        &kasim,
        &lab.config_dir,
        lab.dir(),
        &params,
        options.boot,
        lab.nodes.len(),
    )?;
    Ok((Some(predicted), source))
}

/// Processors an idle deployed VM keeps busy: each QEMU's processor time over 3 s of doing nothing,
/// averaged over the VMs.
fn idle_load(lab: &Lab) -> f64 {
    let dirs: Vec<_> = lab.vms.iter().map(|v| v.spec().vm_dir()).collect();
    let before: Vec<Option<f64>> = dirs
        .iter()
        .map(|d| crate::timeline::vm_cpu_seconds(d))
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let secs = t0.elapsed().as_secs_f64();
    let rates: Vec<f64> = dirs
        .iter()
        .zip(before)
        .filter_map(|(d, b)| Some((crate::timeline::vm_cpu_seconds(d)? - b?) / secs))
        .collect();
    if rates.is_empty() {
        0.0
    } else {
        (rates.iter().sum::<f64>() / rates.len() as f64).clamp(0.0, 1.0)
    }
}

/// Times three `ssh true` to deployed node `i` (idle now) and the processor time its QEMU used meanwhile.
fn ssh_cost(lab: &Lab, i: usize) -> Option<calibrate::SshCost> {
    let dir = lab.vms.get(i)?.spec().vm_dir();
    let cpu0 = crate::timeline::vm_cpu_seconds(&dir)?;
    let t0 = Instant::now();
    for _ in 0..3 {
        lab.ssh(i, "true").ok()?;
    }
    let seconds = t0.elapsed().as_secs_f64() / 3.0;
    let cpu = (crate::timeline::vm_cpu_seconds(&dir)? - cpu0) / 3.0;
    Some(calibrate::SshCost {
        seconds,
        cpu_share: (cpu / seconds).clamp(0.0, 1.0),
    })
}

/// SSH into the deployed node: for the lab's environments, its host name and the post-install's marker
/// file; for every environment, the deploy kernel gone and the `--check` commands passing.
fn verify(lab: &Lab, i: usize, options: &Options) -> anyhow::Result<()> {
    let node = &lab.nodes[i];
    let env = options.env.as_str();
    let marks = lab
        .environments
        .iter()
        .any(|e| e.name == env && e.marks_nodes);
    if marks {
        let out = lab.ssh(i, "hostname; cat /etc/kalab-marker; cat /proc/cmdline")?;
        let mut lines = out.lines();
        let hostname = lines.next().unwrap_or_default().trim();
        if hostname != node.name && hostname != node.short() {
            bail!("hostname is {hostname:?}, expected {}", node.name);
        }
        let marker = lines.next().unwrap_or_default();
        if !marker.contains(env) {
            bail!("marker file says {marker:?}, expected the environment {env}");
        }
    }
    // The deploy kernel listens on 25300; the deployed environment must not.
    if lab
        .ssh(
            i,
            "cat /proc/net/tcp | grep -qi ':62D4 .* 0A ' && echo deploy-kernel || true",
        )?
        .contains("deploy-kernel")
    {
        bail!("the node still runs the deploy kernel");
    }
    for check in &options.checks {
        lab.ssh(i, check)
            .with_context(|| format!("--check {check:?}"))?;
    }
    if reboots_through_ovmf(lab, options) {
        let log = std::fs::read_to_string(lab.vms[i].console_log()).unwrap_or_default();
        through_firmware::last_boot(&log).context("serial log")?;
    }
    Ok(())
}

/// True when the deployed system is reached by a reboot through OVMF (`--firmware uefi --boot-env
/// classical`).
fn reboots_through_ovmf(lab: &Lab, options: &Options) -> bool {
    options.boot == BootPath::Classical && lab.boot().firmware() == crate::vm::Firmware::Uefi
}

/// On a reboot through OVMF, the first verified node's path from the firmware to the deployed system, as
/// its serial log shows it.
fn firmware_path(lab: &Lab, options: &Options, ko: &BTreeMap<String, String>) -> Option<String> {
    if !reboots_through_ovmf(lab, options) {
        return None;
    }
    let i = (0..lab.nodes.len()).find(|i| !ko.contains_key(&lab.nodes[*i].name))?;
    let log = std::fs::read_to_string(lab.vms[i].console_log()).unwrap_or_default();
    Some(match through_firmware::last_boot(&log) {
        Ok(boot) => format!(
            "ok: {}: OVMF started {}, then {}",
            lab.nodes[i].name,
            boot.option,
            if boot.loaders.is_empty() {
                "no loader line".to_string()
            } else {
                boot.loaders.join(", then ")
            }
        ),
        Err(e) => format!("failed: {}: {e}", lab.nodes[i].name),
    })
}

/// Per-macro-step durations of the last deployment (max over nodes), from `kastat3`.
fn step_durations(lab: &Lab) -> anyhow::Result<BTreeMap<String, f64>> {
    let out = lab
        .client("kastat3")
        .args([
            "-F",
            "hostname,step1,step2,step3,step1_duration,step2_duration,step3_duration,success",
        ])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut steps: BTreeMap<String, f64> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 8 {
            continue;
        }
        if f[7] != "true" {
            continue;
        }
        for k in 0..3 {
            let (name, secs) = (f[1 + k], f[4 + k].parse::<f64>().unwrap_or(0.0));
            let e = steps.entry(name.to_string()).or_default();
            *e = e.max(secs);
        }
    }
    Ok(steps)
}

fn read_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

//! The calibration's parsing, its boot phases and its round trip through the simulator.

use super::*;
use crate::timeline::{Event, Mark, Timeline};
use hal::{
    BootProfile, NetBoot, NodeId, NodeInfo, PortCheck, Power, PowerAction, PowerLevel, Reachability,
};
use simulator::cluster::SimCluster;
use simulator::params::SimParams;
use std::time::Duration;

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
    assert!(!s.hard_reboot_first);
}

/// kadeploy3's output of a 2-VM lab run on the merged main (2026-12-05, 16:48): the VMs are off, so
/// the soft reboot fails and a hard one follows; the engine probes 5 s after the reboot, then every 5 s
/// plus the site backend's 2 s timeout while a VM does not answer (5, 12, 19, ... 47, 54 s).
const RUN: &str = "Performing a Deploy[SetDeploymentEnvUntrusted] step
   *  ~ Time in switch_pxe: 0s
   * Performing a soft reboot on node-[1-2].lab
   * Performing a hard reboot on node-[1-2].lab
   *  ~ Time in reboot: 4s
   *  ~ Time in wait_reboot: 54s
   *  ~ Time in create_partition_table: 1s
   *  ~ Time in format_deploy_part: 0s
Performing a Deploy[BroadcastEnvKascade] step
   * Broadcast time: 2s
   *  ~ Time in send_environment: 2s
Performing a Deploy[BootNewEnvKexec] step
   *  ~ Time in kexec: 2s
   *  ~ Time in wait_reboot: 17s
";

/// The serial consoles of that run: each VM's deploy kernel ready 47.3 s after its power-on (the probe
/// round at 47 s just missed it), the environment 13 s after `kexec -e`.
fn consoles() -> Timeline {
    let ev = |t: f64, vm: usize, mark: Mark, cpu: f64| Event { t, vm, mark, cpu };
    let mut events = Vec::new();
    for vm in 0..2 {
        events.extend([
            ev(4.0, vm, Mark::PowerOn, 0.0),
            ev(51.3, vm, Mark::DeployReady, 20.0),
            ev(60.0, vm, Mark::Kexec, 22.0),
            ev(73.0, vm, Mark::EnvReady, 28.0),
        ]);
    }
    Timeline {
        events,
        host_cores: 2,
        load_average: 1.0,
    }
}

/// A scratch image of its own for each test (they run in parallel and remove it).
fn image() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("kalab-calibrate-{}-{n}.tgz", std::process::id()));
    std::fs::write(&path, vec![0u8; 4096]).unwrap();
    path
}

/// The site backend's probe timeout when the runs these tests replay were recorded (Kadeploy's 2 s,
/// before the lab's `boot/probe_timeout` of 1 s): their waits sit on the grid it made.
const RECORDED_PROBE_TIMEOUT: f64 = 2.0;

/// Replays the engine's `wait_reboot` (5 s, then a probe round every 5 s) on a simulated node rebooted
/// into the deploy kernel with `params`; the seconds the wait took.
async fn simulated_wait(params: SimParams) -> f64 {
    simulated_wait_of(params, 1, 1).await
}

/// [`simulated_wait`] on `n` nodes sharing the host, rebooted at once, with `seed`'s boot draws.
async fn simulated_wait_of(params: SimParams, n: usize, seed: u64) -> f64 {
    let infos = (0..n)
        .map(|i| NodeInfo {
            name: format!("node-{}.lab", i + 1),
            address: format!("10.250.0.{}", 11 + i).parse().unwrap(),
        })
        .collect();
    let c = SimCluster::new(infos, params, seed).unwrap();
    let nodes: Vec<NodeId> = (0..n as u32).map(NodeId).collect();
    let profile = BootProfile::DeployKernel {
        kernel: "k".into(),
        initrd: "i".into(),
        params: String::new(),
    };
    c.set_profile(&nodes, &profile).await;
    c.power(PowerAction::Reboot, PowerLevel::Hard, &nodes).await;
    let start = c.now();
    let check = PortCheck {
        up: vec![22, 25300],
        down: vec![],
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    while !c.probe(&nodes, &check).await.failures().is_empty() {
        assert!(c.now() - start < 300.0, "never up");
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    c.now() - start
}

/// The bug of the merged main (+14% on a run predicted from its own parameters): the calibration took
/// each `wait_reboot` time for the boot it waited on. That time is when a probe round found the VM, up
/// to a round (7 s) after it came up, and the simulator then added its own rounds on top (5 s each,
/// without the probe's timeout), so the 54 s wait above became a 55-60 s one. The boots now come from
/// the consoles, and the simulator's probes wait for the same timeout as the real ones: replayed, the
/// wait is the measured 54 s.
#[tokio::test(start_paused = true)]
async fn a_calibrated_boot_gives_back_the_measured_wait() {
    let steps = StepTimes::parse(RUN.lines());
    assert!(steps.hard_reboot_first);
    let phases = phases::measure(&consoles());
    let image = image();
    let m = measure(&steps, Some(&phases), SshCost::default(), 0.0, &image).unwrap();
    std::fs::remove_file(&image).unwrap();
    let conf = simulation_conf(&m, 1);
    let p = SimParams::from_yaml_str(&conf).unwrap();
    let deploy = p.boot.firmware.mean + p.boot.pxe.mean + p.boot.kernel.mean;
    assert!((deploy - 47.3).abs() < 0.05, "deploy boot {deploy}");
    assert!((p.boot.kernel.mean - 13.0).abs() < 0.05);
    assert_eq!(p.ops.probe_timeout, PROBE_TIMEOUT);
    assert_eq!(p.failures.power_command_fails.levels, [PowerLevel::Soft]);
    let mut exact = p.clone();
    exact.boot.firmware.sd = 0.0;
    exact.boot.pxe.sd = 0.0;
    exact.boot.kernel.sd = 0.0;
    exact.power.command_latency = simulator::params::Dist::new(0.0, 0.0, 0.0);
    exact.ops.probe_timeout = RECORDED_PROBE_TIMEOUT;
    assert!((simulated_wait(exact.clone()).await - 54.0).abs() < 0.5);
    // What the merged main wrote: the wait as the boot, probes without their timeout.
    let mut old = exact;
    old.boot.firmware.mean = 54.0 - old.boot.pxe.mean - old.boot.kernel.mean;
    old.ops.probe_timeout = 0.0;
    assert!(simulated_wait(old).await >= 55.0);
}

/// A classical run (the environment booted through the firmware, no kexec): its boots come from the
/// consoles too. Before, with no kexec boot on the consoles, the calibration fell back to the step times
/// and took the classical `wait_reboot` (a whole boot, rounded up to a probe round) for the kernel alone:
/// 1 s of firmware, 3 s of loader and 52 s of kernel, and kasim predicted the runs of `.ci/run` that
/// boot classically 38-44% long.
#[test]
fn a_classical_run_takes_its_boots_from_the_consoles() {
    let run = RUN
        .replace("BootNewEnvKexec", "BootNewEnvClassical")
        .replace("   *  ~ Time in kexec: 2s\n", "")
        .replace("wait_reboot: 17s", "wait_reboot: 54s");
    let steps = StepTimes::parse(run.lines());
    let mut timeline = consoles();
    timeline
        .events
        .retain(|e| !matches!(e.mark, Mark::Kexec | Mark::EnvReady));
    let phases = phases::measure(&timeline);
    assert!(phases.kexec_boot.is_none());
    let image = image();
    let m = measure(&steps, Some(&phases), SshCost::default(), 0.0, &image).unwrap();
    std::fs::remove_file(&image).unwrap();
    assert_eq!(m.boots_from, "timeline");
    let cold = m.firmware + m.pxe + m.kernel;
    assert!((cold - 47.3).abs() < 0.05, "cold boot {cold}");
}

#[test]
fn a_shared_host_is_taken_out_of_the_boots() {
    // 4 VMs on 2 cores: the processor half of the kexec boot took twice its work.
    let timeline = four_vm_consoles();
    let phases = phases::measure(&timeline);
    assert_eq!(phases.vms, 4);
    let image = image();
    let m = measure(
        &StepTimes::parse(RUN.lines()),
        Some(&phases),
        SshCost::default(),
        0.0,
        &image,
    )
    .unwrap();
    std::fs::remove_file(&image).unwrap();
    // kexec boot: 13 s wall, 6 s processor at 2 VMs per core: 7 s alone, 6/7 of it processor work.
    assert!((m.kernel - 7.0).abs() < 1e-9, "{}", m.kernel);
    assert!((m.cpu[2] - 6.0 / 7.0).abs() < 1e-9);
    assert_eq!(m.host_cores, 2.0);
    let p = SimParams::from_yaml_str(&simulation_conf(&m, 1)).unwrap();
    assert_eq!(p.host.map(|h| h.cores), Some(2.0));
}

#[test]
fn a_firmware_swap_moves_the_firmware_phase_only() {
    let m = Measured {
        firmware: 10.0,
        pxe: 2.0,
        kernel: 12.0,
        cpu: [0.5, 0.2, 0.6],
        spread: [0.1, 0.02, 0.05],
        host_cores: 2.0,
        stretch: 1.0,
        idle_load: 0.0,
        busy_load: None,
        vms: 1,
        chunk: 1048576.0,
        power_command: 1.0,
        soft_reboot_fails: true,
        image_size: 1e6,
        image_ratio: 2.0,
        broadcast: 1.0,
        ops: [
            "partition",
            "mkfs",
            "swap",
            "mount",
            "postinstall",
            "bootloader",
            "sync",
            "kexec",
        ]
        .iter()
        .map(|k| (k.to_string(), 0.5))
        .collect(),
        ssh: SshCost::default(),
        boots_from: "timeline",
    };
    let text = firmware_header(Firmware::Bios, NicBoot::IpxeRom) + &simulation_conf(&m, 1);
    assert_eq!(firmware_of(&text), Some((Firmware::Bios, NicBoot::IpxeRom)));
    let swapped = swap_firmware(
        &text,
        FirmwareTime {
            seconds: 2.0,
            cpu: 0.5,
        },
        FirmwareTime {
            seconds: 9.0,
            cpu: 4.5,
        },
    )
    .unwrap();
    let before = SimParams::from_yaml_str(&text).unwrap();
    let after = SimParams::from_yaml_str(&swapped).unwrap();
    assert!((after.boot.firmware.mean - 17.0).abs() < 1e-9);
    // The calibration's spread stays: 10% of its 10 s.
    assert!((after.boot.firmware.sd - 1.0).abs() < 1e-9);
    // 5 processor seconds before, 4 more after: 9 of 17.
    assert!((after.boot.cpu.firmware - 9.0 / 17.0).abs() < 1e-3);
    assert_eq!(after.boot.kernel, before.boot.kernel);
    assert_eq!(after.boot.cpu.kernel, before.boot.cpu.kernel);
    assert_eq!(after.ops, before.ops);
    assert_eq!(firmware_of("seed: 1\n"), None);
}

/// The consoles' two VMs twice: the timeline of 4 VMs on 2 cores.
fn four_vm_consoles() -> Timeline {
    let mut timeline = consoles();
    for e in &mut timeline.events {
        e.vm *= 2;
    }
    timeline
        .events
        .extend(consoles().events.into_iter().map(|mut e| {
            e.vm = e.vm * 2 + 1;
            e
        }));
    timeline
}

/// A 4-VM run on 2 cores (the consoles' two VMs twice) with `broadcast` seconds of broadcast and a
/// 2 s partitioning, measured with a busy load of 0.0375 (as `kalab` measured on this host).
fn four_vm_run(broadcast: u32) -> Measured {
    let timeline = four_vm_consoles();
    let run = RUN
        .replace(
            "Broadcast time: 2s",
            &format!("Broadcast time: {broadcast}s"),
        )
        .replace("create_partition_table: 1s", "create_partition_table: 2s");
    let image = image();
    let m = measure(
        &StepTimes::parse(run.lines()),
        Some(&phases::measure(&timeline)),
        SshCost {
            seconds: 0.147,
            cpu_share: 0.659,
        },
        HostLoad {
            idle: 0.019,
            busy: Some(0.0375),
        },
        &image,
    )
    .unwrap();
    std::fs::remove_file(&image).unwrap();
    m
}

/// The broadcast the simulator predicts with `m`'s parameters on `vms` VMs: kaagent's fault-tolerant
/// chain, plus the backend's SSH commands around it.
fn simulated_broadcast(m: &Measured, vms: usize) -> f64 {
    use simulator::model_input::{fill_chunk, host_stretch, job, receivers, topology_of};
    let p = SimParams::from_yaml_str(&simulation_conf(m, 1)).unwrap();
    let strategy = hal::Strategy::FaultTolerantChain;
    let mut job = job(
        &p,
        1,
        strategy,
        p.image.size,
        p.image.ratio,
        receivers(&p, 1, vms),
    );
    // As the simulated cluster runs it: the pipeline's fill at a shared host's crowding.
    job.chunk = fill_chunk(&p, vms, strategy, job.chunk);
    let outcomes = simulator::bcast::simulate(&job, &topology_of(&p, vms));
    let stream = outcomes
        .iter()
        .map(|o| match o {
            simulator::bcast::ReceiverOutcome::Done { at } => *at,
            other => panic!("{other:?}"),
        })
        .fold(0.0, f64::max);
    let o = &p.ops;
    let command = o.ssh_latency * (1.0 - o.cpu + o.cpu * host_stretch(&p, vms));
    stream + f64::from(o.broadcast_commands) * command
}

/// The stop-13 4 -> 16 VMs prediction gave the 16-VM broadcast 22 s for the 45 s measured: the
/// calibration wrote 64 KiB chunks, so the simulated chain filled its pipeline in no time, while
/// kaagent forwards whole 1 MiB chunks (13 for the 12.8 MB image: with 16 hops, the last VM starts
/// after 16 chunk times); and it took the token's two SSH commands for streaming time. Now the
/// calibration's broadcast comes back from the simulator, and a 4-VM run's parameters give the
/// 16-VM broadcast from the chunks, the fill hops at half the host's crowding (hw-probe): stop 14's
/// lab (7.0 MB image, 3 s at 4 VMs) within 15% of the 20-21 s it measured at 16 VMs (29 s with every
/// fill hop at the whole crowding); stop 13's (12.8 MB, 5 s at 4 VMs; the Debian kernel) at 35 s for
/// the 45 s measured then, still more than 64 KiB chunks gave.
#[test]
fn a_calibrated_broadcast_fills_kaagents_pipeline_chunk_by_chunk() {
    let mut m = four_vm_run(5);
    m.image_size = 12_780_719.0;
    assert_eq!(m.chunk, 1048576.0);
    assert_eq!(m.vms, 4);
    let own = simulated_broadcast(&m, 4);
    assert!((own - 5.0).abs() < 0.05, "4 VMs: {own}");
    let sixteen = simulated_broadcast(&m, 16);
    assert!((sixteen - 35.0).abs() < 1.0, "16 VMs: {sixteen}");
    let mut stop14 = four_vm_run(3);
    stop14.image_size = 7_036_306.0;
    let sixteen14 = simulated_broadcast(&stop14, 16);
    assert!(
        (sixteen14 - 20.5).abs() < 0.15 * 20.5,
        "stop 14, 16 VMs: {sixteen14}"
    );
    // What stop 13 wrote: 64 KiB chunks, the whole broadcast taken for streaming.
    let mut old = m.clone();
    old.chunk = 65536.0;
    old.vms = 0;
    old.ssh.seconds = 0.0;
    let old_sixteen = simulated_broadcast(&old, 16);
    assert!(old_sixteen < 0.8 * sixteen, "{old_sixteen}");
}

/// A micro-step's work is all the VM's processor work: measured with `stretch` VMs per core, its
/// connection took `1 + cpu (stretch - 1)` times the idle node's and its work `stretch` times its
/// time alone. Before, the whole step was divided by the connection's stretch, so the work came out
/// long and stretched by the connection's share only: the 16-VM micro-steps 2-3 times short.
#[test]
fn a_micro_steps_work_is_taken_out_as_processor_work() {
    let m = four_vm_run(5);
    // 4 VMs, 2 cores, 0.0375 busy: 4 / 1.85 VMs per free core.
    let stretch = 4.0 / (2.0 - 4.0 * 0.0375);
    assert!((m.stretch - stretch).abs() < 1e-9);
    let connection = 0.147 * (1.0 + 0.659 * (stretch - 1.0));
    let work = (2.0 - connection) / stretch;
    assert!((m.ops["partition"] - work).abs() < 1e-9, "{:?}", m.ops);
    // A micro-step under 0.5 s (printed 0 s) has no work left to take out.
    assert_eq!(m.ops["swap"], 0.0);
    let p = SimParams::from_yaml_str(&simulation_conf(&m, 1)).unwrap();
    assert_eq!(p.ops.work_cpu, Some(1.0));
    assert_eq!(p.ops.broadcast_commands, BROADCAST_COMMANDS);
    assert_eq!(p.host.and_then(|h| h.busy_load), Some(0.0375));
}

/// The consoles of a 4-VM calibration run on 2 cores (`kalab e2e --nodes 4`, 2026-12-06 03:58 UTC,
/// load 5-8): per VM, (seconds, processor seconds) at power-on, SeaBIOS's two banners, the deploy kernel
/// ready, `kexec -e` and the environment ready. The deploy boots spread 12.3-13.2 s, the kexec boots
/// 6.3-7.4 s (sd 0.45 s); iPXE printed nothing on the console, so the firmware phase is the deploy
/// boot less the kernel.
fn spread_consoles() -> Timeline {
    const VMS: [[(f64, f64); 6]; 4] = [
        [
            (3.46, 0.02),
            (3.56, 0.05),
            (3.66, 0.08),
            (16.36, 3.51),
            (32.56, 6.48),
            (39.71, 8.77),
        ],
        [
            (3.46, 0.01),
            (3.56, 0.05),
            (3.66, 0.08),
            (16.87, 3.64),
            (32.76, 6.87),
            (39.51, 9.2),
        ],
        [
            (3.35, 0.0),
            (3.56, 0.06),
            (3.66, 0.09),
            (15.96, 3.57),
            (32.46, 6.66),
            (38.8, 9.03),
        ],
        [
            (3.46, 0.01),
            (3.66, 0.05),
            (3.76, 0.1),
            (16.36, 3.53),
            (32.36, 6.52),
            (39.71, 9.0),
        ],
    ];
    let marks = [
        Mark::PowerOn,
        Mark::Firmware,
        Mark::Firmware,
        Mark::DeployReady,
        Mark::Kexec,
        Mark::EnvReady,
    ];
    let mut events: Vec<Event> = VMS
        .iter()
        .enumerate()
        .flat_map(|(vm, row)| {
            row.iter()
                .zip(marks)
                .map(move |(&(t, cpu), mark)| Event { t, vm, mark, cpu })
        })
        .collect();
    events.sort_by(|a, b| a.t.total_cmp(&b.t));
    Timeline {
        events,
        host_cores: 2,
        load_average: 5.8,
    }
}

/// The 16-VM first boot's wait predicted from a 4-VM calibration, with the calibration's firmware phase
/// moved to `firmware` (s, uncontended; its sd as written): the mean over `seeds` seeds.
async fn expected_wait(p: &SimParams, firmware: f64, seeds: u64) -> f64 {
    let mut q = p.clone();
    q.boot.firmware.mean = firmware;
    let mut waits = Vec::new();
    for seed in 1..=seeds {
        waits.push(simulated_wait_of(q.clone(), 16, seed).await);
    }
    kasim::over_seeds(seeds, |s| Ok(waits[s as usize - 1]))
        .unwrap()
        .mean
}

/// Window C's miss: from one calibration (c4c) the 16-VM first boot was predicted just before a probe
/// round (33 s) where the runs waited 40 and 38 s; its firmware phase read 2.75 s against 3.0 in the
/// others. With the former 2% `sd` and one draw, the prediction is a step function of the firmware
/// phase: one round (7 s) won or lost on 0.1 s. With the spread the calibration's VMs showed and the
/// mean over seeds, the expected wait moves with the firmware phase by a fraction of a round per
/// 0.1 s, and over the sweep by about what the boots move.
#[tokio::test(start_paused = true)]
async fn a_prediction_near_a_probe_round_moves_smoothly_with_the_firmware_phase() {
    let phases = phases::measure(&spread_consoles());
    let image = image();
    // The run's own idle and busy loads.
    let load = HostLoad {
        idle: 0.0083,
        busy: Some(0.0146),
    };
    let m = measure(
        &StepTimes::parse(RUN.lines()),
        Some(&phases),
        SshCost::default(),
        load,
        &image,
    )
    .unwrap();
    std::fs::remove_file(&image).unwrap();
    // The measured spread, not the former 2%: the kexec boots' 0.45 s over their 6.9 s, the deploy
    // boots' 0.38 s over their 12.7 s.
    let spread = m.spread;
    assert!((spread[2] - 0.4477 / 6.8975).abs() < 0.001, "{spread:?}");
    assert!((spread[0] - 0.3779 / 12.705).abs() < 0.001, "{spread:?}");
    let mut p = SimParams::from_yaml_str(&simulation_conf(&m, 1)).unwrap();
    p.ops.probe_timeout = RECORDED_PROBE_TIMEOUT;
    let mut former = p.clone();
    for (d, mean) in [
        (&mut former.boot.firmware, m.firmware),
        (&mut former.boot.pxe, m.pxe),
        (&mut former.boot.kernel, m.kernel),
    ] {
        d.sd = mean * spread::UNMEASURED;
    }
    // 6 s of firmware: about 9 s of the 16-VM boot, more than a round.
    let sweep: Vec<f64> = (0..=60).map(|i| 0.5 + 0.1 * f64::from(i)).collect();
    let (mut one_draw, mut expected) = (Vec::new(), Vec::new());
    for &f in &sweep {
        one_draw.push(expected_wait(&former, f, 1).await);
        expected.push(expected_wait(&p, f, 16).await);
    }
    let biggest_step = |w: &[f64]| {
        w.windows(2)
            .map(|x| (x[1] - x[0]).abs())
            .fold(0.0, f64::max)
    };
    // The sweep crosses a round: one draw jumps by (most of) it.
    assert!(biggest_step(&one_draw) >= 5.0, "{one_draw:?}");
    assert!(biggest_step(&expected) <= 2.5, "{expected:?}");
    let rise = expected[expected.len() - 1] - expected[0];
    assert!(rise > 4.0 && rise < 18.0, "{expected:?}");
}

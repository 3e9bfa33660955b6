//! The busy load of the lab's VMs: the processor time a VM's QEMU uses beyond its guest's work, per
//! second that the work takes, while the VM works and waits for a processor (the guest's timer
//! interrupts and QEMU's main loop run for as long as the work lasts, so the more VMs share the
//! cores, the more each one burns). Measured on the deployed VMs after the calibration run: the same
//! fixed guest loop on every VM at once, with the VMs alone on the host, then crowded ([`crowd`]),
//! alternately: the slope of each VM's processor seconds over its wall seconds.

pub mod crowd;

use crate::lab::Lab;
pub use crowd::{Crowd, ProbeSpec};
use serde::Serialize;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The probe `kalab e2e` runs unless told otherwise: the 4 VMs of a calibration run crowded as 16
/// VMs crowd each other, five times. A probe's error comes by whole rounds (13 probes: the VMs'
/// slopes within a round spread by 0.0016, the rounds' medians by 0.0070; in some rounds every VM
/// burns a third of the others' extra processor time for as long a wait), so the rounds, not the VM
/// pairs, are the independent readings, and three of them let one such round move the median by
/// 20-30% (docs/PERFORMANCE.md, window H of stop 17). The crowd's VMs, started together, booted in
/// step, so that a round saw one phase of their boot: they now start one by one (`CROWD_STAGGER`).
pub const DEFAULT_PROBE: &str = "vms:12x5";
/// The guest loop's processor seconds (its length on a free core).
const TARGET: f64 = 1.0;
/// Loop iterations of the pilot run that sizes the loop.
const PILOT: u64 = 20_000;
/// Bounds of the loop's iterations.
const ITERATIONS: (u64, u64) = (2_000, 20_000_000);
/// A round gives up after this long (its ssh commands are killed).
const ROUND_LIMIT: Duration = Duration::from_secs(90);
/// The crowded round must take at least this many seconds longer than the free one.
const MIN_ADDED_WALL: f64 = 0.5;
/// The largest busy load believed (processors per VM).
const MAX_LOAD: f64 = 0.5;
/// The precise reading is trusted when it is within this of the ticks' (seconds; a tick is 0.01).
const TICKS_AGREE: f64 = 0.025;
/// Throwaway VMs boot this long before the first round (their QEMUs' start is not a boot).
const CROWD_WARMUP: Duration = Duration::from_secs(2);
/// ... after starting one after the other over this long: a throwaway VM's boot-to-panic cycle is
/// 1.5 processor s (alone, 07:10 UTC), and started together they stay in step, so that a crowded round
/// sees one phase of their boot; started 0.25 s apart (12 VMs), the first one gets about a whole cycle
/// more processor time than the last before the rounds begin.
const CROWD_STAGGER: Duration = Duration::from_secs(3);

/// One VM's run of the guest loop: wall-clock and QEMU processor seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// Wall-clock seconds from the command's start to its end.
    pub wall: f64,
    /// Processor seconds the VM's QEMU used meanwhile (to the nanosecond where the threads' run
    /// times agree with the ticks, else the ticks).
    pub cpu: f64,
}

/// What one probe measured.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    /// Its crowd and rounds (`vms:12x2`).
    pub spec: String,
    /// The busy load: the median of each VM's per-round slopes ([`from_pairs`]).
    pub load: Option<f64>,
    /// The least-squares slope over every sample ([`from_rounds`]), for comparison.
    pub least_squares: Option<f64>,
    /// Each round's own median slope ([`from_pairs`] over that round's VMs), round after round.
    pub rounds: Vec<Option<f64>>,
    /// The free rounds' samples, round after round, VM after VM.
    pub free: Vec<Sample>,
    /// The crowded rounds' samples.
    pub crowded: Vec<Sample>,
    /// Readings where the precise processor time disagreed with the ticks (a thread exited).
    pub tick_fallbacks: usize,
    /// Wall-clock seconds the probe took.
    pub seconds: f64,
}

/// The busy load from the same loop run free and crowded: the slope of the processor seconds over
/// the wall seconds of every sample (least squares: `cpu = work + load × wall`); `None` when the walls
/// spread too little to tell (crowding added less than half a second), or a round is empty.
pub fn from_rounds(free: &[Sample], crowded: &[Sample]) -> Option<f64> {
    if added_wall(free, crowded)? < MIN_ADDED_WALL {
        return None;
    }
    let all: Vec<&Sample> = free.iter().chain(crowded).collect();
    let n = all.len() as f64;
    let (wall, cpu) = (
        all.iter().map(|s| s.wall).sum::<f64>() / n,
        all.iter().map(|s| s.cpu).sum::<f64>() / n,
    );
    let sxx: f64 = all.iter().map(|s| (s.wall - wall).powi(2)).sum();
    let sxy: f64 = all.iter().map(|s| (s.wall - wall) * (s.cpu - cpu)).sum();
    Some((sxy / sxx).clamp(0.0, MAX_LOAD))
}

/// The busy load as the median, over every VM and round, of the slope between the VM's free and
/// crowded run of that round (`free[i]` pairs with `crowded[i]`): a guest daemon that wakes during
/// one run moves one slope, where it would tilt a least-squares line through every sample. `None` as
/// [`from_rounds`], or when the rounds differ in length.
pub fn from_pairs(free: &[Sample], crowded: &[Sample]) -> Option<f64> {
    if free.len() != crowded.len() || added_wall(free, crowded)? < MIN_ADDED_WALL {
        return None;
    }
    let mut slopes: Vec<f64> = free
        .iter()
        .zip(crowded)
        .filter(|(f, c)| c.wall - f.wall > MIN_ADDED_WALL / 2.0)
        .map(|(f, c)| (c.cpu - f.cpu) / (c.wall - f.wall))
        .collect();
    if slopes.is_empty() {
        return None;
    }
    slopes.sort_by(f64::total_cmp);
    let mid = slopes.len() / 2;
    let median = if slopes.len() % 2 == 1 {
        slopes[mid]
    } else {
        (slopes[mid - 1] + slopes[mid]) / 2.0
    };
    Some(median.clamp(0.0, MAX_LOAD))
}

/// [`from_pairs`] of each round alone (`vms` samples a round, round after round).
pub fn per_round(free: &[Sample], crowded: &[Sample], vms: usize) -> Vec<Option<f64>> {
    if vms == 0 {
        return Vec::new();
    }
    free.chunks(vms)
        .zip(crowded.chunks(vms))
        .map(|(f, c)| from_pairs(f, c))
        .collect()
}

/// Mean crowded wall minus mean free wall; `None` when a round is empty.
fn added_wall(free: &[Sample], crowded: &[Sample]) -> Option<f64> {
    let mean = |s: &[Sample]| {
        (!s.is_empty()).then(|| s.iter().map(|x| x.wall).sum::<f64>() / s.len() as f64)
    };
    Some(mean(crowded)? - mean(free)?)
}

/// Runs the probe `spec` on the lab's deployed VMs `nodes`; `None` when a command failed or the
/// crowd could not start.
pub fn measure(lab: &Lab, nodes: &[usize], spec: ProbeSpec) -> Option<Probe> {
    let started = Instant::now();
    let first = *nodes.first()?;
    let mut fallbacks = 0;
    let Some(pilot) = run_round(lab, &[first], PILOT, &mut fallbacks) else {
        eprintln!("busy load: the pilot loop failed");
        return None;
    };
    // Sized by processor time: the pilot's wall time is the host's load as much as the loop.
    let per_iteration = pilot.first()?.cpu / PILOT as f64;
    let iterations = ((TARGET / per_iteration.max(1e-9)) as u64).clamp(ITERATIONS.0, ITERATIONS.1);
    // Throwaway VMs boot once, warm up, and are paused between crowded rounds; spinners start afresh
    // for each crowded round.
    let vms = match spec.crowd {
        Crowd::Vms(_) => {
            let running = crowd::Running::start(spec.crowd, &lab.kernel)?;
            running.resume_one_by_one(CROWD_STAGGER);
            std::thread::sleep(CROWD_WARMUP);
            running.pause();
            Some(running)
        }
        Crowd::Spinners(_) => None,
    };
    let (mut free, mut crowded) = (Vec::new(), Vec::new());
    for _ in 0..spec.rounds {
        let f = run_round(lab, nodes, iterations, &mut fallbacks);
        let c = match &vms {
            Some(running) => {
                running.resume();
                let c = run_round(lab, nodes, iterations, &mut fallbacks);
                running.pause();
                c
            }
            None => {
                let spinners = crowd::Running::start(spec.crowd, &lab.kernel)?;
                let c = run_round(lab, nodes, iterations, &mut fallbacks);
                drop(spinners);
                c
            }
        };
        let (Some(f), Some(c)) = (f, c) else {
            eprintln!("busy load: a guest loop failed");
            return None;
        };
        free.extend(f);
        crowded.extend(c);
    }
    drop(vms);
    let probe = Probe {
        spec: spec.to_string(),
        load: from_pairs(&free, &crowded),
        least_squares: from_rounds(&free, &crowded),
        rounds: per_round(&free, &crowded, nodes.len()),
        free,
        crowded,
        tick_fallbacks: fallbacks,
        seconds: started.elapsed().as_secs_f64(),
    };
    eprintln!(
        "busy load {}: {:?} (least squares {:?}, rounds {:?}), {iterations} iterations (pilot {pilot:?}), {:.1} s, {} tick fallbacks; (wall, processor) s free {:?}; crowded {:?}",
        probe.spec,
        probe.load,
        probe.least_squares,
        probe.rounds,
        probe.seconds,
        probe.tick_fallbacks,
        probe
            .free
            .iter()
            .map(|s| (s.wall, s.cpu))
            .collect::<Vec<_>>(),
        probe
            .crowded
            .iter()
            .map(|s| (s.wall, s.cpu))
            .collect::<Vec<_>>(),
    );
    Some(probe)
}

/// One running guest loop.
struct Running {
    child: Child,
    dir: std::path::PathBuf,
    cpu0: (f64, f64),
    started: Instant,
    done: Option<Sample>,
}

/// The VM's processor seconds: precise and in ticks.
fn cpu_now(dir: &std::path::Path) -> Option<(f64, f64)> {
    Some((
        crate::timeline::vm_cpu_seconds_precise(dir)?,
        crate::timeline::vm_cpu_seconds(dir)?,
    ))
}

/// The processor seconds between two readings: the precise difference where the ticks agree.
fn cpu_between(before: (f64, f64), after: (f64, f64), fallbacks: &mut usize) -> f64 {
    let (precise, ticks) = (after.0 - before.0, after.1 - before.1);
    if (precise - ticks).abs() <= TICKS_AGREE {
        precise
    } else {
        *fallbacks += 1;
        ticks
    }
}

/// The guest loop of `iterations` on every VM of `nodes` at once: one sample per VM; `None` when a
/// command failed or the round took too long.
fn run_round(
    lab: &Lab,
    nodes: &[usize],
    iterations: u64,
    fallbacks: &mut usize,
) -> Option<Vec<Sample>> {
    let job = format!("i=0; while [ $i -lt {iterations} ]; do i=$((i+1)); done");
    let mut running = Vec::with_capacity(nodes.len());
    for &i in nodes {
        let dir = lab.vms.get(i)?.spec().vm_dir();
        let cpu0 = cpu_now(&dir)?;
        let child = lab
            .ssh_command(i, &job)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        running.push(Running {
            child,
            dir,
            cpu0,
            started: Instant::now(),
            done: None,
        });
    }
    let deadline = Instant::now() + ROUND_LIMIT;
    let mut failed = false;
    while running.iter().any(|r| r.done.is_none()) && !failed {
        if Instant::now() > deadline {
            failed = true;
            break;
        }
        for r in running.iter_mut().filter(|r| r.done.is_none()) {
            match r.child.try_wait() {
                Ok(Some(status)) if status.success() => match cpu_now(&r.dir) {
                    Some(now) => {
                        r.done = Some(Sample {
                            wall: r.started.elapsed().as_secs_f64(),
                            cpu: cpu_between(r.cpu0, now, fallbacks),
                        })
                    }
                    None => failed = true,
                },
                Ok(None) => {}
                _ => failed = true,
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for r in &mut running {
        if r.done.is_none() {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }
    if failed {
        return None;
    }
    running.into_iter().map(|r| r.done).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(wall: f64, cpu: f64) -> Sample {
        Sample { wall, cpu }
    }

    #[test]
    fn the_busy_load_is_the_processor_time_crowding_adds_per_wall_second() {
        // 1 processor second of work; 0.03 processors more for every second it lasts.
        let free = [s(2.0, 1.06), s(2.2, 1.066)];
        let crowded = [s(6.0, 1.18), s(6.2, 1.186)];
        let b = from_rounds(&free, &crowded).unwrap();
        assert!((b - 0.03).abs() < 1e-9, "{b}");
        let b = from_pairs(&free, &crowded).unwrap();
        assert!((b - 0.03).abs() < 1e-9, "{b}");
    }

    #[test]
    fn rounds_that_cannot_tell_give_nothing() {
        // Crowding added 0.2 s only: no measurement.
        assert_eq!(from_rounds(&[s(2.0, 1.0)], &[s(2.2, 1.1)]), None);
        assert_eq!(from_pairs(&[s(2.0, 1.0)], &[s(2.2, 1.1)]), None);
        assert_eq!(from_rounds(&[], &[s(6.0, 1.2)]), None);
        assert_eq!(from_pairs(&[], &[s(6.0, 1.2)]), None);
        // Less processor time when crowded (noise): no load, not a negative one.
        assert_eq!(from_rounds(&[s(2.0, 1.1)], &[s(6.0, 1.0)]), Some(0.0));
        assert_eq!(from_pairs(&[s(2.0, 1.1)], &[s(6.0, 1.0)]), Some(0.0));
        // An absurd rise is bounded.
        assert_eq!(from_rounds(&[s(1.0, 1.0)], &[s(2.0, 3.0)]), Some(MAX_LOAD));
    }

    #[test]
    fn one_vm_busy_with_something_else_does_not_move_the_median() {
        // Four VMs at 0.03 processors per second, one of whose crowded runs took 0.4 processor s
        // more (a guest daemon woke): stop 14's second calibration run had such a sample (6.99 s,
        // 1.41 s) and its least-squares slope read 0.041 where its other samples said 0.02-0.03.
        let free = [s(2.0, 1.0), s(2.0, 1.0), s(2.0, 1.0), s(2.0, 1.0)];
        let mut crowded = [s(5.0, 1.09), s(5.0, 1.09), s(5.0, 1.09), s(7.0, 1.15)];
        crowded[3].cpu += 0.4;
        let median = from_pairs(&free, &crowded).unwrap();
        assert!((median - 0.03).abs() < 1e-9, "{median}");
        let tilted = from_rounds(&free, &crowded).unwrap();
        assert!(tilted > 0.04, "{tilted}");
    }

    /// Stop 14's two quiet 4-VM calibration runs (window B, 21:30 and 21:38 UTC), as their probes
    /// logged them (4 VMs, round after round): least squares read 0.033 and 0.041, and from the second
    /// kasim predicted the 16-VM runs +18.1% and +12.0% (the second run's (6.99 s, 1.41 s) sample tilts
    /// its line). Their medians are 0.027 and 0.020, from which kasim predicts the same runs within
    /// 10% (+5.5% / 0.0% and -2.7% / -7.8%: docs/PERFORMANCE.md, "QEMU lab").
    #[test]
    fn stop_14s_calibration_runs_agree_by_the_median() {
        let k4 = (
            [(1.886, 0.97), (1.978, 1.05), (2.086, 0.98), (2.096, 1.04)],
            [(2.01, 1.0), (1.949, 0.97), (2.04, 0.98), (1.926, 0.94)],
            [(6.022, 1.13), (5.756, 1.07), (6.172, 1.2), (5.213, 1.03)],
            [(5.595, 1.05), (6.459, 1.23), (5.57, 1.1), (5.09, 1.0)],
        );
        let k4b = (
            [(1.963, 0.97), (2.034, 0.96), (1.666, 0.95), (1.949, 0.95)],
            [(2.049, 1.07), (1.997, 0.94), (1.825, 0.92), (1.913, 0.94)],
            [(5.42, 1.01), (6.993, 1.41), (5.226, 1.03), (5.598, 1.08)],
            [(5.465, 1.05), (4.974, 0.99), (4.842, 0.96), (5.5, 1.04)],
        );
        let samples = |rounds: [[(f64, f64); 4]; 2]| -> Vec<Sample> {
            rounds.iter().flatten().map(|&(w, c)| s(w, c)).collect()
        };
        let mut loads = Vec::new();
        for (f1, f2, c1, c2) in [k4, k4b] {
            let (free, crowded) = (samples([f1, f2]), samples([c1, c2]));
            let ls = from_rounds(&free, &crowded).unwrap();
            let median = from_pairs(&free, &crowded).unwrap();
            loads.push((ls, median));
        }
        let [(ls1, m1), (ls2, m2)] = loads[..] else {
            panic!("two runs")
        };
        assert!(
            (ls1 - 0.0332).abs() < 5e-4 && (ls2 - 0.0408).abs() < 5e-4,
            "{loads:?}"
        );
        assert!(
            (m1 - 0.0265).abs() < 5e-4 && (m2 - 0.0196).abs() < 5e-4,
            "{loads:?}"
        );
    }

    /// A probe recorded at 07:00 UTC on 2026-12-06 (4 VMs, `vms:12x5`, under another helper's build:
    /// debugging, not a figure): its second round read 0.0095 where the four others read 0.018-0.020.
    /// The first three rounds alone (the former default, `vms:12x3`) give 0.0143, 20% under the four
    /// other rounds' 0.0180; the default's rounds give 0.0176.
    #[test]
    fn one_low_round_moves_the_default_probes_median_little() {
        let free = [
            (2.833, 0.921),
            (3.314, 1.009),
            (3.084, 0.919),
            (3.19, 0.954),
            (2.99, 0.96),
            (3.032, 0.951),
            (3.139, 0.983),
            (3.071, 0.985),
            (3.033, 0.954),
            (3.101, 0.957),
            (3.294, 0.983),
            (3.158, 0.98),
            (2.868, 0.934),
            (3.241, 1.017),
            (2.909, 0.94),
            (3.057, 0.936),
            (3.095, 0.942),
            (2.907, 0.903),
            (2.82, 0.898),
            (3.15, 0.937),
        ];
        let crowded = [
            (9.915, 1.086),
            (9.753, 1.065),
            (10.047, 1.09),
            (10.011, 1.067),
            (9.313, 1.027),
            (9.134, 1.019),
            (9.338, 1.034),
            (9.643, 1.036),
            (9.791, 1.074),
            (10.403, 1.097),
            (9.662, 1.058),
            (10.425, 1.117),
            (9.844, 1.059),
            (9.932, 1.095),
            (9.659, 1.058),
            (10.206, 1.099),
            (10.259, 1.071),
            (9.677, 1.044),
            (9.928, 1.05),
            (10.327, 1.059),
        ];
        let (free, crowded): (Vec<Sample>, Vec<Sample>) = (
            free.iter().map(|&(w, c)| s(w, c)).collect(),
            crowded.iter().map(|&(w, c)| s(w, c)).collect(),
        );
        let rounds = per_round(&free, &crowded, 4);
        assert_eq!(rounds.len(), 5);
        assert!(rounds[1].is_some_and(|r| r < 0.011), "{rounds:?}");
        // The four other rounds' reading.
        let others: Vec<usize> = [0, 2, 3, 4].iter().flat_map(|r| r * 4..r * 4 + 4).collect();
        let pick = |v: &[Sample], idx: &[usize]| idx.iter().map(|&i| v[i]).collect::<Vec<_>>();
        let truth = from_pairs(&pick(&free, &others), &pick(&crowded, &others)).unwrap();
        let of_rounds = |n: usize| from_pairs(&free[..4 * n], &crowded[..4 * n]).unwrap();
        let default: ProbeSpec = DEFAULT_PROBE.parse().unwrap();
        let with_default = of_rounds(default.rounds);
        assert!(
            (with_default - truth).abs() < 0.05 * truth,
            "{with_default} against {truth}"
        );
        let three = of_rounds(3);
        assert!(
            (three - truth).abs() > 0.15 * truth,
            "{three} against {truth}"
        );
    }

    #[test]
    fn each_round_reads_on_its_own() {
        let free = [s(2.0, 1.0), s(2.0, 1.0), s(2.0, 1.0), s(2.0, 1.0)];
        let crowded = [s(6.0, 1.08), s(6.0, 1.12), s(6.0, 1.0), s(6.2, 1.0)];
        let rounds = per_round(&free, &crowded, 2);
        assert_eq!(rounds.len(), 2);
        assert!((rounds[0].unwrap() - 0.025).abs() < 1e-9, "{rounds:?}");
        assert_eq!(rounds[1], Some(0.0));
        assert!(per_round(&free, &crowded, 0).is_empty());
    }

    #[test]
    fn a_reading_that_lost_an_exited_thread_falls_back_to_the_ticks() {
        let mut fallbacks = 0;
        // Agreeing: the precise difference.
        let d = cpu_between((10.0, 10.0), (11.003, 11.0), &mut fallbacks);
        assert!((d - 1.003).abs() < 1e-9 && fallbacks == 0);
        // A thread that used 0.2 s exited: the live threads' sum lost it, the ticks did not.
        let d = cpu_between((10.0, 10.0), (10.8, 11.0), &mut fallbacks);
        assert!((d - 1.0).abs() < 1e-9 && fallbacks == 1);
    }
}

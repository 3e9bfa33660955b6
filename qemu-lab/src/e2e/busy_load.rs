//! The busy load of the lab's VMs: the processor time a VM's QEMU uses beyond its guest's work, per
//! second that the work takes, while the VM works and waits for a processor (the guest's timer
//! interrupts and QEMU's main loop run for as long as the work lasts, so the more VMs share the
//! cores, the more each one burns). Measured on the deployed VMs after the calibration run: the same
//! fixed guest loop on every VM at once, with the VMs alone on the host, then crowded by host
//! processes that spin (twice each): the slope of each VM's processor seconds over its wall seconds.

use crate::lab::Lab;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The guest loop's processor seconds (its length on a free core).
const TARGET: f64 = 1.0;
/// Free and crowded rounds, alternated, each this many times.
const ROUNDS: usize = 2;
/// Spinning host processes per host processor in the crowded round.
const SPINNERS_PER_CORE: usize = 3;
/// Loop iterations of the pilot run that sizes the loop.
const PILOT: u64 = 20_000;
/// Bounds of the loop's iterations.
const ITERATIONS: (u64, u64) = (2_000, 20_000_000);
/// A round gives up after this long (its ssh commands are killed).
const ROUND_LIMIT: Duration = Duration::from_secs(60);
/// The crowded round must take at least this many seconds longer than the free one.
const MIN_ADDED_WALL: f64 = 0.5;
/// The largest busy load believed (processors per VM).
const MAX_LOAD: f64 = 0.5;

/// One VM's run of the guest loop: wall-clock and QEMU processor seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Wall-clock seconds from the command's start to its end.
    pub wall: f64,
    /// Processor seconds the VM's QEMU used meanwhile.
    pub cpu: f64,
}

/// The busy load from the same loop run free and crowded: the slope of the processor seconds over
/// the wall seconds of every sample (least squares: `cpu = work + load × wall`); `None` when the walls
/// spread too little to tell (crowding added less than half a second), or a round is empty.
pub fn from_rounds(free: &[Sample], crowded: &[Sample]) -> Option<f64> {
    let mean = |s: &[Sample]| {
        (!s.is_empty()).then(|| s.iter().map(|x| x.wall).sum::<f64>() / s.len() as f64)
    };
    if mean(crowded)? - mean(free)? < MIN_ADDED_WALL {
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

/// Measures the busy load on the lab's deployed VMs `nodes` (a few seconds); `None` when a command
/// failed or the rounds could not tell.
pub fn measure(lab: &Lab, nodes: &[usize]) -> Option<f64> {
    let first = *nodes.first()?;
    let Some(pilot) = run_round(lab, &[first], PILOT, 0) else {
        eprintln!("busy load: the pilot loop failed");
        return None;
    };
    // Sized by processor time: the pilot's wall time is the host's load as much as the loop.
    let per_iteration = pilot.first()?.cpu / PILOT as f64;
    let iterations = ((TARGET / per_iteration.max(1e-9)) as u64).clamp(ITERATIONS.0, ITERATIONS.1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let spinners = SPINNERS_PER_CORE * cores;
    let (mut free, mut crowded) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (Some(f), Some(c)) = (
            run_round(lab, nodes, iterations, 0),
            run_round(lab, nodes, iterations, spinners),
        ) else {
            eprintln!("busy load: a guest loop failed");
            return None;
        };
        free.extend(f);
        crowded.extend(c);
    }
    eprintln!(
        "busy load: {iterations} iterations (pilot {pilot:?}); (wall, processor) s free {:?}; crowded by {spinners} spinners {:?}",
        free.iter().map(|s| (s.wall, s.cpu)).collect::<Vec<_>>(),
        crowded.iter().map(|s| (s.wall, s.cpu)).collect::<Vec<_>>(),
    );
    from_rounds(&free, &crowded)
}

/// The guest loop of `iterations` on every VM of `nodes` at once, with `spinners` host processes
/// spinning meanwhile, each in a session of its own: each QEMU daemonizes into its own session, and
/// with the scheduler's autogroups a session shares the processors as one, so threads of kalab's
/// would crowd the VMs as one VM more only. One sample per VM; `None` when a command failed or the
/// round took too long.
fn run_round(lab: &Lab, nodes: &[usize], iterations: u64, spinners: usize) -> Option<Vec<Sample>> {
    let mut spinning: Vec<Child> = (0..spinners)
        .filter_map(|_| {
            std::process::Command::new("setsid")
                .args(["sh", "-c", "while :; do :; done"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()
        })
        .collect();
    let samples = (spinning.len() == spinners)
        .then(|| run_commands(lab, nodes, iterations))
        .flatten();
    for child in &mut spinning {
        let _ = child.kill();
        let _ = child.wait();
    }
    samples
}

/// One running guest loop.
struct Running {
    child: Child,
    dir: std::path::PathBuf,
    cpu0: f64,
    started: Instant,
    done: Option<Sample>,
}

fn run_commands(lab: &Lab, nodes: &[usize], iterations: u64) -> Option<Vec<Sample>> {
    let job = format!("i=0; while [ $i -lt {iterations} ]; do i=$((i+1)); done");
    let mut running = Vec::with_capacity(nodes.len());
    for &i in nodes {
        let dir = lab.vms.get(i)?.spec().vm_dir();
        let cpu0 = crate::timeline::vm_cpu_seconds(&dir)?;
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
                Ok(Some(status)) if status.success() => {
                    let cpu = crate::timeline::vm_cpu_seconds(&r.dir).map(|c| c - r.cpu0);
                    match cpu {
                        Some(cpu) => {
                            r.done = Some(Sample {
                                wall: r.started.elapsed().as_secs_f64(),
                                cpu,
                            })
                        }
                        None => failed = true,
                    }
                }
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
    }

    #[test]
    fn rounds_that_cannot_tell_give_nothing() {
        // Crowding added 0.2 s only: no measurement.
        assert_eq!(from_rounds(&[s(2.0, 1.0)], &[s(2.2, 1.1)]), None);
        assert_eq!(from_rounds(&[], &[s(6.0, 1.2)]), None);
        // Less processor time when crowded (noise): no load, not a negative one.
        assert_eq!(from_rounds(&[s(2.0, 1.1)], &[s(6.0, 1.0)]), Some(0.0));
        // An absurd rise is bounded.
        assert_eq!(from_rounds(&[s(1.0, 1.0)], &[s(2.0, 3.0)]), Some(MAX_LOAD));
    }
}

//! Before a timed lab run: wait for the QEMUs of earlier labs to be gone, and read how busy the host's
//! processors are. A run that starts while a previous lab's VMs still die shares the processors with
//! them, and the 1-minute load average it reports cannot tell that from its own VMs.

use crate::net::alive;
use serde::Serialize;
use std::time::{Duration, Instant};

/// Process names (`/proc/PID/comm`) of the lab's QEMUs: a lab VM (`-name ...,process=kalab-node-N`),
/// the busy-load probe's crowd and the firmware timer's throwaway VMs.
pub const QEMU_NAMES: &[&str] = &["kalab-node-", "kalab-crowd", "kalab-fwtime"];

/// How long [`wait_for_lab_qemus`] waits by default.
pub const WAIT_LIMIT: Duration = Duration::from_secs(120);

/// What the start of a run found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Start {
    /// Lab QEMUs alive when the run was about to start.
    pub leftover_qemus: usize,
    /// Seconds waited for them (not counted in the run's time).
    pub waited_seconds: f64,
    /// Lab QEMUs still alive when the wait gave up.
    pub still_alive: usize,
    /// Share of the host's processors busy over one second just before the clock started (0 to 1).
    pub host_busy: Option<f64>,
}

/// The PIDs of the live processes whose name starts with one of `names`.
pub fn processes_named(names: &[&str]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| names.iter().any(|n| comm.trim_end().starts_with(n)))
        })
        .filter(|&pid| alive(pid))
        .collect()
}

/// Waits until no process named as in `names` is alive, at most `limit`; then reads the host's busy
/// share over one second. The processes are only waited for, never signalled (they may be another
/// user's lab: the limit bounds the wait).
pub fn wait_for(names: &[&str], limit: Duration) -> Start {
    let started = Instant::now();
    let found = processes_named(names);
    let mut left = found.clone();
    while !left.is_empty() && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(100));
        left.retain(|&pid| alive(pid));
    }
    let waited_seconds = started.elapsed().as_secs_f64();
    if !left.is_empty() {
        tracing::warn!(
            ?left,
            "lab QEMUs of an earlier run still alive: starting anyway"
        );
    }
    Start {
        leftover_qemus: found.len(),
        waited_seconds,
        still_alive: left.len(),
        host_busy: host_busy(Duration::from_secs(1)),
    }
}

/// [`wait_for`] the lab's QEMUs ([`QEMU_NAMES`]) for at most [`WAIT_LIMIT`].
pub fn wait_for_lab_qemus() -> Start {
    wait_for(QEMU_NAMES, WAIT_LIMIT)
}

/// The share of the host's processors that were busy (not idle nor waiting for I/O) over `over`, from
/// `/proc/stat`'s first line.
pub fn host_busy(over: Duration) -> Option<f64> {
    let read = || cpu_times(&cpu_line()?);
    let (busy0, total0) = read()?;
    std::thread::sleep(over);
    let (busy1, total1) = read()?;
    let total = total1.checked_sub(total0)?;
    (total > 0).then(|| busy1.saturating_sub(busy0) as f64 / total as f64)
}

/// `/proc/stat`'s first line: the host's processors together (also read by [`crate::host_speed`]).
pub(crate) fn cpu_line() -> Option<String> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    text.lines().next().map(str::to_owned)
}

/// (busy, total) jiffies of a `/proc/stat` `cpu` line: idle and iowait are not busy; guest times are
/// already in user and nice.
fn cpu_times(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().sum();
    Some((total - v[3] - v[4], total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn cpu_lines_give_busy_and_total_jiffies() {
        assert_eq!(
            cpu_times("cpu  100 5 50 800 45 0 0 0 0 0"),
            Some((155, 1000))
        );
        assert_eq!(cpu_times("cpu0 1 2 3 4 5 6 7 8"), None);
        assert_eq!(cpu_times("intr 1 2"), None);
    }

    /// Window C's first classical run started right after a 16-VM run; a run now waits for every lab
    /// QEMU before its clock starts. A shell renamed like a lab VM (`kalab-node-t<pid>`) that exits
    /// 1.5 s later is waited for (a zombie counts as gone), and the host's busy share is read after it.
    #[test]
    fn a_run_waits_for_an_earlier_labs_qemu_before_its_clock() {
        // At most 15 characters (the kernel's `comm`).
        let name = format!("kalab-node-x{}", std::process::id() % 1000);
        let script = format!("printf %s {name} > /proc/$$/comm; sleep 1.5; exit 0");
        let mut child = Command::new("sh").args(["-c", &script]).spawn().unwrap();
        let t0 = Instant::now();
        while processes_named(&[&name]).is_empty() {
            assert!(t0.elapsed() < Duration::from_secs(5), "not renamed");
            std::thread::sleep(Duration::from_millis(10));
        }
        let start = wait_for(&[&name], Duration::from_secs(20));
        assert_eq!(start.leftover_qemus, 1);
        assert_eq!(start.still_alive, 0);
        assert!(start.waited_seconds > 0.8, "{start:?}");
        assert!(start.host_busy.is_some_and(|b| (0.0..=1.0).contains(&b)));
        child.wait().unwrap();
        // Nothing left: no wait at all.
        let again = wait_for(&[&name], Duration::from_secs(20));
        assert_eq!(again.leftover_qemus, 0);
        assert!(again.waited_seconds < 0.5);
    }

    #[test]
    fn a_wait_gives_up_at_its_limit() {
        let name = format!("kalab-crowdx{}", std::process::id() % 1000);
        let script = format!("printf %s {name} > /proc/$$/comm; sleep 5; exit 0");
        let mut child = Command::new("sh").args(["-c", &script]).spawn().unwrap();
        let t0 = Instant::now();
        while processes_named(&[&name]).is_empty() {
            assert!(t0.elapsed() < Duration::from_secs(5), "not renamed");
            std::thread::sleep(Duration::from_millis(10));
        }
        let start = wait_for(&[&name], Duration::from_millis(300));
        assert_eq!((start.leftover_qemus, start.still_alive), (1, 1));
        let _ = child.kill();
        child.wait().unwrap();
    }
}

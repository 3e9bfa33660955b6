//! The processes that crowd the lab's VMs in the busy-load probe's crowded rounds: host processes that
//! spin, or throwaway VMs that boot the lab's kernel over and over (what crowds a VM in a deployment:
//! other VMs booting). Each runs in a session of its own, as each VM's QEMU does (with the scheduler's
//! autogroups a session shares the processors as one).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;

/// Throwaway VMs' memory (MiB): the kernel panics without a root before it needs more.
const CROWD_VM_MEMORY: &str = "256";
/// The most crowding processes a probe starts.
pub const MAX_CROWD: usize = 64;

/// What crowds the VMs in a crowded round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crowd {
    /// This many host shell loops that spin.
    Spinners(usize),
    /// This many throwaway VMs booting the lab's kernel to its no-root panic and rebooting, again and
    /// again (paused during the free rounds).
    Vms(usize),
}

/// A probe's crowd and rounds: `spinners:N`, `vms:N`, with `xR` for R free and R crowded rounds
/// (`vms:12x5`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeSpec {
    /// What crowds the VMs.
    pub crowd: Crowd,
    /// Free and crowded rounds, each this many times.
    pub rounds: usize,
}

/// Why a probe description was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    /// Neither `spinners` nor `vms`.
    #[error("unknown crowd {0:?} (spinners:N or vms:N)")]
    Kind(String),
    /// A count that is not a number, zero, or too large.
    #[error("bad count {0:?} (1 to {MAX_CROWD} crowding processes, 1 to 20 rounds)")]
    Count(String),
}

impl FromStr for ProbeSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let (body, rounds) = match s.split_once('x') {
            Some((b, r)) => (b, count(r, 20)?),
            None => (s, 2),
        };
        let (kind, n) = body.split_once(':').unwrap_or((body, ""));
        let crowd = match kind {
            "spinners" => Crowd::Spinners(if n.is_empty() {
                6
            } else {
                count(n, MAX_CROWD)?
            }),
            "vms" => Crowd::Vms(count(n, MAX_CROWD)?),
            other => return Err(SpecError::Kind(other.to_string())),
        };
        Ok(ProbeSpec { crowd, rounds })
    }
}

impl std::fmt::Display for ProbeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.crowd {
            Crowd::Spinners(n) => write!(f, "spinners:{n}x{}", self.rounds),
            Crowd::Vms(n) => write!(f, "vms:{n}x{}", self.rounds),
        }
    }
}

fn count(text: &str, max: usize) -> Result<usize, SpecError> {
    text.parse()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| SpecError::Count(text.to_string()))
}

/// The running crowd; killed when dropped.
pub struct Running {
    children: Vec<Child>,
    /// Paused between crowded rounds (throwaway VMs keep their state; spinners are restarted).
    pausable: bool,
}

impl Running {
    /// Starts `crowd` (the throwaway VMs boot `kernel`); throwaway VMs start paused. `None` when one
    /// could not start.
    pub fn start(crowd: Crowd, kernel: &Path) -> Option<Running> {
        let (n, pausable) = match crowd {
            Crowd::Spinners(n) => (n, false),
            Crowd::Vms(n) => (n, true),
        };
        let mut running = Running {
            children: Vec::with_capacity(n),
            pausable,
        };
        for _ in 0..n {
            let mut command = Command::new("setsid");
            match crowd {
                Crowd::Spinners(_) => command.args(["sh", "-c", "while :; do :; done"]),
                Crowd::Vms(_) => command
                    .arg("qemu-system-x86_64")
                    // Named as `kalab e2e` looks for the lab's QEMUs ([`crate::quiet`]).
                    .args(["-name", "kalab-crowd,process=kalab-crowd"])
                    .args(["-machine", "pc", "-accel", "tcg", "-cpu"])
                    .arg(crate::vm::TCG_CPU)
                    .args(["-smp", "1", "-m", CROWD_VM_MEMORY, "-nodefaults"])
                    .args(["-display", "none", "-serial", "null", "-kernel"])
                    .arg(kernel)
                    .args(["-append", "console=ttyS0 panic=-1"]),
            };
            let child = command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            crate::net::register_pid(child.id());
            running.children.push(child);
        }
        if pausable {
            running.signal("-STOP");
        }
        Some(running)
    }

    /// Lets the crowd run (a crowded round begins).
    pub fn resume(&self) {
        if self.pausable {
            self.signal("-CONT");
        }
    }

    /// Lets the crowd run one process after the other, evenly over `over` (the last starts at its
    /// end): their boots fall out of step.
    pub fn resume_one_by_one(&self, over: std::time::Duration) {
        if !self.pausable {
            return;
        }
        let step = over / self.children.len().max(1) as u32;
        for (i, child) in self.children.iter().enumerate() {
            if i > 0 {
                std::thread::sleep(step);
            }
            signal_pids("-CONT", &[child.id()]);
        }
    }

    /// Stops the crowd from running (a free round begins).
    pub fn pause(&self) {
        if self.pausable {
            self.signal("-STOP");
        }
    }

    fn signal(&self, signal: &str) {
        let pids: Vec<u32> = self.children.iter().map(|c| c.id()).collect();
        signal_pids(signal, &pids);
    }
}

/// `kill SIGNAL PIDS...`.
fn signal_pids(signal: &str, pids: &[u32]) {
    let _ = Command::new("kill")
        .arg(signal)
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for Running {
    fn drop(&mut self) {
        // A stopped process dies of SIGKILL too.
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
            crate::net::unregister_pid(child.id());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_descriptions_parse_and_print_back() {
        let vms: ProbeSpec = "vms:12x3".parse().unwrap();
        assert_eq!(
            vms,
            ProbeSpec {
                crowd: Crowd::Vms(12),
                rounds: 3
            }
        );
        assert_eq!(vms.to_string(), "vms:12x3");
        assert_eq!(
            "spinners".parse::<ProbeSpec>().unwrap().to_string(),
            "spinners:6x2"
        );
        assert!(matches!(
            "vms".parse::<ProbeSpec>(),
            Err(SpecError::Count(_))
        ));
        assert!(matches!(
            "vms:0".parse::<ProbeSpec>(),
            Err(SpecError::Count(_))
        ));
        assert!(matches!(
            "vms:65".parse::<ProbeSpec>(),
            Err(SpecError::Count(_))
        ));
        assert!(matches!(
            "vms:4x0".parse::<ProbeSpec>(),
            Err(SpecError::Count(_))
        ));
        assert!(matches!(
            "disks:4".parse::<ProbeSpec>(),
            Err(SpecError::Kind(_))
        ));
    }

    /// A process's state letter (`T`: stopped).
    fn state(pid: u32) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = stat.rsplit_once(')').unwrap().1;
        after.trim_start().chars().next().unwrap()
    }

    #[test]
    fn a_paused_crowd_resumes_one_process_after_the_other() {
        let children: Vec<Child> = (0..3)
            .map(|_| Command::new("sleep").arg("30").spawn().unwrap())
            .collect();
        let crowd = Running {
            children,
            pausable: true,
        };
        crowd.pause();
        let pids: Vec<u32> = crowd.children.iter().map(|c| c.id()).collect();
        let t0 = std::time::Instant::now();
        while pids.iter().any(|&p| state(p) != 'T') {
            assert!(t0.elapsed().as_secs() < 5, "not stopped");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let t0 = std::time::Instant::now();
        crowd.resume_one_by_one(std::time::Duration::from_millis(300));
        // Three processes over 0.3 s: the last one 0.2 s after the first.
        assert!(t0.elapsed().as_millis() >= 200, "{:?}", t0.elapsed());
        let t0 = std::time::Instant::now();
        while pids.iter().any(|&p| state(p) == 'T') {
            assert!(t0.elapsed().as_secs() < 5, "not resumed");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(crowd);
    }

    #[test]
    fn a_spinning_crowd_runs_until_dropped() {
        let crowd = Running::start(Crowd::Spinners(2), Path::new("/nonexistent")).unwrap();
        let pids: Vec<u32> = crowd.children.iter().map(|c| c.id()).collect();
        assert!(
            pids.iter()
                .all(|p| Path::new(&format!("/proc/{p}")).exists())
        );
        drop(crowd);
        // Reaped: the processes are gone.
        assert!(
            pids.iter()
                .all(|p| !Path::new(&format!("/proc/{p}")).exists())
        );
    }
}

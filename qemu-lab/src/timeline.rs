//! When each VM reached each boot milestone during a run, and how much processor time its QEMU had used
//! by then: a watcher polls every VM's serial console log and firmware log (and QEMU's pidfile and
//! `/proc/<pid>/stat`) every 100 ms while `kadeploy3` runs, and timestamps what appears.
//!
//! The milestones are lines the boot chain prints: SeaBIOS's banner (a reset), PXElinux's banner, the
//! iPXE and GRUB scripts' first lines, the deploy kernel's and the environment's `ready` lines; a new
//! QEMU process (a power-on) is one too. [`Timeline`] turns them into boot durations (see
//! [`crate::calibrate`]).

use serde::{Deserialize, Serialize};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the logs are read.
const PERIOD: Duration = Duration::from_millis(100);
/// At most this many bytes are read from one log per poll (a guest flooding its console is cut).
const MAX_READ: u64 = 1 << 20;
/// At most this many milestones are kept per run.
const MAX_EVENTS: usize = 100_000;

/// A boot milestone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// A new QEMU process: the VM was powered on.
    PowerOn,
    /// SeaBIOS printed its banner: power-on or reset.
    Firmware,
    /// The network loader runs: PXElinux's banner, or the first line of the lab's iPXE or GRUB script.
    Loader,
    /// The loader has fetched the deploy kernel and initrd (PXElinux's `...ok`).
    Fetched,
    /// The deploy kernel runs its init (the initramfs is unpacked).
    DeployInit,
    /// The deploy kernel's init is done: sshd, the agent and port 25300 listen.
    DeployReady,
    /// The deploy kernel jumps into the environment's kernel (`kexec -e`).
    Kexec,
    /// The deployed environment's init is done (its sshd listens).
    EnvReady,
}

/// (log file in the VM's directory, text, milestone).
const NEEDLES: &[(&str, &str, Mark)] = &[
    ("bios.log", "SeaBIOS (version", Mark::Firmware),
    ("console.log", "PXELINUX ", Mark::Loader),
    ("console.log", "kalab ipxe:", Mark::Loader),
    ("console.log", "kalab grub:", Mark::Loader),
    ("console.log", "deploy-initrd...ok", Mark::Fetched),
    ("console.log", "kalab-deploy-kernel init", Mark::DeployInit),
    (
        "console.log",
        "kalab-deploy-kernel ready",
        Mark::DeployReady,
    ),
    ("console.log", "kalab-kexec", Mark::Kexec),
    ("console.log", "kalab-env ready", Mark::EnvReady),
];

/// One milestone of one VM.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Seconds since the watcher started.
    pub t: f64,
    /// The VM (node index).
    pub vm: usize,
    /// What happened.
    pub mark: Mark,
    /// Processor seconds the VM's QEMU processes had used since the watcher started.
    pub cpu: f64,
}

/// Every milestone of a run, in time order, with the host's processor count.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Timeline {
    /// The milestones.
    pub events: Vec<Event>,
    /// Processors of the host (what the VMs share).
    pub host_cores: usize,
    /// The host's 1-minute load average when the watcher stopped.
    pub load_average: f64,
}

/// The watcher's state for one VM.
struct VmWatch {
    dir: PathBuf,
    /// Bytes of each log already read, and the end of what was read (a needle may straddle two reads).
    offsets: Vec<(u64, String)>,
    pid: Option<u32>,
    /// Processor seconds of earlier QEMU processes, and of the current one at the last poll.
    cpu_before: f64,
    cpu_now: f64,
}

/// A running watcher; [`Watcher::stop`] gives the timeline.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Timeline>,
}

impl Watcher {
    /// Starts watching the VM directories `dirs` (node order).
    pub fn start(dirs: Vec<PathBuf>) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || watch(dirs, &flag));
        Watcher { stop, handle }
    }

    /// Stops the watcher and gives what it saw.
    pub fn stop(self) -> Timeline {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

fn watch(dirs: Vec<PathBuf>, stop: &AtomicBool) -> Timeline {
    let start = Instant::now();
    let mut vms: Vec<VmWatch> = dirs
        .into_iter()
        .map(|dir| {
            let files = ["bios.log", "console.log"];
            VmWatch {
                // Only what is written from now on counts.
                offsets: files
                    .iter()
                    .map(|f| (file_len(&dir.join(f)), String::new()))
                    .collect(),
                pid: read_pid(&dir),
                dir,
                cpu_before: 0.0,
                cpu_now: 0.0,
            }
        })
        .collect();
    for vm in &mut vms {
        vm.cpu_before = -vm.pid.and_then(cpu_seconds).unwrap_or(0.0);
    }
    let mut timeline = Timeline {
        host_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..Timeline::default()
    };
    loop {
        let last = stop.load(Ordering::Relaxed);
        let t = start.elapsed().as_secs_f64();
        for (i, vm) in vms.iter_mut().enumerate() {
            for (mark, cpu) in poll(vm) {
                if timeline.events.len() < MAX_EVENTS {
                    timeline.events.push(Event {
                        t,
                        vm: i,
                        mark,
                        cpu,
                    });
                }
            }
        }
        if last {
            break;
        }
        std::thread::sleep(PERIOD);
    }
    timeline.load_average = load_average().unwrap_or(0.0);
    timeline
}

/// One poll of a VM: its new milestones, each with the VM's processor seconds.
fn poll(vm: &mut VmWatch) -> Vec<(Mark, f64)> {
    let mut marks = Vec::new();
    let pid = read_pid(&vm.dir);
    if pid != vm.pid {
        vm.cpu_before += vm.cpu_now;
        vm.cpu_now = 0.0;
        vm.pid = pid;
        if pid.is_some() {
            marks.push(Mark::PowerOn);
            // The new QEMU truncated its firmware log.
            vm.offsets[0] = (0, String::new());
        }
    }
    if let Some(cpu) = vm.pid.and_then(cpu_seconds) {
        vm.cpu_now = cpu;
    }
    for (k, file) in ["bios.log", "console.log"].iter().enumerate() {
        let (offset, tail) = &mut vm.offsets[k];
        let path = vm.dir.join(file);
        let (text, end) = read_from(&path, *offset);
        *offset = end;
        if text.is_empty() {
            continue;
        }
        let seen = format!("{tail}{text}");
        for (needle_file, needle, mark) in NEEDLES {
            if needle_file != file {
                continue;
            }
            // Only matches that end in the new text count (the tail was searched last time).
            let count = seen
                .match_indices(needle)
                .filter(|(at, _)| at + needle.len() > tail.len())
                .count();
            marks.extend(std::iter::repeat_n(*mark, count));
        }
        let keep = seen.len().saturating_sub(64);
        let cut = (keep..seen.len())
            .find(|&i| seen.is_char_boundary(i))
            .unwrap_or(seen.len());
        *tail = seen[cut..].to_string();
    }
    let cpu = vm.cpu_before + vm.cpu_now;
    marks.into_iter().map(|m| (m, cpu)).collect()
}

/// The text appended to `path` after `offset` (bounded), and the new offset; a file that shrank (a new
/// QEMU truncated it) is read from its start.
fn read_from(path: &Path, offset: u64) -> (String, u64) {
    let Ok(mut f) = std::fs::File::open(path) else {
        return (String::new(), 0);
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let from = if len < offset { 0 } else { offset };
    if len == from || f.seek(SeekFrom::Start(from)).is_err() {
        return (String::new(), from);
    }
    let mut buf = Vec::new();
    let n = f
        .take((len - from).min(MAX_READ))
        .read_to_end(&mut buf)
        .unwrap_or(0);
    (String::from_utf8_lossy(&buf).into_owned(), from + n as u64)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// QEMU's pid from the VM's pidfile, when that process is alive.
fn read_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join("qemu.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// Processor seconds the QEMU of the VM in `dir` has used (its pidfile's process).
pub fn vm_cpu_seconds(dir: &Path) -> Option<f64> {
    cpu_seconds(read_pid(dir)?)
}

/// User and system processor seconds of process `pid` (all its threads).
pub fn pid_cpu_seconds(pid: u32) -> Option<f64> {
    cpu_seconds(pid)
}

/// Processor seconds of the QEMU of the VM in `dir` to the nanosecond: the sum of its live threads'
/// run times (`/proc/PID/task/*/schedstat`); a thread that exits takes its time with it, so a
/// difference of two readings is only trusted where [`vm_cpu_seconds`] (10 ms ticks, dead threads
/// included) agrees with it.
pub fn vm_cpu_seconds_precise(dir: &Path) -> Option<f64> {
    let pid = read_pid(dir)?;
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(task) = task else { continue };
        // A thread may exit between the listing and the read: it is skipped.
        if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) {
            total = total.saturating_add(parse_schedstat_ns(&text)?);
        }
    }
    Some(total as f64 / 1e9)
}

/// The run time of a `schedstat` line (its first field, nanoseconds).
fn parse_schedstat_ns(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu(&stat)
}

/// utime + stime of a `/proc/<pid>/stat` line, in seconds (clock ticks of 1/100 s).
fn parse_stat_cpu(stat: &str) -> Option<f64> {
    // The command name is in parentheses and may hold spaces: fields count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of the line; utime and stime are fields 14 and 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Timeline {
    /// The milestones of VM `vm`, in time order.
    pub fn of(&self, vm: usize) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.vm == vm)
    }

    /// The first `mark` of VM `vm` at or after `t`.
    pub fn next(&self, vm: usize, mark: Mark, t: f64) -> Option<&Event> {
        self.of(vm).find(|e| e.mark == mark && e.t >= t)
    }

    /// The last boot start (power-on or firmware banner) of VM `vm` at or before `t`.
    pub fn boot_start_before(&self, vm: usize, t: f64) -> Option<&Event> {
        self.of(vm)
            .filter(|e| matches!(e.mark, Mark::PowerOn | Mark::Firmware) && e.t <= t)
            .last()
    }

    /// The number of VMs seen.
    pub fn vms(&self) -> usize {
        self.events.iter().map(|e| e.vm + 1).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_cpu_is_read_past_a_command_name_with_spaces() {
        let line =
            "1234 (qemu-system (x) y) S 1 2 3 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 99 0 0";
        assert_eq!(parse_stat_cpu(line), Some(3.25));
        assert_eq!(parse_stat_cpu("garbage"), None);
    }

    #[test]
    fn schedstat_gives_nanoseconds_and_a_live_process_reads_to_the_nanosecond() {
        assert_eq!(
            parse_schedstat_ns("1234567891 5000 12\n"),
            Some(1_234_567_891)
        );
        assert_eq!(parse_schedstat_ns("x 1 2"), None);
        // A spinning shell, through a pidfile as a VM's QEMU has one: its reading grows as it works
        // and is not a whole number of ticks.
        let dir = std::env::temp_dir().join(format!("kalab-schedstat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        std::fs::write(dir.join("qemu.pid"), child.id().to_string()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let before = vm_cpu_seconds_precise(&dir);
        std::thread::sleep(std::time::Duration::from_millis(200));
        let after = vm_cpu_seconds_precise(&dir);
        let _ = child.kill();
        let _ = child.wait();
        std::fs::remove_dir_all(&dir).unwrap();
        let (before, after) = (before.unwrap(), after.unwrap());
        assert!(before > 0.0 && after > before, "{before} {after}");
        assert!(
            ((after * 100.0).round() - after * 100.0).abs() > 1e-9,
            "{after}"
        );
    }

    #[test]
    fn milestones_are_found_once_even_across_reads() {
        let dir = std::env::temp_dir().join(format!("kalab-timeline-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let console = dir.join("console.log");
        std::fs::write(&console, "old kalab-env ready\n").unwrap();
        let mut vm = VmWatch {
            offsets: vec![(0, String::new()), (file_len(&console), String::new())],
            pid: None,
            dir: dir.clone(),
            cpu_before: 0.0,
            cpu_now: 0.0,
        };
        assert!(poll(&mut vm).is_empty());
        let append = |s: &str| {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&console)
                .unwrap();
            f.write_all(s.as_bytes()).unwrap();
        };
        append("PXELINUX 6.04\nkalab-deploy-ker");
        let marks: Vec<Mark> = poll(&mut vm).into_iter().map(|(m, _)| m).collect();
        assert_eq!(marks, [Mark::Loader]);
        append("nel ready node-1\n");
        let marks: Vec<Mark> = poll(&mut vm).into_iter().map(|(m, _)| m).collect();
        assert_eq!(marks, [Mark::DeployReady]);
        assert!(poll(&mut vm).is_empty());
        // A new QEMU truncates its log: read again from the start.
        std::fs::write(&console, "kalab-env ready\n").unwrap();
        let marks: Vec<Mark> = poll(&mut vm).into_iter().map(|(m, _)| m).collect();
        assert_eq!(marks, [Mark::EnvReady]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

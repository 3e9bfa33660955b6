//! Small process helpers shared by the lab: run a command and check it, probe and signal PIDs.

use super::NetError;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `args` (program first) and fails with its stderr when it exits non-zero.
pub(crate) fn run(args: &[&str]) -> Result<String, NetError> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|source| NetError::Spawn {
            command: args.join(" "),
            source,
        })?;
    if !out.status.success() {
        return Err(NetError::Command {
            command: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// True when `pid` names a live process: one of its threads has not exited. A zombie counts as gone,
/// but a thread-group leader that exited first shows as a zombie while its other threads still run
/// (and hold its memory): its threads are looked at, not the leader alone.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_dir(format!("/proc/{pid}/task")) {
        Ok(tasks) => tasks.filter_map(Result::ok).any(|task| {
            std::fs::read_to_string(task.path().join("stat")).is_ok_and(|s| running(&s))
        }),
        Err(_) => std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| running(&s)),
    }
}

/// True when a `/proc/.../stat` line's state is not a zombie's or a dead task's.
fn running(stat: &str) -> bool {
    // The state follows the parenthesised command name, which may itself contain ") ".
    stat.rsplit_once(") ")
        .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
}

/// Sends `signal` (a name such as `TERM` or `KILL`) to `pid` with the shell's `kill` builtin.
pub fn signal(pid: u32, signal: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("kill -s {signal} {pid}")])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// How long [`terminate`] waits for SIGKILLed processes to be gone: a TCG QEMU's exit frees its guest
/// memory and its threads; a lab must not return (and the next one start its clock) before.
pub const KILL_WAIT: Duration = Duration::from_secs(30);

/// Sends SIGTERM to every PID, waits up to `grace` for them to go, then SIGKILLs the rest and
/// waits for those too (up to [`KILL_WAIT`], SIGKILL again every second). Returns the PIDs still
/// alive at the end.
pub fn terminate(pids: &[u32], grace: Duration) -> Vec<u32> {
    let me = std::process::id();
    let pids: Vec<u32> = pids.iter().copied().filter(|&p| p != me).collect();
    for &pid in &pids {
        signal(pid, "TERM");
    }
    let deadline = Instant::now() + KILL_WAIT;
    let mut gone = wait_gone(&pids, grace);
    while !gone && Instant::now() < deadline {
        for &pid in &pids {
            if alive(pid) {
                signal(pid, "KILL");
            }
        }
        gone = wait_gone(&pids, Duration::from_secs(1));
    }
    pids.into_iter().filter(|&p| alive(p)).collect()
}

/// Waits until none of `pids` is alive; false on timeout.
pub fn wait_gone(pids: &[u32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pids.iter().all(|&p| !alive(p)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process whose main thread exits first (`pthread_exit`, through Python's ctypes) while a
    /// second thread runs 2 s more: the leader reads as a zombie all along. Before, `alive` read the
    /// leader's state only, so a lab's teardown took such a process for gone while its threads still
    /// ran and held its memory.
    #[test]
    fn a_process_whose_leader_exited_is_alive_until_its_last_thread_is_gone() {
        let script = "import ctypes, threading, time\n\
                      threading.Thread(target=time.sleep, args=(2.0,)).start()\n\
                      ctypes.CDLL(None).pthread_exit(None)\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .spawn()
            .expect("python3");
        let pid = child.id();
        let started = Instant::now();
        // The leader's exit: its own state turns to zombie.
        let leader_zombie = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
        };
        while !leader_zombie() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no leader exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(started.elapsed() < Duration::from_millis(1500));
        assert!(alive(pid), "the sleeping thread still runs");
        assert!(wait_gone(&[pid], Duration::from_secs(10)));
        assert!(started.elapsed() >= Duration::from_millis(1500));
        assert!(child.wait().expect("wait").success());
        assert!(!alive(pid));
    }
}

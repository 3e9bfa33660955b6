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

/// True when `pid` names a live process (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself contain ") ".
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// Sends `signal` (a name such as `TERM` or `KILL`) to `pid` with the shell's `kill` builtin.
pub fn signal(pid: u32, signal: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("kill -s {signal} {pid}")])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Sends SIGTERM to every PID, waits up to `grace` for them to go, then SIGKILLs the rest and
/// waits for those too (at most two more seconds). Returns the PIDs still alive at the end.
pub fn terminate(pids: &[u32], grace: Duration) -> Vec<u32> {
    let me = std::process::id();
    let pids: Vec<u32> = pids.iter().copied().filter(|&p| p != me).collect();
    for &pid in &pids {
        signal(pid, "TERM");
    }
    if !wait_gone(&pids, grace) {
        for &pid in &pids {
            if alive(pid) {
                signal(pid, "KILL");
            }
        }
        wait_gone(&pids, Duration::from_secs(2));
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

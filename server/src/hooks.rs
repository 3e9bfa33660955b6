//! Kadeploy's end-of-operation hooks (`hooks/end_of_deployment`, `end_of_reboot`, `end_of_power` of
//! `server.conf`), run as Kadeploy 3.3 runs them (`Kaworkflow#work_end_hook`): only when the request asked
//! for it (`hook`, the clients' `--hook`), once the operation has ended (done, failed or cancelled), with
//! `WORKFLOW_ID` replaced by the workflow's id, through the shell, with no input and its outputs thrown
//! away, for at most 20 seconds (then killed, with a line in the server's log). Its exit status changes
//! nothing: the workflow's result is already recorded when it starts.

use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a hook may run (Kadeploy's `Timeout::timeout(20)`).
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(20);

/// How often a running hook is checked.
const POLL: Duration = Duration::from_millis(50);

/// The command line of `template` for workflow `wid`.
pub fn command(template: &str, wid: &str) -> String {
    template.replace("WORKFLOW_ID", wid)
}

/// How a hook ended.
#[derive(Debug, PartialEq, Eq)]
pub enum HookEnd {
    /// It exited (its code; `None` when a signal ended it).
    Exited(Option<i32>),
    /// It ran longer than allowed and was killed with its process group.
    Expired,
    /// It could not be started.
    NotStarted(String),
}

/// Runs `command` in a thread of its own (the workflow's executor never waits for it); see [`run`].
pub fn spawn(command: String, timeout: Duration) {
    let spawned = std::thread::Builder::new()
        .name("kadeploy-hook".into())
        .spawn(move || run(&command, timeout));
    if let Err(e) = spawned {
        tracing::error!("the hook command could not be started: {e}");
    }
}

/// Runs `command` with `sh -c` in a process group of its own, stdin, stdout and stderr on `/dev/null`;
/// after `timeout` the group is killed. Waits in real time (never the simulator's virtual clock).
pub fn run(command: &str, timeout: Duration) -> HookEnd {
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("the hook command could not be started ({command}): {e}");
            return HookEnd::NotStarted(e.to_string());
        }
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                tracing::info!(command, code = ?status.code(), "hook command ended");
                return HookEnd::Exited(status.code());
            }
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(POLL),
            Ok(None) | Err(_) => break,
        }
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) on the process group this function created; no memory is involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    tracing::error!("The hook command has expired ({command})");
    HookEnd::Expired
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workflow_id_is_substituted() {
        assert_eq!(
            command("echo WORKFLOW_ID WORKFLOW_ID", "P-1"),
            "echo P-1 P-1"
        );
    }

    #[test]
    fn exit_codes_are_reported_and_ignored() {
        assert_eq!(run("exit 3", HOOK_TIMEOUT), HookEnd::Exited(Some(3)));
        assert_eq!(run("true", HOOK_TIMEOUT), HookEnd::Exited(Some(0)));
    }

    /// A hook that never ends is killed with the processes it started (before, no hook ran at all).
    #[test]
    fn a_hook_that_hangs_is_killed_with_its_children() {
        let dir = std::env::temp_dir().join(format!("kadeploy-hook-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("pid");
        let cmd = format!("sleep 600 & echo $! > {}; wait", pidfile.display());
        let start = Instant::now();
        assert_eq!(run(&cmd, Duration::from_millis(500)), HookEnd::Expired);
        assert!(start.elapsed() < Duration::from_secs(30));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The background `sleep` was in the hook's process group: it is gone (or a zombie of init).
        let mut gone = false;
        for _ in 0..100 {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if state.is_empty() || state.contains(") Z ") {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(gone, "the hook's child {pid} still runs");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

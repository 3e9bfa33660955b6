//! Daemon mode (`-d`): the command returns once the detached daemon serves; the PID file holds the
//! daemon's PID (not the launcher's); stdout and stderr go to output.log and error.log in `--log-dir`,
//! reopened on SIGHUP; SIGTERM stops it and removes the PID file. Before, `-d` did not exist.

use super::harness::Http;
use super::process::{BIN, config, signal, wait_for};
use std::process::Command;
use std::time::Duration;

/// Kills the daemon by PID if the test fails before it stops.
struct Guard(Option<u32>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: SIGKILL to the daemon this test started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

/// The process is gone (or a zombie nobody reaped yet).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn daemon_mode_detaches_and_the_pid_file_holds_the_daemon() {
    let (dir, conf) = config("detach");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    let pidfile = dir.join("run/kadeploy3d.pid");
    std::fs::create_dir_all(dir.join("run")).expect("run dir");
    let launcher = Command::new(BIN)
        .arg("-d")
        .arg("-p")
        .arg(&pidfile)
        .arg("--log-dir")
        .arg(&logs)
        .arg("-c")
        .arg(&conf)
        .args(["--bind", "127.0.0.1:0", "--database"])
        .arg(dir.join("db.sqlite"))
        .output()
        .expect("kadeploy3d -d runs");
    assert!(launcher.status.success(), "{launcher:?}");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .expect("the PID file exists when -d returns")
        .trim()
        .parse()
        .expect("a PID");
    let mut guard = Guard(Some(pid));
    assert!(!gone(pid), "the daemon runs");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        fields.get(3),
        Some(&pid.to_string().as_str()),
        "the daemon leads its own session"
    );
    let output = std::fs::read_to_string(logs.join("output.log")).expect("output.log");
    let port: u16 = output
        .lines()
        .find_map(|l| l.strip_prefix("kadeploy3d listening on http://127.0.0.1:"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no listening line in output.log: {output}"));
    assert_eq!(Http::new(port, "root").get("/version").status, 200);
    let error_log = logs.join("error.log");
    assert!(
        std::fs::read_to_string(&error_log)
            .unwrap_or_default()
            .contains("kadeploy3d serves")
    );

    std::fs::rename(&error_log, logs.join("error.log.1")).expect("rotate");
    signal(pid, libc::SIGHUP);
    wait_for(
        Duration::from_secs(30),
        || std::fs::read_to_string(&error_log).is_ok_and(|t| t.contains("configuration reloaded")),
        || "error.log is not reopened on SIGHUP".into(),
    );
    signal(pid, libc::SIGTERM);
    wait_for(
        Duration::from_secs(30),
        || gone(pid),
        || "the daemon does not stop".into(),
    );
    guard.0 = None;
    assert!(!pidfile.exists(), "the PID file is removed");
    let _ = std::fs::remove_dir_all(&dir);
}

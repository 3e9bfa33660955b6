//! A `kadeploy3d` child for operations tests: stdout lines read by a thread, stderr appended to a file
//! the test can read, signals sent by PID, SIGKILLed and reaped on drop if still running.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_kadeploy3d");

/// A running `kadeploy3d`.
pub struct Daemon {
    child: Child,
    lines: Receiver<String>,
    /// The API port on 127.0.0.1.
    pub port: u16,
    /// `host:port` of `/metrics`, when printed.
    pub metrics: Option<String>,
    /// Where its stderr goes.
    pub stderr: PathBuf,
}

impl Daemon {
    /// Starts `kadeploy3d -c conf --bind 127.0.0.1:0 --database db extra...` (stderr to `dir/stderr.log`)
    /// and waits for its listening line (and its metrics line when `metrics`).
    pub fn start(dir: &Path, conf: &Path, extra: &[&str], metrics: bool) -> Daemon {
        let stderr = dir.join("stderr.log");
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr)
            .expect("stderr file");
        let mut child = Command::new(BIN)
            .arg("-c")
            .arg(conf)
            .args(["--bind", "127.0.0.1:0", "--database"])
            .arg(dir.join("db.sqlite"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("kadeploy3d starts");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut d = Daemon {
            child,
            lines,
            port: 0,
            metrics: None,
            stderr,
        };
        let first = d.line(Duration::from_secs(60));
        d.port = first
            .as_deref()
            .and_then(|l| l.strip_prefix("kadeploy3d listening on "))
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(&d.stderr).unwrap_or_default();
                panic!("no listening line: {first:?}; stderr: {log}")
            });
        if metrics {
            let line = d.line(Duration::from_secs(10)).unwrap_or_default();
            d.metrics = line
                .strip_prefix("kadeploy3d metrics on http://")
                .and_then(|l| l.strip_suffix("/metrics"))
                .map(String::from);
            assert!(d.metrics.is_some(), "no metrics line: {line:?}");
        }
        d
    }

    /// The next stdout line, waiting at most `limit`.
    pub fn line(&self, limit: Duration) -> Option<String> {
        self.lines.recv_timeout(limit).ok()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` to the process.
    pub fn signal(&self, sig: i32) {
        signal(self.pid(), sig);
    }

    /// Waits for the exit, at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "kadeploy3d still runs after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything written to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until stderr contains `text`, at most `limit`.
    pub fn wait_log(&self, text: &str, limit: Duration) {
        wait_for(
            limit,
            || self.log().contains(text),
            || format!("stderr never said {text:?}: {}", self.log()),
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `sig` to process `pid`.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill only sends a signal to the process the test started.
    let r = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(
        r,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

/// Polls `ok` every 50 ms until it holds, at most `limit`; panics with `what()` otherwise.
pub fn wait_for(limit: Duration, mut ok: impl FnMut() -> bool, what: impl FnOnce() -> String) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "{}", what());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A copy of the sample configuration for test `name` (plain HTTP), with `logs/logfile` and
/// `logs/debugfile` in the test directory; returns (test dir, config dir).
pub fn config(name: &str) -> (PathBuf, PathBuf) {
    let dir = super::harness::setup(&format!("ops-{name}"));
    let conf = super::harness::config_copy(&dir, false);
    edit(&conf.join("server.conf"), |t| {
        t.replace(
            "/var/log/kadeploy3/kadeploy.log",
            &dir.join("kadeploy.log").display().to_string(),
        )
        .replace(
            "/var/log/kadeploy3/kadeploy.debug",
            &dir.join("kadeploy.debug").display().to_string(),
        )
    });
    (dir, conf)
}

/// Rewrites `file` with `f`.
pub fn edit(file: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(file).expect("read");
    std::fs::write(file, f(text)).expect("write");
}

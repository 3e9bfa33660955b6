//! The power of one lab VM: on = its pid (from the pidfile) is alive; power on runs the start script;
//! power off asks QMP `quit` or kills the pid; reset uses QMP `system_reset`.

use super::bootorder::BootEntry;
use crate::qmp::{Qmp, QmpError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::Command;
use tracing::{info, warn};

/// Why a power operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// The start script could not run or failed.
    #[error("start script {script}: {reason}")]
    Start {
        /// The script's path.
        script: String,
        /// What went wrong.
        reason: String,
    },
    /// The VM process did not go away.
    #[error("VM process {0} does not die")]
    Stuck(u32),
    /// A QMP exchange (boot order, reset) failed.
    #[error(transparent)]
    Qmp(#[from] QmpError),
}

/// Longest wait for each QMP read or write.
pub(super) const QMP_TIMEOUT: Duration = Duration::from_secs(2);

/// What the BMC asks QEMU over QMP.
#[derive(Clone, Copy, Debug)]
enum QmpCommand {
    /// `quit`: QEMU exits (a connection closed before the reply counts as done).
    Quit,
    /// `system_reset`: a hard reset in place.
    Reset,
}

/// Runs `command` on the QMP socket `sock` with the lab's (blocking) QMP client, off the async threads.
async fn qmp_command(sock: &Path, command: QmpCommand) -> Result<(), QmpError> {
    let sock = sock.to_path_buf();
    let job = tokio::task::spawn_blocking(move || {
        let mut qmp = Qmp::connect(&sock, QMP_TIMEOUT)?;
        match command {
            QmpCommand::Quit => qmp.quit(),
            QmpCommand::Reset => qmp.system_reset(),
        }
    });
    // Each read and write is bounded; this bounds the whole exchange too.
    match tokio::time::timeout(QMP_TIMEOUT * 3, job).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(QmpError::Io(std::io::Error::other(format!(
            "QMP task failed: {e}"
        )))),
        Err(_) => Err(QmpError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "QMP: no answer in time",
        ))),
    }
}

/// Runs `job` on a QMP connection to `sock`, off the async threads, bounded in time.
pub(super) async fn with_qmp<T: Send + 'static>(
    sock: &Path,
    limit: Duration,
    job: impl FnOnce(&mut Qmp) -> Result<T, QmpError> + Send + 'static,
) -> Result<T, QmpError> {
    let sock = sock.to_path_buf();
    let task = tokio::task::spawn_blocking(move || {
        let mut qmp = Qmp::connect(&sock, QMP_TIMEOUT)?;
        job(&mut qmp)
    });
    match tokio::time::timeout(limit, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(QmpError::Io(std::io::Error::other(format!(
            "QMP task failed: {e}"
        )))),
        Err(_) => Err(QmpError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "QMP: no answer in time",
        ))),
    }
}

/// The boot order a QEMU process was started with, by its pid.
pub type BootDefaults = Arc<Mutex<Option<(u32, Vec<BootEntry>)>>>;

/// One VM as its BMC sees it.
#[derive(Debug, Clone)]
pub struct Vm {
    /// Shell script that starts QEMU daemonized and writes the pidfile.
    pub start_script: PathBuf,
    /// The pidfile QEMU writes.
    pub pidfile: PathBuf,
    /// QEMU's QMP socket, if any.
    pub qmp: Option<PathBuf>,
    /// The running QEMU's own boot order, read before the BMC first changes it.
    pub boot_defaults: BootDefaults,
}

/// True when `pid` is a live (not zombie) process.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl Vm {
    /// The pid of the running VM, if it runs.
    pub fn running_pid(&self) -> Option<u32> {
        read_pid(&self.pidfile).filter(|&p| pid_alive(p))
    }

    /// True when the VM runs.
    pub fn is_on(&self) -> bool {
        self.running_pid().is_some()
    }

    /// Starts the VM unless it runs.
    pub async fn power_on(&self) -> Result<(), VmError> {
        self.start(false).await
    }

    /// Starts the VM unless it runs; `paused` asks the start script for a VM whose processors wait
    /// for QMP `cont` (`KALAB_START_PAUSED=1` in its environment: QEMU's `-S`).
    pub async fn start(&self, paused: bool) -> Result<(), VmError> {
        if let Some(pid) = self.running_pid() {
            info!(pid, "power on: already on");
            return Ok(());
        }
        let script = self.start_script.display().to_string();
        let err = |reason: String| VmError::Start {
            script: script.clone(),
            reason,
        };
        info!(%script, "power on: running the start script");
        let mut command = Command::new("sh");
        if paused {
            command.env("KALAB_START_PAUSED", "1");
        }
        let status = command
            .arg(&self.start_script)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .status();
        let status = tokio::time::timeout(Duration::from_secs(60), status)
            .await
            .map_err(|_| err("still running after 60 s".into()))?
            .map_err(|e| err(e.to_string()))?;
        if !status.success() {
            return Err(err(format!("exited with {status}")));
        }
        for _ in 0..50 {
            if let Some(pid) = self.running_pid() {
                info!(pid, "power on: VM running");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        Err(err("no live pid in the pidfile after the script".into()))
    }

    /// Stops the VM: QMP `quit` if a QMP socket answers, else SIGKILL.
    pub async fn power_off(&self) -> Result<(), VmError> {
        let Some(pid) = self.running_pid() else {
            info!("power off: already off");
            return Ok(());
        };
        if let Some(sock) = &self.qmp {
            match qmp_command(sock, QmpCommand::Quit).await {
                Ok(_) => info!(pid, "power off: QMP quit sent"),
                Err(e) => warn!(pid, "power off: {e}; killing"),
            }
            if self.wait_dead(pid, Duration::from_secs(5)).await {
                let _ = std::fs::remove_file(&self.pidfile);
                return Ok(());
            }
        }
        info!(pid, "power off: SIGKILL");
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -9 {pid}"))
            .status()
            .await;
        if self.wait_dead(pid, Duration::from_secs(5)).await {
            let _ = std::fs::remove_file(&self.pidfile);
            Ok(())
        } else {
            Err(VmError::Stuck(pid))
        }
    }

    async fn wait_dead(&self, pid: u32, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while pid_alive(pid) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Power cycle: off then on (just on when off).
    pub async fn cycle(&self) -> Result<(), VmError> {
        self.power_off().await?;
        self.power_on().await
    }

    /// Hard reset: QMP `system_reset`, or a cycle without QMP.
    pub async fn reset(&self) -> Result<(), VmError> {
        if let Some(sock) = &self.qmp
            && self.is_on()
        {
            match qmp_command(sock, QmpCommand::Reset).await {
                Ok(_) => {
                    info!("reset: QMP system_reset sent");
                    return Ok(());
                }
                Err(e) => warn!("reset: {e}; cycling"),
            }
        }
        self.cycle().await
    }
}

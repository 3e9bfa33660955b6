//! The daemon's own messages (`tracing`, on stderr; `RUST_LOG` filters, `info` by default) and, in daemon
//! mode, Kadeploy's redirections: stdout appended to `output.log`, stderr to `error.log` in the log
//! directory, reopened on SIGHUP so logrotate can move them.

use std::fs::{File, OpenOptions};
use std::io::IsTerminal as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// Where the daemon's stdout goes in daemon mode (Kadeploy's name).
pub const OUTPUT_LOG: &str = "output.log";
/// Where the daemon's stderr goes in daemon mode (Kadeploy's name).
pub const ERROR_LOG: &str = "error.log";

/// Starts the `tracing` subscriber writing to stderr (colours only on a terminal that stays one: not
/// when `detaching`).
pub fn init(detaching: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(!detaching && std::io::stderr().is_terminal())
        .try_init();
}

/// The files stdout and stderr are redirected to in daemon mode.
pub struct Redirect {
    output: PathBuf,
    error: PathBuf,
}

impl Redirect {
    /// The files of `dir`; checks now that they can be opened (before detaching, so errors show).
    pub fn new(dir: &Path) -> anyhow::Result<Redirect> {
        if !dir.is_dir() {
            anyhow::bail!("log directory '{}' does not exist", dir.display());
        }
        let r = Redirect {
            output: dir.join(OUTPUT_LOG),
            error: dir.join(ERROR_LOG),
        };
        for p in [&r.output, &r.error] {
            open(p).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", p.display()))?;
        }
        Ok(r)
    }

    /// Points stdout and stderr at the files (opened anew: after logrotate moved them, new files).
    pub fn apply(&self) -> std::io::Result<()> {
        let (out, err) = (open(&self.output)?, open(&self.error)?);
        dup_onto(&out, 1)?;
        dup_onto(&err, 2)
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .open(path)
}

/// Makes descriptor `fd` a copy of `file`.
pub fn dup_onto(file: &File, fd: i32) -> std::io::Result<()> {
    // SAFETY: dup2 only duplicates descriptors; both are valid (ours, and a standard descriptor).
    if unsafe { libc::dup2(file.as_raw_fd(), fd) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

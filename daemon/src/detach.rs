//! Daemon mode (`-d`): a fork made before any thread exists. The parent waits until the child says it
//! serves (then exits 0) or dies without saying so (exits 1); the child starts a new session, reads stdin
//! from `/dev/null`, and writes stdout and stderr to the log directory (Kadeploy's `--detach`).

use crate::logging::{Redirect, dup_onto};
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::FromRawFd as _;

/// The detached child's end of the readiness pipe.
pub struct Detached {
    ready: File,
}

impl Detached {
    /// Tells the waiting parent that the daemon serves.
    pub fn ready(mut self) {
        let _ = self.ready.write_all(b"1");
    }
}

/// Forks; returns in the child only (the parent exits). Must run before any thread is started.
pub fn detach(redirect: &Redirect) -> anyhow::Result<Detached> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two descriptors into the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: both descriptors were just created and are owned by nothing else.
    let (mut read, write) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    // SAFETY: the process has a single thread here (the caller's contract), so the child may go on
    // running arbitrary code.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error().into()),
        0 => {
            drop(read);
            // SAFETY: setsid has no memory effects; it fails only if already a group leader.
            unsafe { libc::setsid() };
            let null = File::open("/dev/null")?;
            dup_onto(&null, 0)?;
            redirect.apply()?;
            Ok(Detached { ready: write })
        }
        child => {
            drop(write);
            let mut byte = [0u8; 1];
            let code = match read.read(&mut byte) {
                Ok(1) => 0,
                _ => {
                    eprintln!(
                        "kadeploy3d: the daemon (pid {child}) stopped before serving; see its error.log"
                    );
                    1
                }
            };
            std::process::exit(code);
        }
    }
}

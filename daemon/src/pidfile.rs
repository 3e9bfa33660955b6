//! The PID file (`-p/--pidfile`): refused when it names a live process, written atomically, removed at
//! exit if it still holds this process's PID.

use anyhow::Context as _;
use std::path::{Path, PathBuf};

/// A written PID file, removed on drop.
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

/// Fails when `path` holds the PID of a live process other than this one.
pub fn check(path: &Path) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return Ok(());
    };
    if pid > 0 && pid as u32 != std::process::id() && alive(pid) {
        anyhow::bail!(
            "{} names the running process {pid}: is another kadeploy3d running?",
            path.display()
        );
    }
    Ok(())
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl PidFile {
    /// Writes this process's PID to `path` (through a temporary file renamed over it).
    pub fn create(path: &Path) -> anyhow::Result<PidFile> {
        check(path)?;
        let pid = std::process::id();
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{pid}.tmp"));
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, format!("{pid}\n"))
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| format!("writing the PID file {}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            pid,
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|t| t.trim().parse::<u32>().ok() == Some(self.pid));
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_live_pid_and_removes_its_own() {
        let dir = std::env::temp_dir().join(format!("kadeploy3d-pid-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k.pid");
        std::fs::write(&path, "1\n").unwrap();
        assert!(check(&path).is_err(), "PID 1 is alive");
        std::fs::write(&path, "not a pid\n").unwrap();
        {
            let f = PidFile::create(&path).unwrap();
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                format!("{}\n", f.pid)
            );
        }
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

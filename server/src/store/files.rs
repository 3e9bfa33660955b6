//! The database file a server owns: an exclusive `flock` on it, taken before SQLite opens it and held until
//! the process ends (the kernel drops it on exit, also after `kill -9`), so a second server on the same
//! database refuses to start; and the identity (device, inode) of the database and of its WAL, checked
//! around every operation, so that a file removed or replaced under the server is reported instead of
//! being silently written to.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// Why the database files cannot be claimed or are no longer the ones the server opened.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// Another process holds the database.
    #[error(
        "the database {path} is in use by another process{holder}: a second kadeploy3d on it would \
         abort the first one's running workflows; stop the other server or set another database/file"
    )]
    InUse {
        /// The database.
        path: PathBuf,
        /// ` (pid N)` when known.
        holder: String,
    },
    /// The file cannot be opened, created or locked.
    #[error("the database {path}: {error}")]
    Io {
        /// The database.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// The path no longer names the file the server opened.
    #[error(
        "the database file {path} was {what} while the server runs: changes can no longer be recorded \
         (they would be lost at the next start); restore the file or restart kadeploy3d"
    )]
    Moved {
        /// The file (the database or its WAL).
        path: PathBuf,
        /// `removed` or `replaced`.
        what: &'static str,
    },
}

/// A file's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// The locked database file and the identities it is checked against.
#[derive(Debug)]
pub(crate) struct DbFiles {
    path: PathBuf,
    wal_path: PathBuf,
    /// Holds the `flock` for as long as the store lives.
    _lock: File,
    db: FileId,
    /// The WAL's identity, once it exists.
    wal: Option<FileId>,
}

impl DbFiles {
    /// Creates `path` when missing and locks it exclusively without waiting.
    pub(crate) fn claim(path: &Path) -> Result<DbFiles, FilesError> {
        let io = |error| FilesError::Io {
            path: path.to_path_buf(),
            error,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644) // SQLite's own default for the files it creates
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let meta = file.metadata().map_err(io)?;
                let holder = holder_of(FileId::of(&meta))
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default();
                return Err(FilesError::InUse {
                    path: path.to_path_buf(),
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let db = FileId::of(&file.metadata().map_err(io)?);
        let mut wal_path = path.as_os_str().to_owned();
        wal_path.push("-wal");
        let files = DbFiles {
            path: path.to_path_buf(),
            wal_path: PathBuf::from(wal_path),
            _lock: file,
            db,
            wal: None,
        };
        // Removed or replaced between the open and the lock: another server may hold the new file.
        files.verify_db()?;
        Ok(files)
    }

    /// Checks that the paths still name the opened database and WAL; adopts the WAL when it first appears.
    pub(crate) fn verify(&mut self) -> Result<(), FilesError> {
        self.verify_db()?;
        match (self.wal, identity(&self.wal_path)) {
            (None, Ok(Some(id))) => self.wal = Some(id),
            (None, _) => {}
            (Some(want), Ok(Some(id))) if id == want => {}
            (Some(_), Ok(Some(_))) => return Err(self.moved(true, "replaced")),
            (Some(_), Ok(None)) => return Err(self.moved(true, "removed")),
            (Some(_), Err(e)) => {
                return Err(FilesError::Io {
                    path: self.wal_path.clone(),
                    error: e,
                });
            }
        }
        Ok(())
    }

    fn verify_db(&self) -> Result<(), FilesError> {
        match identity(&self.path) {
            Ok(Some(id)) if id == self.db => Ok(()),
            Ok(Some(_)) => Err(self.moved(false, "replaced")),
            Ok(None) => Err(self.moved(false, "removed")),
            Err(e) => Err(FilesError::Io {
                path: self.path.clone(),
                error: e,
            }),
        }
    }

    fn moved(&self, wal: bool, what: &'static str) -> FilesError {
        let path = if wal { &self.wal_path } else { &self.path };
        FilesError::Moved {
            path: path.clone(),
            what,
        }
    }

    /// What the system says about writing the database and its WAL (after SQLite reported an I/O error):
    /// `; <file>: <error>` for each file that cannot be opened for writing.
    pub(crate) fn diagnose(&self) -> String {
        let mut out = String::new();
        for p in [&self.path, &self.wal_path] {
            if !p.exists() {
                continue;
            }
            if let Err(e) = OpenOptions::new().write(true).open(p) {
                out.push_str(&format!("; {}: {e}", p.display()));
            }
        }
        out
    }
}

/// The identity of the file at `path`, `None` when there is none.
fn identity(path: &Path) -> io::Result<Option<FileId>> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(FileId::of(&m))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The process holding a `flock` on file `id`, from `/proc/locks` (Linux; `None` elsewhere or when gone).
fn holder_of(id: FileId) -> Option<u32> {
    let text = std::fs::read_to_string("/proc/locks").ok()?;
    let (major, minor) = dev_split(id.dev);
    let want = format!("{major:02x}:{minor:02x}:{}", id.ino);
    text.lines().find_map(|line| {
        // `1: FLOCK  ADVISORY  WRITE 1234 fd:00:5678 0 EOF`
        let f: Vec<&str> = line.split_whitespace().collect();
        let kind = f.get(1)?;
        let dev_ino = f.get(5)?;
        (*kind == "FLOCK" && *dev_ino == want)
            .then(|| f.get(4)?.parse().ok())
            .flatten()
    })
}

/// Linux's `dev_t` as (major, minor).
fn dev_split(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("kadeploy-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_second_claim_is_refused_with_the_holder() {
        let dir = temp("claim");
        let db = dir.join("k.sqlite");
        let first = DbFiles::claim(&db).unwrap();
        let err = DbFiles::claim(&db).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, FilesError::InUse { .. }), "{text}");
        assert!(
            text.contains(&format!("(pid {})", std::process::id())),
            "{text}"
        );
        drop(first);
        DbFiles::claim(&db).expect("released with the store");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn removed_and_replaced_files_are_detected() {
        let dir = temp("moved");
        let db = dir.join("k.sqlite");
        let mut files = DbFiles::claim(&db).unwrap();
        files.verify().unwrap();
        let wal = dir.join("k.sqlite-wal");
        std::fs::write(&wal, b"").unwrap();
        // SQLite keeps its WAL open: its inode cannot be reused while the server runs.
        let _open_wal = File::open(&wal).unwrap();
        files.verify().expect("the WAL is adopted");
        std::fs::remove_file(&wal).unwrap();
        let e = files.verify().unwrap_err().to_string();
        assert!(e.contains("k.sqlite-wal was removed"), "{e}");
        std::fs::write(&wal, b"").unwrap();
        let e = files.verify().unwrap_err().to_string();
        assert!(e.contains("k.sqlite-wal was replaced"), "{e}");
        std::fs::write(dir.join("other"), b"").unwrap();
        std::fs::rename(dir.join("other"), &db).unwrap();
        let e = files.verify().unwrap_err().to_string();
        assert!(e.contains("k.sqlite was replaced"), "{e}");
        std::fs::remove_file(&db).unwrap();
        let e = files.verify().unwrap_err().to_string();
        assert!(e.contains("k.sqlite was removed"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

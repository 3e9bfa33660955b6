//! `server:///path` references (spec §3.4): files already on the server, confined to the directories the
//! administrator lists in `security/server_file_directories` (none by default: every `server://` reference
//! is refused). A path is normalised (`.` and `..` removed), must lie in a listed directory, its symlinks are
//! resolved and the real path checked again; the file is opened without blocking (`O_NONBLOCK`, so a FIFO
//! cannot hang the request), and the opened descriptor is checked: its real path (`/proc/self/fd`) still in
//! a listed directory, a regular file, within the size limit of its kind. Missing, forbidden and
//! non-regular files get the same answer, so a request cannot learn whether a path exists.

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Component, Path, PathBuf};

/// Why a `server://` reference is refused.
#[derive(Debug, thiserror::Error)]
pub enum ServerFileError {
    /// Missing, outside the listed directories, or not a regular file: one answer for all three.
    #[error("is not a regular file in the directories allowed for server:// references")]
    Refused,
    /// The file is larger than the limit of its kind.
    #[error("is too big ({size} bytes, at most {max})")]
    TooBig {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
}

/// The directories `server://` references may name.
#[derive(Clone, Debug, Default)]
pub struct ServerFiles {
    dirs: Vec<PathBuf>,
}

/// An opened regular file of a listed directory.
#[derive(Debug)]
pub struct ServerFile {
    /// Its real path (symlinks resolved).
    pub path: PathBuf,
    /// The open file.
    pub file: File,
    /// Its size when opened.
    pub size: u64,
}

impl ServerFile {
    /// Its whole content as text (the size was bounded when opened).
    pub fn read_text(mut self) -> Result<String, ServerFileError> {
        let mut text = String::new();
        (&mut self.file)
            .take(self.size)
            .read_to_string(&mut text)
            .map_err(|_| ServerFileError::Refused)?;
        Ok(text)
    }
}

/// What a lookup found.
#[derive(Debug)]
pub enum Found {
    /// The file, opened.
    File(ServerFile),
    /// Nothing at this (allowed) path: acceptable only where the file is never read (simulated backends).
    Absent(PathBuf),
}

/// `path` without `.` and `..` (never above `/`); `None` unless absolute.
pub fn normalize(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

impl ServerFiles {
    /// The listed directories (absolute; normalised here).
    pub fn new(dirs: impl IntoIterator<Item = PathBuf>) -> ServerFiles {
        ServerFiles {
            dirs: dirs.into_iter().filter_map(|d| normalize(&d)).collect(),
        }
    }

    /// The listed directories.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// `path` lies in a listed directory, as written or with the directories' symlinks resolved.
    fn allowed(&self, path: &Path) -> bool {
        self.dirs.iter().any(|d| {
            path.starts_with(d) || std::fs::canonicalize(d).is_ok_and(|real| path.starts_with(real))
        })
    }

    /// Looks up the path of a `server://` reference: the opened regular file, or `Absent` when nothing is
    /// there. `max` bounds its size.
    pub fn find(&self, path: &str, max: Option<u64>) -> Result<Found, ServerFileError> {
        let refused = ServerFileError::Refused;
        let norm = normalize(Path::new(path)).ok_or(ServerFileError::Refused)?;
        if path.contains('\0') || !self.allowed(&norm) {
            return Err(refused);
        }
        let real = match std::fs::canonicalize(&norm) {
            Ok(real) => real,
            Err(_) if std::fs::symlink_metadata(&norm).is_err() => {
                // Nothing there: still refused when a parent leads out of the listed directories.
                let parent = norm.parent().and_then(|p| std::fs::canonicalize(p).ok());
                return match parent {
                    Some(p) if !self.allowed(&p) => Err(refused),
                    _ => Ok(Found::Absent(norm)),
                };
            }
            Err(_) => return Err(refused),
        };
        if !self.allowed(&real) {
            return Err(refused);
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(&real)
            .map_err(|_| ServerFileError::Refused)?;
        let meta = file.metadata().map_err(|_| ServerFileError::Refused)?;
        if !meta.is_file() {
            return Err(refused);
        }
        // The path may have changed between the check and the open: what was opened is what counts.
        let opened = opened_path(&file).ok_or(ServerFileError::Refused)?;
        if !self.allowed(&opened) {
            return Err(refused);
        }
        let size = meta.len();
        if let Some(max) = max
            && size > max
        {
            return Err(ServerFileError::TooBig { size, max });
        }
        Ok(Found::File(ServerFile {
            path: opened,
            file,
            size,
        }))
    }

    /// Opens the regular file named by a `server://` reference (missing counts as refused).
    pub fn open(&self, path: &str, max: Option<u64>) -> Result<ServerFile, ServerFileError> {
        match self.find(path, max)? {
            Found::File(f) => Ok(f),
            Found::Absent(_) => Err(ServerFileError::Refused),
        }
    }
}

/// The real path of an open file, from `/proc/self/fd`.
fn opened_path(file: &File) -> Option<PathBuf> {
    use std::os::fd::AsRawFd as _;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("kadeploy-srvfiles-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn normalisation() {
        assert_eq!(
            normalize(Path::new("/envs/../etc/./shadow")),
            Some("/etc/shadow".into())
        );
        assert_eq!(normalize(Path::new("/../../x")), Some("/x".into()));
        assert_eq!(normalize(Path::new("envs/x")), None);
    }

    #[test]
    fn confinement() {
        let d = temp("confine");
        let envs = d.join("envs");
        std::fs::create_dir_all(&envs).unwrap();
        std::fs::write(envs.join("ok.tgz"), b"data").unwrap();
        std::fs::write(d.join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(d.join("secret"), envs.join("link")).unwrap();
        std::fs::create_dir(envs.join("sub")).unwrap();
        let files = ServerFiles::new([envs.clone()]);
        let p = |s: &Path| s.display().to_string();
        let ok = files.open(&p(&envs.join("ok.tgz")), Some(4)).unwrap();
        assert_eq!(ok.read_text().unwrap(), "data");
        for bad in [
            d.join("secret"),
            envs.join("../secret"),
            envs.join("link"),
            envs.join("sub"),
            envs.join("missing"),
        ] {
            assert!(
                matches!(files.open(&p(&bad), None), Err(ServerFileError::Refused)),
                "{}",
                bad.display()
            );
        }
        assert!(matches!(
            files.find(&p(&envs.join("missing")), None),
            Ok(Found::Absent(_))
        ));
        assert!(matches!(
            files.open(&p(&envs.join("ok.tgz")), Some(3)),
            Err(ServerFileError::TooBig { size: 4, max: 3 })
        ));
        assert!(matches!(
            ServerFiles::default().open(&p(&envs.join("ok.tgz")), None),
            Err(ServerFileError::Refused)
        ));
        let _ = std::fs::remove_dir_all(&d);
    }
}

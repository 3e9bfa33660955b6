//! Where a job may write. Target paths are normalised (a `..` is refused), then: under the agent's
//! root (`--root`) they are taken relative to it and must stay inside it once symbolic links are
//! resolved; without a root, a dd target must be a block device (or the null device) and an
//! extraction directory an existing directory other than `/`.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

/// Why a job's target is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfineError {
    /// No path at all.
    #[error("empty target path")]
    Empty,
    /// The path climbs with `..`.
    #[error("target {0:?} holds `..`")]
    ParentDir(String),
    /// Without a root, targets must be absolute.
    #[error("target {0:?} is not an absolute path")]
    Relative(String),
    /// The path, links resolved, leaves the agent's root.
    #[error("target {path:?} resolves to {resolved}, outside the agent's root {root}")]
    Outside {
        /// The path of the job.
        path: String,
        /// Where it leads.
        resolved: String,
        /// The agent's root.
        root: String,
    },
    /// Without a root, a dd target must be a block device.
    #[error("dd target {0:?} is not a block device")]
    NotBlockDevice(String),
    /// Under a root, a dd target must be a regular file (or a block device).
    #[error("dd target {0:?} is neither a regular file nor a block device")]
    NotFile(String),
    /// An extraction directory that is something else.
    #[error("extraction directory {0:?} is not a directory")]
    NotDirectory(String),
    /// Without a root, a tar image is never extracted over `/`.
    #[error("refusing to extract over the root file system")]
    RootDir,
    /// The path could not be examined.
    #[error("checking {path:?}: {message}")]
    Io {
        /// The path examined.
        path: String,
        /// The system's error.
        message: String,
    },
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> ConfineError + '_ {
    move |e| ConfineError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The device or file a dd image of the job is written to.
pub fn dd_target(device: &str, root: Option<&Path>) -> Result<PathBuf, ConfineError> {
    match root {
        Some(root) => {
            let path = resolve_inside(root, device)?;
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() || m.file_type().is_block_device() => Ok(path),
                Ok(_) => Err(ConfineError::NotFile(device.into())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(path),
                Err(e) => Err(io_err(&path)(e)),
            }
        }
        None => {
            let path = resolve_absolute(device)?;
            let m = std::fs::metadata(&path).map_err(io_err(&path))?;
            let null = m.file_type().is_char_device() && path == Path::new("/dev/null");
            if m.file_type().is_block_device() || null {
                Ok(path)
            } else {
                Err(ConfineError::NotBlockDevice(device.into()))
            }
        }
    }
}

/// The directory a tar image of the job is extracted into.
pub fn extraction_dir(dir: &str, root: Option<&Path>) -> Result<PathBuf, ConfineError> {
    let path = match root {
        Some(root) => {
            let path = resolve_inside(root, dir)?;
            match std::fs::metadata(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(path),
                other => (path, other),
            }
        }
        None => {
            let path = resolve_absolute(dir)?;
            if path == Path::new("/") {
                return Err(ConfineError::RootDir);
            }
            let m = std::fs::metadata(&path);
            (path, m)
        }
    };
    match path {
        (path, Ok(m)) if m.is_dir() => Ok(path),
        (_, Ok(_)) => Err(ConfineError::NotDirectory(dir.into())),
        (path, Err(e)) => Err(io_err(&path)(e)),
    }
}

/// The normal components of `path` (`/` and `.` dropped); a `..` is refused.
fn normal_parts(path: &str) -> Result<PathBuf, ConfineError> {
    if path.is_empty() {
        return Err(ConfineError::Empty);
    }
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(p) => out.push(p),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(ConfineError::ParentDir(path.into()));
            }
        }
    }
    Ok(out)
}

/// An absolute path without `..`, resolved (it must exist).
fn resolve_absolute(path: &str) -> Result<PathBuf, ConfineError> {
    if !path.starts_with('/') {
        return Err(ConfineError::Relative(path.into()));
    }
    let parts = normal_parts(path)?;
    let full = Path::new("/").join(parts);
    full.canonicalize().map_err(io_err(&full))
}

/// `path` taken under `root` (canonical), with every existing part resolved; an error if that
/// leaves `root`. The parts that do not exist yet hold no link, so the result stays inside.
fn resolve_inside(root: &Path, path: &str) -> Result<PathBuf, ConfineError> {
    let full = root.join(normal_parts(path)?);
    let mut existing = full.as_path();
    let mut missing = Vec::new();
    loop {
        match std::fs::symlink_metadata(existing) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match (existing.file_name(), existing.parent()) {
                    (Some(name), Some(parent)) => {
                        missing.push(name);
                        existing = parent;
                    }
                    _ => return Err(io_err(existing)(e)),
                }
            }
            Err(e) => return Err(io_err(existing)(e)),
        }
    }
    // A dangling link fails here: it is never followed to create a file.
    let mut resolved = existing.canonicalize().map_err(io_err(existing))?;
    if !resolved.starts_with(root) {
        return Err(ConfineError::Outside {
            path: path.into(),
            resolved: resolved.display().to_string(),
            root: root.display().to_string(),
        });
    }
    for name in missing.into_iter().rev() {
        resolved.push(name);
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tmp(PathBuf);

    impl Tmp {
        fn new(name: &str) -> Tmp {
            let d = std::env::temp_dir().join(format!("hal-confine-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Tmp(d.canonicalize().unwrap())
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn targets_are_taken_under_the_root() {
        let t = Tmp::new("under");
        let root = t.0.join("root");
        std::fs::create_dir_all(root.join("mnt")).unwrap();
        assert_eq!(
            dd_target("/disk.img", Some(&root)).unwrap(),
            root.join("disk.img")
        );
        assert_eq!(
            dd_target("./a/./b.img", Some(&root)).unwrap(),
            root.join("a/b.img")
        );
        assert_eq!(
            extraction_dir("/mnt/dest", Some(&root)).unwrap(),
            root.join("mnt/dest")
        );
        assert_eq!(extraction_dir("/", Some(&root)).unwrap(), root);
    }

    #[test]
    fn escapes_are_refused() {
        let t = Tmp::new("escape");
        let root = t.0.join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(t.0.join("victim"), b"x").unwrap();
        for bad in ["../escaped-dd", "/a/../../victim", "a/.."] {
            assert_eq!(
                dd_target(bad, Some(&root)),
                Err(ConfineError::ParentDir(bad.into()))
            );
            assert_eq!(
                extraction_dir(bad, Some(&root)),
                Err(ConfineError::ParentDir(bad.into()))
            );
        }
        assert_eq!(dd_target("", Some(&root)), Err(ConfineError::Empty));
        // Links out of the root, dangling or not, to a file or a directory.
        std::os::unix::fs::symlink(&t.0, root.join("up")).unwrap();
        std::os::unix::fs::symlink(t.0.join("victim"), root.join("disk.img")).unwrap();
        std::os::unix::fs::symlink(t.0.join("nothing"), root.join("dangling")).unwrap();
        assert!(matches!(
            dd_target("/up/victim", Some(&root)),
            Err(ConfineError::Outside { .. })
        ));
        assert!(matches!(
            dd_target("/disk.img", Some(&root)),
            Err(ConfineError::Outside { .. })
        ));
        assert!(matches!(
            dd_target("/dangling", Some(&root)),
            Err(ConfineError::Io { .. })
        ));
        assert!(matches!(
            extraction_dir("/up/new", Some(&root)),
            Err(ConfineError::Outside { .. })
        ));
        // A link that stays inside is fine.
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("alias")).unwrap();
        assert_eq!(
            dd_target("/alias/x.img", Some(&root)).unwrap(),
            root.join("real/x.img")
        );
    }

    #[test]
    fn without_a_root_only_devices_and_directories_other_than_slash() {
        let t = Tmp::new("noroot");
        let file = t.0.join("victim");
        std::fs::write(&file, b"x").unwrap();
        let f = file.display().to_string();
        assert_eq!(
            dd_target(&f, None),
            Err(ConfineError::NotBlockDevice(f.clone()))
        );
        assert_eq!(
            dd_target("disk.img", None),
            Err(ConfineError::Relative("disk.img".into()))
        );
        assert_eq!(
            dd_target("/dev/null", None).unwrap(),
            Path::new("/dev/null")
        );
        assert_eq!(
            dd_target("/dev/zero", None),
            Err(ConfineError::NotBlockDevice("/dev/zero".into()))
        );
        let d = t.0.display().to_string();
        assert_eq!(extraction_dir(&d, None).unwrap(), t.0);
        assert_eq!(extraction_dir("/", None), Err(ConfineError::RootDir));
        assert_eq!(
            extraction_dir("/tmp/..", None),
            Err(ConfineError::ParentDir("/tmp/..".into()))
        );
        assert_eq!(
            extraction_dir(&f, None),
            Err(ConfineError::NotDirectory(f.clone()))
        );
    }
}

//! A read-only file tree confined to its root, shared by the TFTP and HTTP servers: request paths are
//! normalised, `..` is refused, and symbolic links may not lead outside the root.

use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a requested path cannot be served.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The path is malformed or leaves the root (`..`, NUL, symlink escape).
    #[error("access violation: {0}")]
    Forbidden(String),
    /// No such regular file.
    #[error("file not found: {0}")]
    NotFound(String),
    /// Another I/O failure.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The requested path.
        path: String,
        /// The cause.
        source: io::Error,
    },
}

/// The root of a served tree.
#[derive(Clone, Debug)]
pub struct FsRoot {
    root: PathBuf,
}

impl FsRoot {
    /// A tree rooted at `root`, which must exist.
    pub fn new(root: impl AsRef<Path>) -> io::Result<Self> {
        Ok(FsRoot {
            root: root.as_ref().canonicalize()?,
        })
    }

    /// The canonical root directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Maps a request path (`/pxelinux.cfg/0A000001`, `kernels\\vmlinuz`) to a file inside the root.
    pub fn resolve(&self, request: &str) -> Result<PathBuf, ResolveError> {
        if request.contains('\0') {
            return Err(ResolveError::Forbidden("NUL in path".into()));
        }
        let request = request.replace('\\', "/");
        let mut path = self.root.clone();
        for component in Path::new(request.trim_start_matches('/')).components() {
            match component {
                Component::Normal(part) => path.push(part),
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(ResolveError::Forbidden(request.clone()));
                }
            }
        }
        let real = path.canonicalize().map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
                ResolveError::NotFound(request.clone())
            }
            _ => ResolveError::Io {
                path: request.clone(),
                source: e,
            },
        })?;
        if !real.starts_with(&self.root) {
            return Err(ResolveError::Forbidden(request));
        }
        Ok(real)
    }

    /// Opens a regular file of the tree, returning it with its size.
    pub fn open(&self, request: &str) -> Result<(File, u64), ResolveError> {
        let path = self.resolve(request)?;
        let io_err = |source| ResolveError::Io {
            path: request.to_string(),
            source,
        };
        let file = File::open(&path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(ResolveError::NotFound(request.to_string()));
        }
        Ok((file, meta.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn confines_requests_to_the_root() {
        let base = std::env::temp_dir().join(format!("hal-fsroot-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("root/sub")).unwrap();
        fs::write(base.join("root/sub/f"), b"x").unwrap();
        fs::write(base.join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(base.join("secret"), base.join("root/escape")).unwrap();
        std::os::unix::fs::symlink("sub/f", base.join("root/inside")).unwrap();
        let root = FsRoot::new(base.join("root")).unwrap();
        assert_eq!(root.open("/sub/f").unwrap().1, 1);
        assert_eq!(root.open("sub\\f").unwrap().1, 1);
        assert_eq!(root.open("./inside").unwrap().1, 1);
        assert!(matches!(
            root.resolve("../secret"),
            Err(ResolveError::Forbidden(_))
        ));
        assert!(matches!(
            root.resolve("/sub/../../secret"),
            Err(ResolveError::Forbidden(_))
        ));
        assert!(matches!(
            root.resolve("escape"),
            Err(ResolveError::Forbidden(_))
        ));
        assert!(matches!(
            root.resolve("a\0b"),
            Err(ResolveError::Forbidden(_))
        ));
        assert!(matches!(
            root.open("missing"),
            Err(ResolveError::NotFound(_))
        ));
        assert!(matches!(root.open("sub"), Err(ResolveError::NotFound(_))));
        fs::remove_dir_all(&base).unwrap();
    }
}

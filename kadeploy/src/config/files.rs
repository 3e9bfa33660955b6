//! How configuration files name other files: paths relative to the configuration directory, and the
//! reader the loaders use (the filesystem, or a test's map).

use std::io;
use std::path::{Path, PathBuf};

/// Reads a file named by a configuration key.
pub type ReadFile<'a> = &'a mut dyn FnMut(&Path) -> io::Result<String>;

/// Resolves `path` against the configuration directory unless it is absolute.
pub fn resolve(dir: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    }
}

//! The build cache: outputs named by a hash of their inputs, built in a temporary directory and renamed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Result, io};

/// A hash of a build's inputs.
pub struct Key(blake3::Hasher);

impl Key {
    /// A key for outputs of `kind`.
    pub fn new(kind: &str) -> Self {
        let mut k = Key(blake3::Hasher::new());
        k.text("kind", kind);
        k
    }

    /// Adds a labelled text.
    pub fn text(&mut self, label: &str, value: &str) -> &mut Self {
        for part in [label.as_bytes(), value.as_bytes()] {
            self.0.update(&(part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
        self
    }

    /// Adds a file's contents.
    pub fn file(&mut self, label: &str, path: &Path) -> Result<&mut Self> {
        let mut h = blake3::Hasher::new();
        let what = format!("hashing {}", path.display());
        let f = std::fs::File::open(path).map_err(io(what.clone()))?;
        h.update_reader(f).map_err(io(what))?;
        let digest = h.finalize().to_hex();
        Ok(self.text(label, digest.as_str()))
    }

    fn hex(&self) -> String {
        self.0.finalize().to_hex()[..20].to_string()
    }
}

/// The directory `<cache>/<kind>-<hash>`, built if it is not there by `build(temporary, final)` into a
/// temporary directory that is then renamed to the final one.
pub fn get(
    cache: &Path,
    kind: &str,
    key: &Key,
    build: impl FnOnce(&Path, &Path) -> Result<()>,
) -> Result<PathBuf> {
    let dir = cache.join(format!("{kind}-{}", key.hex()));
    if dir.is_dir() {
        tracing::debug!(dir = %dir.display(), "cache hit");
        return Ok(dir);
    }
    std::fs::create_dir_all(cache).map_err(io(format!("creating {}", cache.display())))?;
    static BUILDS: AtomicU64 = AtomicU64::new(0);
    let tmp = cache.join(format!(
        ".tmp-{kind}-{}-{}-{}",
        key.hex(),
        std::process::id(),
        BUILDS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    let started = std::time::Instant::now();
    let built = build(&tmp, &dir);
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another process built it first.
        if !dir.is_dir() {
            return Err(io(format!("renaming into {}", dir.display()))(e));
        }
    }
    tracing::info!(dir = %dir.display(), secs = started.elapsed().as_secs_f64(), "built");
    Ok(dir)
}

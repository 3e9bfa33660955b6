//! Kernel modules of Debian's kernel package: dependency resolution from their `depends=` modinfo, and
//! decompressed copies in load order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::run::bytes;
use super::{ImageError, Result, io};

/// The modules of one kernel release directory (`/lib/modules/<release>`).
pub struct Modules {
    builtin: Vec<String>,
    files: BTreeMap<String, PathBuf>,
}

fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

fn module_name(file: &str) -> Option<String> {
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|s| file.strip_suffix(s))?;
    Some(normalize(stem))
}

impl Modules {
    /// Indexes `dir` (its `modules.builtin` and the `.ko*` files under `kernel/`).
    pub fn open(dir: &Path) -> Result<Self> {
        let builtin_file = dir.join("modules.builtin");
        let builtin = std::fs::read_to_string(&builtin_file)
            .map_err(io(format!("reading {}", builtin_file.display())))?
            .lines()
            .filter_map(|l| module_name(l.rsplit('/').next()?))
            .collect();
        let mut files = BTreeMap::new();
        let mut stack = vec![dir.join("kernel")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).map_err(io(format!("listing {}", d.display())))? {
                let e = e.map_err(io(format!("listing {}", d.display())))?;
                let path = e.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Some(n) = module_name(&e.file_name().to_string_lossy()) {
                    files.insert(n, path);
                }
            }
        }
        Ok(Modules { builtin, files })
    }

    /// The modules to load for `wanted`, dependencies first; built-in ones are left out.
    pub fn resolve(&self, wanted: &[&str]) -> Result<Vec<String>> {
        let mut order = Vec::new();
        for w in wanted {
            self.visit(&normalize(w), &mut order, 0)?;
        }
        Ok(order)
    }

    fn visit(&self, name: &str, order: &mut Vec<String>, depth: usize) -> Result<()> {
        if order.iter().any(|o| o == name) || self.builtin.iter().any(|b| b == name) {
            return Ok(());
        }
        let path = self
            .files
            .get(name)
            .ok_or_else(|| ImageError::Module(name.to_string()))?;
        if depth > 32 {
            return Err(ImageError::Module(format!("{name} (dependency loop)")));
        }
        for dep in depends(&load(path)?) {
            self.visit(&dep, order, depth + 1)?;
        }
        order.push(name.to_string());
        Ok(())
    }

    /// Writes `<dest>/<name>.ko` (decompressed) for each module of `order`, and `<dest>/order`.
    pub fn install(&self, order: &[String], dest: &Path) -> Result<()> {
        std::fs::create_dir_all(dest).map_err(io(format!("creating {}", dest.display())))?;
        for name in order {
            let path = self
                .files
                .get(name)
                .ok_or_else(|| ImageError::Module(name.clone()))?;
            let target = dest.join(format!("{name}.ko"));
            std::fs::write(&target, load(path)?)
                .map_err(io(format!("writing {}", target.display())))?;
        }
        let mut list = order.join("\n");
        list.push('\n');
        let target = dest.join("order");
        std::fs::write(&target, list).map_err(io(format!("writing {}", target.display())))
    }
}

/// A module file's contents, decompressed.
fn load(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool = if name.ends_with(".xz") {
        "xz"
    } else if name.ends_with(".zst") {
        "zstd"
    } else if name.ends_with(".gz") {
        "gzip"
    } else {
        return std::fs::read(path).map_err(io(format!("reading {name}")));
    };
    bytes(Command::new(tool).arg("-dc").arg(path))
}

/// The `depends=` field of a module's modinfo.
fn depends(module: &[u8]) -> Vec<String> {
    const FIELD: &[u8] = b"\0depends=";
    let Some(at) = module.windows(FIELD.len()).position(|w| w == FIELD) else {
        return Vec::new();
    };
    let rest = &module[at + FIELD.len()..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end])
        .split(',')
        .filter(|d| !d.is_empty())
        .map(normalize)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_are_read_from_modinfo() {
        let ko = b"\x7fELF...\0license=GPL\0depends=virtio_ring,virtio,net-failover\0retpoline=Y\0";
        assert_eq!(depends(ko), ["virtio_ring", "virtio", "net_failover"]);
        assert!(depends(b"\0license=GPL\0").is_empty());
        assert_eq!(depends(b"\0depends=\0"), Vec::<String>::new());
    }

    #[test]
    fn module_names_drop_compression_suffixes() {
        assert_eq!(
            module_name("crc32c-generic.ko.xz").as_deref(),
            Some("crc32c_generic")
        );
        assert_eq!(module_name("ext4.ko").as_deref(), Some("ext4"));
        assert_eq!(module_name("modules.dep"), None);
    }
}

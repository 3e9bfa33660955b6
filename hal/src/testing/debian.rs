//! Debian's amd64 kernel for the boot tests and the QEMU lab: the package `linux-image-amd64` depends on,
//! downloaded once with `apt-get download` into `<cache>/debs` and extracted once with `dpkg-deb -x` into
//! `<cache>/kernel-<hash of the package file name>` (built in a temporary directory, then renamed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why Debian's kernel is not available.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A command failed.
    #[error("`{command}` failed: {output}")]
    Command {
        /// The command line.
        command: String,
        /// Its status, standard error and output.
        output: String,
    },
    /// The package lacks an expected file.
    #[error("{path} is missing: install the Debian package {package}")]
    Missing {
        /// The missing file.
        path: PathBuf,
        /// The package that provides it.
        package: String,
    },
    /// apt knows no kernel.
    #[error("apt knows no linux-image-amd64 dependency (run apt-get update)")]
    NoKernel,
}

/// Debian's kernel, extracted from its package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// The package file's name (it carries the package's version).
    pub deb: String,
    /// The kernel image.
    pub vmlinuz: PathBuf,
    /// `/lib/modules/<release>` of the package.
    pub modules: PathBuf,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> KernelError {
    let what = what.into();
    move |source| KernelError::Io { what, source }
}

/// Runs `cmd` and returns its standard output, or the failure with its outputs.
fn output(cmd: &mut Command) -> Result<String, KernelError> {
    let line = format!("{cmd:?}");
    let out = cmd.output().map_err(io(format!("running {line}")))?;
    if !out.status.success() {
        return Err(KernelError::Command {
            command: line,
            output: format!(
                "{}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The kernel `linux-image-amd64` depends on, downloaded and extracted once under `cache`.
pub fn kernel(cache: &Path) -> Result<Kernel, KernelError> {
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs).map_err(io(format!("creating {}", debs.display())))?;
    let package = kernel_package(&debs)?;
    let deb = match find_deb(&debs, &package)? {
        Some(d) => d,
        None => {
            tracing::info!(%package, "apt-get download");
            output(
                Command::new("apt-get")
                    .args(["download", "-q", &package])
                    .current_dir(&debs),
            )?;
            find_deb(&debs, &package)?.ok_or(KernelError::NoKernel)?
        }
    };
    let root = extracted(cache, &debs.join(&deb), &deb)?;
    let vmlinuz = first_entry(&root.join("boot"), "vmlinuz-")?;
    let modules = match first_entry(&root.join("lib/modules"), "") {
        Ok(m) => m,
        Err(_) => first_entry(&root.join("usr/lib/modules"), "")?,
    };
    Ok(Kernel {
        deb,
        vmlinuz,
        modules,
    })
}

/// The name of the extraction directory of `deb`: `kernel-` and 20 hex digits of a BLAKE3 hash of
/// length-prefixed labelled texts (the QEMU lab's cache keys, so existing caches stay valid).
fn extraction_name(deb: &str) -> String {
    let mut h = blake3::Hasher::new();
    for (label, value) in [("kind", "kernel"), ("deb", deb)] {
        for part in [label.as_bytes(), value.as_bytes()] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
    }
    format!("kernel-{}", &h.finalize().to_hex()[..20])
}

/// `deb` extracted under `cache`, extracting it first when it is not there yet.
fn extracted(cache: &Path, deb_path: &Path, deb: &str) -> Result<PathBuf, KernelError> {
    let dir = cache.join(extraction_name(deb));
    if dir.is_dir() {
        return Ok(dir);
    }
    static BUILDS: AtomicU64 = AtomicU64::new(0);
    let tmp = cache.join(format!(
        ".tmp-{}-{}-{}",
        extraction_name(deb),
        std::process::id(),
        BUILDS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    if let Err(e) = output(Command::new("dpkg-deb").arg("-x").arg(deb_path).arg(&tmp)) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another process extracted it first.
        if !dir.is_dir() {
            return Err(io(format!("renaming into {}", dir.display()))(e));
        }
    }
    Ok(dir)
}

/// The package `linux-image-amd64` depends on. `apt-cache` takes a second without a package cache
/// (Debian's container images disable it), so the answer is kept in `<debs>/kernel-package` with a stamp
/// of apt's lists, and asked again when they change.
fn kernel_package(debs: &Path) -> Result<String, KernelError> {
    let memo = debs.join("kernel-package");
    let stamp = lists_stamp();
    if let Ok(text) = std::fs::read_to_string(&memo)
        && let Some((s, package)) = text.trim().split_once(' ')
        && s == stamp
    {
        return Ok(package.to_string());
    }
    let depends = output(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))?;
    let package = kernel_dependency(&depends)
        .ok_or(KernelError::NoKernel)?
        .to_string();
    let tmp = debs.join(format!("kernel-package.{}", std::process::id()));
    std::fs::write(&tmp, format!("{stamp} {package}\n")).map_err(io("writing the kernel memo"))?;
    std::fs::rename(&tmp, &memo).map_err(io("writing the kernel memo"))?;
    Ok(package)
}

/// The versioned kernel package in `apt-cache depends linux-image-amd64`'s output.
fn kernel_dependency(depends: &str) -> Option<&str> {
    depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-") && p.ends_with("-amd64"))
}

/// Names, sizes and modification times of apt's package lists, hashed.
fn lists_stamp() -> String {
    let mut entries: Vec<String> = std::fs::read_dir("/var/lib/apt/lists")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            let mtime = m
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?;
            Some(format!(
                "{:?} {} {}",
                e.file_name(),
                m.len(),
                mtime.as_nanos()
            ))
        })
        .collect();
    entries.sort();
    blake3::hash(entries.join("\n").as_bytes()).to_hex()[..16].to_string()
}

fn find_deb(dir: &Path, package: &str) -> Result<Option<String>, KernelError> {
    let prefix = format!("{package}_");
    let mut found: Vec<String> = read_names(dir)?
        .into_iter()
        .filter(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        .collect();
    found.sort();
    Ok(found.pop())
}

fn first_entry(dir: &Path, prefix: &str) -> Result<PathBuf, KernelError> {
    let mut names: Vec<String> = read_names(dir)?
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
        .pop()
        .map(|n| dir.join(n))
        .ok_or_else(|| KernelError::Missing {
            path: dir.join(format!("{prefix}*")),
            package: "linux-image-amd64".into(),
        })
}

fn read_names(dir: &Path) -> Result<Vec<String>, KernelError> {
    let entries = std::fs::read_dir(dir).map_err(io(format!("listing {}", dir.display())))?;
    Ok(entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dependency_is_the_versioned_amd64_image() {
        let depends = "linux-image-amd64\n  Depends: linux-image-6.12.48+deb13-amd64\n  Recommends: firmware\n";
        assert_eq!(
            kernel_dependency(depends),
            Some("linux-image-6.12.48+deb13-amd64")
        );
        assert_eq!(kernel_dependency("linux-image-amd64\n"), None);
    }

    #[test]
    fn extraction_directories_are_named_by_the_package_file() {
        let a = extraction_name("linux-image-6.12_1_amd64.deb");
        assert!(
            a.starts_with("kernel-") && a.len() == "kernel-".len() + 20,
            "{a}"
        );
        assert_ne!(a, extraction_name("linux-image-6.13_1_amd64.deb"));
        // The name the QEMU lab's image cache gave this package before the builder moved here.
        assert_eq!(
            extraction_name("linux-image-6.1.0-57-amd64_6.1.192-3_amd64.deb"),
            "kernel-47c16b876d8394dea050"
        );
    }
}

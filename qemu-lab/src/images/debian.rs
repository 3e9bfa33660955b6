//! Debian packages: the kernel package (`apt-get download`, `dpkg-deb -x`) and installed packages' files.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::cache::{self, Key};
use super::run::output;
use super::{ImageError, Result, io};

/// Debian's kernel, extracted from its package.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The package file's name (it carries the package's version).
    pub deb: String,
    /// The kernel image.
    pub vmlinuz: PathBuf,
    /// `/lib/modules/<release>` of the package.
    pub modules: PathBuf,
}

/// The kernel `linux-image-amd64` depends on, downloaded once into `<cache>/debs` and extracted once.
pub fn kernel(cache: &Path) -> Result<Kernel> {
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
            find_deb(&debs, &package)?.ok_or(ImageError::NoKernel)?
        }
    };
    let mut key = Key::new("kernel");
    key.text("deb", &deb);
    let deb_path = debs.join(&deb);
    let root = cache::get(cache, "kernel", &key, |tmp, _| {
        output(Command::new("dpkg-deb").arg("-x").arg(&deb_path).arg(tmp)).map(drop)
    })?;
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

/// The package `linux-image-amd64` depends on. `apt-cache` takes a second without a package cache
/// (Debian's container images disable it), so the answer is kept in `<debs>/kernel-package` with a stamp
/// of apt's lists, and asked again when they change.
fn kernel_package(debs: &Path) -> Result<String> {
    let memo = debs.join("kernel-package");
    let stamp = lists_stamp();
    if let Ok(text) = std::fs::read_to_string(&memo)
        && let Some((s, package)) = text.trim().split_once(' ')
        && s == stamp
    {
        return Ok(package.to_string());
    }
    let depends = output(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))?;
    let package = depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-") && p.ends_with("-amd64"))
        .ok_or(ImageError::NoKernel)?
        .to_string();
    let tmp = debs.join(format!("kernel-package.{}", std::process::id()));
    std::fs::write(&tmp, format!("{stamp} {package}\n")).map_err(io("writing the kernel memo"))?;
    std::fs::rename(&tmp, &memo).map_err(io("writing the kernel memo"))?;
    Ok(package)
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

fn find_deb(dir: &Path, package: &str) -> Result<Option<String>> {
    let prefix = format!("{package}_");
    let mut found: Vec<String> = read_names(dir)?
        .into_iter()
        .filter(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        .collect();
    found.sort();
    Ok(found.pop())
}

fn first_entry(dir: &Path, prefix: &str) -> Result<PathBuf> {
    let mut names: Vec<String> = read_names(dir)?
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
        .pop()
        .map(|n| dir.join(n))
        .ok_or_else(|| ImageError::Missing {
            path: dir.join(format!("{prefix}*")),
            package: "linux-image-amd64".into(),
        })
}

fn read_names(dir: &Path) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(io(format!("listing {}", dir.display())))?;
    Ok(entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

/// `package status version` lines of installed packages (an uninstalled one is an error naming it).
pub fn versions(packages: &[&str]) -> Result<String> {
    // dpkg-query fails when one package is unknown but lists the others.
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${db:Status-Status} ${Version}\\n"])
        .args(packages)
        .output()
        .map_err(io("running dpkg-query"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for p in packages {
        let installed = text
            .lines()
            .any(|l| l.starts_with(&format!("{p} installed ")));
        if !installed {
            return Err(ImageError::Missing {
                path: PathBuf::from(format!("(package {p})")),
                package: (*p).to_string(),
            });
        }
    }
    Ok(text)
}

/// An installed package's file: `path` if it exists, else an error naming `package`.
pub fn file(path: &str, package: &str) -> Result<PathBuf> {
    let p = PathBuf::from(path);
    if p.exists() {
        Ok(p)
    } else {
        Err(ImageError::Missing {
            path: p,
            package: package.to_string(),
        })
    }
}

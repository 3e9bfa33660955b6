//! Debian packages: the kernel package (`hal::testing::debian`: `apt-get download`, `dpkg-deb -x`, shared with
//! hal's boot tests) and installed packages' files.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ImageError, Result, io};

pub use hal::testing::debian::Kernel;
use hal::testing::debian::KernelError;

impl From<KernelError> for ImageError {
    fn from(e: KernelError) -> Self {
        match e {
            KernelError::Io { what, source } => ImageError::Io { what, source },
            KernelError::Command { command, output } => ImageError::Command { command, output },
            KernelError::Missing { path, package } => ImageError::Missing { path, package },
            KernelError::NoKernel => ImageError::NoKernel,
        }
    }
}

/// The kernel `linux-image-amd64` depends on, downloaded once into `<cache>/debs` and extracted once.
pub fn kernel(cache: &Path) -> Result<Kernel> {
    Ok(hal::testing::debian::kernel(cache)?)
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

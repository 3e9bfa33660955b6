//! The lab's own kernel, as sites build their deploy kernels: Debian's kernel source package configured by
//! `files/kernel.config` over `make tinyconfig`, every driver the VMs need built in, LZ4-compressed. Built
//! once per machine into the cache (keyed by the source package's version, the fragment and the compiler).
//!
//! LZ4 because under TCG its decompressor is the cheapest the loaders take: booted alone to the no-root
//! panic, the kernel used 0.8 processor seconds LZ4-compressed, 0.87 zstd-compressed, and Debian's xz
//! kernel 5.2 (docs/PERFORMANCE.md, QEMU lab).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::cache::{self, Key};
use super::debian;
use super::run::output;
use super::{ImageError, Result, io};

/// The Debian package of the kernel source.
pub const SOURCE_PACKAGE: &str = "linux-source-6.1";
/// The source tarball that package installs.
const SOURCE_TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";
/// The configuration fragment applied over `make tinyconfig`.
pub const FRAGMENT: &str = include_str!("../../files/kernel.config");

/// (a file the build needs, the Debian package that installs it).
const BUILD_TOOLS: &[(&str, &str)] = &[
    ("/usr/bin/make", "make"),
    ("/usr/bin/gcc", "gcc"),
    ("/usr/bin/flex", "flex"),
    ("/usr/bin/bison", "bison"),
    ("/usr/bin/bc", "bc"),
    ("/usr/bin/xz", "xz-utils"),
    ("/usr/bin/lz4", "lz4"),
    ("/usr/include/gelf.h", "libelf-dev"),
];

/// Builds (or takes from the cache) the lab kernel; returns its `bzImage`.
pub fn build(cache: &Path) -> Result<PathBuf> {
    let source = debian::versions(&[SOURCE_PACKAGE])?;
    let tarball = debian::file(SOURCE_TARBALL, SOURCE_PACKAGE)?;
    for (path, package) in BUILD_TOOLS {
        debian::file(path, package)?;
    }
    let compiler = output(Command::new("gcc").arg("--version"))?;
    let mut key = Key::new("lab-kernel-v1");
    key.text("source", &source)
        .text("fragment", FRAGMENT)
        .text("compiler", compiler.lines().next().unwrap_or_default());
    let dir = cache::get(cache, "lab-kernel", &key, |tmp, _| compile(&tarball, tmp))?;
    Ok(dir.join("bzImage"))
}

/// Unpacks the source into `tmp/src`, configures and builds it, keeps `bzImage`, `config` and `build.log`.
fn compile(tarball: &Path, tmp: &Path) -> Result<()> {
    let src = tmp.join("src");
    std::fs::create_dir_all(&src).map_err(io(format!("creating {}", src.display())))?;
    let started = std::time::Instant::now();
    output(
        Command::new("tar")
            .arg("-xf")
            .arg(tarball)
            .args(["--strip-components=1", "-C"])
            .arg(&src),
    )?;
    let fragment = tmp.join("kalab.config");
    std::fs::write(&fragment, FRAGMENT).map_err(io(format!("writing {}", fragment.display())))?;
    make(&src, &["tinyconfig"])?;
    output(
        Command::new("scripts/kconfig/merge_config.sh")
            .args(["-m", ".config"])
            .arg(&fragment)
            .current_dir(&src),
    )?;
    make(&src, &["olddefconfig"])?;
    let config =
        std::fs::read_to_string(src.join(".config")).map_err(io("reading the kernel's .config"))?;
    let dropped = dropped_options(FRAGMENT, &config);
    if !dropped.is_empty() {
        return Err(ImageError::KernelConfig(dropped.join(", ")));
    }
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let log = make(&src, &[&format!("-j{jobs}"), "bzImage"])?;
    std::fs::write(tmp.join("build.log"), log).map_err(io("writing the kernel's build log"))?;
    std::fs::copy(src.join("arch/x86/boot/bzImage"), tmp.join("bzImage"))
        .map_err(io("copying bzImage"))?;
    std::fs::write(tmp.join("config"), config).map_err(io("writing the kernel's config"))?;
    std::fs::remove_dir_all(&src).map_err(io("removing the kernel source tree"))?;
    tracing::info!(
        secs = started.elapsed().as_secs_f64(),
        "lab kernel built from {SOURCE_PACKAGE}"
    );
    Ok(())
}

/// Runs `make ARCH=x86_64 <args>` in `src` with reproducible build stamps; returns its output.
fn make(src: &Path, args: &[&str]) -> Result<String> {
    output(
        Command::new("make")
            .arg("ARCH=x86_64")
            .args(args)
            .env("KBUILD_BUILD_USER", "kalab")
            .env("KBUILD_BUILD_HOST", "kalab")
            .env("KBUILD_BUILD_TIMESTAMP", "1970-01-01")
            .current_dir(src),
    )
}

/// The fragment's `CONFIG_X=value` lines that the final `.config` does not have (Kconfig dropped them:
/// a missing dependency, or a symbol this source does not know).
pub fn dropped_options(fragment: &str, config: &str) -> Vec<String> {
    fragment
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("CONFIG_"))
        .filter(|wanted| !config.lines().any(|l| l.trim() == *wanted))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_kconfig_dropped_are_named() {
        let config = "CONFIG_64BIT=y\n# CONFIG_KEXEC is not set\nCONFIG_HZ=100\n";
        let fragment =
            "# a comment\nCONFIG_64BIT=y\nCONFIG_KEXEC=y\n\nCONFIG_HZ=100\nCONFIG_NEW=y\n";
        assert_eq!(
            dropped_options(fragment, config),
            ["CONFIG_KEXEC=y", "CONFIG_NEW=y"]
        );
        assert!(dropped_options(fragment, fragment).is_empty());
    }

    #[test]
    fn the_fragment_builds_in_what_the_lab_needs() {
        for option in [
            "CONFIG_VIRTIO_PCI=y",
            "CONFIG_VIRTIO_NET=y",
            "CONFIG_VIRTIO_BLK=y",
            "CONFIG_EXT4_FS=y",
            "CONFIG_PACKET=y",
            "CONFIG_IPV6=y",
            "CONFIG_IP_MULTICAST=y",
            "CONFIG_KEXEC=y",
            "CONFIG_EFI_STUB=y",
            "CONFIG_SERIAL_8250_CONSOLE=y",
            "CONFIG_RD_ZSTD=y",
        ] {
            assert!(
                FRAGMENT.lines().any(|l| l == option),
                "{option} missing from files/kernel.config"
            );
        }
        assert!(
            !FRAGMENT.contains("CONFIG_MODULES=y"),
            "the lab kernel has no modules"
        );
    }
}

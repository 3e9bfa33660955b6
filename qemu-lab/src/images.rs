//! What the lab builds from Debian packages: the deploy kernel and the environments to deploy.
//!
//! Everything is built from Debian's packages: the lab's kernel from the `linux-source-6.1` package with
//! the lab's configuration (`images/kernel.rs`), the user-space tools as binaries of installed packages with
//! the shared libraries `ldd` names. Outputs are cached in [`Inputs::cache`] under a name derived from a
//! hash of their inputs, and written atomically.

mod cache;
mod debian;
mod deploy;
mod env;
pub mod grub;
mod kernel;
mod pxe;
mod run;
mod tree;

pub use debian::{Kernel, kernel as debian_kernel};

use std::path::{Path, PathBuf};

pub use pxe::install_bootloader_script;

/// The kernel command line of the deploy kernel and of the environments: the serial console the lab
/// reads, a reboot 30 s after a panic, quiet logs.
const SERIAL_CONSOLE_PARAMS: &str = "console=ttyS0,115200n8 panic=30 loglevel=4";

/// What the images are built from.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Directory of the cached downloads and outputs.
    pub cache: PathBuf,
    /// One OpenSSH public key line, authorized for root in the deploy kernel and the environments.
    pub authorized_key: String,
    /// The node agent's (static) binary, started in the deploy kernel.
    pub kaagent: PathBuf,
}

/// The deploy kernel: the lab's kernel, an initramfs with the node tools, and its command line.
#[derive(Debug, Clone)]
pub struct DeployKernel {
    /// The lab's kernel (built from Debian's kernel source).
    pub vmlinuz: PathBuf,
    /// The initramfs (zstd-compressed cpio).
    pub initrd: PathBuf,
    /// The kernel command line to boot it with.
    pub params: String,
}

/// An environment to register with `kaenv3 -a`.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Its name.
    pub name: String,
    /// The kaenv3 description (YAML) referring to the image and postinstall by absolute path.
    pub description: PathBuf,
    /// The image (tgz or gzip-compressed dd).
    pub image: PathBuf,
    /// The postinstall archive (tgz).
    pub postinstall: PathBuf,
    /// True when its postinstall writes `/etc/kalab-marker` (the lab's own environments; a user's
    /// environment from `--env FILE` does not).
    pub marks_nodes: bool,
}

/// Errors of the image builds.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
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
        /// Its standard error (and output).
        output: String,
    },
    /// A file of a Debian package is missing on this machine.
    #[error("{path} is missing: install the Debian package {package}")]
    Missing {
        /// The missing file.
        path: PathBuf,
        /// The package that provides it.
        package: String,
    },
    /// Kconfig dropped options of the lab kernel's configuration fragment.
    #[error("the lab kernel's configuration lost {0} (files/kernel.config: a missing dependency?)")]
    KernelConfig(String),
    /// apt knows no kernel.
    #[error("apt knows no linux-image-amd64 dependency (run apt-get update)")]
    NoKernel,
}

/// Results of this module.
pub type Result<T> = std::result::Result<T, ImageError>;

/// Builds (or takes from the cache) the lab's kernel from Debian's kernel source; returns its `bzImage`.
pub fn lab_kernel(cache: &Path) -> Result<PathBuf> {
    kernel::build(cache)
}

/// Builds (or takes from the cache) the deploy kernel.
pub fn deploy_kernel(inputs: &Inputs) -> Result<DeployKernel> {
    deploy::build(inputs)
}

/// Builds (or takes from the cache) the tarball environment `kalab-linux`.
pub fn tarball_env(inputs: &Inputs) -> Result<Environment> {
    env::tarball(inputs)
}

/// Builds (or takes from the cache) the dd environment `kalab-linux-dd`.
pub fn dd_env(inputs: &Inputs) -> Result<Environment> {
    env::dd(inputs)
}

/// Copies into the TFTP root `dest` what PXElinux booting needs: `pxelinux.0` and its BIOS modules.
pub fn pxe_files(inputs: &Inputs, dest: &Path) -> Result<()> {
    let _ = inputs;
    pxe::copy_files(dest)
}

/// Copies into the TFTP root `dest` `pxelinux.0` and its BIOS modules (what [`pxe_files`] does).
pub fn pxe_files_into(dest: &Path) -> Result<()> {
    pxe::copy_files(dest)
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
    let what = what.into();
    move |source| ImageError::Io { what, source }
}

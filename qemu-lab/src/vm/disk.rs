//! VM disks: raw or qcow2 images created with `qemu-img`, the format chosen by the file extension.

use super::VmError;
use std::path::Path;

/// A disk image format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskFormat {
    /// Raw (any extension but `.qcow2`).
    Raw,
    /// qcow2 (`.qcow2`).
    Qcow2,
}

impl DiskFormat {
    /// The format of the image at `path`, from its extension.
    pub fn of(path: &Path) -> DiskFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some("qcow2") => DiskFormat::Qcow2,
            _ => DiskFormat::Raw,
        }
    }

    /// QEMU's name of the format.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
        }
    }
}

/// Creates (or replaces) an empty disk image of `size_mib` MiB at `path` with `qemu-img create`.
pub fn create_disk(path: &Path, size_mib: u64) -> Result<(), VmError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(VmError::io(parent))?;
    }
    let format = DiskFormat::of(path).as_str();
    let out = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", format])
        .arg(path)
        .arg(format!("{size_mib}M"))
        .output()
        .map_err(|source| VmError::Spawn {
            command: "qemu-img (apt-get install -y qemu-utils)".into(),
            source,
        })?;
    if !out.status.success() {
        return Err(VmError::Command {
            command: format!("qemu-img create {}", path.display()),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

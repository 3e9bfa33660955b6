//! PXElinux files for a TFTP root, and the cluster's `install_bootloader` script (extlinux).

use std::path::Path;

use super::debian;
use super::{Result, io};

/// (file in the TFTP root, path on this machine, package).
const FILES: &[(&str, &str, &str)] = &[
    ("pxelinux.0", "/usr/lib/PXELINUX/pxelinux.0", "pxelinux"),
    (
        "ldlinux.c32",
        "/usr/lib/syslinux/modules/bios/ldlinux.c32",
        "syslinux-common",
    ),
    (
        "chain.c32",
        "/usr/lib/syslinux/modules/bios/chain.c32",
        "syslinux-common",
    ),
    (
        "libcom32.c32",
        "/usr/lib/syslinux/modules/bios/libcom32.c32",
        "syslinux-common",
    ),
    (
        "libutil.c32",
        "/usr/lib/syslinux/modules/bios/libutil.c32",
        "syslinux-common",
    ),
];

/// Copies `pxelinux.0` and its BIOS modules into `dest`.
pub fn copy_files(dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest).map_err(io(format!("creating {}", dest.display())))?;
    for (name, path, package) in FILES {
        let src = debian::file(path, package)?;
        let tmp = dest.join(format!(".{name}.tmp"));
        std::fs::copy(&src, &tmp).map_err(io(format!("copying {path}")))?;
        std::fs::rename(&tmp, dest.join(name)).map_err(io(format!("renaming into {name}")))?;
    }
    Ok(())
}

/// The cluster's `install_bootloader` admin script: run in the deploy kernel with the `KADEPLOY_*`
/// environment, it installs extlinux into the deploy partition's boot sector and writes `extlinux.conf`.
pub fn install_bootloader_script() -> &'static str {
    include_str!("../../files/install_bootloader.sh")
}

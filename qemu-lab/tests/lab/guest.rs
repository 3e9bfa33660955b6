//! Guest artefacts of the lab test, cached under `target/qemu-lab-cache/`: Debian's kernel (taken
//! from hal's netboot cache or `apt-get download`) and a busybox initramfs whose init prints a
//! marker on ttyS0 and then runs a shell on it.

use hal::testing::process::sh_in;
use std::path::{Path, PathBuf};

/// The line each VM prints on its serial console once booted.
pub const MARKER: &str = "KALAB-BOOT-MARKER-OK";

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The cache directory.
pub fn cache() -> PathBuf {
    let dir = target_dir().join("qemu-lab-cache");
    std::fs::create_dir_all(&dir).expect("cache dir");
    dir
}

/// Debian's amd64 kernel, from the lab's image cache (shared with the images tests).
pub fn kernel() -> PathBuf {
    let cache = target_dir().join("kalab-images");
    qemu_lab::images::debian_kernel(&cache)
        .unwrap_or_else(|e| panic!("Debian's kernel (run apt-get update first): {e}"))
        .vmlinuz
}

/// A busybox initramfs: init prints [`MARKER`], then runs an interactive shell on ttyS0.
pub fn initramfs() -> PathBuf {
    let dir = cache();
    let image = dir.join("lab-initrd.cpio.gz");
    if !image.exists() {
        sh_in(
            &dir,
            &format!(
                "set -e; rm -rf lab-initramfs && mkdir -p lab-initramfs/bin lab-initramfs/dev && \
                 cp /bin/busybox lab-initramfs/bin/busybox && \
                 printf '#!/bin/busybox sh\\n/bin/busybox mount -t devtmpfs dev /dev\\n\
                 /bin/busybox echo {MARKER} > /dev/ttyS0\\n\
                 exec /bin/busybox sh -i < /dev/ttyS0 > /dev/ttyS0 2>&1\\n' > lab-initramfs/init && \
                 chmod 755 lab-initramfs/init && mknod -m 600 lab-initramfs/dev/console c 5 1 && \
                 (cd lab-initramfs && find . | cpio -o -H newc --quiet | gzip -1 > ../lab-initrd.tmp) && \
                 mv lab-initrd.tmp lab-initrd.cpio.gz && rm -rf lab-initramfs"
            ),
        );
    }
    image
}

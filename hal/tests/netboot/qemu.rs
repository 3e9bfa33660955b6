//! Artefacts of the QEMU PXE test, cached under `target/netboot-test-cache/`: Debian's kernel
//! (`hal::testing::debian`: `apt-get download`, `dpkg-deb -x`) and a busybox initramfs whose init prints a
//! marker on ttyS0.

use hal::testing::process::sh_in;
use std::path::{Path, PathBuf};

/// The line the test VM prints on its serial console.
pub const MARKER: &str = "KADEPLOY-NETBOOT-MARKER-OK";

/// The cache directory.
pub fn cache() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/netboot-test-cache");
    std::fs::create_dir_all(&dir).expect("cache dir");
    dir
}

/// Debian's amd64 kernel, downloaded once.
pub fn kernel() -> PathBuf {
    hal::testing::debian::kernel(&cache())
        .unwrap_or_else(|e| panic!("Debian's kernel (run apt-get update first): {e}"))
        .vmlinuz
}

/// A tiny initramfs: busybox-static and an init that prints [`MARKER`] and powers off.
pub fn initramfs() -> PathBuf {
    let dir = cache();
    let image = dir.join("initrd.cpio.gz");
    if !image.exists() {
        sh_in(
            &dir,
            &format!(
                "set -e; rm -rf initramfs && mkdir -p initramfs/bin initramfs/dev initramfs/proc && \
                 cp /bin/busybox initramfs/bin/busybox && \
                 printf '#!/bin/busybox sh\\n/bin/busybox mount -t devtmpfs dev /dev\\n\
                 /bin/busybox echo {MARKER} > /dev/ttyS0\\n/bin/busybox poweroff -f\\n' > initramfs/init && \
                 chmod 755 initramfs/init && mknod -m 600 initramfs/dev/console c 5 1 && \
                 (cd initramfs && find . | cpio -o -H newc --quiet | gzip -1 > ../initrd.tmp) && \
                 mv initrd.tmp initrd.cpio.gz && rm -rf initramfs"
            ),
        );
    }
    image
}

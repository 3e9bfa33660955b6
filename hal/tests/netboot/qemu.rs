//! Artefacts of the QEMU PXE test, cached under `target/netboot-test-cache/`: Debian's kernel
//! (`apt-get download`, `dpkg-deb -x`) and a busybox initramfs whose init prints a marker on ttyS0.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The line the test VM prints on its serial console.
pub const MARKER: &str = "KADEPLOY-NETBOOT-MARKER-OK";

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The cache directory.
pub fn cache() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/netboot-test-cache");
    std::fs::create_dir_all(&dir).expect("cache dir");
    dir
}

/// Debian's amd64 kernel, downloaded once.
pub fn kernel() -> PathBuf {
    let dir = cache();
    let vmlinuz = dir.join("vmlinuz");
    if !vmlinuz.exists() {
        sh(
            &dir,
            "set -e; V=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); \
             [ -n \"$V\" ] || { echo 'no linux-image-amd64 in apt (run apt-get update)'; exit 1; }; \
             ls ${V}_*.deb >/dev/null 2>&1 || apt-get download $V; \
             rm -rf x && dpkg-deb -x ${V}_*.deb x && cp x/boot/vmlinuz-* vmlinuz.tmp && mv vmlinuz.tmp vmlinuz && rm -rf x",
        );
    }
    vmlinuz
}

/// A tiny initramfs: busybox-static and an init that prints [`MARKER`] and powers off.
pub fn initramfs() -> PathBuf {
    let dir = cache();
    let image = dir.join("initrd.cpio.gz");
    if !image.exists() {
        sh(
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

//! The environments `kalab-linux` (tgz) and `kalab-linux-dd` (gzip-compressed ext4 image): a small Linux
//! (busybox, dropbear, the lab's kernel and a tiny initramfs), their postinstall and kaenv3 descriptions.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::cache::{self, Key};
use super::debian;
use super::deploy::{ACCOUNTS, authorize};
use super::kernel;
use super::run::{output, sh};
use super::tree::Tree;
use super::{Environment, Inputs, Result, io};

/// Name of the tarball environment.
pub const TAR_NAME: &str = "kalab-linux";
/// Name of the dd environment.
pub const DD_NAME: &str = "kalab-linux-dd";
/// The environments' kernel command line (the deployer adds `root=`).
pub const KERNEL_PARAMS: &str = super::SERIAL_CONSOLE_PARAMS;

const PACKAGES: &[&str] = &[
    "busybox-static",
    "dropbear-bin",
    "libc6",
    "e2fsprogs",
    "tar",
    "gzip",
];

const SCRIPTS: &[(&str, &str, u32)] = &[
    ("etc/kalab-rc", include_str!("../../files/env-rc.sh"), 0o755),
    ("etc/inittab", INITTAB, 0o644),
    (
        "etc/kalab-common.sh",
        include_str!("../../files/common.sh"),
        0o644,
    ),
    (
        "etc/udhcpc.script",
        include_str!("../../files/udhcpc.script"),
        0o755,
    ),
    ("etc/fstab", "", 0o644),
];
const INITRAMFS_INIT: &str = include_str!("../../files/env-initramfs-init.sh");
/// busybox init's table: the boot script, a root shell on the serial console, and a clean reboot
/// or power-off when `reboot`/`poweroff` signal init (what a soft reboot over SSH does).
const INITTAB: &str = "::sysinit:/etc/kalab-rc\n\
                       ttyS0::respawn:-/bin/sh\n\
                       ::ctrlaltdel:/sbin/reboot\n\
                       ::shutdown:/bin/sync\n\
                       ::shutdown:/bin/umount -a -r\n";
const POSTINSTALL: &str = include_str!("../../files/postinstall.sh");

/// Builds (or takes from the cache) the tarball environment.
pub fn tarball(inputs: &Inputs) -> Result<Environment> {
    let (tree, mut key) = system(inputs)?;
    key.text("image", "tar-v2");
    let dir = cache::get(&inputs.cache, "env-tar", &key, |tmp, fin| {
        let image = tmp.join(format!("{TAR_NAME}.tgz"));
        sh(
            &tree,
            &format!(
                "set -e; tar --numeric-owner --owner=0 --group=0 -cf - . | gzip -6 -n > '{}'",
                image.display()
            ),
        )?;
        finish(tmp, fin, TAR_NAME, &format!("{TAR_NAME}.tgz"), "tar")
    })?;
    Ok(environment(&dir, TAR_NAME, &format!("{TAR_NAME}.tgz")))
}

/// Builds (or takes from the cache) the dd environment: the same tree as an ext4 file system image.
pub fn dd(inputs: &Inputs) -> Result<Environment> {
    let (tree, mut key) = system(inputs)?;
    key.text("image", "dd-v3");
    let file = format!("{DD_NAME}.img.gz");
    let dir = cache::get(&inputs.cache, "env-dd", &key, |tmp, fin| {
        let used: u64 = output(Command::new("du").args(["-s", "-B1M"]).arg(&tree))?
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(64);
        let raw = tmp.join(format!("{DD_NAME}.img"));
        output(
            Command::new("mkfs.ext4")
                .args([
                    "-q",
                    "-F",
                    "-L",
                    "kalab-root",
                    "-O",
                    "^64bit,^metadata_csum",
                    // A small file system would get 1 KiB blocks, which extlinux's boot sector
                    // does not boot from (seen in the lab: `Booting...` then nothing).
                    "-b",
                    "4096",
                ])
                .args(["-E", "root_owner=0:0", "-d"])
                .arg(&tree)
                .arg(&raw)
                .arg(format!("{}M", used + used / 2 + 32)),
        )?;
        output(Command::new("gzip").args(["-6", "-n"]).arg(&raw))?;
        finish(tmp, fin, DD_NAME, &file, "dd")
    })?;
    Ok(environment(&dir, DD_NAME, &file))
}

fn environment(dir: &Path, name: &str, image: &str) -> Environment {
    Environment {
        name: name.to_string(),
        description: dir.join(format!("{name}.yaml")),
        image: dir.join(image),
        postinstall: dir.join("kalab-postinstall.tgz"),
        marks_nodes: true,
    }
}

/// Writes the postinstall archive and the description (referring to the final directory `fin`).
fn finish(tmp: &Path, fin: &Path, name: &str, image: &str, kind: &str) -> Result<()> {
    let post = tmp.join("postinstall");
    std::fs::create_dir_all(&post).map_err(io("creating the postinstall directory"))?;
    Tree::file_at(&post.join("postinstall.sh"), POSTINSTALL, 0o755)?;
    sh(
        &post,
        "set -e; tar --numeric-owner --owner=0 --group=0 -cf - postinstall.sh | gzip -9 -n > ../kalab-postinstall.tgz",
    )?;
    std::fs::remove_dir_all(&post).map_err(io("removing the postinstall directory"))?;
    let yaml = description(
        name,
        kind,
        &fin.join(image),
        &fin.join("kalab-postinstall.tgz"),
    );
    let path = tmp.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).map_err(io(format!("writing {}", path.display())))
}

/// The kaenv3 description of an environment.
pub fn description(name: &str, kind: &str, image: &Path, postinstall: &Path) -> String {
    format!(
        "---\n\
         name: {name}\n\
         version: 1\n\
         description: {name}, a small Linux for the QEMU lab (busybox, dropbear, the lab's kernel)\n\
         author: kalab\n\
         os: linux\n\
         image:\n  file: server://{image}\n  kind: {kind}\n  compression: gzip\n\
         postinstalls:\n- archive: server://{postinstall}\n  compression: gzip\n  script: postinstall.sh\n\
         boot:\n  kernel: /boot/vmlinuz\n  initrd: /boot/initrd.img\n  kernel_params: {KERNEL_PARAMS}\n\
         filesystem: ext4\n\
         partition_type: 0x83\n",
        image = image.display(),
        postinstall = postinstall.display(),
    )
}

/// The environments' root file system, built once into the cache, and the key of its inputs.
fn system(inputs: &Inputs) -> Result<(PathBuf, Key)> {
    let vmlinuz = kernel::build(&inputs.cache)?;
    let mut key = Key::new("env-system-v4");
    key.file("kernel", &vmlinuz)?
        .text("packages", &debian::versions(PACKAGES)?)
        .text(
            "scripts",
            &format!("{SCRIPTS:?}{ACCOUNTS:?}{INITRAMFS_INIT}{POSTINSTALL}"),
        )
        .text("params", KERNEL_PARAMS)
        .text("key", inputs.authorized_key.trim());
    let dir = cache::get(&inputs.cache, "env-system", &key, |tmp, _| {
        build_system(inputs, &vmlinuz, &tmp.join("root"), &tmp.join("initramfs"))?;
        std::fs::remove_dir_all(tmp.join("initramfs")).map_err(io("removing the initramfs tree"))
    })?;
    Ok((dir.join("root"), key))
}

fn build_system(inputs: &Inputs, vmlinuz: &Path, root: &Path, initramfs: &Path) -> Result<()> {
    let t = Tree::new(root)?;
    t.binary("/usr/bin/busybox", "busybox-static")?;
    t.binary("/usr/sbin/dropbear", "dropbear-bin")?;
    t.binary("/usr/bin/dropbearkey", "dropbear-bin")?;
    t.busybox_applets()?;
    t.link("usr/sbin/init", "../bin/busybox")?;
    for (path, contents, mode) in SCRIPTS.iter().chain(ACCOUNTS) {
        t.file(path, contents, *mode)?;
    }
    t.file("etc/hostname", "kalab-env\n", 0o644)?;
    authorize(&t, &inputs.authorized_key)?;
    t.dir("boot", 0o755)?;
    std::fs::copy(vmlinuz, root.join("boot/vmlinuz")).map_err(io("copying the kernel"))?;

    let i = Tree::new(initramfs)?;
    i.binary("/usr/bin/busybox", "busybox-static")?;
    i.busybox_applets()?;
    i.file("init", INITRAMFS_INIT, 0o755)?;
    let size = i.cpio_zstd(&root.join("boot/initrd.img"))?;
    tracing::info!(bytes = size, "environment initrd built");
    Ok(())
}

//! The deploy kernel: the lab's kernel (every driver built in) and an initramfs with busybox, dropbear, kaagent and the node tools.

use std::path::Path;
use std::process::Command;

use super::cache::{self, Key};
use super::debian;
use super::kernel;
use super::run::output;
use super::tree::Tree;
use super::{DeployKernel, Inputs, Result, io};

/// The deploy kernel's command line.
pub const PARAMS: &str = super::SERIAL_CONSOLE_PARAMS;

/// Installed packages whose binaries the initramfs carries.
const PACKAGES: &[&str] = &[
    "busybox-static",
    "dropbear-bin",
    "fdisk",
    "parted",
    "e2fsprogs",
    "util-linux",
    "tar",
    "gzip",
    "bzip2",
    "xz-utils",
    "zstd",
    "kexec-tools",
    "extlinux",
    "libc6",
    "dash",
];

/// (path on this machine and in the initramfs, package).
const BINARIES: &[(&str, &str)] = &[
    ("/usr/bin/busybox", "busybox-static"),
    // Debian's busybox runs its own applets before $PATH: scripts get dash, which does not.
    ("/usr/bin/dash", "dash"),
    ("/usr/sbin/dropbear", "dropbear-bin"),
    ("/usr/bin/dropbearkey", "dropbear-bin"),
    ("/usr/sbin/sfdisk", "fdisk"),
    ("/usr/sbin/parted", "parted"),
    ("/usr/sbin/partprobe", "parted"),
    ("/usr/sbin/mke2fs", "e2fsprogs"),
    ("/usr/sbin/mkswap", "util-linux"),
    ("/usr/sbin/blkid", "util-linux"),
    ("/usr/bin/tar", "tar"),
    ("/usr/bin/gzip", "gzip"),
    ("/usr/bin/bzip2", "bzip2"),
    ("/usr/bin/xz", "xz-utils"),
    ("/usr/bin/zstd", "zstd"),
    ("/usr/sbin/kexec", "kexec-tools"),
    ("/usr/bin/extlinux", "extlinux"),
];

/// (link in the initramfs, target).
const LINKS: &[(&str, &str)] = &[
    ("usr/bin/sh", "dash"),
    ("usr/sbin/mkfs.ext2", "mke2fs"),
    ("usr/sbin/mkfs.ext3", "mke2fs"),
    ("usr/sbin/mkfs.ext4", "mke2fs"),
    ("usr/bin/unzstd", "zstd"),
    ("usr/bin/zstdcat", "zstd"),
    ("usr/bin/unxz", "xz"),
    ("usr/bin/xzcat", "xz"),
    ("usr/bin/bunzip2", "bzip2"),
    ("usr/bin/bzcat", "bzip2"),
];

/// Where the real `kexec` goes in the initramfs.
const KEXEC_BINARY: &str = "/usr/sbin/kexec.bin";
/// `/usr/sbin/kexec`: prints `kalab-kexec` on the serial console just before the jump
/// ([`crate::timeline`] times the environment's boot from it), then runs the real kexec.
const KEXEC_WRAPPER: &str =
    "#!/bin/sh\n[ \"$1\" = -e ] && echo kalab-kexec >/dev/ttyS0\nexec /usr/sbin/kexec.bin \"$@\"\n";

/// Scripts of the initramfs: (path, contents, mode).
pub const SCRIPTS: &[(&str, &str, u32)] = &[
    ("init", include_str!("../../files/deploy-init.sh"), 0o755),
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
];

/// The account files of a root-only system whose root logs in with a key.
pub const ACCOUNTS: &[(&str, &str, u32)] = &[
    ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644),
    ("etc/group", "root:x:0:\ntty:x:5:\n", 0o644),
    ("etc/shadow", "root:*:19000:0:99999:7:::\n", 0o600),
    ("etc/shells", "/bin/sh\n/usr/bin/sh\n", 0o644),
];

/// Builds (or takes from the cache) the deploy kernel.
pub fn build(inputs: &Inputs) -> Result<DeployKernel> {
    let vmlinuz = kernel::build(&inputs.cache)?;
    let mut key = Key::new("deploy-kernel-v3");
    key.file("kernel", &vmlinuz)?
        .text("packages", &debian::versions(PACKAGES)?)
        .text(
            "binaries",
            &format!("{BINARIES:?}{LINKS:?}{KEXEC_WRAPPER:?}"),
        )
        .text("scripts", &format!("{SCRIPTS:?}{ACCOUNTS:?}"))
        .text("key", inputs.authorized_key.trim())
        .text("params", PARAMS);
    key.file("kaagent", &inputs.kaagent)?;
    let dir = cache::get(&inputs.cache, "deploy", &key, |tmp, _| {
        std::fs::copy(&vmlinuz, tmp.join("vmlinuz")).map_err(io("copying the kernel"))?;
        let size = initramfs(inputs, &tmp.join("root"), &tmp.join("initrd.img"))?;
        tracing::info!(bytes = size, "deploy initrd built");
        std::fs::remove_dir_all(tmp.join("root")).map_err(io("removing the staging tree"))
    })?;
    Ok(DeployKernel {
        vmlinuz: dir.join("vmlinuz"),
        initrd: dir.join("initrd.img"),
        params: PARAMS.to_string(),
    })
}

fn initramfs(inputs: &Inputs, root: &Path, out: &Path) -> Result<u64> {
    let t = Tree::new(root)?;
    for (path, package) in BINARIES {
        t.binary(path, package)?;
    }
    for (link, target) in LINKS {
        t.link(link, target)?;
    }
    // kexec behind a wrapper that marks the jump on the serial console (the lab's boot timeline).
    let kexec = t.root().join("usr/sbin/kexec");
    std::fs::rename(&kexec, t.root().join(KEXEC_BINARY.trim_start_matches('/')))
        .map_err(io("moving kexec behind its wrapper"))?;
    t.file("usr/sbin/kexec", KEXEC_WRAPPER, 0o755)?;
    t.busybox_applets()?;
    t.copy(&debian::file("/etc/mke2fs.conf", "e2fsprogs")?)?;
    for (path, contents, mode) in SCRIPTS.iter().chain(ACCOUNTS) {
        t.file(path, contents, *mode)?;
    }
    authorize(&t, &inputs.authorized_key)?;
    let agent = t.root().join("usr/sbin/kaagent");
    std::fs::copy(&inputs.kaagent, &agent).map_err(io(format!(
        "copying kaagent from {}",
        inputs.kaagent.display()
    )))?;
    output(Command::new("strip").arg("-s").arg(&agent))?;
    t.libraries(&agent)?;
    t.cpio_zstd(out)
}

/// Writes `/root/.ssh/authorized_keys` with `key`.
pub fn authorize(t: &Tree, key: &str) -> Result<()> {
    t.dir("root/.ssh", 0o700)?;
    t.file(
        "root/.ssh/authorized_keys",
        format!("{}\n", key.trim()),
        0o600,
    )
}

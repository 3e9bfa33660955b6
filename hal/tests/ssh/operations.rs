//! Every node operation against one SSH server, checked through the shared file system.

use crate::harness::{Flavor, Lab, s, sh};
use hal::broadcast::{ImageKind, WriteTarget};
use hal::ssh::SshNodeOps;
use hal::{ErrorKind, NodeId, NodeOps, Operation, Outcomes};
use std::time::{Duration, Instant};

const N: [NodeId; 1] = [NodeId(0)];

fn ok(out: &Outcomes, what: &str) {
    assert!(out.failures().is_empty(), "{what}: {:?}", out.failures());
}

fn failed(out: &Outcomes, what: &str) -> String {
    let e = out.0[0].1.as_ref().expect_err(what);
    assert_eq!(e.kind, ErrorKind::CommandFailed, "{what}: {e:?}");
    e.message.clone()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Bytes that do not compress to nothing.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Runs every operation on the lab's server at `ip`.
pub async fn suite(lab: &Lab, flavor: Flavor, ip: &str) {
    let ops = lab.ops(&[ip]);
    exec(&ops).await;
    send_key(lab, &ops).await;
    run_script(lab, &ops).await;
    disks(lab, &ops).await;
    send_file(lab, &ops).await;
    install_archive(lab, &ops).await;
    write_image(lab, &ops).await;
    kernel_files_and_kexec(lab, &ops).await;
    simple(lab, &ops).await;
    reboot_from_deploy_env(lab, flavor, ip, &ops).await;
}

async fn exec(ops: &SshNodeOps) {
    let out = ops
        .exec(NodeId(0), "echo o; echo e >&2; exit 4", b"")
        .await
        .unwrap();
    assert_eq!(
        (out.status, out.stdout_text(), out.stderr_text()),
        (4, "o".into(), "e".into())
    );
    let input = noise(300_000);
    let out = ops.exec(NodeId(0), "cat | wc -c", &input).await.unwrap();
    assert_eq!(out.stdout_text(), "300000");
    let out = ops.exec(NodeId(0), "cat", b"abc").await.unwrap();
    assert_eq!(out.stdout, b"abc");
}

async fn send_key(lab: &Lab, ops: &SshNodeOps) {
    let dest = lab.path("keys/root/.ssh/authorized_keys");
    let op = |keys: &str| Operation::SendKey {
        keys: keys.into(),
        destination: s(&dest),
    };
    ok(&ops.run(&op("ssh-ed25519 AAA k1"), &N).await, "send_key");
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        "ssh-ed25519 AAA k1\n"
    );
    std::fs::write(&dest, "k0").unwrap();
    ok(&ops.run(&op("k1\nk2\n"), &N).await, "send_key append");
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "k0\nk1\nk2\n");
}

async fn run_script(lab: &Lab, ops: &SshNodeOps) {
    let vars = env(&[("KADEPLOY_CLUSTER", "lab one"), ("KADEPLOY_QUOTE", "it's")]);
    let plain = format!(
        "echo \"$KADEPLOY_CLUSTER\" > {}\necho done\n",
        s(&lab.path("rs1"))
    );
    let op = |script: String| Operation::RunScript {
        purpose: "partitioning".into(),
        script,
        env: vars.clone(),
    };
    ok(&ops.run(&op(plain), &N).await, "run_script sh -s");
    assert_eq!(
        std::fs::read_to_string(lab.path("rs1")).unwrap(),
        "lab one\n"
    );
    let shebang = format!(
        "#!/bin/sh\nread line || true\necho \"$KADEPLOY_QUOTE $0\" > {}\n",
        s(&lab.path("rs2"))
    );
    ok(&ops.run(&op(shebang), &N).await, "run_script with #!");
    let ran = std::fs::read_to_string(lab.path("rs2")).unwrap();
    assert!(ran.starts_with("it's /"), "{ran}");
    let out = ops
        .run(&op("echo partial\necho boom >&2\nexit 2\n".into()), &N)
        .await;
    assert_eq!(failed(&out, "failing script"), "boom");
}

async fn disks(lab: &Lab, ops: &SshNodeOps) {
    let img = lab.path("disk.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    let format = Operation::Format {
        device: s(&img),
        fs: "ext4".into(),
        args: "-F -q".into(),
    };
    ok(&ops.run(&format, &N).await, "format");
    let sb = std::fs::read(&img).unwrap();
    assert_eq!(&sb[1080..1082], &[0x53, 0xef], "ext4 superblock magic");
    let dir = lab.path("mnt/dest");
    let mount = Operation::Mount {
        device: s(&img),
        dir: s(&dir),
    };
    ok(&ops.run(&mount, &N).await, "mount");
    let check = format!(
        "grep -c ' {} ' /proc/mounts; echo hi > {}/f",
        s(&dir),
        s(&dir)
    );
    let out = ops.exec(NodeId(0), &check, b"").await.unwrap();
    assert_eq!(out.stdout_text(), "1", "{}", out.stderr_text());
    ok(
        &ops.run(&Operation::Umount { target: s(&dir) }, &N).await,
        "umount",
    );
    let out = ops
        .exec(
            NodeId(0),
            &format!("grep -c ' {} ' /proc/mounts", s(&dir)),
            b"",
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "0");
    assert!(!dir.join("f").exists(), "the file went to the image");
    let out = ops.run(&Operation::Umount { target: s(&dir) }, &N).await;
    assert!(!failed(&out, "umount twice").is_empty());
    let missing = Operation::Format {
        device: s(&lab.path("no/such/disk")),
        fs: "ext4".into(),
        args: "-F -q".into(),
    };
    assert!(!failed(&ops.run(&missing, &N).await, "format missing").is_empty());
    let swap = lab.path("swap.img");
    std::fs::File::create(&swap)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    ok(
        &ops.run(&Operation::MakeSwap { device: s(&swap) }, &N).await,
        "mkswap",
    );
    let page = std::fs::read(&swap).unwrap();
    assert_eq!(&page[4086..4096], b"SWAPSPACE2");
}

async fn send_file(lab: &Lab, ops: &SshNodeOps) {
    let data = noise(3 << 20);
    let src = lab.path("kernel.bin");
    std::fs::write(&src, &data).unwrap();
    let dest = lab.path("sent/kexec_repository/vmlinuz");
    let op = Operation::SendFile {
        source: s(&src),
        destination: s(&dest),
        size: data.len() as u64,
    };
    ok(&ops.run(&op, &N).await, "send_file");
    assert!(std::fs::read(&dest).unwrap() == data, "same bytes");
    let missing = Operation::SendFile {
        source: s(&lab.path("nope")),
        destination: s(&dest),
        size: 0,
    };
    let out = ops.run(&missing, &N).await;
    assert_eq!(out.0[0].1.as_ref().unwrap_err().kind, ErrorKind::Transfer);
}

/// A pre/post-install tree with `post.sh` (records its environment and arguments) and `data.txt`.
fn archive_tree(lab: &Lab) {
    let tree = lab.path("arch");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("data.txt"), "payload\n").unwrap();
    std::fs::write(
        tree.join("post.sh"),
        "#!/bin/sh\necho \"$KADEPLOY_ENV $*\" > \"$(dirname \"$0\")/ran\"\n",
    )
    .unwrap();
    sh(&format!(
        "chmod 755 {t}/post.sh && tar -C {t} -czf {d}/post.tgz . && tar -C {t} -cf {d}/post.tar .",
        t = tree.display(),
        d = lab.dir.display()
    ));
}

async fn install_archive(lab: &Lab, ops: &SshNodeOps) {
    archive_tree(lab);
    let op = |archive: &str, dir: &str, script: Option<&str>| Operation::InstallArchive {
        archive: s(&lab.path(archive)),
        dir: s(&lab.path(dir)),
        script: script.map(String::from),
        env: env(&[("KADEPLOY_ENV", "debian12")]),
    };
    ok(
        &ops.run(&op("post.tgz", "rambin1", Some("post.sh --net x")), &N)
            .await,
        "tgz",
    );
    assert_eq!(
        std::fs::read_to_string(lab.path("rambin1/ran")).unwrap(),
        "debian12 --net x\n"
    );
    assert_eq!(
        std::fs::read_to_string(lab.path("rambin1/data.txt")).unwrap(),
        "payload\n"
    );
    ok(
        &ops.run(&op("post.tar", "rambin2", Some("none")), &N).await,
        "tar",
    );
    assert!(lab.path("rambin2/data.txt").exists());
    assert!(
        !lab.path("rambin2/ran").exists(),
        "script none runs nothing"
    );
    let out = ops
        .run(&op("post.tgz", "rambin3", Some("missing.sh")), &N)
        .await;
    assert!(!failed(&out, "missing script").is_empty());
    let out = ops.run(&op("nope.tgz", "rambin4", None), &N).await;
    assert_eq!(out.0[0].1.as_ref().unwrap_err().kind, ErrorKind::Transfer);
}

async fn write_image(lab: &Lab, ops: &SshNodeOps) {
    let raw = noise(1 << 20);
    std::fs::write(lab.path("image.raw"), &raw).unwrap();
    sh(&format!(
        "gzip -c {d}/image.raw > {d}/_KATMP_image.dd.gz",
        d = lab.dir.display()
    ));
    let op = |source: &str, kind: ImageKind, device: &str, dir: &str| Operation::WriteImage {
        source: s(&lab.path(source)),
        kind,
        target: WriteTarget {
            device: s(&lab.path(device)),
            extraction_dir: s(&lab.path(dir)),
        },
        fsa_parts: Vec::new(),
    };
    ok(
        &ops.run(&op("_KATMP_image.dd.gz", ImageKind::Dd, "part-gz", ""), &N)
            .await,
        "dd gz",
    );
    assert!(std::fs::read(lab.path("part-gz")).unwrap() == raw);
    ok(
        &ops.run(&op("image.raw", ImageKind::Dd, "part-raw", ""), &N)
            .await,
        "dd raw",
    );
    assert!(std::fs::read(lab.path("part-raw")).unwrap() == raw);
    ok(
        &ops.run(&op("post.tgz", ImageKind::Tar, "", "extracted"), &N)
            .await,
        "tgz",
    );
    assert!(lab.path("extracted/post.sh").exists());
    let mut bad = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    bad.extend(noise(1000));
    std::fs::write(lab.path("bad.gz"), bad).unwrap();
    let out = ops
        .run(&op("bad.gz", ImageKind::Dd, "part-bad", ""), &N)
        .await;
    assert!(failed(&out, "corrupt gzip").contains("cannot decompress"));
}

async fn kernel_files_and_kexec(lab: &Lab, ops: &SshNodeOps) {
    let root = lab.path("envroot");
    std::fs::create_dir_all(root.join("boot")).unwrap();
    std::fs::write(root.join("boot/vmlinuz-6.1"), "kernel").unwrap();
    std::fs::write(root.join("boot/initrd.img-6.1"), "initrd").unwrap();
    std::os::unix::fs::symlink("/boot/vmlinuz-6.1", root.join("vmlinuz")).unwrap();
    std::os::unix::fs::symlink("boot/initrd.img-6.1", root.join("initrd.img")).unwrap();
    std::os::unix::fs::symlink("/bin/sh", root.join("outside")).unwrap();
    let check = |kernel: &str, initrd: &str| Operation::CheckKernelFiles {
        dir: s(&root),
        kernel: kernel.into(),
        initrd: initrd.into(),
    };
    ok(
        &ops.run(&check("/vmlinuz", "/initrd.img"), &N).await,
        "kernel files",
    );
    ok(
        &ops.run(&check("/boot/vmlinuz-6.1", ""), &N).await,
        "kernel, no initrd",
    );
    let out = ops.run(&check("/vmlinuz", "/initrd.missing"), &N).await;
    assert!(
        failed(&out, "missing initrd")
            .contains("Environment initrd file /initrd.missing not found in tarball")
    );
    let out = ops.run(&check("/outside", ""), &N).await;
    assert!(
        failed(&out, "link out of the env").contains("Environment kernel file /outside not found")
    );

    let probe = ops.exec(NodeId(0), "kexec --probe", b"").await.unwrap();
    assert_eq!(probe.stdout_text(), "FAKE", "kexec must be a fake");
    let kexec = |kernel: &str, initrd: &str| Operation::Kexec {
        kernel: format!("{}{kernel}", s(&root)),
        initrd: if initrd.is_empty() {
            String::new()
        } else {
            format!("{}{initrd}", s(&root))
        },
        params: "root=/dev/sda3 console=ttyS0".into(),
    };
    let out = ops.run(&kexec("/missing", ""), &N).await;
    assert!(failed(&out, "kexec missing kernel").contains("not found"));
    let start = Instant::now();
    ok(
        &ops.run(&kexec("/vmlinuz", "/initrd.img"), &N).await,
        "kexec",
    );
    crate::harness::assert_detached(start, Duration::from_secs(8));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let calls = lab.calls();
    let r = s(&root);
    assert!(
        calls.contains(&format!(
            "kexec -l {r}/boot/vmlinuz-6.1 --initrd={r}/boot/initrd.img-6.1 --append=root=/dev/sda3 console=ttyS0\n"
        )),
        "{calls}"
    );
    assert!(calls.contains("kexec -e\n"), "{calls}");
    assert_eq!(calls.matches("kexec -l").count(), 1, "{calls}");
}

async fn simple(lab: &Lab, ops: &SshNodeOps) {
    ok(&ops.run(&Operation::Sync, &N).await, "sync");
    ok(&ops.run(&Operation::Dummy, &N).await, "dummy");
    let root = ops
        .exec(
            NodeId(0),
            "mount | grep ' on / ' | cut -f 1 -d ' ' | tail -n 1",
            b"",
        )
        .await
        .unwrap()
        .stdout_text();
    assert!(!root.is_empty());
    ok(
        &ops.run(&Operation::CheckRootDevice { device: root }, &N)
            .await,
        "root device",
    );
    let out = ops
        .run(
            &Operation::CheckRootDevice {
                device: "/dev/sdz9".into(),
            },
            &N,
        )
        .await;
    assert!(failed(&out, "wrong root").starts_with("Bad root partition"));
    let op = Operation::Exec {
        command: format!(
            "[ \"$A\" = 'x y' ] && [ \"$B\" = \"it's\" ] && touch {}",
            s(&lab.path("exec-ok"))
        ),
        env: env(&[("A", "x y"), ("B", "it's")]),
    };
    ok(&ops.run(&op, &N).await, "exec with env");
    assert!(lab.path("exec-ok").exists());
}

/// Last: the node reboots. The OpenSSH node's `reboot` is a fake that logs; the busybox node's is
/// busybox's own applet (its shell runs applets before `PATH`), which in the server's PID namespace
/// only stops that namespace, so the node goes down like a real one.
async fn reboot_from_deploy_env(lab: &Lab, flavor: Flavor, ip: &str, ops: &SshNodeOps) {
    crate::harness::assert_safe_to_reboot(ops, flavor).await;
    let start = Instant::now();
    ok(
        &ops.run(&Operation::RebootFromDeployEnv, &N).await,
        "reboot_from_deploy_env",
    );
    crate::harness::assert_detached(start, Duration::from_secs(6));
    match flavor {
        Flavor::OpenSsh => {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            assert!(lab.calls().contains("reboot -f\n"), "{}", lab.calls());
        }
        Flavor::Dropbear => lab.wait_down(ip).await,
    }
}

//! The lab's images under QEMU (TCG): the deploy kernel boots, serves SSH, kaagent and the 25300 marker
//! and runs the node tools and `install_bootloader`; the dd environment boots its own kernel and serves
//! SSH; the kaenv3 descriptions validate; builds are cached by their inputs.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hal::testing::process::require;
use qemu_lab::images::{self, Inputs};

/// Cargo's target directory (`CARGO_TARGET_DIR`, else the workspace's `target`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The shared cache, a test key pair (made once) and the static kaagent.
fn inputs() -> (Inputs, PathBuf) {
    require("ssh-keygen", "openssh-client");
    let cache = target_dir().join("kalab-images");
    std::fs::create_dir_all(&cache).unwrap();
    let key = cache.join("test-key");
    // Tests run in threads: one of them makes the key pair; the public half is renamed last.
    static KEYGEN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = KEYGEN.lock().unwrap_or_else(|e| e.into_inner());
    if !key.with_extension("pub").exists() {
        let dir = cache.join(format!("test-key.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "kalab-test", "-f"])
            .arg(dir.join("key")));
        std::fs::rename(dir.join("key"), &key).unwrap();
        std::fs::rename(dir.join("key.pub"), key.with_extension("pub")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
    drop(guard);
    let kaagent = target_dir().join("x86_64-unknown-linux-gnu/release/kaagent");
    assert!(
        kaagent.exists(),
        "{} is missing: build it with RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --release -p hal --bin kaagent --target x86_64-unknown-linux-gnu",
        kaagent.display()
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (
        Inputs {
            cache,
            authorized_key: public.trim().to_string(),
            kaagent,
        },
        key,
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A QEMU VM (killed on drop) with a serial log and host ports forwarded to 22, 25300 and 25301.
struct Vm {
    child: Child,
    serial: PathBuf,
    ssh: u16,
    marker: u16,
    started: Instant,
}

impl Vm {
    /// Boots `kernel` (kernel, initrd, command line) or, without one, the BIOS from the disk.
    fn boot(name: &str, kernel: Option<(&Path, &Path, &str)>, disk: &Path, dir: &Path) -> Vm {
        require("qemu-system-x86_64", "qemu-system-x86");
        let (ssh, marker, agent) = (free_port(), free_port(), free_port());
        let serial = dir.join(format!("serial-{name}.log"));
        let netdev = format!(
            "user,id=n0,hostname={name},hostfwd=tcp:127.0.0.1:{ssh}-:22,\
             hostfwd=tcp:127.0.0.1:{marker}-:25300,hostfwd=tcp:127.0.0.1:{agent}-:25301"
        );
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args([
            "-M", "pc", "-accel", "tcg", "-m", "768", "-smp", "1", "-display", "none",
        ])
        .args(["-no-reboot", "-monitor", "none", "-serial"])
        .arg(format!("file:{}", serial.display()));
        if let Some((kernel, initrd, append)) = kernel {
            cmd.arg("-kernel")
                .arg(kernel)
                .arg("-initrd")
                .arg(initrd)
                .args(["-append", append]);
        }
        let child = cmd
            .args(["-netdev", &netdev])
            .args(["-device", "virtio-net-pci,netdev=n0", "-drive"])
            .arg(format!("file={},if=virtio,format=raw", disk.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("qemu-system-x86_64");
        Vm {
            child,
            serial,
            ssh,
            marker,
            started: Instant::now(),
        }
    }

    /// Waits for QEMU to exit (the guest powered off).
    fn wait_exit(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "qemu still runs after {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.serial).unwrap_or_default()
    }

    /// Waits for a whole serial line (ended by its newline) starting with `prefix`; returns it
    /// and the time since boot. A line still being written is not read: the guest's serial port
    /// may have sent only its first bytes.
    fn wait_line(&mut self, prefix: &str, timeout: Duration) -> (String, Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) =
                complete_lines(&self.log()).find(|l| l.trim_start().starts_with(prefix))
            {
                return (l.trim().to_string(), self.started.elapsed());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("qemu exited ({status}) before {prefix:?}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "no {prefix:?} on the serial console within {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Runs `command` as root over SSH (retrying while the server starts), feeding it `input`.
    fn ssh(&self, key: &Path, command: &str, input: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mut child = Command::new("ssh")
                .args([
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                ])
                .args([
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "ConnectTimeout=20",
                    "-o",
                    "LogLevel=ERROR",
                ])
                .arg("-i")
                .arg(key)
                .args(["-p", &self.ssh.to_string(), "root@127.0.0.1", command])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("ssh");
            use std::io::Write;
            let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if out.status.success() {
                return text;
            }
            // 255: ssh itself failed (not yet up); anything else is the command's failure.
            assert!(
                out.status.code() == Some(255) && Instant::now() < deadline,
                "ssh {command:?}: {}\n{text}\nserial:\n{}",
                out.status,
                self.log()
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = target_dir().join(format!("kalab-images-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

fn sparse_disk(path: &Path, bytes: u64) {
    std::fs::File::create(path).unwrap().set_len(bytes).unwrap();
}

/// The lines of `log` that have been ended by a newline; the partial last line is left out.
fn complete_lines(log: &str) -> impl Iterator<Item = String> + '_ {
    let end = log.rfind('\n').map_or(0, |i| i + 1);
    log[..end].lines().map(str::to_string)
}

#[test]
fn deploy_kernel_boots_and_serves_the_deployer() {
    let (inputs, key) = inputs();
    let t = Instant::now();
    let dk = images::deploy_kernel(&inputs).expect("deploy kernel");
    eprintln!(
        "deploy kernel built in {:?}: vmlinuz {} bytes, initrd {} bytes",
        t.elapsed(),
        std::fs::metadata(&dk.vmlinuz).unwrap().len(),
        std::fs::metadata(&dk.initrd).unwrap().len()
    );
    let scratch = scratch("deploy");
    let dir = &scratch.0;
    let disk = dir.join("disk.img");
    sparse_disk(&disk, 256 << 20);
    let mut vm = Vm::boot(
        "kalab-node-1",
        Some((&dk.vmlinuz, &dk.initrd, &dk.params)),
        &disk,
        dir,
    );
    let (line, took) = vm.wait_line("kalab-deploy-kernel ready", Duration::from_secs(300));
    eprintln!("deploy kernel ready after {took:?}: {line}");
    assert_eq!(line, "kalab-deploy-kernel ready kalab-node-1 10.0.2.15");

    let tools = vm.ssh(
        &key,
        "sfdisk --version; mkfs.ext4 -V; kexec --version; extlinux --version; parted --version; \
         mkswap --version; blkid -V; tar --version; zstd --version; xz --version; bzip2 --help; gzip --version",
        "",
    );
    for tool in [
        "sfdisk from util-linux",
        "mke2fs",
        "kexec-tools",
        "extlinux",
        "parted",
        "Zstandard",
        "GNU tar",
        "XZ Utils",
        "mkswap from util-linux",
    ] {
        assert!(tools.contains(tool), "{tool} missing from:\n{tools}");
    }
    let listening = vm.ssh(&key, "netstat -lnt", "");
    for port in [":22 ", ":25300 ", ":25301 "] {
        assert!(
            listening.contains(port),
            "nothing listens on {port}:\n{listening}"
        );
    }
    // The marker port accepts and closes.
    let mut s = TcpStream::connect(("127.0.0.1", vm.marker)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();

    // What the deployer does: partition, format with the default features, extract, install_bootloader.
    let t = Instant::now();
    let script = images::install_bootloader_script();
    let out = vm.ssh(
        &key,
        "set -e; echo ',,83,*' | sfdisk -q /dev/vda; mkfs.ext4 -q -F /dev/vda1; \
         mkdir -p /mnt/dest; mount /dev/vda1 /mnt/dest; mkdir -p /mnt/dest/boot; \
         cat > /tmp/install_bootloader; chmod +x /tmp/install_bootloader; \
         KADEPLOY_ENV_EXTRACTION_DIR=/mnt/dest KADEPLOY_DEPLOY_PART=/dev/vda1 KADEPLOY_ENV=kalab-linux \
         KADEPLOY_ENV_KERNEL=/boot/vmlinuz KADEPLOY_ENV_INITRD=/boot/initrd.img \
         KADEPLOY_ENV_KERNEL_PARAMS='console=ttyS0' /tmp/install_bootloader; \
         cat /mnt/dest/boot/extlinux/extlinux.conf; ls /mnt/dest/boot/extlinux; umount /mnt/dest",
        script,
    );
    eprintln!("partition + mkfs + install_bootloader in {:?}", t.elapsed());
    assert!(out.contains("APPEND console=ttyS0 root=/dev/vda1"), "{out}");
    assert!(out.contains("INITRD /boot/initrd.img"), "{out}");
    assert!(out.contains("ldlinux.sys"), "{out}");
}

#[test]
fn dd_environment_boots_its_own_kernel() {
    require("debugfs", "e2fsprogs");
    let (inputs, key) = inputs();
    let t = Instant::now();
    let env = images::dd_env(&inputs).expect("dd env");
    eprintln!(
        "dd env built in {:?}: image {} bytes",
        t.elapsed(),
        std::fs::metadata(&env.image).unwrap().len()
    );
    let scratch = scratch("dd");
    let dir = &scratch.0;
    let disk = dir.join("disk.img");
    run(Command::new("sh").arg("-c").arg(format!(
        "gzip -dc '{}' > '{}'",
        env.image.display(),
        disk.display()
    )));
    for f in ["vmlinuz", "initrd.img"] {
        run(Command::new("debugfs")
            .arg("-R")
            .arg(format!("dump /boot/{f} {}", dir.join(f).display()))
            .arg(&disk));
    }
    let mut vm = Vm::boot(
        "kalab-node-2",
        Some((
            &dir.join("vmlinuz"),
            &dir.join("initrd.img"),
            "console=ttyS0,115200n8 panic=30 loglevel=4 root=/dev/vda",
        )),
        &disk,
        dir,
    );
    let (line, took) = vm.wait_line("kalab-env ready", Duration::from_secs(300));
    eprintln!("dd env ready after {took:?}: {line}");
    assert_eq!(line, "kalab-env ready kalab-node-2");
    let out = vm.ssh(&key, "hostname; cat /etc/hostname; netstat -lnt", "");
    assert!(out.starts_with("kalab-node-2\nkalab-env\n"), "{out}");
    assert!(out.contains(":22 "), "{out}");
    assert!(
        !out.contains(":25300 "),
        "the environment must not listen on 25300:\n{out}"
    );
}

#[test]
fn tarball_environment_and_descriptions() {
    let (inputs, _) = inputs();
    let tar = images::tarball_env(&inputs).expect("tarball env");
    let dd = images::dd_env(&inputs).expect("dd env");
    eprintln!(
        "tarball {} bytes, postinstall {} bytes",
        std::fs::metadata(&tar.image).unwrap().len(),
        std::fs::metadata(&tar.postinstall).unwrap().len()
    );
    let listing = run(Command::new("tar").arg("tzvf").arg(&tar.image));
    for f in [
        "./boot/vmlinuz",
        "./boot/initrd.img",
        "./root/.ssh/authorized_keys",
        "./usr/sbin/init",
    ] {
        assert!(listing.contains(f), "{f} missing from the tarball");
    }
    let keys = run(Command::new("tar")
        .arg("xzOf")
        .arg(&tar.image)
        .arg("./root/.ssh/authorized_keys"));
    assert_eq!(keys.trim(), inputs.authorized_key);
    let post = run(Command::new("tar").arg("tzf").arg(&tar.postinstall));
    assert_eq!(post.trim(), "postinstall.sh");

    for (env, kind, name) in [(&tar, "tar", "kalab-linux"), (&dd, "dd", "kalab-linux-dd")] {
        assert_eq!(env.name, name);
        let text = std::fs::read_to_string(&env.description).unwrap();
        let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let (desc, warnings) =
            kadeploy::envdesc::EnvDesc::from_value(&v).expect("valid description");
        assert!(warnings.is_empty(), "{warnings:?}");
        let v = desc.to_value();
        assert_eq!(v["name"], name);
        assert_eq!(v["image"]["kind"], kind);
        // The files are on the server that kalab runs kadeploy3d on: `server://` references to the
        // cached files (compared canonically: another run may have spelt the cache path differently).
        let same = |reference: &serde_json::Value, file: &Path| {
            let path = reference
                .as_str()
                .and_then(|r| r.strip_prefix("server://"))
                .unwrap_or_else(|| panic!("{reference} is not a server:// reference"));
            assert_eq!(
                std::fs::canonicalize(path).unwrap(),
                std::fs::canonicalize(file).unwrap()
            );
        };
        same(&v["image"]["file"], &env.image);
        same(&v["postinstalls"][0]["archive"], &env.postinstall);
        assert_eq!(v["filesystem"], "ext4");
        assert_eq!(v["boot"]["kernel"], "/boot/vmlinuz");
        assert!(
            v["boot"]["kernel_params"]
                .as_str()
                .unwrap()
                .contains("console=ttyS0")
        );
    }
}

#[test]
fn postinstall_marks_the_tree() {
    let (inputs, _) = inputs();
    let tar = images::tarball_env(&inputs).expect("tarball env");
    let scratch = scratch("post");
    let dir = &scratch.0;
    let dest = dir.join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    run(Command::new("tar")
        .arg("xzf")
        .arg(&tar.postinstall)
        .current_dir(dir));
    run(Command::new("./postinstall.sh")
        .current_dir(dir)
        .env("KADEPLOY_ENV_EXTRACTION_DIR", &dest)
        .env("KADEPLOY_ENV", "kalab-linux"));
    let marker = std::fs::read_to_string(dest.join("etc/kalab-marker")).unwrap();
    let host = run(&mut Command::new("hostname"));
    assert_eq!(marker, format!("kalab-linux {}", host));
}

#[test]
fn pxe_files_are_copied() {
    let (inputs, _) = inputs();
    let scratch = scratch("pxe");
    let dir = &scratch.0;
    images::pxe_files(&inputs, dir).expect("pxe files");
    for f in [
        "pxelinux.0",
        "ldlinux.c32",
        "chain.c32",
        "libcom32.c32",
        "libutil.c32",
    ] {
        assert!(std::fs::metadata(dir.join(f)).unwrap().len() > 1000, "{f}");
    }
}

#[test]
fn builds_are_cached_by_their_inputs() {
    let (inputs, _) = inputs();
    let first = images::deploy_kernel(&inputs).expect("deploy kernel");
    let t = Instant::now();
    let again = images::deploy_kernel(&inputs).expect("deploy kernel");
    let cached = t.elapsed();
    eprintln!("cached deploy kernel in {cached:?}");
    assert_eq!(first.initrd, again.initrd);
    assert!(cached < Duration::from_secs(5), "{cached:?}");

    let mut changed = inputs.clone();
    changed.authorized_key = format!("{} changed", inputs.authorized_key);
    let t = Instant::now();
    let rebuilt = images::deploy_kernel(&changed).expect("deploy kernel");
    eprintln!("rebuilt deploy kernel in {:?}", t.elapsed());
    assert_ne!(rebuilt.initrd, first.initrd);
    let _ = std::fs::remove_dir_all(rebuilt.initrd.parent().unwrap());
}

/// What the deployer does with the tarball environment, by hand: in the deploy kernel, partition,
/// format, extract, run the postinstall and `install_bootloader`; then the disk boots by the BIOS (syslinux's
/// MBR standing in for PXE's chain.c32) through extlinux into the environment, which shows the marker.
#[test]
fn tarball_environment_deploys_and_boots_by_extlinux() {
    let mbr = Path::new("/usr/lib/syslinux/mbr/mbr.bin");
    assert!(
        mbr.exists(),
        "{} is missing: install the Debian package syslinux-common",
        mbr.display()
    );
    let (inputs, key) = inputs();
    let dk = images::deploy_kernel(&inputs).expect("deploy kernel");
    let env = images::tarball_env(&inputs).expect("tarball env");
    let scratch = scratch("e2e");
    let dir = &scratch.0;
    let disk = dir.join("disk.img");
    sparse_disk(&disk, 512 << 20);
    let mut vm = Vm::boot(
        "kalab-node-3",
        Some((&dk.vmlinuz, &dk.initrd, &dk.params)),
        &disk,
        dir,
    );
    vm.wait_line("kalab-deploy-kernel ready", Duration::from_secs(300));
    let t = Instant::now();
    let env_vars = "KADEPLOY_ENV_EXTRACTION_DIR=/mnt/dest KADEPLOY_DEPLOY_PART=/dev/vda1 \
                    KADEPLOY_ENV=kalab-linux KADEPLOY_ENV_KERNEL=/boot/vmlinuz \
                    KADEPLOY_ENV_INITRD=/boot/initrd.img \
                    KADEPLOY_ENV_KERNEL_PARAMS='console=ttyS0,115200n8 panic=30'";
    vm.ssh(
        &key,
        "set -e; echo ',,83,*' | sfdisk -q /dev/vda; mkfs.ext4 -q -F /dev/vda1; \
         mkdir -p /mnt/dest; mount /dev/vda1 /mnt/dest",
        "",
    );
    let image = std::fs::File::open(&env.image).unwrap();
    let send = |command: &str, input: std::fs::File| {
        let out = Command::new("ssh")
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-i"])
            .arg(&key)
            .args(["-p", &vm.ssh.to_string(), "root@127.0.0.1", command])
            .stdin(input)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    send("tar xzf - -C /mnt/dest", image);
    send(
        "mkdir -p /rambin && tar xzf - -C /rambin",
        std::fs::File::open(&env.postinstall).unwrap(),
    );
    vm.ssh(
        &key,
        &format!(
            "set -e; cd /rambin; {env_vars} ./postinstall.sh; cat > /tmp/install_bootloader; \
             chmod +x /tmp/install_bootloader; {env_vars} /tmp/install_bootloader; umount /mnt/dest; sync"
        ),
        images::install_bootloader_script(),
    );
    eprintln!("tarball deployed by hand in {:?}", t.elapsed());
    // The node is powered off; QEMU exits.
    let _ = vm.ssh(&key, "(sleep 1; poweroff -f) >/dev/null 2>&1 &", "");
    vm.wait_exit(Duration::from_secs(60));
    drop(vm);

    let code = std::fs::read(mbr).unwrap();
    let mut f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
    std::io::Write::write_all(&mut f, &code).unwrap();
    drop(f);
    let mut vm = Vm::boot("kalab-node-3", None, &disk, dir);
    let (line, took) = vm.wait_line("kalab-env ready", Duration::from_secs(300));
    eprintln!("tarball env booted by extlinux after {took:?}: {line}");
    assert_eq!(line, "kalab-env ready kalab-node-3");
    let (marker, _) = vm.wait_line("kalab-env marker", Duration::from_secs(5));
    assert_eq!(marker, "kalab-env marker kalab-linux kalab-node-3");
    let out = vm.ssh(&key, "cat /etc/kalab-marker; cat /proc/cmdline", "");
    assert!(out.starts_with("kalab-linux kalab-node-3\n"), "{out}");
    assert!(out.contains("root=/dev/vda1"), "{out}");
}

#[test]
fn a_serial_line_still_being_written_is_not_read() {
    let log = "kalab-deploy-kernel ready kalab-node-1\nkalab-env ready ";
    assert_eq!(
        complete_lines(log).collect::<Vec<_>>(),
        ["kalab-deploy-kernel ready kalab-node-1"]
    );
    assert_eq!(complete_lines("kalab-env ready").count(), 0);
}

//! Test harness: real SSH servers (OpenSSH `sshd` and `dropbear`) on loopback addresses, each in its own
//! mount and PID namespace where `reboot`, `poweroff`, `halt` and `kexec` are fakes that log their
//! arguments, so operations that would reboot a node only write a line. Everything is removed on drop.

use hal::NodeInfo;
use hal::ssh::{SshConfig, SshNodeOps};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub use hal::testing::process::{require, sh};

/// Which SSH server a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// OpenSSH `sshd` with the machine's bash and GNU tools.
    OpenSsh,
    /// `dropbear` with busybox `sh` as root's shell and busybox tools first in `PATH` (a deploy kernel).
    Dropbear,
}

/// A scratch directory, a client key pair and servers; all removed on drop.
pub struct Lab {
    /// Scratch directory (visible to the servers: same file system).
    pub dir: PathBuf,
    /// Client private key.
    pub key: PathBuf,
    /// The port every server of the lab listens on.
    pub port: u16,
    servers: Vec<Child>,
}

impl Lab {
    /// A new lab with its key pair and fake power tools.
    pub fn new() -> Lab {
        let uid = sh("id -u");
        assert_eq!(
            uid.trim(),
            "0",
            "the SSH tests run as root (namespaces, mounts, sshd)"
        );
        require("ssh-keygen", "openssh-client");
        require("unshare", "util-linux");
        let dir = std::env::temp_dir().join(format!(
            "hal-ssh-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("fake")).unwrap();
        std::fs::create_dir_all(dir.join("private")).unwrap();
        let key = dir.join("id_ed25519");
        sh(&format!(
            "ssh-keygen -q -t ed25519 -N '' -C test -f {}",
            key.display()
        ));
        let fake = dir.join("fake/fake-power");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\necho FAKE\necho \"$(basename \"$0\") $*\" >> {}\n",
                dir.join("calls.log").display()
            ),
        )
        .unwrap();
        sh(&format!("chmod 755 {}", fake.display()));
        for name in ["reboot", "poweroff", "halt", "kexec"] {
            std::os::unix::fs::symlink(&fake, dir.join("fake").join(name)).unwrap();
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Lab {
            dir,
            key,
            port,
            servers: Vec::new(),
        }
    }

    /// The client's public key line.
    pub fn public_key(&self) -> String {
        std::fs::read_to_string(self.key.with_extension("pub")).unwrap()
    }

    /// What the fake power tools were called with, one call per line.
    pub fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.join("calls.log")).unwrap_or_default()
    }

    /// Starts a server of `flavor` on `ip` and the lab's port, and waits until it accepts.
    pub fn start(&mut self, flavor: Flavor, ip: &str) {
        let n = self.servers.len();
        let srv = self.dir.join(format!("srv{n}"));
        let bin = srv.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let fake = self.dir.join("fake/fake-power");
        // Shadow the power tools twice: fakes first in PATH, and bound over the real binaries.
        let mut setup = format!(
            "set -e; mount -t tmpfs node-local {private}; mount --bind {bin} /usr/local/sbin; for p in /usr/sbin/reboot /usr/sbin/poweroff /usr/sbin/halt /usr/sbin/kexec /usr/sbin/shutdown; do if [ -e $p ]; then mount --bind {fake} $p; fi; done; ",
            bin = bin.display(),
            fake = fake.display(),
            private = self.dir.join("private").display(),
        );
        for name in ["reboot", "poweroff", "halt", "kexec"] {
            std::os::unix::fs::symlink(&fake, bin.join(name)).unwrap();
        }
        let pubkey = self.public_key();
        let exec = match flavor {
            Flavor::OpenSsh => {
                require("/usr/sbin/sshd", "openssh-server");
                sh(&format!(
                    "ssh-keygen -q -t ed25519 -N '' -f {}/host_key",
                    srv.display()
                ));
                std::fs::write(srv.join("authorized_keys"), &pubkey).unwrap();
                let config = format!(
                    "Port {port}\nListenAddress {ip}\nHostKey {s}/host_key\nAuthorizedKeysFile {s}/authorized_keys\n\
                     PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     UsePAM no\nStrictModes no\nPidFile none\nMaxStartups 200:30:300\nMaxSessions 100\n",
                    port = self.port,
                    s = srv.display()
                );
                std::fs::write(srv.join("sshd_config"), config).unwrap();
                setup.push_str("mkdir -p /run/sshd; ");
                format!("exec /usr/sbin/sshd -D -e -f {}/sshd_config", srv.display())
            }
            Flavor::Dropbear => {
                require("dropbear", "dropbear-bin");
                require("dropbearkey", "dropbear-bin");
                require("busybox", "busybox-static");
                sh(&format!(
                    "dropbearkey -t ed25519 -f {}/host_key >/dev/null",
                    srv.display()
                ));
                let home = srv.join("home");
                std::fs::create_dir_all(home.join(".ssh")).unwrap();
                std::fs::write(home.join(".ssh/authorized_keys"), &pubkey).unwrap();
                sh(&format!(
                    "chmod 700 {h} {h}/.ssh && chmod 600 {h}/.ssh/authorized_keys",
                    h = home.display()
                ));
                let applets = sh("busybox --list");
                for applet in applets.lines() {
                    if !["reboot", "poweroff", "halt", "busybox"].contains(&applet) {
                        let link = bin.join(applet);
                        if !link.exists() {
                            std::os::unix::fs::symlink("/bin/busybox", link).unwrap();
                        }
                    }
                }
                let shell = bin.join("sh");
                let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
                let passwd: String = passwd
                    .lines()
                    .map(|l| {
                        if l.starts_with("root:") {
                            let mut f: Vec<&str> = l.split(':').collect();
                            let s = shell.to_str().unwrap();
                            *f.last_mut().unwrap() = s;
                            f.join(":") + "\n"
                        } else {
                            format!("{l}\n")
                        }
                    })
                    .collect();
                std::fs::write(srv.join("passwd"), passwd).unwrap();
                let shells = std::fs::read_to_string("/etc/shells").unwrap();
                std::fs::write(srv.join("shells"), format!("{shells}{}\n", shell.display()))
                    .unwrap();
                setup.push_str(&format!(
                    "mount --bind {s}/home /root; mount --bind {s}/passwd /etc/passwd; mount --bind {s}/shells /etc/shells; ",
                    s = srv.display()
                ));
                // PID 1 of the namespace is this shell, which stops (with the whole namespace) on the
                // signals busybox's reboot and poweroff send to init.
                format!(
                    "trap 'exit 0' TERM HUP INT USR1 USR2; dropbear -F -E -s -j -k -p {ip}:{port} -r {s}/host_key & wait",
                    port = self.port,
                    s = srv.display()
                )
            }
        };
        let log = std::fs::File::create(srv.join("server.log")).unwrap();
        let child = Command::new("unshare")
            .args([
                "-m",
                "-p",
                "-f",
                "--kill-child",
                "--mount-proc",
                "--propagation",
                "private",
            ])
            .args(["sh", "-c", &format!("{setup}{exec}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn unshare");
        self.servers.push(child);
        let addr = SocketAddr::new(ip.parse().unwrap(), self.port);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            let exited = self.servers.last_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "{flavor:?} server on {addr} did not start: {}",
                std::fs::read_to_string(srv.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the server at `ip` refuses connections (its node "rebooted"), at most 10 s.
    pub async fn wait_down(&self, ip: &str) {
        let addr = SocketAddr::new(ip.parse().unwrap(), self.port);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            assert!(Instant::now() < deadline, "{addr} still up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An SSH configuration with the lab's key and port, short timeouts.
    pub fn config(&self) -> SshConfig {
        let mut config = SshConfig::new(&self.key);
        config.port = self.port;
        config.connect_timeout = Duration::from_secs(5);
        config.command_timeout = Duration::from_secs(30);
        config
    }

    /// A backend over nodes at `ips` (`node-<i>.lab` is `ips[i]`).
    pub fn ops(&self, ips: &[&str]) -> SshNodeOps {
        SshNodeOps::new(nodes(ips), self.config()).unwrap()
    }

    /// A path inside `private`, a directory where each server has its own tmpfs (node-local storage).
    pub fn private(&self, rel: &str) -> String {
        s(&self.dir.join("private").join(rel))
    }

    /// A path inside the scratch directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

/// Asserts that a detached operation (a reboot or power-off) returned within `limit` of `start`,
/// without waiting for the node to go down.
pub fn assert_detached(start: Instant, limit: Duration) {
    assert!(start.elapsed() < limit, "detached: {:?}", start.elapsed());
}

/// Nodes `node-<i>.lab` at `ips`.
pub fn nodes(ips: &[&str]) -> Vec<NodeInfo> {
    ips.iter()
        .enumerate()
        .map(|(i, ip)| NodeInfo {
            name: format!("node-{i}.lab"),
            address: ip.parse::<IpAddr>().unwrap(),
        })
        .collect()
}

/// A path as a `String`.
pub fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.servers {
            // Kill the namespace's init (unshare's child) so unshare reaps it and exits; killing unshare
            // first would leave its child a zombie of the machine's init.
            let pid = child.id();
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            for init in children.split_whitespace() {
                let _ = Command::new("sh")
                    .args(["-c", &format!("kill -KILL {init}")])
                    .status();
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Panics unless rebooting the node at `ops`' first node is harmless: an OpenSSH node must run the
/// fake `reboot`/`poweroff`; a busybox node (whose shell runs the real applets) must be inside its own
/// PID namespace, where `reboot(2)` and signals to its PID 1 only stop the namespace.
pub async fn assert_safe_to_reboot(ops: &SshNodeOps, flavor: Flavor) {
    let node = hal::NodeId(0);
    match flavor {
        Flavor::OpenSsh => {
            let out = ops
                .exec(node, "reboot --probe; poweroff --probe", b"")
                .await
                .unwrap();
            assert_eq!(out.stdout_text(), "FAKE\nFAKE", "power tools must be fakes");
        }
        Flavor::Dropbear => {
            let out = ops
                .exec(node, "readlink /proc/self/ns/pid", b"")
                .await
                .unwrap();
            let host_ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
            let node_ns = out.stdout_text();
            assert!(node_ns.starts_with("pid:["), "{out:?}");
            assert_ne!(
                node_ns,
                host_ns.to_str().unwrap(),
                "the node must have its own PID namespace"
            );
        }
    }
}

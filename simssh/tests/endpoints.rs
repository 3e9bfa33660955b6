//! The SSH endpoints against the real OpenSSH client and raw sockets, on a simulated cluster running in
//! real time: what a node accepts (root, public keys it holds or configured ones), how the shell, scp
//! and the ports follow the node's state, and the attacks an endpoint must resist. Before the `simssh`
//! crate, simulated nodes had no endpoint at all.

use hal::{
    BootProfile, NetBoot, NodeId, NodeInfo, NodeOps, Operation, Power, PowerAction, PowerLevel,
};
use simssh::{Clock, ClockFuture, Endpoints};
use simulator::cluster::SimCluster;
use simulator::params::{SimParams, SshParams};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Boots and operations of a fraction of a second: the cluster runs in real time here.
const FAST: &str = "boot: {firmware: {mean: 0.2, sd: 0, min: 0}, pxe: {mean: 0.1, sd: 0, min: 0}, \
    kernel: {mean: 0.2, sd: 0, min: 0}, shutdown: {mean: 0.1, sd: 0, min: 0}, kexec_delay: 0.1}\n\
    power: {command_latency: {mean: 0.05, sd: 0, min: 0}}\n\
    ops: {ssh_latency: 0.01, partition: 0.01, swap: 0.01, mount: 0.01, sync: 0.01, postinstall: 0.01, bootloader: 0.01}\n";

/// A cluster of two nodes with endpoints on `127.1.<base>.1` and `.2`, and the test's keys.
struct Lab {
    rt: tokio::runtime::Runtime,
    sim: Arc<SimCluster>,
    endpoints: Option<Endpoints>,
    dir: PathBuf,
    port: u16,
    base: u8,
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) runs");
    assert!(ok.success());
}

impl Lab {
    /// `base` keeps each test on its own addresses (`127.1.<base>.x`).
    fn new(name: &str, base: u8, max_connections: usize) -> Lab {
        let dir = std::env::temp_dir().join(format!("simssh-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        keygen(&dir.join("admin"));
        keygen(&dir.join("stranger"));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let nodes: Vec<NodeInfo> = (1..=2)
            .map(|i| NodeInfo {
                name: format!("n{i}.lab"),
                address: IpAddr::from([10, 0, 0, i]),
            })
            .collect();
        let params = SimParams::from_yaml_str(FAST).expect("params");
        let offset = usize::from(base) * 256;
        let probe = TcpListener::bind((std::net::Ipv4Addr::new(127, 1, base, 1), 0)).expect("bind");
        let port = probe.local_addr().expect("addr").port();
        drop(probe);
        let ssh = SshParams {
            port,
            max_connections,
            ..SshParams::default()
        };
        let admin = std::fs::read_to_string(dir.join("admin.pub")).expect("admin.pub");
        let keys = simssh::keys::parse_authorized_keys(&admin);
        let (sim, endpoints) = rt.block_on(async {
            let sim = Arc::new(SimCluster::new(nodes, params, 1).expect("cluster"));
            let clock_sim = sim.clone();
            let clock: Clock = Arc::new(move || -> ClockFuture {
                let sim = clock_sim.clone();
                Box::pin(async move { Some(sim.now()) })
            });
            let endpoints =
                simssh::start(sim.clone(), &ssh, offset, keys, clock).expect("endpoints");
            (sim, endpoints)
        });
        Lab {
            rt,
            sim,
            endpoints: Some(endpoints),
            dir,
            port,
            base,
        }
    }

    fn addr(&self, node: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([127, 1, self.base, node], port))
    }

    fn key(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn opts(&self, cmd: &mut Command, key: &str) {
        cmd.arg("-i")
            .arg(self.key(key))
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "IdentitiesOnly=yes",
            ])
            .args(["-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR"]);
    }

    /// `ssh -p PORT [extra] USER@node command`, retried while the port is not open yet.
    fn ssh_as(
        &self,
        user: &str,
        key: &str,
        node: u8,
        extra: &[&str],
        command: &str,
        stdin: Option<&str>,
    ) -> Output {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut cmd = Command::new("ssh");
            self.opts(&mut cmd, key);
            cmd.args(["-p", &self.port.to_string()])
                .args(extra)
                .arg(format!("{user}@127.1.{}.{node}", self.base));
            if !command.is_empty() {
                cmd.arg(command);
            }
            let out = match stdin {
                None => cmd.stdin(Stdio::null()).output().expect("ssh runs"),
                Some(text) => {
                    let mut child = cmd
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("ssh runs");
                    let _ = child
                        .stdin
                        .take()
                        .expect("stdin")
                        .write_all(text.as_bytes());
                    child.wait_with_output().expect("ssh ends")
                }
            };
            if !String::from_utf8_lossy(&out.stderr).contains("Connection refused")
                || Instant::now() > deadline
            {
                return out;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn ssh(&self, node: u8, command: &str) -> Output {
        self.ssh_as(
            "root",
            "admin",
            node,
            &["-o", "BatchMode=yes"],
            command,
            None,
        )
    }

    /// Waits until `addr` accepts (or refuses) connections.
    fn wait_port(&self, addr: SocketAddr, open: bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() == open {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        drop(self.endpoints.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn explain(o: &Output) -> String {
    format!(
        "status {:?}, stdout {:?}, stderr {:?}",
        o.status.code(),
        out(o),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn exec_and_interactive_shells_work_on_the_nodes_files() {
    let lab = Lab::new("shell", 11, 64);
    let o = lab.ssh(1, "hostname; uname -n; echo \"$HOME\" && false || echo fallback; cat /etc/hostname | wc -l; exit 7");
    assert_eq!(o.status.code(), Some(7), "{}", explain(&o));
    assert_eq!(out(&o), "n1.lab\nn1\n/root\nfallback\n1\n");
    let o = lab.ssh(
        2,
        "sh -c 'echo $0 $1' a b; test -d /etc && test ! -e /nope; echo $?; nosuch",
    );
    assert_eq!(out(&o), "a b\n0\n");
    assert_eq!(o.status.code(), Some(127), "{}", explain(&o));
    // A shell without a command reads its script from stdin (no pty); state carries across lines.
    let o = lab.ssh_as(
        "root",
        "admin",
        1,
        &["-T", "-o", "BatchMode=yes"],
        "",
        Some("cd /tmp\necho hi > f\nls\ncat f\nexit 3\necho never\n"),
    );
    assert_eq!(o.status.code(), Some(3), "{}", explain(&o));
    assert_eq!(out(&o), "f\nhi\n");
    // `cat > file` reads the client's stdin until EOF.
    let o = lab.ssh_as(
        "root",
        "admin",
        1,
        &["-o", "BatchMode=yes"],
        "cat > /tmp/in; cat /tmp/in",
        Some("from stdin\n"),
    );
    assert_eq!(out(&o), "from stdin\n", "{}", explain(&o));
}

/// Attack: log in with a password, as another user, or with a key the node does not hold. Before: no
/// endpoint; an endpoint accepting every key (russh's default `auth_publickey_offered` accepts all
/// offers) would let anyone in.
#[test]
fn only_root_with_an_accepted_public_key_logs_in() {
    let lab = Lab::new("auth", 12, 64);
    let pw = lab.ssh_as(
        "root",
        "admin",
        1,
        &[
            "-o",
            "BatchMode=yes",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
        ],
        "true",
        None,
    );
    assert_eq!(pw.status.code(), Some(255), "{}", explain(&pw));
    assert!(
        String::from_utf8_lossy(&pw.stderr).contains("Permission denied (publickey)"),
        "{}",
        explain(&pw)
    );
    let stranger = lab.ssh_as(
        "root",
        "stranger",
        1,
        &["-o", "BatchMode=yes"],
        "true",
        None,
    );
    assert_eq!(stranger.status.code(), Some(255), "{}", explain(&stranger));
    let other = lab.ssh_as("admin", "admin", 1, &["-o", "BatchMode=yes"], "true", None);
    assert_eq!(other.status.code(), Some(255), "{}", explain(&other));
    // A key installed by a deployment step is accepted from then on.
    let key = std::fs::read_to_string(lab.key("stranger.pub")).expect("key");
    let op = Operation::SendKey {
        keys: key,
        destination: "/root/.ssh/authorized_keys".into(),
    };
    let outcomes = lab.rt.block_on(lab.sim.run(&op, &[NodeId(0)]));
    assert!(outcomes.failures().is_empty());
    let now = lab.ssh_as(
        "root",
        "stranger",
        1,
        &["-o", "BatchMode=yes"],
        "cat /root/.ssh/authorized_keys | wc -l",
        None,
    );
    assert_eq!(out(&now), "1\n", "{}", explain(&now));
}

/// Attack: escape the simulated file system (`..`, absolute host paths) through the shell and scp.
/// Before: no endpoint; a shell running host commands would have printed the host's files.
#[test]
fn paths_never_leave_the_simulated_node() {
    let lab = Lab::new("paths", 13, 64);
    let o = lab.ssh(
        1,
        "cat ../../../../etc/shadow; ls /; cat /proc/self/environ",
    );
    assert_eq!(
        out(&o),
        "bin\nboot\ndev\netc\nhome\nmnt\nroot\ntmp\nusr\nvar\n",
        "{}",
        explain(&o)
    );
    assert_eq!(o.status.code(), Some(1));
    let mut cmd = Command::new("scp");
    lab.opts(&mut cmd, "admin");
    let back = lab.dir.join("shadow");
    let o = cmd
        .args(["-O", "-P", &lab.port.to_string()])
        .arg(format!("root@127.1.{}.1:../../etc/shadow", lab.base))
        .arg(&back)
        .stdin(Stdio::null())
        .output()
        .expect("scp runs");
    assert!(!o.status.success() && !back.exists(), "{}", explain(&o));
}

/// Attack: exhaust the endpoints with connections, huge commands or huge uploads. Before: no endpoint;
/// unbounded, each would hold memory or tasks without limit.
#[test]
fn connections_commands_and_uploads_are_bounded() {
    let lab = Lab::new("bounds", 14, 2);
    let addr = lab.addr(1, lab.port);
    assert!(lab.wait_port(addr, true));
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut banner = [0u8; 8];
        s.read_exact(&mut banner).expect("banner");
        assert_eq!(&banner, b"SSH-2.0-");
        held.push(s);
    }
    let mut third = TcpStream::connect(addr).expect("connect");
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 8];
    assert_eq!(
        third.read(&mut buf).unwrap_or(0),
        0,
        "a connection over the bound is closed at once"
    );
    drop(held);
    drop(third);
    std::thread::sleep(Duration::from_millis(300));
    let long = format!("echo {}", "x".repeat(simssh_max_command() + 1));
    let o = lab.ssh(1, &long);
    assert_eq!(o.status.code(), Some(126), "{}", explain(&o));
    let big = lab.dir.join("big");
    std::fs::write(&big, vec![b'x'; simssh::vfs::MAX_FILE_BYTES + 1]).expect("big file");
    for legacy in [true, false] {
        let mut cmd = Command::new("scp");
        if legacy {
            cmd.arg("-O");
        }
        lab.opts(&mut cmd, "admin");
        let o = cmd
            .args(["-P", &lab.port.to_string()])
            .arg(&big)
            .arg(format!("root@127.1.{}.1:/tmp/big", lab.base))
            .stdin(Stdio::null())
            .output()
            .expect("scp");
        assert!(
            !o.status.success(),
            "an upload over the file bound fails: {}",
            explain(&o)
        );
    }
    // What a failed upload left (a partial file, as a full disk would) stays within the bound.
    let o = lab.ssh(1, "wc -c < /tmp/big");
    let kept: usize = out(&o).trim().parse().unwrap_or(0);
    assert!(kept <= simssh::vfs::MAX_FILE_BYTES, "{}", explain(&o));
}

/// The longest command an exec request may carry.
fn simssh_max_command() -> usize {
    64 << 10
}

#[test]
fn ports_follow_power_and_the_boot_profile() {
    let lab = Lab::new("ports", 15, 64);
    let (ssh, deploy) = (lab.addr(2, lab.port), lab.addr(2, 25300));
    assert!(lab.wait_port(ssh, true), "sshd of a running node");
    assert!(lab.wait_port(deploy, false), "no 25300 in production");
    let profile = BootProfile::DeployKernel {
        kernel: "k".into(),
        initrd: "i".into(),
        params: String::new(),
    };
    lab.rt.block_on(async {
        assert!(
            lab.sim
                .set_profile(&[NodeId(1)], &profile)
                .await
                .failures()
                .is_empty()
        );
        assert!(
            lab.sim
                .power(PowerAction::Reboot, PowerLevel::Hard, &[NodeId(1)])
                .await
                .failures()
                .is_empty()
        );
    });
    assert!(
        lab.wait_port(deploy, true),
        "25300 opens in the deploy kernel"
    );
    let o = lab.ssh(2, "uname -r; cat /etc/os-release | grep -c kadeploy");
    assert_eq!(out(&o), "6.1.0-kadeploy-amd64\n1\n", "{}", explain(&o));
    // A session open on the node ends when the node goes down.
    let mut cmd = Command::new("ssh");
    lab.opts(&mut cmd, "admin");
    let mut open = cmd
        .args(["-T", "-o", "BatchMode=yes", "-p", &lab.port.to_string()])
        .arg(format!("root@127.1.{}.2", lab.base))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ssh runs");
    let mut stdin = open.stdin.take().expect("stdin");
    stdin.write_all(b"hostname\n").expect("a line");
    let mut line = [0u8; 6];
    let mut stdout = open.stdout.take().expect("stdout");
    stdout.read_exact(&mut line).expect("the shell answers");
    assert_eq!(&line, b"n2.lab");
    lab.rt.block_on(async {
        let off = lab
            .sim
            .power(PowerAction::Off, PowerLevel::Hard, &[NodeId(1)]);
        assert!(off.await.failures().is_empty());
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let ended = loop {
        match open.try_wait() {
            Ok(Some(status)) => break Some(status),
            _ if Instant::now() > deadline => break None,
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    if ended.is_none() {
        let _ = open.kill();
        let _ = open.wait();
    }
    drop(stdin);
    assert!(
        ended.is_some_and(|s| !s.success()),
        "the session was cut: {ended:?}"
    );
    assert!(lab.wait_port(ssh, false), "a powered-off node refuses SSH");
    assert!(lab.wait_port(deploy, false), "and 25300");
}

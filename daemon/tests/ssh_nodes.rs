//! Deploy, then SSH (issue 12, "simulated nodes that answer SSH"): the real `kadeploy3d` with the
//! simulated backend and `ssh` in `simulation.conf` deploys 50 of 52 simulated nodes with our `kadeploy3`
//! (`-k`), then the real OpenSSH client runs `hostname` and a post-install check on all 50, `scp` copies
//! a file to and from a node (SFTP and legacy protocol), and nodes redeployed, rebooted or rebooted into
//! the deploy kernel answer accordingly (port 25300, files, keys). Before this, the simulated nodes had
//! no network endpoint at all: every `ssh` here was refused.

#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;

use harness::{Server, config_copy, image_dir, setup};
use kadeploy_clients::{ClientEnv, tools, workflow};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Nodes of the test cluster; the first `DEPLOYED` are deployed.
const NODES: usize = 52;
const DEPLOYED: usize = 50;

fn s(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn node(i: usize) -> String {
    format!("node-{i}.sim.kadeploy")
}

/// Node `i`'s endpoint address (the `loopback` layout: node-1 is 127.1.0.1).
fn addr(i: usize, port: u16) -> SocketAddr {
    let ip =
        std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(127, 1, 0, 1)) + (i as u32 - 1));
    SocketAddr::new(ip.into(), port)
}

/// A port free on node-1's address (every node uses the same port on its own address).
fn free_port() -> u16 {
    let l = TcpListener::bind(addr(1, 0)).expect("bind 127.1.0.1");
    l.local_addr().expect("addr").port()
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) runs");
    assert!(ok.success());
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .expect("the OpenSSH client runs")
}

/// The test's files and the OpenSSH options every call uses.
struct Site {
    dir: PathBuf,
    user_key: PathBuf,
    admin_key: PathBuf,
    port: u16,
}

impl Site {
    fn ssh_opts(&self, cmd: &mut Command, key: &Path) {
        cmd.arg("-F")
            .arg(self.dir.join("conf/ssh_config"))
            .arg("-i")
            .arg(key)
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
                "IdentitiesOnly=yes",
                "-o",
                "ConnectTimeout=20",
            ]);
    }

    /// `ssh root@NODE command` with `key`, retried while the node's port is not open yet.
    fn ssh(&self, key: &Path, i: usize, command: &str) -> Output {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut cmd = Command::new("ssh");
            self.ssh_opts(&mut cmd, key);
            let out = run(cmd.arg(format!("root@{}", node(i))).arg(command));
            let refused = String::from_utf8_lossy(&out.stderr).contains("Connection refused");
            if !refused || Instant::now() > deadline {
                return out;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn scp(&self, legacy: bool, from: &str, to: &str) -> Output {
        let mut cmd = Command::new("scp");
        if legacy {
            cmd.arg("-O");
        }
        self.ssh_opts(&mut cmd, &self.user_key);
        run(cmd.args(["-q", from, to]))
    }

    /// True when node `i`'s port 25300 accepts connections.
    fn deploy_port_open(&self, i: usize) -> bool {
        TcpStream::connect_timeout(&addr(i, 25300), Duration::from_secs(2)).is_ok()
    }

    /// Waits until node `i`'s port 25300 is `open` (the endpoints follow the cluster every 100 ms).
    fn wait_deploy_port(&self, i: usize, open: bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.deploy_port_open(i) == open {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn explain(o: &Output) -> String {
    format!(
        "status {:?}, stdout {:?}, stderr {:?}",
        o.status.code(),
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The configuration: 52 nodes, the test's directory allowed for `server://`, SSH endpoints on.
fn configure(dir: &Path, port: u16) -> PathBuf {
    let conf = config_copy(dir, true);
    let clusters = conf.join("clusters.conf");
    let text = std::fs::read_to_string(&clusters).expect("clusters.conf");
    let start = text.find("    nodes:\n").expect("the sample's node list");
    let text = format!(
        "{}    nodes:\n      - name: node-[1-{NODES}].sim.kadeploy\n        address: 10.16.0.[1-{NODES}]\n",
        &text[..start]
    );
    std::fs::write(&clusters, text).expect("clusters.conf");
    let server = conf.join("server.conf");
    let text = std::fs::read_to_string(&server).expect("server.conf");
    let allowed = format!("    - {}\n", image_dir().display());
    assert!(text.contains(&allowed), "the harness's image directory");
    let text = text.replace(&allowed, &format!("{allowed}    - {}\n", dir.display()));
    std::fs::write(&server, text).expect("server.conf");
    let sim = conf.join("simulation.conf");
    let mut text = std::fs::read_to_string(&sim).expect("simulation.conf");
    text.push_str(&format!(
        "ssh: {{port: {port}, authorized_keys: admin.pub, ssh_config: ssh_config}}\n"
    ));
    std::fs::write(&sim, text).expect("simulation.conf");
    std::fs::copy(dir.join("admin.pub"), conf.join("admin.pub")).expect("admin key");
    conf
}

/// A tar.gz of `files` (path, content) at `archive`.
fn tarball(dir: &Path, archive: &Path, files: &[(&str, &str)]) {
    let root = dir.join(format!(
        "{}.d",
        archive.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    for (path, content) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("dirs");
        std::fs::write(p, content).expect("file");
    }
    let ok = Command::new("tar")
        .arg("czf")
        .arg(archive)
        .arg("-C")
        .arg(&root)
        .arg(".")
        .status()
        .expect("tar runs");
    assert!(ok.success());
}

const POST_INSTALL: &str = "#!/bin/sh\n# post-install of the acceptance test\nmkdir -p \"$KADEPLOY_ENV_EXTRACTION_DIR/root\"\n\
    hostname > \"$KADEPLOY_ENV_EXTRACTION_DIR/etc/hostname\"\n\
    echo \"post-install of $KADEPLOY_ENV ok\" > \"$KADEPLOY_ENV_EXTRACTION_DIR/root/postinstall.done\"\n";

/// Records the environment and gives root every right.
fn prepare(dir: &Path, root: &ClientEnv) {
    tarball(
        dir,
        &dir.join("image.tgz"),
        &[
            ("etc/motd", "debian12-ssh image\n"),
            ("boot/vmlinuz", "kernel"),
        ],
    );
    tarball(dir, &dir.join("post.tgz"), &[("post.sh", POST_INSTALL)]);
    let env = dir.join("env.yml");
    let d = dir.display();
    std::fs::write(
        &env,
        format!(
            "name: debian12-ssh\nversion: 1\nvisibility: shared\nos: linux\nfilesystem: ext4\n\
        image: {{file: 'server://{d}/image.tgz', kind: tar, compression: gzip}}\n\
        postinstalls: [{{archive: 'server://{d}/post.tgz', compression: gzip, script: post.sh}}]\n\
        boot: {{kernel: /boot/vmlinuz}}\n"
        ),
    )
    .expect("env");
    assert_eq!(
        tools::karights(&s(&["-a", "-u", "root", "-m", "*", "-p", "*"]), root),
        0
    );
    assert_eq!(
        tools::kaenv(&s(&["-a", env.to_str().unwrap_or_default()]), root),
        0
    );
}

fn client(dir: &Path, port: u16) -> ClientEnv {
    let conf = format!(
        "default: t\nservers:\n  - {{name: t, hostname: 127.0.0.1, port: {port}, secure: true}}\n"
    );
    std::fs::write(dir.join("client.conf"), conf).expect("client.conf");
    ClientEnv {
        config_dir: dir.to_path_buf(),
        user: "root".into(),
    }
}

/// `kadeploy3 -e debian12-ssh -k USER_KEY` on `nodes`; every node must end in the OK file.
fn deploy(site: &Site, root: &ClientEnv, nodes: &[usize]) {
    let list = site.dir.join("nodes");
    std::fs::write(
        &list,
        nodes
            .iter()
            .map(|&i| node(i))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .expect("nodes");
    // kadeploy3 -o appends: one file per call.
    let ok = site.dir.join(format!("ok-{}", nodes.len()));
    let _ = std::fs::remove_file(&ok);
    let key = site.user_key.with_extension("pub");
    let args = [
        "-e",
        "debian12-ssh",
        "-f",
        list.to_str().unwrap_or_default(),
        "-k",
        key.to_str().unwrap_or_default(),
        "-o",
        ok.to_str().unwrap_or_default(),
    ];
    assert_eq!(workflow::deploy(&s(&args), root), 0);
    let done = std::fs::read_to_string(&ok).unwrap_or_default();
    assert_eq!(
        done.lines().count(),
        nodes.len(),
        "every node deployed: {done}"
    );
}

/// Runs `check` on every deployed node, ten OpenSSH clients at a time.
fn on_every_node(site: &Site, command: &str, check: impl Fn(usize, &Output) + Sync) {
    let nodes: Vec<usize> = (1..=DEPLOYED).collect();
    std::thread::scope(|scope| {
        for chunk in nodes.chunks(DEPLOYED / 10) {
            let check = &check;
            scope.spawn(move || {
                for &i in chunk {
                    check(i, &site.ssh(&site.user_key, i, command));
                }
            });
        }
    });
}

#[test]
fn deploy_50_nodes_then_ssh_scp_and_the_deploy_kernel() {
    let dir = setup("ssh-nodes");
    let (user_key, admin_key) = (dir.join("id_user"), dir.join("id_admin"));
    keygen(&user_key);
    keygen(&admin_key);
    std::fs::copy(admin_key.with_extension("pub"), dir.join("admin.pub")).expect("admin.pub");
    let port = free_port();
    let conf = configure(&dir, port);
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    let root = client(&dir, server.port);
    let site = Site {
        dir: dir.clone(),
        user_key,
        admin_key,
        port,
    };
    prepare(&dir, &root);
    // Before any deployment the production system accepts only the configured key.
    let before = site.ssh(&site.user_key, 1, "hostname");
    assert_eq!(
        before.status.code(),
        Some(255),
        "the user's key before -k: {}",
        explain(&before)
    );
    let started = Instant::now();
    deploy(&site, &root, &(1..=DEPLOYED).collect::<Vec<_>>());
    eprintln!("deployment of {DEPLOYED} nodes: {:?}", started.elapsed());
    let started = Instant::now();

    on_every_node(&site, "hostname", |i, out| {
        assert!(
            out.status.success(),
            "hostname on node-{i}: {}",
            explain(out)
        );
        assert_eq!(stdout(out), node(i));
    });
    on_every_node(
        &site,
        "test -f /root/postinstall.done && cat /root/postinstall.done /etc/motd && uname -a",
        |i, out| {
            assert!(
                out.status.success(),
                "post-install check on node-{i}: {}",
                explain(out)
            );
            let text = stdout(out);
            assert!(
                text.starts_with(
                    "post-install of debian12-ssh ok\ndebian12-ssh image\nLinux node-"
                ),
                "node-{i}: {text}"
            );
        },
    );
    eprintln!(
        "{} OpenSSH sessions (10 at a time): {:?}",
        2 * DEPLOYED,
        started.elapsed()
    );
    // The 51st node was not deployed: production system, only the configured key.
    let prod = site.ssh(&site.user_key, DEPLOYED + 1, "hostname");
    assert_eq!(prod.status.code(), Some(255), "{}", explain(&prod));
    let admin = site.ssh(
        &site.admin_key,
        DEPLOYED + 1,
        "test -f /root/postinstall.done",
    );
    assert_eq!(admin.status.code(), Some(1), "{}", explain(&admin));
    assert!(
        !site.deploy_port_open(1),
        "port 25300 is closed in a deployed system"
    );

    // scp to and from node-1, over SFTP (OpenSSH's default) and the legacy protocol.
    let local = dir.join("upload.txt");
    std::fs::write(&local, "payload\n".repeat(1000)).expect("upload");
    for (legacy, name) in [(false, "sftp.txt"), (true, "legacy.txt")] {
        let remote = format!("root@{}:/root/{name}", node(1));
        let up = site.scp(legacy, local.to_str().unwrap_or_default(), &remote);
        assert!(up.status.success(), "scp upload ({name}): {}", explain(&up));
        let back = dir.join(format!("back-{name}"));
        let down = site.scp(legacy, &remote, back.to_str().unwrap_or_default());
        assert!(
            down.status.success(),
            "scp download ({name}): {}",
            explain(&down)
        );
        assert_eq!(std::fs::read(&back).ok(), std::fs::read(&local).ok());
    }
    let wc = site.ssh(&site.user_key, 1, "wc -c < /root/sftp.txt; ls /root");
    assert_eq!(
        stdout(&wc),
        "8000\nlegacy.txt\npostinstall.done\nsftp.txt",
        "{}",
        explain(&wc)
    );

    // A simple reboot lands in the deployed system again: the uploaded file is still on its disk.
    assert_eq!(
        workflow::reboot(&s(&["-r", "simple", "-m", &node(1)]), &root),
        0
    );
    let after = site.ssh(&site.user_key, 1, "cat /root/legacy.txt | wc -l");
    assert_eq!(stdout(&after), "1000", "{}", explain(&after));

    // node-2 rebooted into the deploy kernel (with the user's key): port 25300 opens, the deployed files
    // are not its root file system any more.
    let key = site.user_key.with_extension("pub");
    let args = [
        "-r",
        "deploy_env",
        "-m",
        &node(2),
        "-k",
        key.to_str().unwrap_or_default(),
    ];
    assert_eq!(workflow::reboot(&s(&args), &root), 0);
    assert!(
        site.wait_deploy_port(2, true),
        "port 25300 opens in the deploy kernel"
    );
    let mini = site.ssh(
        &site.user_key,
        2,
        "uname -r; test -f /root/postinstall.done",
    );
    assert_eq!(mini.status.code(), Some(1), "{}", explain(&mini));
    assert_eq!(stdout(&mini), "6.1.0-kadeploy-amd64");
    // Redeployed, it is back in the deployed system: port 25300 closed, the post-install's file there.
    deploy(&site, &root, &[2]);
    assert!(
        site.wait_deploy_port(2, false),
        "port 25300 closes in the deployed system"
    );
    let again = site.ssh(&site.user_key, 2, "cat /root/postinstall.done");
    assert_eq!(
        stdout(&again),
        "post-install of debian12-ssh ok",
        "{}",
        explain(&again)
    );
    drop(server);
    // The daemon is gone: so are the endpoints.
    assert!(TcpStream::connect_timeout(&addr(1, site.port), Duration::from_secs(2)).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

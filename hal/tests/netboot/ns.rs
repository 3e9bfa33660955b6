//! Test harness: a server and a client network namespace joined by a veth pair, both removed on drop
//! (also on panic), and child processes killed by PID.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The server side's address.
pub const SERVER_IP: &str = "10.77.0.1";

pub use hal::testing::process::require;
use hal::testing::process::run;

/// Two namespaces and a veth pair.
pub struct Net {
    /// Server namespace.
    pub server: String,
    /// Client namespace.
    pub client: String,
    /// Interface of the server namespace.
    pub server_if: String,
    /// Interface of the client namespace.
    pub client_if: String,
    /// Scratch directory, removed on drop.
    pub dir: PathBuf,
    children: Vec<Child>,
}

impl Net {
    /// Creates the namespaces; the server side gets `10.77.0.1/24`, the client side none.
    pub fn new(tag: &str) -> Net {
        require("ip", "iproute2");
        let id = format!(
            "{}{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("hal-netboot-{tag}-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let net = Net {
            server: format!("kbt{id}s"),
            client: format!("kbt{id}c"),
            server_if: format!("kv{id}s"),
            client_if: format!("kv{id}c"),
            dir,
            children: Vec::new(),
        };
        run(&["ip", "netns", "add", &net.server]);
        run(&["ip", "netns", "add", &net.client]);
        run(&[
            "ip",
            "link",
            "add",
            &net.server_if,
            "type",
            "veth",
            "peer",
            "name",
            &net.client_if,
        ]);
        run(&["ip", "link", "set", &net.server_if, "netns", &net.server]);
        run(&["ip", "link", "set", &net.client_if, "netns", &net.client]);
        net.exec_ok(&net.server, &["ip", "link", "set", "lo", "up"]);
        net.exec_ok(&net.client, &["ip", "link", "set", "lo", "up"]);
        net.exec_ok(
            &net.server,
            &[
                "ip",
                "addr",
                "add",
                &format!("{SERVER_IP}/24"),
                "dev",
                &net.server_if,
            ],
        );
        net.exec_ok(&net.server, &["ip", "link", "set", &net.server_if, "up"]);
        net.exec_ok(&net.client, &["ip", "link", "set", &net.client_if, "up"]);
        net
    }

    /// Gives the client side an address (for TFTP/HTTP tests that skip DHCP).
    pub fn client_address(&self, cidr: &str) {
        self.exec_ok(
            &self.client,
            &["ip", "addr", "add", cidr, "dev", &self.client_if],
        );
    }

    /// Runs a command in a namespace and returns its output.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .output()
            .expect("ip netns exec")
    }

    /// Runs a command in a namespace, asserting success.
    pub fn exec_ok(&self, ns: &str, args: &[&str]) -> Output {
        let out = self.exec(ns, args);
        assert!(
            out.status.success(),
            "{args:?} in {ns}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Starts `kabootd` with `yaml` in the server namespace; returns the index to stop it.
    pub fn start_kabootd(&mut self, yaml: &str, name: &str) -> usize {
        let conf = self.dir.join(format!("{name}.yaml"));
        std::fs::write(&conf, yaml).expect("write config");
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).expect("log");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.server,
                env!("CARGO_BIN_EXE_kabootd"),
                "-c",
            ])
            .arg(&conf)
            .env("RUST_LOG", "hal=debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn kabootd");
        self.children.push(child);
        std::thread::sleep(std::time::Duration::from_millis(300));
        self.children.len() - 1
    }

    /// Starts any command in the server namespace, logging to `<name>.log`.
    pub fn spawn(&mut self, args: &[&str], name: &str) -> usize {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.server])
            .args(args)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn");
        self.children.push(child);
        self.children.len() - 1
    }

    /// True when a process started here has exited.
    pub fn exited(&mut self, index: usize) -> bool {
        matches!(self.children[index].try_wait(), Ok(Some(_)))
    }

    /// Stops a process started here, by PID.
    pub fn stop(&mut self, index: usize) {
        let child = &mut self.children[index];
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The process id of a process started here (`ip netns exec` execs the command: its own pid).
    pub fn pid(&self, index: usize) -> u32 {
        self.children[index].id()
    }

    /// Runs `f` on a thread inside the client namespace; sockets it opens live there.
    pub fn in_client<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        in_netns(&self.client, f)
    }

    /// The log of a `kabootd` started as `name`.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }
}

/// Runs `f` on a new thread that first enters the network namespace `ns` (`setns` changes the
/// namespace of the calling thread only, so the rest of the test process stays where it was).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    use std::os::fd::AsRawFd;
    let path = format!("/run/netns/{ns}");
    let thread = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open the namespace");
        // SAFETY: setns only reads the descriptor, which `file` keeps open for the call; it switches
        // this thread's network namespace and touches no memory of the process.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    });
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Resident memory of process `pid`, in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

impl Drop for Net {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

//! The lab BMC (`kalab-bmc`) as a process for the tests: a private directory with a fake VM (a `sleep`
//! started by the start script, or a script the test gives), `ipmitool` and native-client helpers.
#![allow(dead_code)]

use hal::node::NodeId;
use hal::power::ipmi::wire::{Packet, decode, encode_ping};
use hal::power::ipmi::{IpmiPower, IpmiTarget};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "s3cret-pw";

pub fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .and_then(|(_, r)| r.chars().next())
            .is_some_and(|c| c != 'Z' && c != 'X')
    })
}

pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -{sig} {pid}"))
        .status();
}

/// How to start a test BMC.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Give it `<dir>/qmp.sock`.
    pub qmp: bool,
    /// Give it `<dir>/serial.sock` for serial-over-LAN.
    pub serial: bool,
    /// The VM's start script (`{dir}` is the test directory; it must write `{dir}/vm.pid`); a
    /// `sleep` by default.
    pub start_script: Option<String>,
}

/// One `kalab-bmc` with a fake VM in a private directory; killed (with its VM) on drop.
pub struct Bmc {
    pub child: Child,
    pub dir: PathBuf,
    pub port: u16,
}

impl Bmc {
    pub fn start(name: &str) -> Bmc {
        Self::start_with(name, false)
    }

    /// With `qmp`, the BMC is given `<dir>/qmp.sock` (served by the test, see `FakeQmp`).
    pub fn start_with(name: &str, qmp: bool) -> Bmc {
        Self::launch(
            name,
            Options {
                qmp,
                ..Options::default()
            },
        )
    }

    /// A BMC with `options`.
    pub fn launch(name: &str, options: Options) -> Bmc {
        let dir =
            std::env::temp_dir().join(format!("kalab-bmc-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("password"), format!("{PASSWORD}\n")).unwrap();
        let pidfile = dir.join("vm.pid");
        let script = options.start_script.clone().unwrap_or_else(|| {
            "echo start >> {dir}/starts\n[ -e {dir}/slow ] && sleep 0.4\nsleep 1000 >/dev/null 2>&1 &\necho $! > {dir}/vm.pid\n".to_string()
        });
        std::fs::write(
            dir.join("start.sh"),
            script.replace("{dir}", &dir.display().to_string()),
        )
        .unwrap();
        // A free port: bind, read, release.
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.join("bmc.log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kalab-bmc"));
        if options.qmp {
            cmd.arg("--qmp").arg(dir.join("qmp.sock"));
        }
        if options.serial {
            cmd.arg("--serial").arg(dir.join("serial.sock"));
        }
        let child = cmd
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(["--user", "ADMIN", "--password-file"])
            .arg(dir.join("password"))
            .arg("--start-script")
            .arg(dir.join("start.sh"))
            .arg("--pidfile")
            .arg(&pidfile)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let bmc = Bmc { child, dir, port };
        bmc.wait_ready();
        bmc
    }

    /// Waits until the BMC answers an RMCP presence ping.
    pub fn wait_ready(&self) {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 64];
        for tag in 0..50u8 {
            let _ = sock.send_to(&encode_ping(tag), ("127.0.0.1", self.port));
            if let Ok(n) = sock.recv(&mut buf)
                && decode(&buf[..n]) == Ok(Packet::Pong(tag, true))
            {
                return;
            }
        }
        panic!("kalab-bmc did not answer pings; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bmc.log")).unwrap_or_default()
    }

    pub fn vm_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("vm.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn vm_running(&self) -> Option<u32> {
        self.vm_pid().filter(|&p| pid_alive(p))
    }

    pub fn ipmitool(&self, password: &str, args: &[&str]) -> Output {
        self.ipmitool_command(password, args).output().unwrap()
    }

    /// The `ipmitool -I lanplus` command line of this BMC with `args`, not started.
    pub fn ipmitool_command(&self, password: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ipmitool");
        cmd.args([
            "-I",
            "lanplus",
            "-H",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "ADMIN",
        ])
        .args(["-P", password, "-N", "1", "-R", "2"])
        .args(args);
        cmd
    }

    pub fn ipmitool_ok(&self, args: &[&str]) -> String {
        let out = self.ipmitool(PASSWORD, args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "ipmitool {args:?} failed: {}{}\nBMC log:\n{}",
            stdout,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        stdout
    }

    pub fn target(&self, password: &str) -> IpmiTarget {
        IpmiTarget {
            host: "127.0.0.1".into(),
            port: self.port,
            user: "ADMIN".into(),
            password: password.into(),
        }
    }

    /// Waits until the VM's state settles (the BMC may answer before a slow action ends).
    pub fn wait_vm(&self, on: bool) -> Option<u32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.vm_running().is_some() != on {
            assert!(
                Instant::now() < deadline,
                "VM never became {}; log:\n{}",
                on,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.vm_running()
    }
}

impl Drop for Bmc {
    fn drop(&mut self) {
        signal(self.child.id(), "CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(pid) = self.vm_running() {
            signal(pid, "KILL");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn power(bmc: &Bmc, timeout: Duration, retries: u32) -> IpmiPower {
    IpmiPower::new(
        BTreeMap::from([(NodeId(0), bmc.target(PASSWORD))]),
        timeout,
        retries,
    )
}

//! The lab Redfish service (`kalab-redfish`, HTTPS with a self-signed certificate) against the `hal`
//! Redfish client (session and basic authentication) and curl, driving a fake VM (a `sleep` started by the
//! start script) and a fake QMP socket that records the boot-order changes and resets.

use hal::node::NodeId;
use hal::power::redfish::{
    AuthMode, BootTarget, RedfishPower, RedfishSettings, RedfishTarget, ResetType,
};
use hal::testing::conformance::{Nodes, PowerSubject, check_power};
use hal::testing::process::require;
use hal::{ErrorKind, Power, PowerAction, PowerLevel, PowerState};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "redfish-pw";

fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .and_then(|(_, r)| r.chars().next())
            .is_some_and(|c| c != 'Z' && c != 'X')
    })
}

/// A QMP server on `<dir>/qmp.sock` that records each command (with qom-set's value) and answers
/// qom-list with one virtio NIC; `quit` kills the fake VM.
struct FakeQmp {
    seen: Arc<Mutex<Vec<String>>>,
}

impl FakeQmp {
    fn serve(dir: &std::path::Path) -> FakeQmp {
        let listener = std::os::unix::net::UnixListener::bind(dir.join("qmp.sock")).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, pidfile) = (seen.clone(), dir.join("qemu.pid"));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let _ = conn.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n");
                let reader = BufReader::new(conn.try_clone().unwrap());
                for line in reader.lines() {
                    let Ok(line) = line else { break };
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    let cmd = v["execute"].as_str().unwrap_or("").to_string();
                    let reply = match cmd.as_str() {
                        "qom-list" => serde_json::json!({"return": [
                            {"name": "device[0]", "type": "child<virtio-net-pci>"},
                            {"name": "device[1]", "type": "child<virtio-blk-pci>"},
                        ], "id": v["id"]}),
                        _ => serde_json::json!({"return": {}, "id": v["id"]}),
                    };
                    let entry = match cmd.as_str() {
                        "qom-set" => format!(
                            "qom-set {} {}",
                            v["arguments"]["path"].as_str().unwrap_or(""),
                            v["arguments"]["value"]
                        ),
                        _ => cmd.clone(),
                    };
                    if cmd != "qmp_capabilities" {
                        log.lock().unwrap().push(entry);
                    }
                    let _ = conn.write_all(format!("{reply}\n").as_bytes());
                    if cmd == "quit" {
                        let pid = std::fs::read_to_string(&pidfile).unwrap_or_default();
                        let _ = Command::new("kill").args(["-9", pid.trim()]).status();
                        break;
                    }
                }
            }
        });
        FakeQmp { seen }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// One `kalab-redfish` with a fake VM; killed (with the VM) on drop.
struct Service {
    child: Child,
    dir: PathBuf,
    port: u16,
    qmp: FakeQmp,
}

impl Service {
    fn start(name: &str) -> Service {
        let dir =
            std::env::temp_dir().join(format!("kalab-redfish-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("password"), format!("{PASSWORD}\n")).unwrap();
        std::fs::write(
            dir.join("start.sh"),
            format!(
                "sleep 1000 >/dev/null 2>&1 &\necho $! > {}\n",
                dir.join("qemu.pid").display()
            ),
        )
        .unwrap();
        let qmp = FakeQmp::serve(&dir);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.join("redfish.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kalab-redfish"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(["--id", "node-1", "--user", "ADMIN", "--password-file"])
            .arg(dir.join("password"))
            .arg("--vm-dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let s = Service {
            child,
            dir,
            port,
            qmp,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "kalab-redfish does not listen:\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redfish.log")).unwrap_or_default()
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn power(&self, auth: AuthMode, password: &str) -> RedfishPower {
        let target = RedfishTarget {
            base: self.url(),
            user: "ADMIN".into(),
            password: password.into(),
            system: None,
        };
        let settings = RedfishSettings {
            auth,
            reboot: ResetType::ForceRestart,
            timeout: Duration::from_secs(10),
            level: PowerLevel::Hard,
        };
        RedfishPower::new(
            BTreeMap::from([(NodeId(0), target.clone()), (NodeId(1), target)]),
            settings,
        )
        .unwrap()
    }

    fn vm_on(&self) -> bool {
        std::fs::read_to_string(self.dir.join("qemu.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .is_some_and(pid_alive)
    }

    /// curl -k against the service: (HTTP status, body).
    fn curl(&self, args: &[&str]) -> (u16, String) {
        require("curl", "curl");
        let out = Command::new("curl")
            .args(["-sk", "-o", "-", "-w", "\n%{http_code}"])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(pid) = std::fs::read_to_string(self.dir.join("qemu.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
        {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn power_contracts_hold_with_sessions_and_basic_auth() {
    let s = tokio::task::spawn_blocking(|| Service::start("contracts"))
        .await
        .unwrap();
    for auth in [AuthMode::Session, AuthMode::Basic] {
        // Two nodes share the one system: the contracts see the same states on both.
        let power = s.power(auth, PASSWORD);
        let subject = PowerSubject {
            nodes: Nodes::table(2),
            accepted: Vec::new(),
            switch: Some(PowerLevel::Hard),
            unsupported: vec![(PowerAction::Reboot, PowerLevel::VeryHard)],
            status: true,
        };
        if let Err(v) = check_power(&power, &subject).await {
            panic!("{auth:?}: {v}\n{}", s.log());
        }
        assert!(s.vm_on());
    }
    // Every session was deleted after use.
    let (code, body) = s.curl(&[
        "-u",
        &format!("ADMIN:{PASSWORD}"),
        &format!("{}/redfish/v1/SessionService/Sessions", s.url()),
    ]);
    assert_eq!(code, 200);
    assert!(body.contains("\"Members@odata.count\":0"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_are_config_errors() {
    let s = tokio::task::spawn_blocking(|| Service::start("auth"))
        .await
        .unwrap();
    for auth in [AuthMode::Session, AuthMode::Basic] {
        let out = s.power(auth, "wrong").status(&[NodeId(0)]).await;
        let err = out.failures()[0].1.clone();
        assert_eq!(err.kind, ErrorKind::Config, "{auth:?}: {err}");
    }
    let (code, _) = s.curl(&[&format!("{}/redfish/v1/Systems", s.url())]);
    assert_eq!(code, 401, "no credentials");
    let (code, body) = s.curl(&[&format!("{}/redfish/v1/", s.url())]);
    assert_eq!(code, 200, "the service root is public");
    assert!(body.contains("/redfish/v1/Systems"));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_time_boot_override_changes_the_order_for_one_boot() {
    let s = tokio::task::spawn_blocking(|| Service::start("boot"))
        .await
        .unwrap();
    let power = s.power(AuthMode::Session, PASSWORD);
    let node = [NodeId(0)];
    assert!(
        power
            .power(PowerAction::On, PowerLevel::Hard, &node)
            .await
            .failures()
            .is_empty()
    );
    s.qmp.take();
    power.boot_once(NodeId(0), BootTarget::Hdd).await.unwrap();
    let (enabled, target) = power.boot_override(NodeId(0)).await.unwrap();
    assert_eq!((enabled.as_str(), target.as_str()), ("Once", "Hdd"));
    assert!(
        power
            .power(PowerAction::Reboot, PowerLevel::Hard, &node)
            .await
            .failures()
            .is_empty()
    );
    let nic = "/machine/peripheral-anon/device[0]";
    assert_eq!(
        s.qmp.take(),
        [
            "qom-list".to_string(),
            format!("qom-set {nic} 3"),
            "system_reset".into(),
            "qom-list".into(),
            format!("qom-set {nic} 1"),
        ],
        "the disk first for this reset, the default order restored for the next"
    );
    let (enabled, _) = power.boot_override(NodeId(0)).await.unwrap();
    assert_eq!(enabled, "Disabled", "a one-time override is used up");
    assert!(
        power
            .power(PowerAction::Reboot, PowerLevel::Hard, &node)
            .await
            .failures()
            .is_empty()
    );
    assert_eq!(s.qmp.take(), ["system_reset"]);
    // Pxe from off: the VM starts with the network first (its default order), nothing more.
    assert!(
        power
            .power(PowerAction::Off, PowerLevel::Hard, &node)
            .await
            .failures()
            .is_empty()
    );
    s.qmp.take();
    power.boot_once(NodeId(0), BootTarget::Pxe).await.unwrap();
    assert!(
        power
            .power(PowerAction::On, PowerLevel::Hard, &node)
            .await
            .failures()
            .is_empty()
    );
    assert!(s.vm_on());
    assert!(
        s.qmp.take().is_empty(),
        "a VM starts with the network first: no reset"
    );
    // GracefulShutdown presses the power button; PowerCycle restarts the VM.
    power
        .reset(NodeId(0), ResetType::GracefulShutdown)
        .await
        .unwrap();
    assert_eq!(s.qmp.take(), ["system_powerdown"]);
    let before = std::fs::read_to_string(s.dir.join("qemu.pid")).unwrap();
    power.reset(NodeId(0), ResetType::PowerCycle).await.unwrap();
    let after = std::fs::read_to_string(s.dir.join("qemu.pid")).unwrap();
    assert_ne!(before, after, "a new VM process");
    assert_eq!(power.node_status(NodeId(0)).await.unwrap(), PowerState::On);
}

/// Hostile requests: oversized and malformed bodies, unknown values, a flood of sessions (bounded). Before
/// this change there was no Redfish service in the lab.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_requests_are_refused_and_sessions_bounded() {
    let s = tokio::task::spawn_blocking(|| Service::start("hostile"))
        .await
        .unwrap();
    let user = format!("ADMIN:{PASSWORD}");
    let system = format!("{}/redfish/v1/Systems/node-1", s.url());
    let reset = format!("{system}/Actions/ComputerSystem.Reset");
    let big = format!("{{\"ResetType\": \"{}\"}}", "x".repeat(100_000));
    let (code, _) = s.curl(&[
        "-u",
        &user,
        "-H",
        "Content-Type: application/json",
        "-d",
        &big,
        &reset,
    ]);
    assert_eq!(code, 413, "a body over 16 KiB");
    let (code, _) = s.curl(&["-u", &user, "-d", "{not json", &reset]);
    assert_eq!(code, 400);
    let (code, body) = s.curl(&["-u", &user, "-d", "{\"ResetType\": \"Nmi\"}", &reset]);
    assert_eq!(code, 400, "{body}");
    let (code, _) = s.curl(&[
        "-u",
        &user,
        "-X",
        "PATCH",
        "-d",
        "{\"Boot\": {\"BootSourceOverrideTarget\": \"Floppy\"}}",
        &system,
    ]);
    assert_eq!(code, 400);
    let (code, _) = s.curl(&[
        "-u",
        &user,
        &format!("{}/redfish/v1/Systems/other", s.url()),
    ]);
    assert_eq!(code, 404);
    let sessions = format!("{}/redfish/v1/SessionService/Sessions", s.url());
    let login = format!("{{\"UserName\": \"ADMIN\", \"Password\": \"{PASSWORD}\"}}");
    for _ in 0..40 {
        let (code, _) = s.curl(&["-d", &login, &sessions]);
        assert_eq!(code, 201);
    }
    let (code, body) = s.curl(&["-u", &user, &sessions]);
    assert_eq!(code, 200);
    assert!(body.contains("\"Members@odata.count\":16"), "{body}");
    assert!(!s.vm_on(), "nothing switched the VM");
}

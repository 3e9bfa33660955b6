//! Redfish power against sushy-tools' emulator (PyPI `sushy-tools`), an independent Redfish service, in
//! its libvirt-less fake driver mode, over HTTPS with a self-signed certificate and HTTP basic
//! authentication (its htpasswd file with a bcrypt hash). The fake driver applies power changes 1 to 11
//! seconds after they are accepted, so states are polled. The lab's own service is tested in
//! `qemu-lab/tests/redfish.rs`.

use hal::node::NodeId;
use hal::power::redfish::{
    AuthMode, BootTarget, RedfishPower, RedfishSettings, RedfishTarget, ResetType,
};
use hal::testing::process::{require, sh};
use hal::{ErrorKind, Power, PowerAction, PowerLevel, PowerState};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const UUID: &str = "27946b59-9e44-4fa7-8e91-f3527a1ef094";

/// One sushy-emulator (fake driver, TLS, basic auth) on a loopback port; killed on drop.
struct Sushy {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Sushy {
    fn start() -> Sushy {
        require("sushy-emulator", "sushy-tools (pip install sushy-tools)");
        require("openssl", "openssl");
        let dir = std::env::temp_dir().join(format!("hal-sushy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        sh(&format!(
            "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
             -keyout {d}/key.pem -out {d}/cert.pem 2>/dev/null"
        ));
        // The emulator's own Python has bcrypt (a dependency of sushy-tools): the htpasswd line.
        let emulator = which("sushy-emulator");
        let python = std::fs::read_to_string(&emulator)
            .ok()
            .and_then(|t| {
                t.lines()
                    .next()
                    .map(|l| l.trim_start_matches("#!").trim().to_string())
            })
            .unwrap_or_else(|| "python3".into());
        sh(&format!(
            "{python} -c 'import bcrypt; print(\"admin:\" + bcrypt.hashpw(b\"sushy-pw\", bcrypt.gensalt(rounds=4)).decode())' > {d}/htpasswd"
        ));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            dir.join("emulator.conf"),
            format!(
                "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\nSUSHY_EMULATOR_LISTEN_PORT = {port}\n\
                 SUSHY_EMULATOR_SSL_CERT = '{d}/cert.pem'\nSUSHY_EMULATOR_SSL_KEY = '{d}/key.pem'\n\
                 SUSHY_EMULATOR_AUTH_FILE = '{d}/htpasswd'\nSUSHY_EMULATOR_FAKE_DRIVER = True\n\
                 SUSHY_EMULATOR_STATE_DIR = '{d}/state'\n\
                 SUSHY_EMULATOR_FAKE_SYSTEMS = [{{'uuid': '{UUID}', 'name': 'node-1', 'power_state': 'Off', \
                 'nics': [{{'mac': '52:54:00:1a:00:00', 'ip': '10.0.0.11'}}]}}]\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("sushy.log")).unwrap();
        let child = Command::new(&emulator)
            .arg("--config")
            .arg(dir.join("emulator.conf"))
            .arg("--fake")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let s = Sushy { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sushy-emulator does not listen:\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sushy.log")).unwrap_or_default()
    }

    fn power(&self, password: &str, system: Option<String>) -> RedfishPower {
        let target = RedfishTarget {
            base: format!("https://127.0.0.1:{}", self.port),
            user: "admin".into(),
            password: password.into(),
            system,
        };
        let settings = RedfishSettings {
            auth: AuthMode::Basic,
            reboot: ResetType::ForceRestart,
            timeout: Duration::from_secs(10),
            level: PowerLevel::Hard,
        };
        RedfishPower::new(BTreeMap::from([(NodeId(0), target)]), settings).unwrap()
    }
}

impl Drop for Sushy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn which(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(tool))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from(tool))
}

/// Polls the state until it reads `want` (the fake driver's changes land within 11 s).
async fn wait_state(power: &RedfishPower, want: PowerState) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = power.node_status(NodeId(0)).await;
        if got.as_ref().ok() == Some(&want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "state is {got:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn power_and_boot_override_against_sushy_tools() {
    let s = tokio::task::spawn_blocking(Sushy::start).await.unwrap();
    let power = s.power("sushy-pw", None);
    let node = [NodeId(0)];
    assert_eq!(
        power.node_status(NodeId(0)).await,
        Ok(PowerState::Off),
        "{}",
        s.log()
    );
    let out = power.power(PowerAction::On, PowerLevel::Hard, &node).await;
    assert!(out.failures().is_empty(), "{out:?}\n{}", s.log());
    wait_state(&power, PowerState::On).await;
    // One-time boot override, then a ForceRestart (the fake driver comes back On). The emulator keeps
    // the device as its persistent boot device and always reads `Continuous`.
    for target in [BootTarget::Pxe, BootTarget::Hdd] {
        power.boot_once(NodeId(0), target).await.unwrap();
        let (enabled, got) = power.boot_override(NodeId(0)).await.unwrap();
        assert_eq!(got, target.as_str());
        assert!(
            ["Once", "Continuous"].contains(&enabled.as_str()),
            "{enabled}"
        );
    }
    let out = power
        .power(PowerAction::Reboot, PowerLevel::Hard, &node)
        .await;
    assert!(out.failures().is_empty(), "{out:?}");
    wait_state(&power, PowerState::On).await;
    // The system named explicitly, GracefulShutdown, then ForceOff.
    let named = s.power("sushy-pw", Some(format!("/redfish/v1/Systems/{UUID}")));
    named
        .reset(NodeId(0), ResetType::GracefulShutdown)
        .await
        .unwrap();
    wait_state(&named, PowerState::Off).await;
    named.reset(NodeId(0), ResetType::On).await.unwrap();
    wait_state(&named, PowerState::On).await;
    let out = named.power(PowerAction::Off, PowerLevel::Hard, &node).await;
    assert!(out.failures().is_empty(), "{out:?}");
    wait_state(&named, PowerState::Off).await;
    // A wrong password is a configuration error; another level is not this backend's.
    let wrong = s.power("wrong", None).status(&node).await;
    assert_eq!(wrong.failures()[0].1.kind, ErrorKind::Config, "{wrong:?}");
    let other = power
        .power(PowerAction::On, PowerLevel::VeryHard, &node)
        .await;
    assert_eq!(other.failures()[0].1.kind, ErrorKind::NotSupported);
}

/// A hostile service: an endless chunked body and a huge announced length. The client stops at 1 MiB
/// with a protocol error instead of reading (and holding) it all; before this change there was no
/// Redfish client.
#[tokio::test(flavor = "multi_thread")]
async fn oversized_answers_are_cut_at_one_mebibyte() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut n = 0u32;
        while let Ok((mut conn, _)) = listener.accept().await {
            n += 1;
            let chunked = n % 2 == 1;
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let head: &[u8] = if chunked {
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n"
                };
                if conn.write_all(head).await.is_err() {
                    return;
                }
                let chunk = vec![b' '; 65536];
                // At most 64 MiB: the client must have given up long before.
                for _ in 0..1024 {
                    let ok = if chunked {
                        conn.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                            .await
                            .is_ok()
                            && conn.write_all(&chunk).await.is_ok()
                            && conn.write_all(b"\r\n").await.is_ok()
                    } else {
                        conn.write_all(&chunk).await.is_ok()
                    };
                    if !ok {
                        return;
                    }
                }
            });
        }
    });
    let target = RedfishTarget {
        base: format!("http://127.0.0.1:{port}"),
        user: "u".into(),
        password: "p".into(),
        system: Some("/redfish/v1/Systems/1".into()),
    };
    let settings = RedfishSettings {
        auth: AuthMode::Basic,
        reboot: ResetType::ForceRestart,
        timeout: Duration::from_secs(20),
        level: PowerLevel::Hard,
    };
    let power = RedfishPower::new(BTreeMap::from([(NodeId(0), target)]), settings).unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        let err = power.node_status(NodeId(0)).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::CommandFailed, "{err}");
        assert!(err.message.contains("over 1 MiB"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(15));
    }
}

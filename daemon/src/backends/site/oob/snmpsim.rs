//! `backend/pdu/v3/context` against snmpsim (PyPI `snmpsim`), an independent SNMP agent that picks the
//! device a v3 request addresses by its contextName: the PDU built from the keys reads the outlets of
//! the recording named by the context, and a request without it reaches no device.

use super::pdu_power;
use hal::{NodeId, NodeInfo, Outcome, Power, PowerState};
use kadeploy::config::{PduKeys, PduV3Keys};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const OUTLET_CTL: &str = "1.3.6.1.4.1.318.1.1.4.4.2.1.3";

/// snmpsim serving an APC recording (outlet 1 on, outlet 2 off) under the context `apc-rack-1`.
struct Snmpsim {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Snmpsim {
    fn start() -> Snmpsim {
        let dir = std::env::temp_dir().join(format!("kadeploy3d-snmpsim-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("data directory");
        std::fs::create_dir_all(dir.join("cache")).expect("cache directory");
        let rec = format!(
            "1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.318.1.3.4.5\n{OUTLET_CTL}.1|2|1\n{OUTLET_CTL}.2|2|2\n"
        );
        std::fs::write(dir.join("data/apc-rack-1.snmprec"), rec).expect("recording");
        // snmpsim drops its privileges to `nobody`.
        let _ = Command::new("chmod")
            .arg("-R")
            .arg("a+rwX")
            .arg(&dir)
            .status();
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free UDP port")
            .port();
        let log = std::fs::File::create(dir.join("sim.log")).expect("log file");
        let child = Command::new("snmpsim-command-responder")
            .args(["--process-user=nobody", "--process-group=nogroup"])
            .arg(format!("--data-dir={}", dir.join("data").display()))
            .arg(format!("--cache-dir={}", dir.join("cache").display()))
            .arg(format!("--agent-udpv4-endpoint=127.0.0.1:{port}"))
            .args([
                "--v3-user=pduadmin",
                "--v3-auth-key=authpass1",
                "--v3-auth-proto=SHA",
                "--v3-priv-key=privpass1",
                "--v3-priv-proto=AES",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect(
                "snmpsim-command-responder is installed (scripts/install-deps.sh: PyPI snmpsim)",
            );
        Snmpsim { child, dir, port }
    }

    /// The `backend/pdu` keys of the two nodes' outlets, with `context`.
    fn keys(&self, context: &str) -> PduKeys {
        PduKeys {
            model: "apc".into(),
            port: self.port,
            community: None,
            v3: Some(PduV3Keys {
                user: "pduadmin".into(),
                auth: "sha".into(),
                auth_password: "authpass1".into(),
                priv_password: Some("privpass1".into()),
                context: context.into(),
            }),
            timeout: Duration::from_millis(700),
            retries: 1,
            outlets: (1..=2)
                .map(|i| (format!("node-{i}.lab"), ("127.0.0.1".to_string(), i)))
                .collect::<BTreeMap<_, _>>(),
        }
    }
}

impl Drop for Snmpsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nodes() -> Vec<NodeInfo> {
    (1..=2)
        .map(|i| NodeInfo {
            name: format!("node-{i}.lab"),
            address: std::net::IpAddr::from([127, 0, 0, i]),
        })
        .collect()
}

fn states(out: &hal::Outcomes<PowerState>) -> Vec<Option<PowerState>> {
    out.iter()
        .map(|(_, o)| match o {
            Outcome::Ok(s) => Some(*s),
            Outcome::Err(_) => None,
        })
        .collect()
}

/// The context of `backend/pdu/v3/context` reaches the agent: with it, snmpsim answers from the recording
/// it names; without it, no device answers. Before, the key was refused as unknown and every v3 request
/// went out with an empty context, so such a PDU could not be driven at all.
#[tokio::test(flavor = "multi_thread")]
async fn the_v3_context_of_the_keys_selects_snmpsims_device() {
    let sim = tokio::task::spawn_blocking(Snmpsim::start)
        .await
        .expect("snmpsim started");
    let power = pdu_power(&nodes(), &sim.keys("apc-rack-1")).unwrap_or_else(|e| panic!("{e}"));
    let both = [NodeId(0), NodeId(1)];
    // snmpsim indexes its data before it answers.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = states(&power.status(&both).await);
    while seen.contains(&None) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        seen = states(&power.status(&both).await);
    }
    assert_eq!(
        seen,
        [Some(PowerState::On), Some(PowerState::Off)],
        "snmpsim log: {}",
        std::fs::read_to_string(sim.dir.join("sim.log")).unwrap_or_default()
    );
    let without = pdu_power(&nodes(), &sim.keys("")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(states(&without.status(&both).await), [None, None]);
}

//! SNMP PDU power against snmpsim (PyPI `snmpsim`), an independent SNMP agent, serving a recording of an
//! APC switched PDU whose outlet controls are writable (snmpsim's `writecache`): v2c and v3 (USM with
//! HMAC-SHA-96 and AES-128). The lab PDU is tested against net-snmp's tools in `qemu-lab/tests/pdu.rs`.

use hal::node::NodeId;
use hal::power::snmp::client::{Security, V3User};
use hal::power::snmp::models::OutletModel;
use hal::power::snmp::usm::{AuthProtocol, PrivProtocol};
use hal::power::snmp::{Outlet, PduSettings, SnmpPower};
use hal::testing::conformance::{Nodes, PowerSubject, check_power};
use hal::testing::process::{require, require_root};
use hal::testing::snmpsim::Snmpsim;
use hal::{ErrorKind, Outcome, Power, PowerAction, PowerLevel, PowerState};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

const OUTLET_CTL: &str = "1.3.6.1.4.1.318.1.1.4.4.2.1.3";

/// An snmpsim agent on a loopback port with an APC recording (community and v3 context `apc`).
struct Sim(Snmpsim);

impl Sim {
    fn start() -> Sim {
        require(
            "snmpsim-command-responder",
            "snmpsim (pip install snmpsim pysmi cryptography)",
        );
        require_root("snmpsim drops to `nobody`, which");
        // An AP7920B's sysDescr and sysObjectID; outlets 1 (on) to 4 (off), writable.
        let mut rec = String::from(
            "1.3.6.1.2.1.1.1.0|4|APC Web/SNMP Management Card (MB:v4.1.0 PF:v6.4.6 PN:apc_hw05_aos_646.bin \
             AF1:v6.4.6 AN1:apc_hw05_rpdu2g_646.bin MN:AP7920B HR:05 SN:ZA1234567890 MD:01/01/2019)\n\
             1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.318.1.3.4.5\n",
        );
        for (outlet, state) in [(1, 1), (2, 1), (3, 2), (4, 2)] {
            rec.push_str(&format!(
                "{OUTLET_CTL}.{outlet}|2:writecache|value={state}\n"
            ));
        }
        let sim = Sim(Snmpsim::start("hal", &[("apc.snmprec", rec)]).expect("snmpsim started"));
        sim.wait_ready();
        sim
    }

    /// Waits until the agent answers a v2c GET (snmpsim indexes its data first).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let power = self.power(v2c(), 1);
        while Instant::now() < deadline {
            if rt
                .block_on(power.status(&[NodeId(0)]))
                .failures()
                .is_empty()
            {
                return;
            }
        }
        panic!("snmpsim did not answer; log:\n{}", self.0.log());
    }

    /// Outlets 1..=count as nodes 0..count.
    fn power(&self, security: Security, count: u32) -> SnmpPower {
        let outlets: BTreeMap<NodeId, Outlet> = (0..count)
            .map(|i| {
                (
                    NodeId(i),
                    Outlet {
                        host: "127.0.0.1".into(),
                        port: self.0.port,
                        outlet: i + 1,
                    },
                )
            })
            .collect();
        SnmpPower::new(
            outlets,
            PduSettings {
                model: OutletModel::apc(),
                security,
                timeout: Duration::from_millis(700),
                retries: 3,
                level: PowerLevel::VeryHard,
                off_on_delay: Duration::from_millis(10),
            },
        )
        .unwrap()
    }

    /// net-snmp's view of an outlet's control variable, when its tools are installed (a cross-check).
    fn snmpget(&self, outlet: u32) -> Option<String> {
        if !hal::testing::process::installed("snmpget") {
            return None;
        }
        let out = Command::new("snmpget")
            .args(["-v2c", "-c", "apc", "-Oqv"])
            .arg(format!("127.0.0.1:{}", self.0.port))
            .arg(format!("{OUTLET_CTL}.{outlet}"))
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

fn v2c() -> Security {
    Security::V2c {
        community: "apc".into(),
    }
}

fn v3(auth_password: &str) -> Security {
    Security::V3(V3User {
        user: "pduadmin".into(),
        auth: AuthProtocol::Sha1,
        auth_password: auth_password.into(),
        privacy: Some((PrivProtocol::Aes128, "privpass1".into())),
        context: "apc".into(),
    })
}

fn state(out: &hal::Outcomes<PowerState>, i: usize) -> Option<PowerState> {
    match &out.iter().nth(i)?.1 {
        Outcome::Ok(s) => Some(*s),
        Outcome::Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn v2c_switches_and_reads_outlets_of_snmpsims_apc() {
    let sim = tokio::task::spawn_blocking(Sim::start).await.unwrap();
    let power = sim.power(v2c(), 4);
    let nodes = [NodeId(0), NodeId(1), NodeId(2), NodeId(3)];
    let status = power.status(&nodes).await;
    let states: Vec<_> = (0..4).map(|i| state(&status, i)).collect();
    use PowerState::{Off, On};
    assert_eq!(
        states,
        [Some(On), Some(On), Some(Off), Some(Off)],
        "{status:?}"
    );
    let out = power
        .power(PowerAction::Off, PowerLevel::VeryHard, &nodes[..2])
        .await;
    assert!(out.failures().is_empty(), "{out:?}");
    let out = power
        .power(PowerAction::On, PowerLevel::VeryHard, &nodes[2..])
        .await;
    assert!(out.failures().is_empty(), "{out:?}");
    let status = power.status(&nodes).await;
    let states: Vec<_> = (0..4).map(|i| state(&status, i)).collect();
    assert_eq!(states, [Some(Off), Some(Off), Some(On), Some(On)]);
    if let Some(seen) = sim.snmpget(1) {
        assert_eq!(seen, "2", "net-snmp reads outlet 1 off too");
    }
    // APC's reboot command is sPDUOutletCtl = 3 (outletReboot), which snmpsim stores as written.
    let out = power
        .power(PowerAction::Reboot, PowerLevel::VeryHard, &nodes[..1])
        .await;
    assert!(out.failures().is_empty(), "{out:?}");
    let after = power.status(&nodes[..1]).await;
    let err = after.failures()[0].1.clone();
    assert!(err.message.contains("state 3"), "{err}");
    // Other levels are not this backend's.
    let out = power
        .power(PowerAction::Reboot, PowerLevel::Hard, &nodes)
        .await;
    assert_eq!(out.failures()[0].1.kind, ErrorKind::NotSupported);
}

#[tokio::test(flavor = "multi_thread")]
async fn power_contracts_hold_against_snmpsim() {
    let sim = tokio::task::spawn_blocking(Sim::start).await.unwrap();
    let power = sim.power(v2c(), 2);
    let subject = PowerSubject {
        nodes: Nodes::table(2),
        accepted: vec![
            (PowerAction::Off, PowerLevel::VeryHard),
            (PowerAction::On, PowerLevel::VeryHard),
        ],
        switch: None,
        unsupported: vec![
            (PowerAction::Reboot, PowerLevel::Hard),
            (PowerAction::On, PowerLevel::Soft),
        ],
        status: true,
    };
    if let Err(v) = check_power(&power, &subject).await {
        panic!("{v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn v3_auth_priv_sha_aes_against_snmpsim() {
    let sim = tokio::task::spawn_blocking(Sim::start).await.unwrap();
    let power = sim.power(v3("authpass1"), 4);
    let nodes = [NodeId(2)];
    let out = power
        .power(PowerAction::On, PowerLevel::VeryHard, &nodes)
        .await;
    assert!(out.failures().is_empty(), "{out:?}");
    assert_eq!(state(&power.status(&nodes).await, 0), Some(PowerState::On));
    let out = power
        .power(PowerAction::Off, PowerLevel::VeryHard, &nodes)
        .await;
    assert!(out.failures().is_empty(), "{out:?}");
    assert_eq!(state(&power.status(&nodes).await, 0), Some(PowerState::Off));
    // A wrong authentication password: the agent reports a wrong digest (or stays silent).
    let wrong = sim.power(v3("wrongpass1"), 4);
    let out = wrong.status(&nodes).await;
    let err = out.failures()[0].1.clone();
    assert!(
        matches!(err.kind, ErrorKind::Config | ErrorKind::Unreachable),
        "{err:?}"
    );
}

/// A hostile agent answering every request with malformed or oversized datagrams (and one answer to
/// another request id): the client ignores them and reports the agent unreachable after its retries,
/// without panicking. Before this change there was no SNMP client.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_answers_are_ignored() {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let answers: Vec<Vec<u8>> = vec![
            vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            vec![0x30, 0x80, 0, 0],
            [vec![0x30, 0x82, 0xff, 0xf0], vec![0x30; 0xfff0]].concat(),
            // A well-formed v2c Response with request id 1, which no request uses (ids are random).
            vec![
                0x30, 0x1a, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', 0xa2,
                0x0d, 0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x02, 0x30, 0x00,
            ],
        ];
        while let Ok((_, peer)) = sock.recv_from(&mut buf).await {
            for a in &answers {
                let _ = sock.send_to(a, peer).await;
            }
        }
    });
    let outlets = BTreeMap::from([(
        NodeId(0),
        Outlet {
            host: "127.0.0.1".into(),
            port,
            outlet: 1,
        },
    )]);
    for security in [v2c(), v3("authpass1")] {
        let power = SnmpPower::new(
            outlets.clone(),
            PduSettings {
                model: OutletModel::apc(),
                security,
                timeout: Duration::from_millis(200),
                retries: 1,
                level: PowerLevel::VeryHard,
                off_on_delay: Duration::from_millis(10),
            },
        )
        .unwrap();
        let out = power.status(&[NodeId(0)]).await;
        assert_eq!(out.failures()[0].1.kind, ErrorKind::Unreachable, "{out:?}");
    }
}

//! The lab PDU (`kalab-pdu`) against net-snmp's `snmpget`/`snmpset` (v2c and v3 authPriv SHA/AES) and the
//! `hal` SNMP client (every built-in model), switching fake VMs (a `sleep` started by each start script),
//! and surviving malformed datagrams.

use hal::node::NodeId;
use hal::power::snmp::client::{Security, V3User};
use hal::power::snmp::models::OutletModel;
use hal::power::snmp::usm::{AuthProtocol, PrivProtocol};
use hal::power::snmp::{Outlet, PduSettings, SnmpPower};
use hal::testing::conformance::{Nodes, PowerSubject, check_power};
use hal::testing::process::require;
use hal::{PowerAction, PowerLevel};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const APC_CTL: &str = "1.3.6.1.4.1.318.1.1.4.4.2.1.3";

fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .and_then(|(_, r)| r.chars().next())
            .is_some_and(|c| c != 'Z' && c != 'X')
    })
}

/// One `kalab-pdu` with `outlets` fake VMs in a private directory; killed (with the VMs) on drop.
struct Pdu {
    child: Child,
    dir: PathBuf,
    port: u16,
    outlets: u32,
}

impl Pdu {
    fn start(name: &str, model: &str, outlets: u32) -> Pdu {
        let dir =
            std::env::temp_dir().join(format!("kalab-pdu-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("write"), "private-rw\n").unwrap();
        std::fs::write(dir.join("auth"), "authpass1\n").unwrap();
        std::fs::write(dir.join("priv"), "privpass1\n").unwrap();
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kalab-pdu"));
        for i in 1..=outlets {
            let vm = dir.join(format!("vm{i}"));
            std::fs::create_dir_all(&vm).unwrap();
            std::fs::write(
                vm.join("start.sh"),
                format!(
                    "sleep 1000 >/dev/null 2>&1 &\necho $! > {}\n",
                    vm.join("qemu.pid").display()
                ),
            )
            .unwrap();
            cmd.arg("--outlet").arg(&vm);
        }
        let log = std::fs::File::create(dir.join("pdu.log")).unwrap();
        let child = cmd
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(["--model", model, "--write-community-file"])
            .arg(dir.join("write"))
            .args([
                "--v3-user",
                "pduadmin",
                "--v3-auth",
                "sha",
                "--v3-auth-password-file",
            ])
            .arg(dir.join("auth"))
            .arg("--v3-priv-password-file")
            .arg(dir.join("priv"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let pdu = Pdu {
            child,
            dir,
            port,
            outlets,
        };
        pdu.wait_ready();
        pdu
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let out = self.snmp(
                "snmpget",
                &["-v2c", "-c", "public", "AGENT", "1.3.6.1.2.1.1.5.0"],
            );
            if out.status.success() {
                return;
            }
        }
        panic!("kalab-pdu does not answer; log:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pdu.log")).unwrap_or_default()
    }

    /// Runs a net-snmp tool against the PDU (1 s timeout, 1 retry): `args` are the options, then `AGENT`
    /// (replaced by the PDU's address), then the OIDs and values.
    fn snmp(&self, tool: &str, args: &[&str]) -> Output {
        require(tool, "snmp");
        let agent = format!("127.0.0.1:{}", self.port);
        Command::new(tool)
            .args(["-t", "1", "-r", "1"])
            .args(
                args.iter()
                    .map(|a| if *a == "AGENT" { agent.as_str() } else { a }),
            )
            .output()
            .unwrap()
    }

    fn vm_pid(&self, outlet: u32) -> Option<u32> {
        std::fs::read_to_string(self.dir.join(format!("vm{outlet}/qemu.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
            .filter(|p| pid_alive(*p))
    }

    fn wait_vm(&self, outlet: u32, on: bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.vm_pid(outlet).is_some() == on {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "VM of outlet {outlet} is not {}; log:\n{}",
            if on { "on" } else { "off" },
            self.log()
        );
    }

    fn power(&self, model: OutletModel, security: Security) -> SnmpPower {
        let outlets: BTreeMap<NodeId, Outlet> = (0..self.outlets)
            .map(|i| {
                let o = Outlet {
                    host: "127.0.0.1".into(),
                    port: self.port,
                    outlet: i + 1,
                };
                (NodeId(i), o)
            })
            .collect();
        let settings = PduSettings {
            model,
            security,
            timeout: Duration::from_millis(500),
            retries: 3,
            level: PowerLevel::VeryHard,
            off_on_delay: Duration::from_millis(10),
        };
        SnmpPower::new(outlets, settings).unwrap()
    }
}

impl Drop for Pdu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for i in 1..=self.outlets {
            if let Some(pid) = self.vm_pid(i) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// net-snmp's tools switch and read outlets through v2c (read and write communities) and v3 authPriv.
#[test]
fn net_snmp_tools_switch_the_vms() {
    let pdu = Pdu::start("netsnmp", "apc", 2);
    let oid1 = format!("{APC_CTL}.1");
    let out = pdu.snmp("snmpget", &["-v2c", "-c", "public", "-Oqv", "AGENT", &oid1]);
    assert_eq!(stdout(&out), "2", "outlet 1 starts off: {out:?}");
    let out = pdu.snmp(
        "snmpset",
        &["-v2c", "-c", "private-rw", "AGENT", &oid1, "i", "1"],
    );
    assert!(out.status.success(), "{out:?}");
    pdu.wait_vm(1, true);
    let out = pdu.snmp("snmpget", &["-v2c", "-c", "public", "-Oqv", "AGENT", &oid1]);
    assert_eq!(stdout(&out), "1");
    // The read community cannot switch.
    let out = pdu.snmp(
        "snmpset",
        &["-v2c", "-c", "public", "AGENT", &oid1, "i", "2"],
    );
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("noAccess"),
        "{out:?}"
    );
    // An unknown community gets no answer.
    let out = pdu.snmp("snmpget", &["-v2c", "-c", "guess", "AGENT", &oid1]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Timeout"),
        "{out:?}"
    );
    // A value the model does not know.
    let out = pdu.snmp(
        "snmpset",
        &["-v2c", "-c", "private-rw", "AGENT", &oid1, "i", "9"],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrongValue"),
        "{out:?}"
    );
    // v3 authPriv: HMAC-SHA-96 and AES-128.
    let v3 = [
        "-v3",
        "-l",
        "authPriv",
        "-u",
        "pduadmin",
        "-a",
        "SHA",
        "-A",
        "authpass1",
        "-x",
        "AES",
        "-X",
        "privpass1",
    ];
    let oid2 = format!("{APC_CTL}.2");
    let out = pdu.snmp(
        "snmpset",
        &[&v3[..], &["AGENT", oid2.as_str(), "i", "1"]].concat(),
    );
    assert!(out.status.success(), "{out:?}");
    pdu.wait_vm(2, true);
    let out = pdu.snmp(
        "snmpset",
        &[&v3[..], &["AGENT", oid1.as_str(), "i", "2"]].concat(),
    );
    assert!(out.status.success(), "{out:?}");
    pdu.wait_vm(1, false);
    let out = pdu.snmp(
        "snmpget",
        &[&v3[..], &["-Oqv", "AGENT", oid1.as_str()]].concat(),
    );
    assert_eq!(stdout(&out), "2", "{out:?}");
    // A wrong authentication password is refused by a Report.
    let bad = [
        "-v3",
        "-l",
        "authPriv",
        "-u",
        "pduadmin",
        "-a",
        "SHA",
        "-A",
        "wrongpass1",
        "-x",
        "AES",
        "-X",
        "privpass1",
    ];
    let out = pdu.snmp("snmpget", &[&bad[..], &["AGENT", oid1.as_str()]].concat());
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Authentication failure"),
        "{out:?}"
    );
    // snmpwalk walks the system group and the outlets (GETNEXT).
    let out = pdu.snmp(
        "snmpwalk",
        &["-v2c", "-c", "public", "-On", "AGENT", "1.3.6.1"],
    );
    let text = stdout(&out);
    assert!(
        text.contains(".1.3.6.1.2.1.1.1.0 = STRING")
            && text.contains(&format!(".{APC_CTL}.2 = INTEGER: 1")),
        "{text}"
    );
}

/// The `hal` client, every model, v2c and v3: the power contracts hold against the lab PDU.
#[tokio::test(flavor = "multi_thread")]
async fn hal_client_meets_the_power_contracts_for_every_model() {
    for model in OutletModel::BUILTIN {
        let pdu = tokio::task::spawn_blocking(move || Pdu::start(model, model, 2))
            .await
            .unwrap();
        for security in [
            Security::V2c {
                community: "private-rw".into(),
            },
            Security::V3(V3User {
                user: "pduadmin".into(),
                auth: AuthProtocol::Sha1,
                auth_password: "authpass1".into(),
                privacy: Some((PrivProtocol::Aes128, "privpass1".into())),
                context: String::new(),
            }),
        ] {
            let power = pdu.power(OutletModel::builtin(model).unwrap(), security.clone());
            let subject = PowerSubject {
                nodes: Nodes::table(2),
                accepted: Vec::new(),
                switch: Some(PowerLevel::VeryHard),
                unsupported: vec![(PowerAction::Reboot, PowerLevel::Hard)],
                status: true,
            };
            if let Err(v) = check_power(&power, &subject).await {
                panic!("{model} {security:?}: {v}\n{}", pdu.log());
            }
            // The relay state follows the VMs once the switches are done.
            let p = &pdu;
            tokio::task::block_in_place(|| {
                p.wait_vm(1, true);
                p.wait_vm(2, true);
            });
        }
    }
}

/// Malformed datagrams (hostile BER lengths, deep nesting, truncations, oversized v3 fields, random
/// bytes) get no answer and leave the agent serving. Before this change there was no lab PDU at all.
#[test]
fn malformed_datagrams_do_not_stop_the_agent() {
    let pdu = Pdu::start("malformed", "apc", 1);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut hostile: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x30],
        vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        vec![0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00],
        vec![0x30, 0x85, 1, 0, 0, 0, 0],
        vec![0x30, 0x03, 0x02, 0x09, 0x01],
        vec![0x30, 0x05, 0x02, 0x01, 0x03, 0x30, 0x00],
    ];
    // 200 nested SEQUENCEs.
    let mut nested = vec![0x05, 0x00];
    for _ in 0..200 {
        let mut outer = vec![0x30];
        let len = nested.len();
        if len < 128 {
            outer.push(len as u8);
        } else {
            outer.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        outer.extend(nested);
        nested = outer;
    }
    hostile.push(nested);
    // A v2c GET with 5,000 variable bindings (the limit is 64), and one whose OID has a 40-byte arc.
    let mut bindings = Vec::new();
    for _ in 0..5_000 {
        bindings.extend([0x30, 0x06, 0x06, 0x02, 0x2b, 0x06, 0x05, 0x00]);
    }
    hostile.push(v2c_get_with(&bindings));
    let mut long_arc = vec![0x30, 0x2d, 0x06, 0x29, 0x2b];
    long_arc.extend([0xff; 39]);
    long_arc.extend([0x7f, 0x05, 0x00]);
    hostile.push(v2c_get_with(&long_arc));
    // A v3 message with a 200-byte engine ID.
    let mut v3 = vec![
        0x30, 0x81, 0xff, 0x02, 0x01, 0x03, 0x30, 0x0d, 0x02, 0x01, 0x01, 0x02, 0x02, 0x05, 0xdc,
        0x04, 0x01, 0x04, 0x02, 0x01, 0x03,
    ];
    v3.extend([0x04, 0x81, 0xd0, 0x30, 0x81, 0xcd, 0x04, 0x81, 0xc8]);
    v3.extend([0x41; 200]);
    hostile.push(v3);
    // Random bytes from a fixed seed.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in [3usize, 17, 64, 300, 1400] {
        let mut d = vec![0x30u8];
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            d.push(x as u8);
        }
        hostile.push(d);
    }
    let mut buf = [0u8; 2048];
    for d in &hostile {
        sock.send_to(d, ("127.0.0.1", pdu.port)).unwrap();
        assert!(
            sock.recv(&mut buf).is_err(),
            "no answer to malformed {:02x?}",
            &d[..d.len().min(16)]
        );
    }
    let out = pdu.snmp(
        "snmpget",
        &["-v2c", "-c", "public", "-Oqv", "AGENT", "1.3.6.1.2.1.1.5.0"],
    );
    assert_eq!(stdout(&out), "\"kalab-pdu\"", "{out:?}\n{}", pdu.log());
}

/// A v2c GET message (community `public`, request id 1) with `bindings` as the varbind list content.
fn v2c_get_with(bindings: &[u8]) -> Vec<u8> {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 128 {
            out.push(len as u8);
        } else if len < 256 {
            out.extend([0x81, len as u8]);
        } else {
            out.extend([0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(content);
        out
    }
    let mut pdu = vec![0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00];
    pdu.extend(tlv(0x30, bindings));
    let mut msg = vec![0x02, 0x01, 0x01];
    msg.extend(tlv(0x04, b"public"));
    msg.extend(tlv(0xa0, &pdu));
    tlv(0x30, &msg)
}

//! The lab BMC (`kalab-bmc`) against Debian's `ipmitool -I lanplus` and the native `hal` IPMI client,
//! driving a fake VM (a `sleep` started by the start script).

#[path = "support/bmc.rs"]
mod support;

use hal::node::NodeId;
use hal::power::ipmi::{IpmiPower, IpmiTarget};
use hal::testing::process::require;
use hal::{ErrorKind, Power, PowerAction, PowerLevel, PowerState};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::{Bmc, PASSWORD, pid_alive, power, signal};

#[test]
fn ipmitool_drives_the_fake_vm() {
    require("ipmitool", "ipmitool");
    let bmc = Bmc::start("ipmitool");
    assert!(
        bmc.ipmitool_ok(&["chassis", "power", "status"])
            .contains("Chassis Power is off")
    );

    bmc.ipmitool_ok(&["chassis", "power", "on"]);
    let first = bmc.wait_vm(true).unwrap();
    assert!(
        bmc.ipmitool_ok(&["chassis", "power", "status"])
            .contains("Chassis Power is on")
    );
    // On when on changes nothing.
    bmc.ipmitool_ok(&["chassis", "power", "on"]);
    assert_eq!(bmc.vm_running(), Some(first));

    bmc.ipmitool_ok(&["chassis", "power", "cycle"]);
    let second = bmc.wait_vm(true).unwrap();
    assert_ne!(first, second);
    assert!(!pid_alive(first), "cycle left the old VM running");

    // Without QMP, reset is a cycle. Cipher suite 3 explicitly, password from a file.
    let pwfile = bmc.dir.join("password");
    bmc.ipmitool_ok(&[
        "-C",
        "3",
        "-f",
        pwfile.to_str().unwrap(),
        "chassis",
        "power",
        "reset",
    ]);
    let third = bmc.wait_vm(true).unwrap();
    assert_ne!(second, third);

    bmc.ipmitool_ok(&["chassis", "power", "off"]);
    bmc.wait_vm(false);
    assert!(!pid_alive(third));
    assert!(
        bmc.ipmitool_ok(&["chassis", "power", "status"])
            .contains("Chassis Power is off")
    );
    let log = bmc.log();
    assert!(
        log.contains("chassis control") && log.contains("chassis status"),
        "{log}"
    );
}

#[test]
fn wrong_credentials_are_refused() {
    require("ipmitool", "ipmitool");
    let bmc = Bmc::start("auth");
    let out = bmc.ipmitool("not-the-password", &["chassis", "power", "on"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unable to establish IPMI v2"));
    assert_eq!(
        bmc.vm_running(),
        None,
        "a refused command powered the VM on"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let wrong = IpmiPower::new(
        BTreeMap::from([(NodeId(0), bmc.target("not-the-password"))]),
        Duration::from_millis(500),
        1,
    );
    let err = rt
        .block_on(wrong.power(PowerAction::On, PowerLevel::Hard, &[NodeId(0)]))
        .failures()[0]
        .1
        .clone();
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    assert!(err.message.contains("wrong password"), "{err}");
    let mut target = bmc.target(PASSWORD);
    target.user = "nobody".into();
    let unknown = IpmiPower::new(
        BTreeMap::from([(NodeId(0), target)]),
        Duration::from_millis(500),
        1,
    );
    let err = rt.block_on(unknown.status(&[NodeId(0)])).failures()[0]
        .1
        .clone();
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    assert!(err.message.contains("unauthorized name"), "{err}");
    assert_eq!(bmc.vm_running(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_client_drives_the_fake_vm() {
    let bmc = Bmc::start("native");
    let p = power(&bmc, Duration::from_secs(1), 2);
    let n = [NodeId(0)];
    assert_eq!(p.status(&n).await.0[0].1, Ok(PowerState::Off));
    // Reboot of an off chassis powers it on.
    assert_eq!(
        p.power(PowerAction::Reboot, PowerLevel::Hard, &n).await.0[0].1,
        Ok(())
    );
    let first = bmc.wait_vm(true).unwrap();
    assert_eq!(p.status(&n).await.0[0].1, Ok(PowerState::On));
    assert_eq!(
        p.power(PowerAction::Reboot, PowerLevel::Hard, &n).await.0[0].1,
        Ok(())
    );
    let second = bmc.wait_vm(true).unwrap();
    assert_ne!(first, second);
    assert!(!pid_alive(first));
    assert_eq!(
        p.power(PowerAction::Off, PowerLevel::Hard, &n).await.0[0].1,
        Ok(())
    );
    bmc.wait_vm(false);
    assert_eq!(p.status(&n).await.0[0].1, Ok(PowerState::Off));
    assert_eq!(
        p.power(PowerAction::On, PowerLevel::Hard, &n).await.0[0].1,
        Ok(())
    );
    bmc.wait_vm(true);
    let soft = p.power(PowerAction::Reboot, PowerLevel::Soft, &n).await;
    assert_eq!(soft.failures()[0].1.kind, ErrorKind::NotSupported);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_handled_concurrently_and_in_order() {
    let bmcs: Vec<Bmc> = (0..3).map(|i| Bmc::start(&format!("multi{i}"))).collect();
    let targets: BTreeMap<NodeId, IpmiTarget> = bmcs
        .iter()
        .enumerate()
        .map(|(i, b)| (NodeId(i as u32), b.target(PASSWORD)))
        .collect();
    let p = IpmiPower::new(targets, Duration::from_secs(1), 1);
    let nodes = [NodeId(2), NodeId(0), NodeId(1)];
    let out = p
        .power(PowerAction::On, PowerLevel::Hard, &[NodeId(1)])
        .await;
    assert!(out.failures().is_empty(), "{out:?}");
    bmcs[1].wait_vm(true);
    let status = p.status(&nodes).await;
    let got: Vec<_> = status.iter().map(|(n, o)| (*n, o.clone().ok())).collect();
    assert_eq!(
        got,
        vec![
            (NodeId(2), Some(PowerState::Off)),
            (NodeId(0), Some(PowerState::Off)),
            (NodeId(1), Some(PowerState::On))
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_bmc_is_unreachable_within_the_timeout() {
    let bmc = Bmc::start("stopped");
    let p = power(&bmc, Duration::from_millis(200), 2);
    assert_eq!(p.status(&[NodeId(0)]).await.0[0].1, Ok(PowerState::Off));
    signal(bmc.child.id(), "STOP");
    let start = Instant::now();
    let out = p
        .power(PowerAction::On, PowerLevel::Hard, &[NodeId(0)])
        .await;
    let took = start.elapsed();
    let err = out.failures()[0].1.clone();
    assert_eq!(err.kind, ErrorKind::Unreachable, "{err}");
    // (retries + 1) × timeout = 600 ms, plus scheduling slack.
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(2),
        "{took:?}"
    );
    signal(bmc.child.id(), "CONT");
    assert_eq!(p.status(&[NodeId(0)]).await.0[0].1, Ok(PowerState::Off));
}

#[test]
fn one_status_call_is_fast() {
    require("ipmitool", "ipmitool");
    let bmc = Bmc::start("timing");
    let start = Instant::now();
    bmc.ipmitool_ok(&["chassis", "power", "status"]);
    let ipmitool = start.elapsed();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let p = power(&bmc, Duration::from_secs(1), 1);
    let start = Instant::now();
    assert_eq!(
        rt.block_on(p.status(&[NodeId(0)])).0[0].1,
        Ok(PowerState::Off)
    );
    let native = start.elapsed();
    eprintln!("one `chassis power status`: ipmitool {ipmitool:?}, native {native:?}");
    assert!(
        ipmitool < Duration::from_secs(2) && native < Duration::from_secs(1),
        "{ipmitool:?} {native:?}"
    );
}

/// A QMP socket standing in for QEMU's: records commands; `quit` kills the fake VM like QEMU exiting.
struct FakeQmp {
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeQmp {
    fn serve(dir: &std::path::Path) -> FakeQmp {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::os::unix::net::UnixListener::bind(dir.join("qmp.sock")).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (log, pidfile) = (seen.clone(), dir.join("vm.pid"));
        // The thread ends with the test process; the socket goes with the directory.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let _ = conn.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n");
                let reader = BufReader::new(conn.try_clone().unwrap());
                for line in reader.lines() {
                    let Ok(line) = line else { break };
                    let cmd = ["qmp_capabilities", "system_reset", "quit"]
                        .into_iter()
                        .find(|c| line.contains(c))
                        .unwrap_or("other");
                    log.lock().unwrap().push(cmd.to_string());
                    let _ = conn.write_all(b"{\"return\": {}}\n");
                    if cmd == "quit" {
                        let pid = std::fs::read_to_string(&pidfile).unwrap_or_default();
                        signal(pid.trim().parse().unwrap_or(0), "KILL");
                        break;
                    }
                }
            }
        });
        FakeQmp { seen }
    }

    fn commands(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|c| *c != "qmp_capabilities")
            .cloned()
            .collect()
    }
}

#[test]
fn qmp_resets_in_place_and_quits_on_power_off() {
    require("ipmitool", "ipmitool");
    let bmc = Bmc::start_with("qmp", true);
    let qmp = FakeQmp::serve(&bmc.dir);
    bmc.ipmitool_ok(&["chassis", "power", "on"]);
    let pid = bmc.wait_vm(true).unwrap();
    bmc.ipmitool_ok(&["chassis", "power", "reset"]);
    assert_eq!(qmp.commands(), vec!["system_reset"]);
    assert_eq!(
        bmc.vm_running(),
        Some(pid),
        "reset with QMP must not restart the process"
    );
    bmc.ipmitool_ok(&["chassis", "power", "off"]);
    bmc.wait_vm(false);
    assert_eq!(qmp.commands(), vec!["system_reset", "quit"]);
    assert!(bmc.log().contains("QMP quit sent"), "{}", bmc.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retransmitted_commands_run_once() {
    let bmc = Bmc::start("retransmit");
    let p = power(&bmc, Duration::from_millis(80), 10);
    let n = [NodeId(0)];
    assert_eq!(
        p.power(PowerAction::On, PowerLevel::Hard, &n).await.0[0].1,
        Ok(())
    );
    let first = bmc.wait_vm(true).unwrap();
    // The start script now takes 400 ms: the client retransmits the cycle several times meanwhile.
    std::fs::write(bmc.dir.join("slow"), "").unwrap();
    assert_eq!(
        p.power(PowerAction::Reboot, PowerLevel::Hard, &n).await.0[0].1,
        Ok(())
    );
    let second = bmc.wait_vm(true).unwrap();
    assert_ne!(first, second);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let starts = std::fs::read_to_string(bmc.dir.join("starts")).unwrap();
    assert_eq!(
        starts.lines().count(),
        2,
        "the cycle ran more than once; log:\n{}",
        bmc.log()
    );
    assert_eq!(bmc.vm_running(), Some(second));
    assert!(
        bmc.log().contains("retransmission answered from cache"),
        "{}",
        bmc.log()
    );
}

//! IPMI tests: the native client against OpenIPMI's `ipmi_sim`, an independent RMCP+ server.
//! (The lab BMC is tested against ipmitool and this client in `qemu-lab/tests/bmc.rs`.)

use hal::node::NodeId;
use hal::power::ipmi::bootdev::{BootDevice, BootFlags};
use hal::power::ipmi::{IpmiPower, IpmiTarget};
use hal::testing::conformance::{Nodes, PowerSubject, check_power};
use hal::testing::process::require;
use hal::{ErrorKind, Power, PowerAction, PowerLevel, PowerState};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// One `ipmi_sim` on a loopback port in a private directory; killed on drop.
struct Sim {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Sim {
    fn start() -> Sim {
        require("ipmi_sim", "openipmi");
        // One directory per simulator: the tests of this file run at the same time.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hal-ipmi-sim-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let auths = "none md2 md5 straight";
        let conf = format!(
            "name \"halsim\"\nset_working_mc 0x20\n  startlan 1\n    addr 127.0.0.1 {port}\n    priv_limit admin\n\
             allowed_auths_callback {auths}\n    allowed_auths_user {auths}\n    allowed_auths_operator {auths}\n\
             allowed_auths_admin {auths}\n    guid a123456789abcdefa123456789abcdef\n  endlan\n\
             chassis_control \"{cc}\"\n  user 2 true \"ADMIN\" \"simpw\" admin 10 {auths}\n",
            cc = dir.join("chassis.sh").display()
        );
        // ipmi_sim runs `chassis.sh get power` (answer `power:<0|1>`), `chassis.sh set power <0|1>`, and
        // `get boot` / `set boot <pxe|default|...>` for the boot device.
        let state = dir.join("power");
        let script = format!(
            "#!/bin/sh\nop=$1; shift\necho \"$op $*\" >> {log}\nif [ \"$op\" = get ]; then\n  for p in \"$@\"; do\n    \
             case $p in power) echo \"power:$(cat {state} 2>/dev/null || echo 0)\";; \
             boot) echo \"boot:$(cat {boot} 2>/dev/null || echo none)\";; *) echo \"$p:0\";; esac\n  done\n\
             else\n  while [ $# -gt 1 ]; do\n    [ \"$1\" = power ] && echo \"$2\" > {state}\n    \
             [ \"$1\" = boot ] && echo \"$2\" > {boot}\n    shift 2\n  done\nfi\n",
            boot = dir.join("boot").display(),
            log = dir.join("chassis.log").display(),
            state = state.display()
        );
        std::fs::write(dir.join("chassis.sh"), script).unwrap();
        std::fs::set_permissions(
            dir.join("chassis.sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(dir.join("lan.conf"), conf).unwrap();
        std::fs::write(
            dir.join("sim.emu"),
            "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n",
        )
        .unwrap();
        let child = Command::new("ipmi_sim")
            .arg("-c")
            .arg(dir.join("lan.conf"))
            .arg("-f")
            .arg(dir.join("sim.emu"))
            .arg("-s")
            .arg(dir.join("state"))
            .args(["-n", "-p"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Sim { child, dir, port }
    }

    fn power(&self, password: &str) -> IpmiPower {
        let targets = BTreeMap::from([(NodeId(0), self.target(password))]);
        IpmiPower::new(targets, Duration::from_millis(300), 1)
    }

    /// This simulated BMC as a node's target.
    fn target(&self, password: &str) -> IpmiTarget {
        IpmiTarget {
            host: "127.0.0.1".into(),
            port: self.port,
            user: "ADMIN".into(),
            password: password.into(),
        }
    }

    /// Waits until the simulator answers `power`'s status queries (it needs a moment to listen).
    async fn wait_ready(power: &IpmiPower) -> hal::Outcome<PowerState> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = power.status(&[NodeId(0)]).await;
            match &out.0[0].1 {
                Err(e) if e.kind == ErrorKind::Unreachable && Instant::now() < deadline => continue,
                other => break other.clone(),
            }
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn the_native_client_drives_ipmi_sim_and_is_refused_a_wrong_password() {
    let sim = Sim::start();
    let good = sim.power("simpw");
    let status = Sim::wait_ready(&good).await;
    // ipmi_sim ignores the pre-session cipher suite query: the client falls back to suite 3.
    assert_eq!(status, Ok(PowerState::Off));
    let n = [NodeId(0)];
    // Reboot of an off chassis powers it on.
    assert_eq!(
        good.power(PowerAction::Reboot, PowerLevel::Hard, &n)
            .await
            .0[0]
            .1,
        Ok(())
    );
    assert_eq!(good.status(&n).await.0[0].1, Ok(PowerState::On));
    assert_eq!(
        good.power(PowerAction::Off, PowerLevel::Hard, &n).await.0[0].1,
        Ok(())
    );
    assert_eq!(good.status(&n).await.0[0].1, Ok(PowerState::Off));
    assert_eq!(
        good.power(PowerAction::On, PowerLevel::Hard, &n).await.0[0].1,
        Ok(())
    );
    assert_eq!(good.status(&n).await.0[0].1, Ok(PowerState::On));
    let log = std::fs::read_to_string(sim.dir.join("chassis.log")).unwrap();
    let sets: Vec<&str> = log.lines().filter(|l| l.starts_with("set")).collect();
    assert_eq!(sets, ["set power 1", "set power 0", "set power 1"], "{log}");
    let err = sim.power("not-simpw").status(&[NodeId(0)]).await.0[0]
        .1
        .clone()
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    assert!(err.message.contains("wrong password"), "{err}");
}

/// The conformance suite (`hal::testing::conformance`) against the native client: three nodes, each
/// behind its own simulated BMC, switched at the hard level (the only one IPMI serves).
#[tokio::test]
async fn the_native_client_conforms() {
    let sims: Vec<Sim> = (0..3).map(|_| Sim::start()).collect();
    let targets = sims
        .iter()
        .enumerate()
        .map(|(i, sim)| (NodeId(i as u32), sim.target("simpw")));
    let power = IpmiPower::new(BTreeMap::from_iter(targets), Duration::from_secs(1), 2);
    for sim in &sims {
        assert!(Sim::wait_ready(&sim.power("simpw")).await.is_ok());
    }
    let mut unsupported = Vec::new();
    for level in [PowerLevel::Soft, PowerLevel::VeryHard] {
        for action in [PowerAction::Reboot, PowerAction::On, PowerAction::Off] {
            unsupported.push((action, level));
        }
    }
    let subject = PowerSubject {
        nodes: Nodes::table(3),
        accepted: Vec::new(),
        switch: Some(PowerLevel::Hard),
        unsupported,
        status: true,
    };
    check_power(&power, &subject).await.unwrap();
}

/// The native client sets the next boot device of `ipmi_sim` (which hands it to its chassis script
/// as `set boot pxe`) and reads it back. `ipmi_sim` keeps only the device selector: it reports the
/// flags as not valid and one-time whatever was written.
#[tokio::test]
async fn the_native_client_sets_the_boot_device_of_ipmi_sim() {
    let sim = Sim::start();
    let power = sim.power("simpw");
    assert!(Sim::wait_ready(&power).await.is_ok());
    let n = [NodeId(0)];
    let out = power
        .set_boot_flags(&n, BootFlags::next(BootDevice::Pxe))
        .await;
    assert!(out.failures().is_empty(), "{out:?}");
    let read = power.boot_flags(&n).await.0[0].1.clone();
    assert_eq!(read.map(|f| f.device), Ok(BootDevice::Pxe));
    let log = std::fs::read_to_string(sim.dir.join("chassis.log")).unwrap();
    assert!(log.lines().any(|l| l == "set boot pxe"), "{log}");
}

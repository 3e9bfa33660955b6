//! Backends that run locally: command-template power, TCP probes and the command console.

use crate::harness::{Lab, nodes, s};
use hal::console::command::CommandConsole;
use hal::power::command::{CommandPower, PowerCommands};
use hal::reachability::tcp::TcpProbe;
use hal::{
    Console, ErrorKind, NodeId, PortCheck, Power, PowerAction, PowerLevel, PowerState, Reachability,
};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread")]
async fn command_power_templates_and_overrides() {
    let lab = Lab::new();
    let log = lab.path("power.log");
    let fake = lab.path("fake-ipmi");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$*\" >> {}\ncase \"$1\" in fail) echo 'no route to BMC' >&2; exit 1;; status) echo \"Chassis Power is $3\";; hang) sleep 30;; esac\n",
            s(&log)
        ),
    )
    .unwrap();
    crate::harness::sh(&format!("chmod 755 {}", s(&fake)));
    let f = s(&fake);
    let cluster = PowerCommands::new()
        .with(
            PowerAction::Reboot,
            PowerLevel::Hard,
            format!("{f} reboot HOSTNAME_SHORT HOSTNAME_FQDN"),
        )
        .with(
            PowerAction::Off,
            PowerLevel::Hard,
            format!("{f} fail HOSTNAME_SHORT"),
        )
        .with(
            PowerAction::On,
            PowerLevel::Hard,
            format!("{f} hang HOSTNAME_SHORT"),
        )
        .with_status(format!("{f} status HOSTNAME_SHORT on"));
    let own: BTreeMap<String, String> = [
        (
            "reboot_hard".to_string(),
            format!("{f} vm-reset HOSTNAME_SHORT"),
        ),
        (
            "power_status".to_string(),
            format!("{f} status HOSTNAME_SHORT off"),
        ),
    ]
    .into();
    let overrides: BTreeMap<String, PowerCommands> = [(
        "node-1.lab".to_string(),
        PowerCommands::from_command_conf("node-1.lab", own).unwrap(),
    )]
    .into();
    let power = CommandPower::new(
        nodes(&["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
        cluster,
        Duration::from_secs(1),
    )
    .with_overrides(overrides)
    .unwrap();
    let all = [NodeId(2), NodeId(1), NodeId(0)];
    let out = power
        .power(PowerAction::Reboot, PowerLevel::Hard, &all)
        .await;
    assert!(out.failures().is_empty(), "{:?}", out.failures());
    let mut lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "reboot node-0 node-0.lab",
            "reboot node-2 node-2.lab",
            "vm-reset node-1"
        ]
    );

    let out = power.power(PowerAction::Off, PowerLevel::Hard, &all).await;
    let e = out.0[0].1.as_ref().unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::CommandFailed, "no route to BMC")
    );

    let out = power
        .power(PowerAction::Reboot, PowerLevel::VeryHard, &all)
        .await;
    let e = out.0[1].1.as_ref().unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (
            ErrorKind::NotSupported,
            "very_hard_reboot command is not provided"
        )
    );

    let start = Instant::now();
    let out = power.power(PowerAction::On, PowerLevel::Hard, &all).await;
    assert!(
        out.iter()
            .all(|(_, o)| o.as_ref().unwrap_err().kind == ErrorKind::Timeout)
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "timeouts run concurrently: {:?}",
        start.elapsed()
    );

    let status = power.status(&all).await;
    let states: Vec<_> = status
        .iter()
        .map(|(n, o)| (*n, o.clone().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            (NodeId(2), PowerState::On),
            (NodeId(1), PowerState::Off),
            (NodeId(0), PowerState::On)
        ]
    );

    let unknown: BTreeMap<String, PowerCommands> =
        [("ghost".to_string(), PowerCommands::new())].into();
    assert!(
        CommandPower::new(
            nodes(&["10.0.0.1"]),
            PowerCommands::new(),
            Duration::from_secs(1)
        )
        .with_overrides(unknown)
        .is_err()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_probe_up_and_down() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let probe = TcpProbe::new(
        nodes(&["127.0.0.1", "127.0.0.1"]),
        Duration::from_millis(500),
    );
    let n = [NodeId(0), NodeId(1), NodeId(5)];
    let check = |up: Vec<u16>, down: Vec<u16>| PortCheck { up, down };
    let kinds = |out: hal::Outcomes| {
        out.iter()
            .map(|(_, o)| o.as_ref().err().map(|e| e.kind))
            .collect::<Vec<_>>()
    };
    let out = probe.probe(&n, &check(vec![open], vec![closed])).await;
    assert_eq!(kinds(out), [None, None, Some(ErrorKind::Config)]);
    let out = probe.probe(&n[..2], &check(vec![closed], vec![])).await;
    assert_eq!(kinds(out), [Some(ErrorKind::Unreachable); 2]);
    let out = probe.probe(&n[..1], &check(vec![], vec![open])).await;
    let e = out.0[0].1.as_ref().unwrap_err();
    assert!(e.message.contains(&format!("port {open}")), "{e:?}");
    drop(listener);
}

#[tokio::test(flavor = "multi_thread")]
async fn command_console_with_cat() {
    let lab = Lab::new();
    let pidfile = lab.path("console.pid");
    let console = CommandConsole::new(
        nodes(&["127.0.0.1", "127.0.0.1"]),
        Some(format!("echo $$ > {}; cat", s(&pidfile))),
    )
    .with_overrides(
        [(
            "node-1.lab".to_string(),
            "echo HOSTNAME_SHORT; cat".to_string(),
        )]
        .into(),
    );
    let mut stream = console.attach(NodeId(0)).await.unwrap();
    stream.write_all(b"hello console\n").await.unwrap();
    stream.flush().await.unwrap();
    let mut buf = [0u8; 14];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"hello console\n");
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(stream);
    // The shell and its `cat` (the whole process group) are gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !group_members(&pid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "console processes still running after drop: {:?}",
            group_members(&pid)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut other = console.attach(NodeId(1)).await.unwrap();
    let mut line = [0u8; 7];
    other.read_exact(&mut line).await.unwrap();
    assert_eq!(&line, b"node-1\n");
    let none = CommandConsole::new(nodes(&["127.0.0.1"]), None);
    assert_eq!(
        none.attach(NodeId(0)).await.err().unwrap().kind,
        ErrorKind::NotSupported
    );
}

/// Live (not zombie) processes whose process group is `pgid`.
fn group_members(pgid: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{name}/stat")).ok()?;
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            (fields.first() != Some(&"Z") && fields.get(2) == Some(&pgid)).then_some(name)
        })
        .collect()
}

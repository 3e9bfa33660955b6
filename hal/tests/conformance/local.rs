//! The conformance suite against the real backends that run on this machine without root: command-template
//! power over shell scripts that keep each node's power state in a file, power by level, TCP probes of
//! loopback ports, and a command console running `cat`.

use hal::NodeInfo;
use hal::console::command::CommandConsole;
use hal::power::command::{CommandPower, PowerCommands};
use hal::power::levels::PowerByLevel;
use hal::reachability::tcp::TcpProbe;
use hal::testing::conformance::{
    ConsoleSubject, Nodes, PowerSubject, ReachabilitySubject, check_console, check_power,
    check_reachability,
};
use hal::{PortCheck, PowerAction, PowerLevel};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("hal-conformance-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Nodes `node-<i>.lab` at 127.0.0.1.
fn loopback_nodes(count: usize) -> Vec<NodeInfo> {
    (0..count)
        .map(|i| NodeInfo {
            name: format!("node-{i}.lab"),
            address: [127, 0, 0, 1].into(),
        })
        .collect()
}

/// Hard-level commands that write `on`/`off` to `<dir>/<short name>`, a status that reads it, a soft
/// reboot that only checks its argument; nothing at the very-hard level, no soft power-on or -off.
fn state_file_commands(dir: &std::path::Path) -> PowerCommands {
    let state = format!("{}/HOSTNAME_SHORT", dir.display());
    PowerCommands::new()
        .with(
            PowerAction::Reboot,
            PowerLevel::Soft,
            "test -n HOSTNAME_FQDN",
        )
        .with(
            PowerAction::Off,
            PowerLevel::Hard,
            format!("echo off > {state}"),
        )
        .with(
            PowerAction::On,
            PowerLevel::Hard,
            format!("echo on > {state}"),
        )
        .with(
            PowerAction::Reboot,
            PowerLevel::Hard,
            format!("echo on > {state}"),
        )
        .with_status(format!("echo \"Chassis Power is $(cat {state})\""))
}

/// What the state-file commands support.
fn state_file_subject() -> PowerSubject {
    PowerSubject {
        nodes: Nodes::table(3),
        accepted: vec![(PowerAction::Reboot, PowerLevel::Soft)],
        switch: Some(PowerLevel::Hard),
        unsupported: vec![
            (PowerAction::On, PowerLevel::Soft),
            (PowerAction::Off, PowerLevel::Soft),
            (PowerAction::Reboot, PowerLevel::VeryHard),
            (PowerAction::On, PowerLevel::VeryHard),
            (PowerAction::Off, PowerLevel::VeryHard),
        ],
        status: true,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn command_power_conforms() {
    let scratch = Scratch::new("command-power");
    let power = CommandPower::new(
        loopback_nodes(3),
        state_file_commands(&scratch.0),
        Duration::from_secs(20),
    );
    check_power(&power, &state_file_subject()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn power_by_level_conforms() {
    let scratch = Scratch::new("power-by-level");
    let commands: Arc<CommandPower> = Arc::new(CommandPower::new(
        loopback_nodes(3),
        state_file_commands(&scratch.0),
        Duration::from_secs(20),
    ));
    let power = PowerByLevel::new()
        .level(PowerLevel::Hard, commands.clone())
        .status_from(commands);
    let subject = PowerSubject {
        accepted: Vec::new(),
        unsupported: vec![
            (PowerAction::Reboot, PowerLevel::Soft),
            (PowerAction::Reboot, PowerLevel::VeryHard),
        ],
        ..state_file_subject()
    };
    check_power(&power, &subject).await.unwrap();
    let no_status = PowerByLevel::new();
    let subject = PowerSubject {
        nodes: Nodes::table(3),
        accepted: Vec::new(),
        switch: None,
        unsupported: vec![(PowerAction::Off, PowerLevel::Hard)],
        status: false,
    };
    check_power(&no_status, &subject).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_probes_of_loopback_ports_conform() {
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_port = open.local_addr().unwrap().port();
    let accepting = tokio::spawn(async move {
        while let Ok((conn, _)) = open.accept().await {
            drop(conn);
        }
    });
    // A port that was just free and is closed again.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let probe = TcpProbe::new(loopback_nodes(3), Duration::from_secs(5));
    for failing in [
        PortCheck {
            up: vec![closed_port],
            down: Vec::new(),
        },
        PortCheck {
            up: Vec::new(),
            down: vec![open_port],
        },
    ] {
        let subject = ReachabilitySubject {
            nodes: Nodes::table(3),
            passing: PortCheck {
                up: vec![open_port],
                down: vec![closed_port],
            },
            failing,
        };
        check_reachability(&probe, &subject).await.unwrap();
    }
    accepting.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn command_consoles_conform() {
    let console = CommandConsole::new(loopback_nodes(3), Some("cat".into()));
    let subject = ConsoleSubject {
        nodes: Nodes::table(3),
        echoes: true,
        timeout: Duration::from_secs(20),
    };
    check_console(&console, &subject).await.unwrap();
}

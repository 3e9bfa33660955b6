//! The HAL conformance suite (`hal::testing::conformance`) against the recording fake (paused time) and the
//! backends that run locally without root (command-template power, power by level, TCP probes on loopback,
//! the command console); and against deliberately broken wrappers of the fake, which it must reject.

#[path = "conformance/broken.rs"]
mod broken;
#[path = "conformance/local.rs"]
mod local;

use broken::{Broken, Fault};
use hal::testing::conformance::{
    BootSubject, BroadcastSubject, ConsoleSubject, Contract, NetBootSubject, NodeOpsSubject, Nodes,
    PowerSubject, ReachabilitySubject, check_boot_visibility, check_broadcast, check_console,
    check_netboot, check_node_ops, check_power, check_powered_off_refusal, check_reachability,
};
use hal::testing::fake::{Behaviour, DEPLOY_ENV_PORT, FakeHal, Log, SSH_PORT, Timings};
use hal::{
    BootProfile, Drivers, ErrorKind, ImageKind, ImageSpec, NodeId, Operation, PortCheck,
    PowerAction, PowerLevel, Strategy, WriteTarget,
};
use std::sync::Arc;
use std::time::Duration;

/// The deploy kernel's file name, as the fake recognises it in kexecs.
const DEPLOY_KERNEL: &str = "deploy-vmlinuz";

/// A fake of `count` nodes with the default timings.
fn fake(count: usize) -> Arc<FakeHal> {
    Arc::new(FakeHal::new(
        count,
        Log::default(),
        Timings::default(),
        DEPLOY_KERNEL,
    ))
}

/// Every driver of `fake`.
fn drivers(fake: &Arc<FakeHal>) -> Drivers {
    Drivers {
        power: fake.clone(),
        netboot: fake.clone(),
        ops: fake.clone(),
        reachability: fake.clone(),
        broadcast: fake.clone(),
        console: fake.clone(),
    }
}

/// The fake's power: every action at every level, and status.
fn power_subject() -> PowerSubject {
    PowerSubject {
        nodes: Nodes::table(3),
        accepted: vec![(PowerAction::Reboot, PowerLevel::Soft)],
        switch: Some(PowerLevel::Hard),
        unsupported: Vec::new(),
        status: true,
    }
}

/// Nodes 0..3 run operations, node 3 is powered off.
fn ops_subject() -> NodeOpsSubject {
    NodeOpsSubject {
        nodes: Nodes {
            known: vec![NodeId(0), NodeId(1), NodeId(2)],
            unknown: NodeId(4),
        },
        ok: vec![
            Operation::Sync,
            Operation::Dummy,
            Operation::Exec {
                command: "true".into(),
                env: Vec::new(),
            },
        ],
        failing: vec![(format_op(), ErrorKind::Disk)],
        down: Some(NodeId(3)),
    }
}

fn format_op() -> Operation {
    Operation::Format {
        device: "/dev/sda3".into(),
        fs: "ext4".into(),
        args: String::new(),
    }
}

/// A fake whose node 3 is off and whose formats fail with a disk error on every node.
fn ops_fake() -> Arc<FakeHal> {
    let f = fake(4);
    f.powered_off(NodeId(3));
    for n in 0..3 {
        let fail = Behaviour::Fail {
            times: None,
            kind: ErrorKind::Disk,
            message: "mkfs: write error".into(),
        };
        f.script(NodeId(n), "format", fail);
    }
    f
}

/// The production environment: ssh open, the deploy port closed.
fn user_env() -> PortCheck {
    PortCheck {
        up: vec![SSH_PORT],
        down: vec![DEPLOY_ENV_PORT],
    }
}

/// The deploy environment: ssh and the deploy port open.
fn deploy_env() -> PortCheck {
    PortCheck {
        up: vec![SSH_PORT, DEPLOY_ENV_PORT],
        down: Vec::new(),
    }
}

fn reachability_subject() -> ReachabilitySubject {
    ReachabilitySubject {
        nodes: Nodes::table(3),
        passing: user_env(),
        failing: PortCheck {
            up: vec![DEPLOY_ENV_PORT],
            down: Vec::new(),
        },
    }
}

fn deploy_kernel() -> BootProfile {
    BootProfile::DeployKernel {
        kernel: format!("kernels/{DEPLOY_KERNEL}"),
        initrd: "kernels/deploy-initrd".into(),
        params: "console=ttyS0".into(),
    }
}

fn netboot_subject() -> NetBootSubject {
    NetBootSubject {
        nodes: Nodes::table(3),
        profiles: vec![
            deploy_kernel(),
            BootProfile::LocalDisk {
                device: "/dev/sda".into(),
                partition: 3,
                system: None,
            },
            BootProfile::Custom {
                name: "rescue".into(),
                content: "DEFAULT rescue".into(),
                singularities: None,
            },
        ],
    }
}

fn broadcast_subject() -> BroadcastSubject {
    BroadcastSubject {
        nodes: Nodes::table(3),
        image: ImageSpec {
            path: "/var/cache/env.tgz".into(),
            kind: ImageKind::Tar,
            compression: "gzip".into(),
            size: 1 << 20,
            uncompressed_size: None,
        },
        target: WriteTarget {
            device: "/dev/sda3".into(),
            extraction_dir: "/mnt/dest".into(),
        },
        strategies: vec![
            Strategy::Chain,
            Strategy::Tree { arity: 2 },
            Strategy::FaultTolerantChain,
            Strategy::Unicast,
        ],
    }
}

fn console_subject() -> ConsoleSubject {
    ConsoleSubject {
        nodes: Nodes::table(3),
        echoes: false,
        timeout: Duration::from_secs(10),
    }
}

fn boot_subject() -> BootSubject {
    let t = Timings::default();
    BootSubject {
        nodes: vec![NodeId(2), NodeId(0), NodeId(1)],
        profile: deploy_kernel(),
        level: PowerLevel::Hard,
        check: deploy_env(),
        boot_time: Duration::from_secs_f64(t.op_secs + t.boot_secs + 1.0),
    }
}

#[tokio::test(start_paused = true)]
async fn the_fake_power_conforms() {
    check_power(&*fake(3), &power_subject()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_fake_node_ops_conform() {
    check_node_ops(&*ops_fake(), &ops_subject()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_fake_probes_conform() {
    check_reachability(&*fake(3), &reachability_subject())
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_fake_netboot_conforms() {
    check_netboot(&*fake(3), &netboot_subject()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_fake_broadcast_conforms() {
    check_broadcast(&*fake(3), &broadcast_subject())
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_fake_console_conforms() {
    check_console(&*fake(3), &console_subject()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_fake_shows_a_profile_only_after_the_boot() {
    check_boot_visibility(&drivers(&fake(3)), &boot_subject())
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_fake_refuses_operations_on_a_powered_off_node() {
    let nodes = [NodeId(0), NodeId(1), NodeId(2)];
    check_powered_off_refusal(
        &drivers(&fake(3)),
        PowerLevel::Hard,
        &nodes,
        &Operation::Sync,
    )
    .await
    .unwrap();
}

/// The contract each check reports for `fault`.
async fn violations(fault: Fault) -> Vec<(&'static str, Contract)> {
    let mut seen = Vec::new();
    let mut note = |name: &'static str, got: Result<(), hal::testing::conformance::Violation>| {
        if let Err(v) = got {
            seen.push((name, v.contract));
        }
    };
    note(
        "power",
        check_power(&Broken::new(fake(3), fault), &power_subject()).await,
    );
    note(
        "node_ops",
        check_node_ops(&Broken::new(ops_fake(), fault), &ops_subject()).await,
    );
    let probe = Broken::new(fake(3), fault);
    note(
        "reachability",
        check_reachability(&probe, &reachability_subject()).await,
    );
    note(
        "netboot",
        check_netboot(&Broken::new(fake(3), fault), &netboot_subject()).await,
    );
    note(
        "broadcast",
        check_broadcast(&Broken::new(fake(3), fault), &broadcast_subject()).await,
    );
    note(
        "console",
        check_console(&Broken::new(fake(3), fault), &console_subject()).await,
    );
    let f = fake(3);
    let lying = Drivers {
        reachability: Arc::new(Broken::new(f.clone(), fault)),
        ..drivers(&f)
    };
    note("boot", check_boot_visibility(&lying, &boot_subject()).await);
    let f = fake(3);
    let lying = Drivers {
        ops: Arc::new(Broken::new(f.clone(), fault)),
        ..drivers(&f)
    };
    let nodes = [NodeId(0), NodeId(1), NodeId(2)];
    note(
        "powered_off",
        check_powered_off_refusal(&lying, PowerLevel::Hard, &nodes, &Operation::Sync).await,
    );
    seen
}

#[tokio::test(start_paused = true)]
async fn dropped_reordered_and_phantom_outcomes_are_caught_by_every_node_set_check() {
    use Contract::{EmptyList, OneOutcomePerNode};
    let set_checks = [
        "power",
        "node_ops",
        "reachability",
        "netboot",
        "broadcast",
        "boot",
        "powered_off",
    ];
    for (fault, contract) in [
        (Fault::DropsLast, OneOutcomePerNode),
        (Fault::Reverses, OneOutcomePerNode),
        (Fault::Phantom, EmptyList),
    ] {
        let seen = violations(fault).await;
        let names: Vec<&str> = seen.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, set_checks, "{fault:?}: {seen:?}");
        for (name, got) in &seen {
            // A phantom outcome in a call on a non-empty list breaks the one-per-node contract instead.
            let expected = match (fault, *name) {
                (Fault::Phantom, "boot" | "powered_off") => OneOutcomePerNode,
                _ => contract,
            };
            assert_eq!(*got, expected, "{fault:?} in {name}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn misclassified_unknown_nodes_and_mute_errors_are_caught() {
    let every = [
        "power",
        "node_ops",
        "reachability",
        "netboot",
        "broadcast",
        "console",
        "boot",
        "powered_off",
    ];
    // The cross-trait checks use known nodes only.
    let unknown: Vec<_> = every[..6]
        .iter()
        .map(|&name| (name, Contract::UnknownNode))
        .collect();
    assert_eq!(violations(Fault::MisclassifiesUnknown).await, unknown);
    let mute: Vec<_> = every
        .iter()
        .map(|&name| (name, Contract::ErrorMessage))
        .collect();
    assert_eq!(violations(Fault::Mute).await, mute);
}

#[tokio::test(start_paused = true)]
async fn lying_power_probes_operations_and_consoles_are_caught() {
    assert_eq!(
        violations(Fault::StatusAlwaysOn).await,
        [("power", Contract::PowerState)]
    );
    assert_eq!(
        violations(Fault::ProbesAlwaysPass).await,
        [
            ("reachability", Contract::ErrorKind),
            ("boot", Contract::BootVisibility)
        ]
    );
    assert_eq!(
        violations(Fault::FirstPortOnly).await,
        [
            ("reachability", Contract::EveryCheckHolds),
            ("boot", Contract::BootVisibility)
        ]
    );
    assert_eq!(
        violations(Fault::OpsNeverFail).await,
        [
            ("node_ops", Contract::ErrorKind),
            ("powered_off", Contract::PoweredOff)
        ]
    );
    assert_eq!(
        violations(Fault::ConsoleNeverCloses).await,
        [("console", Contract::Console)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_reworded_missing_command_is_caught() {
    let by_level = Arc::new(
        hal::power::levels::PowerByLevel::new()
            .level(PowerLevel::Hard, fake(3))
            .status_from(fake(3)),
    );
    let subject = PowerSubject {
        nodes: Nodes::table(3),
        accepted: vec![(PowerAction::Reboot, PowerLevel::Hard)],
        switch: None,
        unsupported: vec![(PowerAction::Reboot, PowerLevel::VeryHard)],
        status: true,
    };
    check_power(&*by_level, &subject).await.unwrap();
    let v = check_power(&Broken::new(by_level, Fault::Rewords), &subject)
        .await
        .unwrap_err();
    assert_eq!(v.contract, Contract::NotSupported, "{v}");
}

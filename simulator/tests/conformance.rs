//! The HAL conformance suite (`hal::testing::conformance`) against the simulated cluster, in paused
//! virtual time: every trait's contracts, a reboot into the deploy kernel visible only after the boot,
//! and powered-off nodes refusing node operations alone.

use hal::testing::conformance::{
    BootSubject, BroadcastSubject, ConsoleSubject, NetBootSubject, NodeOpsSubject, Nodes,
    PowerSubject, ReachabilitySubject, check_boot_visibility, check_broadcast, check_console,
    check_netboot, check_node_ops, check_power, check_powered_off_refusal, check_reachability,
};
use hal::{
    BootProfile, ErrorKind, ImageKind, ImageSpec, NetBoot, NodeId, NodeInfo, Operation, PortCheck,
    Power, PowerAction, PowerLevel, Strategy, WriteTarget,
};
use simulator::cluster::{DEPLOY_ENV_PORT, SSH_PORT, SimCluster};
use simulator::params::SimParams;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

/// Longer than any boot of the default parameters.
const BOOT_TIME: Duration = Duration::from_secs(1000);

/// A cluster of `n` nodes named `node-<i>.sim.example` with the parameters of `yaml`.
fn cluster(n: usize, yaml: &str) -> Arc<SimCluster> {
    let nodes = (0..n)
        .map(|i| NodeInfo {
            name: format!("node-{i}.sim.example"),
            address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8)),
        })
        .collect();
    let params = SimParams::from_yaml_str(yaml).expect("valid parameters");
    Arc::new(SimCluster::new(nodes, params, 7).expect("valid cluster"))
}

fn deploy_kernel() -> BootProfile {
    BootProfile::DeployKernel {
        kernel: "deploy-vmlinuz".into(),
        initrd: "deploy-initrd".into(),
        params: String::new(),
    }
}

fn deploy_env() -> PortCheck {
    PortCheck {
        up: vec![SSH_PORT, DEPLOY_ENV_PORT],
        down: Vec::new(),
    }
}

fn user_env() -> PortCheck {
    PortCheck {
        up: vec![SSH_PORT],
        down: vec![DEPLOY_ENV_PORT],
    }
}

#[tokio::test(start_paused = true)]
async fn simulated_power_conforms() {
    let subject = PowerSubject {
        nodes: Nodes::table(3),
        accepted: vec![(PowerAction::Reboot, PowerLevel::Soft)],
        switch: Some(PowerLevel::Hard),
        unsupported: vec![(PowerAction::On, PowerLevel::Soft)],
        status: true,
    };
    check_power(&*cluster(3, ""), &subject).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn simulated_node_ops_conform() {
    let c = cluster(
        4,
        "failures: {disk_write_error: {nodes: [node-0, node-1, node-2]}}",
    );
    let off = c
        .power(PowerAction::Off, PowerLevel::Hard, &[NodeId(3)])
        .await;
    assert!(off.failures().is_empty(), "{off:?}");
    let subject = NodeOpsSubject {
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
        failing: vec![
            (
                Operation::Format {
                    device: "/dev/sda3".into(),
                    fs: "ext4".into(),
                    args: String::new(),
                },
                ErrorKind::Disk,
            ),
            (
                Operation::CheckKernelFiles {
                    dir: "/mnt/dest".into(),
                    kernel: "/vmlinuz".into(),
                    initrd: String::new(),
                },
                ErrorKind::CommandFailed,
            ),
        ],
        down: Some(NodeId(3)),
    };
    check_node_ops(&*c, &subject).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn simulated_probes_conform() {
    let subject = ReachabilitySubject {
        nodes: Nodes::table(3),
        passing: user_env(),
        failing: PortCheck {
            up: vec![DEPLOY_ENV_PORT],
            down: Vec::new(),
        },
    };
    check_reachability(&*cluster(3, ""), &subject)
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn simulated_netboot_conforms() {
    let subject = NetBootSubject {
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
    };
    check_netboot(&*cluster(3, ""), &subject).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn simulated_broadcast_conforms() {
    let c = cluster(3, "");
    let nodes: Vec<NodeId> = (0..3).map(NodeId).collect();
    c.set_profile(&nodes, &deploy_kernel()).await;
    c.power(PowerAction::Reboot, PowerLevel::Hard, &nodes).await;
    tokio::time::sleep(BOOT_TIME).await;
    let subject = BroadcastSubject {
        nodes: Nodes::table(3),
        image: ImageSpec {
            path: "/var/cache/debian.tgz".into(),
            kind: ImageKind::Tar,
            compression: "gzip".into(),
            size: 200_000_000,
            uncompressed_size: Some(500_000_000),
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
            Strategy::Multicast,
            Strategy::Swarm,
        ],
    };
    check_broadcast(&*c, &subject).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn simulated_consoles_conform() {
    let subject = ConsoleSubject {
        nodes: Nodes::table(3),
        echoes: true,
        timeout: Duration::from_secs(10),
    };
    check_console(&*cluster(3, ""), &subject).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_simulated_reboot_shows_the_deploy_env_only_after_the_boot() {
    let subject = BootSubject {
        nodes: vec![NodeId(3), NodeId(0), NodeId(2), NodeId(1)],
        profile: deploy_kernel(),
        level: PowerLevel::Hard,
        check: deploy_env(),
        boot_time: BOOT_TIME,
    };
    check_boot_visibility(&cluster(4, "").drivers(), &subject)
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn powered_off_simulated_nodes_refuse_operations_alone() {
    let nodes = [NodeId(0), NodeId(1), NodeId(2)];
    let drivers = cluster(3, "").drivers();
    check_powered_off_refusal(&drivers, PowerLevel::Hard, &nodes, &Operation::Sync)
        .await
        .unwrap();
}

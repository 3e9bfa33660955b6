//! Scenarios for the simulated cluster: boots and probes, power failures, hangs, deployments,
//! broadcasts with deaths, consoles, determinism and scale, all in paused virtual time.

use hal::{
    BootProfile, Broadcast, Console, ErrorKind, ImageKind, ImageSpec, NetBoot, NodeId, NodeInfo,
    NodeOps, Operation, Outcomes, PortCheck, Power, PowerAction, PowerLevel, PowerState,
    Reachability, Strategy, WriteTarget,
};
use simulator::cluster::{Env, SimCluster};
use simulator::params::SimParams;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// A cluster of `n` nodes named `node-<i>.sim.example` with the parameters of `yaml`.
fn cluster(n: usize, yaml: &str, seed: u64) -> Arc<SimCluster> {
    let nodes = (0..n)
        .map(|i| NodeInfo {
            name: format!("node-{i}.sim.example"),
            address: IpAddr::V4(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)),
        })
        .collect();
    let params = SimParams::from_yaml_str(yaml).expect("valid parameters");
    Arc::new(SimCluster::new(nodes, params, seed).expect("valid cluster"))
}

fn all(c: &SimCluster) -> Vec<NodeId> {
    (0..c.nodes().len() as u32).map(NodeId).collect()
}

fn deploy_kernel() -> BootProfile {
    BootProfile::DeployKernel {
        kernel: "deploy-vmlinuz".into(),
        initrd: "deploy-initrd".into(),
        params: String::new(),
    }
}

fn deploy_check() -> PortCheck {
    PortCheck {
        up: vec![22, 25300],
        down: vec![],
    }
}

fn user_check() -> PortCheck {
    PortCheck {
        up: vec![22],
        down: vec![25300],
    }
}

/// Indices of the failed nodes.
fn failed(o: &Outcomes) -> Vec<u32> {
    o.failures().iter().map(|(n, _)| n.0).collect()
}

fn image() -> ImageSpec {
    ImageSpec {
        path: "/var/cache/debian.tgz".into(),
        kind: ImageKind::Tar,
        compression: "gzip".into(),
        size: 200_000_000,
        uncompressed_size: Some(500_000_000),
    }
}

fn target() -> WriteTarget {
    WriteTarget {
        device: "/dev/sda3".into(),
        extraction_dir: "/mnt/dest".into(),
    }
}

/// Reboots every node into the deploy environment and waits until all of them answer (or 1000 s).
async fn into_deploy_env(c: &SimCluster) -> Outcomes {
    let nodes = all(c);
    c.set_profile(&nodes, &deploy_kernel()).await;
    c.power(PowerAction::Reboot, PowerLevel::Hard, &nodes).await;
    tokio::time::sleep(Duration::from_secs(1000)).await;
    c.probe(&nodes, &deploy_check()).await
}

#[tokio::test(start_paused = true)]
async fn a_reboot_into_the_deploy_kernel_shows_the_deploy_env_after_the_boot_and_not_before() {
    let c = cluster(20, "", 1);
    let nodes = all(&c);
    assert!(
        c.probe(&nodes, &user_check()).await.failures().is_empty(),
        "production env at start"
    );
    assert!(
        c.set_profile(&nodes, &deploy_kernel())
            .await
            .failures()
            .is_empty()
    );
    let t0 = c.now();
    assert!(
        c.power(PowerAction::Reboot, PowerLevel::Soft, &nodes)
            .await
            .failures()
            .is_empty()
    );
    let ups: Vec<f64> = nodes
        .iter()
        .map(|&n| c.view(n).unwrap().up_at.unwrap())
        .collect();
    let b = &c.params().boot;
    let floor = b.shutdown.min + b.firmware.min + b.pxe.min + b.kernel.min;
    assert!(
        ups.iter().all(|&u| u >= t0 + floor),
        "boots take at least the phase minima"
    );
    assert_eq!(
        c.probe(&nodes, &deploy_check()).await.failures().len(),
        20,
        "all down right after"
    );
    let first = ups.iter().copied().fold(f64::INFINITY, f64::min);
    let last = ups.iter().copied().fold(0.0, f64::max);
    tokio::time::sleep(Duration::from_secs_f64(first - c.now() - 0.1)).await;
    assert_eq!(
        c.probe(&nodes, &deploy_check()).await.failures().len(),
        20,
        "none up before its boot ends"
    );
    tokio::time::sleep(Duration::from_secs_f64(last - c.now())).await;
    assert!(c.probe(&nodes, &deploy_check()).await.failures().is_empty());
    let user = c.probe(&nodes, &user_check()).await;
    assert_eq!(
        user.failures()[0].1.kind,
        ErrorKind::Unreachable,
        "25300 is open in the deploy env"
    );
    assert!(
        nodes
            .iter()
            .all(|&n| c.view(n).unwrap().env == Some(Env::Deploy))
    );
}

#[tokio::test(start_paused = true)]
async fn never_boot_nodes_stay_down() {
    let c = cluster(
        6,
        "failures: {never_boot: {nodes: [node-1, node-4.sim.example]}}",
        2,
    );
    assert_eq!(failed(&into_deploy_env(&c).await), vec![1, 4]);
    c.power(PowerAction::Reboot, PowerLevel::VeryHard, &[NodeId(1)])
        .await;
    tokio::time::sleep(Duration::from_secs(1000)).await;
    assert_eq!(
        failed(&c.probe(&all(&c), &deploy_check()).await),
        vec![1, 4]
    );
    let status = c.status(&[NodeId(1)]).await;
    assert_eq!(status.0[0].1, Ok(PowerState::On), "hung, not off");
}

#[tokio::test(start_paused = true)]
async fn power_commands_fail_at_the_soft_level_only() {
    let c = cluster(
        4,
        "failures: {power_command_fails: {nodes: [node-2], levels: [soft]}}",
        3,
    );
    let nodes = all(&c);
    let soft = c.power(PowerAction::Reboot, PowerLevel::Soft, &nodes).await;
    assert_eq!(failed(&soft), vec![2]);
    assert_eq!(soft.failures()[0].1.kind, ErrorKind::CommandFailed);
    let v = c.view(NodeId(2)).unwrap();
    assert_eq!(
        (v.boots, v.env),
        (0, Some(Env::Production)),
        "a failed command changes nothing"
    );
    assert!(
        c.power(PowerAction::Reboot, PowerLevel::Hard, &[NodeId(2)])
            .await
            .failures()
            .is_empty()
    );
    assert_eq!(c.view(NodeId(2)).unwrap().boots, 1);
    // A soft command needs a running system; nothing powers a node on over ssh.
    let again = c
        .power(PowerAction::Reboot, PowerLevel::Soft, &[NodeId(0)])
        .await;
    assert_eq!(again.failures()[0].1.kind, ErrorKind::CommandFailed);
    let on = c
        .power(PowerAction::On, PowerLevel::Soft, &[NodeId(0)])
        .await;
    assert_eq!(on.failures()[0].1.kind, ErrorKind::NotSupported);
    c.power(PowerAction::Off, PowerLevel::Hard, &[NodeId(3)])
        .await;
    assert_eq!(c.status(&[NodeId(3)]).await.0[0].1, Ok(PowerState::Off));
    assert!(c.attach(NodeId(3)).await.is_err(), "no console when off");
}

#[tokio::test(start_paused = true)]
async fn without_a_command_timeout_a_hanging_node_keeps_the_operation_from_returning() {
    let c = cluster(
        4,
        "ops: {command_timeout: null}\nfailures: {hang: {step: format, nodes: [node-2]}}",
        4,
    );
    let format = Operation::Format {
        device: "/dev/sda3".into(),
        fs: "ext4".into(),
        args: String::new(),
    };
    let hung = tokio::time::timeout(Duration::from_secs(3600), c.run(&format, &all(&c))).await;
    assert!(hung.is_err(), "the call never returns");
    let others = [NodeId(0), NodeId(1), NodeId(3)];
    let ok = tokio::time::timeout(Duration::from_secs(3600), c.run(&format, &others)).await;
    assert!(ok.expect("returns").failures().is_empty());
    assert!(
        c.run(&Operation::Sync, &all(&c))
            .await
            .failures()
            .is_empty(),
        "only that step hangs"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hanging_node_fails_alone_after_the_command_timeout() {
    let c = cluster(
        4,
        "ops: {command_timeout: 120}\nfailures: {hang: {step: format, nodes: [node-2]}}",
        4,
    );
    let format = Operation::Format {
        device: "/dev/sda3".into(),
        fs: "ext4".into(),
        args: String::new(),
    };
    let t0 = c.now();
    let out = c.run(&format, &all(&c)).await;
    let elapsed = c.now() - t0;
    assert!(
        (120.0..121.0).contains(&elapsed),
        "the call returns at the command timeout, not {elapsed} s"
    );
    let failures = out.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let (node, error) = &failures[0];
    assert_eq!(node.0, 2);
    assert_eq!(error.kind, ErrorKind::Timeout);
    assert_eq!(error.message, "command timed out after 120 s");
}

#[tokio::test(start_paused = true)]
async fn a_full_deployment_boots_the_deployed_env_and_records_it() {
    let c = cluster(5, "failures: {disk_write_error: {nodes: [node-3]}}", 5);
    assert!(into_deploy_env(&c).await.failures().is_empty());
    let nodes = all(&c);
    let part = Operation::RunScript {
        purpose: "partitioning".into(),
        script: "parted".into(),
        env: vec![],
    };
    assert_eq!(failed(&c.run(&part, &nodes).await), vec![3]);
    let bcast = c
        .broadcast(&image(), &target(), Strategy::Chain, &nodes[..4])
        .await;
    assert_eq!(failed(&bcast), vec![3], "{bcast:?}");
    assert_eq!(bcast.failures()[0].1.kind, ErrorKind::Disk);
    let check = Operation::CheckKernelFiles {
        dir: "/mnt/dest".into(),
        kernel: "/vmlinuz".into(),
        initrd: String::new(),
    };
    assert_eq!(
        failed(&c.run(&check, &nodes).await),
        vec![3, 4],
        "no image on 3 and 4"
    );
    let local = BootProfile::LocalDisk {
        device: "/dev/sda".into(),
        partition: 3,
        system: None,
    };
    c.set_profile(&nodes, &local).await;
    assert!(
        c.run(&Operation::RebootFromDeployEnv, &nodes)
            .await
            .failures()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_secs(1000)).await;
    assert_eq!(
        failed(&c.probe(&nodes, &user_check()).await),
        vec![4],
        "nothing bootable on 4"
    );
    assert_eq!(
        c.view(NodeId(3)).unwrap().env,
        Some(Env::Production),
        "3's disk refused every write"
    );
    let v = c.view(NodeId(0)).unwrap();
    assert_eq!(v.env, Some(Env::Deployed));
    assert!(v.record.image_written && v.record.partitioned);
    assert_eq!(v.record.image_device.as_deref(), Some("/dev/sda3"));
    let root = Operation::CheckRootDevice {
        device: "/dev/sda3".into(),
    };
    assert!(c.run(&root, &[NodeId(0)]).await.failures().is_empty());
    let mut console = c.attach(NodeId(0)).await.expect("console");
    let mut buf = vec![0; 64];
    let n = console.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("Deployed environment node-0 ttyS0"));
}

#[tokio::test(start_paused = true)]
async fn kexec_goes_from_production_to_deploy_env_to_the_deployed_env() {
    let c = cluster(2, "", 6);
    let nodes = all(&c);
    let kexec = Operation::Kexec {
        kernel: "/boot/vmlinuz".into(),
        initrd: String::new(),
        params: String::new(),
    };
    assert!(c.run(&kexec, &nodes).await.failures().is_empty());
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(c.probe(&nodes, &deploy_check()).await.failures().is_empty());
    assert_eq!(
        c.run(&kexec, &nodes).await.failures()[0].1.kind,
        ErrorKind::CommandFailed,
        "no image yet"
    );
}

/// Ten nodes in the deploy env, with nodes 3 and 6 dying halfway through their broadcast.
async fn broadcast_with_two_deaths(strategy: Strategy) -> Outcomes {
    let c = cluster(
        10,
        "failures: {die_during_broadcast: {nodes: [node-3, node-6], at_fraction: 0.5}}",
        7,
    );
    assert!(into_deploy_env(&c).await.failures().is_empty());
    let out = c.broadcast(&image(), &target(), strategy, &all(&c)).await;
    for n in [3, 6] {
        assert!(c.view(NodeId(n)).unwrap().dead, "node {n} is dead for good");
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_fault_tolerant_chain_loses_only_the_dead_nodes() {
    let out = broadcast_with_two_deaths(Strategy::FaultTolerantChain).await;
    assert_eq!(failed(&out), vec![3, 6]);
    assert!(
        out.failures()
            .iter()
            .all(|(_, e)| e.kind == ErrorKind::Unreachable)
    );
}

#[tokio::test(start_paused = true)]
async fn a_chain_loses_the_successors_of_the_first_dead_node() {
    let out = broadcast_with_two_deaths(Strategy::Chain).await;
    assert_eq!(failed(&out), (3..10).collect::<Vec<_>>());
    let errors = out.failures();
    assert_eq!(errors[0].1.kind, ErrorKind::Unreachable);
    assert_eq!(errors[1].1.kind, ErrorKind::Transfer);
    assert!(
        errors[1].1.message.contains("node-3.sim.example"),
        "{}",
        errors[1].1.message
    );
}

/// Reboot, probe at a few instants, broadcast: every outcome and instant, for comparisons.
async fn scenario(seed: u64) -> (Vec<String>, Vec<f64>) {
    let yaml = "failures: {never_boot: {probability: 0.2}, die_during_broadcast: {count: 2}}";
    let c = cluster(30, yaml, seed);
    let nodes = all(&c);
    let mut log = vec![format!("{:?}", into_deploy_env(&c).await)];
    let ups = nodes
        .iter()
        .map(|&n| c.view(n).unwrap().up_at.unwrap_or(-1.0))
        .collect();
    let alive = c.probe(&nodes, &deploy_check()).await.ok_nodes();
    log.push(format!(
        "{:?}",
        c.broadcast(&image(), &target(), Strategy::FaultTolerantChain, &alive)
            .await
    ));
    log.push(format!("{}", c.now()));
    (log, ups)
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_gives_the_same_run_and_another_seed_another() {
    let (a, ups_a) = scenario(11).await;
    let (b, ups_b) = scenario(11).await;
    assert_eq!(a, b);
    assert_eq!(ups_a, ups_b);
    let (_, ups_c) = scenario(12).await;
    assert_ne!(ups_a, ups_c);
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_nodes_reboot_probe_and_broadcast() {
    let c = cluster(
        10_000,
        "network: {nodes_per_switch: 48, uplink_bandwidth: 1.25e9}",
        13,
    );
    assert!(into_deploy_env(&c).await.failures().is_empty());
    let out = c
        .broadcast(&image(), &target(), Strategy::Chain, &all(&c))
        .await;
    assert_eq!(out.len(), 10_000);
}

/// The shipped, annotated parameter file: it documents every key with its default.
const EXAMPLE: &str = include_str!("../config/sim300/simulation.conf");

#[test]
fn the_documented_parameter_file_parses_and_errors_name_the_key() {
    let p = SimParams::from_yaml_str(EXAMPLE).expect("the documented example");
    assert_eq!(
        p,
        SimParams {
            seed: 42,
            ..SimParams::default()
        }
    );
    for (yaml, key) in [
        ("network: {bandwith: 1}", "bandwith"),
        ("boot: {kernel: {mean: 3, sd: -1}}", "boot.kernel.sd"),
        (
            "failures: {never_boot: {probability: 2}}",
            "failures.never_boot.probability",
        ),
        ("failures: {hang: {step: fromat}}", "failures.hang.step"),
        ("seed: [1]", "simulation.conf"),
    ] {
        let e = SimParams::from_yaml_str(yaml).unwrap_err().to_string();
        assert!(e.contains(key), "{e}");
    }
    let e = SimParams::load(std::path::Path::new("/nonexistent/simulation.conf"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/simulation.conf"), "{e}");
}

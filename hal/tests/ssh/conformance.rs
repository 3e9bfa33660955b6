//! The conformance suite (`hal::testing::conformance`) against the SSH backends and real SSH servers:
//! node operations on OpenSSH and dropbear/busybox nodes with a node at a closed address, and soft power
//! on OpenSSH nodes whose `reboot` and `poweroff` are the harness's fakes.

use crate::harness::{Flavor, Lab};
use hal::ssh::SshPower;
use hal::testing::conformance::{NodeOpsSubject, Nodes, PowerSubject, check_node_ops, check_power};
use hal::{ErrorKind, NodeId, Operation, PowerAction, PowerLevel};

/// An `Exec` of `command`.
fn exec(command: &str) -> Operation {
    Operation::Exec {
        command: command.into(),
        env: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_node_ops_conform() {
    let mut lab = Lab::new();
    lab.start(Flavor::OpenSsh, "127.0.0.2");
    lab.start(Flavor::Dropbear, "127.0.0.3");
    // Node 3 has no server: it cannot be contacted.
    let ops = lab.ops(&["127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.9"]);
    let subject = NodeOpsSubject {
        nodes: Nodes {
            known: vec![NodeId(0), NodeId(1), NodeId(2)],
            unknown: NodeId(4),
        },
        ok: vec![exec("true"), Operation::Dummy, Operation::Sync],
        failing: vec![
            (exec("echo boom >&2; exit 3"), ErrorKind::CommandFailed),
            (
                Operation::CheckKernelFiles {
                    dir: lab.private("no-env"),
                    kernel: "/vmlinuz".into(),
                    initrd: String::new(),
                },
                ErrorKind::CommandFailed,
            ),
        ],
        down: Some(NodeId(3)),
    };
    check_node_ops(&ops, &subject).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_soft_power_conforms() {
    let mut lab = Lab::new();
    lab.start(Flavor::OpenSsh, "127.0.0.2");
    let ops = lab.ops(&["127.0.0.2", "127.0.0.2", "127.0.0.2"]);
    crate::harness::assert_safe_to_reboot(&ops, Flavor::OpenSsh).await;
    let power = SshPower::from_node_ops(&ops);
    let mut unsupported = vec![(PowerAction::On, PowerLevel::Soft)];
    for level in [PowerLevel::Hard, PowerLevel::VeryHard] {
        for action in [PowerAction::Reboot, PowerAction::On, PowerAction::Off] {
            unsupported.push((action, level));
        }
    }
    let subject = PowerSubject {
        nodes: Nodes::table(3),
        accepted: vec![
            (PowerAction::Reboot, PowerLevel::Soft),
            (PowerAction::Off, PowerLevel::Soft),
        ],
        switch: None,
        unsupported,
        status: false,
    };
    check_power(&power, &subject).await.unwrap();
}

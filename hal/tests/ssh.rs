//! SSH backend tests against real SSH servers (OpenSSH and dropbear with busybox) on loopback
//! addresses, plus the command-template power, TCP probe and command console backends.

#[path = "ssh/agents.rs"]
mod agents;
#[path = "ssh/conformance.rs"]
mod conformance;
#[path = "ssh/harness.rs"]
mod harness;
#[path = "ssh/kacast.rs"]
mod kacast;
#[path = "ssh/local.rs"]
mod local;
#[path = "ssh/operations.rs"]
mod operations;

use hal::ssh::SshPower;
use hal::{ErrorKind, NodeId, NodeOps, Operation, Power, PowerAction, PowerLevel};
use harness::{Flavor, Lab, nodes, s};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn openssh_operations() {
    let mut lab = Lab::new();
    lab.start(Flavor::OpenSsh, "127.0.0.2");
    operations::suite(&lab, Flavor::OpenSsh, "127.0.0.2").await;
}

/// The broadcast decorator of the site backend: each broadcast's token written over SSH, then removed.
#[tokio::test(flavor = "multi_thread")]
async fn broadcast_token_over_ssh() {
    let mut lab = Lab::new();
    lab.start(Flavor::OpenSsh, "127.0.0.2");
    agents::token_handed_over_ssh(&lab).await;
}

/// `kacast --ssh-key`: the token handed over SSH, the image cast, the timeline written.
#[tokio::test(flavor = "multi_thread")]
async fn kacast_hands_the_token_over_ssh() {
    let mut lab = Lab::new();
    lab.start(Flavor::OpenSsh, "127.0.0.2");
    kacast::kacast_over_ssh(&lab).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropbear_busybox_operations() {
    let mut lab = Lab::new();
    lab.start(Flavor::Dropbear, "127.0.0.3");
    let ops = lab.ops(&["127.0.0.3"]);
    let out = ops
        .exec(NodeId(0), "readlink /proc/$$/exe", b"")
        .await
        .unwrap();
    assert!(
        out.stdout_text().ends_with("/busybox"),
        "root's shell is busybox sh: {out:?}"
    );
    operations::suite(&lab, Flavor::Dropbear, "127.0.0.3").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_classified() {
    let mut lab = Lab::new();
    lab.start(Flavor::OpenSsh, "127.0.0.2");
    let ops = lab.ops(&["127.0.0.2", "127.0.0.9"]);
    let all = [NodeId(0), NodeId(1), NodeId(7)];
    let exec = |command: &str| Operation::Exec {
        command: command.into(),
        env: vec![],
    };
    let out = ops
        .run(&exec("echo out; echo '  boom  ' >&2; exit 3"), &all)
        .await;
    let kinds: Vec<_> = out
        .iter()
        .map(|(n, o)| (*n, o.as_ref().err().map(|e| e.kind)))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (NodeId(0), Some(ErrorKind::CommandFailed)),
            (NodeId(1), Some(ErrorKind::Unreachable)),
            (NodeId(7), Some(ErrorKind::Config)),
        ]
    );
    assert_eq!(out.0[0].1.as_ref().unwrap_err().message, "boom");

    // A key the server does not know.
    let other = lab.path("other_key");
    harness::sh(&format!(
        "ssh-keygen -q -t ed25519 -N '' -f {}",
        other.display()
    ));
    let mut config = lab.config();
    config.key = other;
    let stranger = hal::ssh::SshNodeOps::new(nodes(&["127.0.0.2"]), config).unwrap();
    let out = stranger.run(&Operation::Dummy, &[NodeId(0)]).await;
    assert_eq!(
        out.0[0].1.as_ref().unwrap_err().kind,
        ErrorKind::Unreachable
    );

    // A command that outlives the command timeout.
    let mut config = lab.config();
    config.command_timeout = Duration::from_millis(500);
    let slow = hal::ssh::SshNodeOps::new(nodes(&["127.0.0.2"]), config).unwrap();
    let start = Instant::now();
    let out = slow.run(&exec("sleep 5"), &[NodeId(0)]).await;
    assert_eq!(out.0[0].1.as_ref().unwrap_err().kind, ErrorKind::Timeout);
    assert!(start.elapsed() < Duration::from_secs(4));

    // A missing key file.
    let mut config = lab.config();
    config.key = lab.path("missing");
    assert!(hal::ssh::SshNodeOps::new(nodes(&["127.0.0.2"]), config).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn many_nodes_on_several_servers() {
    let mut lab = Lab::new();
    lab.start(Flavor::OpenSsh, "127.0.0.2");
    lab.start(Flavor::OpenSsh, "127.0.0.4");
    lab.start(Flavor::Dropbear, "127.0.0.3");
    // 40 nodes: 17 + 17 on the OpenSSH servers, 4 on dropbear (it limits unauthenticated
    // connections per client address to 5), 2 on a closed address.
    let mut ips = Vec::new();
    for i in 0..40 {
        ips.push(match i % 20 {
            5 | 15 => "127.0.0.3",
            9 if i < 20 => "127.0.0.10",
            19 if i >= 20 => "127.0.0.10",
            x if x % 2 == 0 => "127.0.0.2",
            _ => "127.0.0.4",
        });
    }
    let ops = lab.ops(&ips);
    let all: Vec<NodeId> = (0..40).rev().map(NodeId).collect();
    let marks = lab.path("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let op = Operation::Exec {
        command: format!("sleep 1; mktemp -p {}", s(&marks)),
        env: vec![],
    };
    let start = Instant::now();
    let out = ops.run(&op, &all).await;
    let elapsed = start.elapsed();
    assert_eq!(
        out.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        all,
        "order kept"
    );
    for (n, o) in out.iter() {
        let closed = ips[n.index()] == "127.0.0.10";
        assert_eq!(
            o.as_ref().err().map(|e| e.kind),
            closed.then_some(ErrorKind::Unreachable),
            "{n}"
        );
    }
    assert_eq!(std::fs::read_dir(&marks).unwrap().count(), 38);
    // One after the other they would take 38 s.
    assert!(elapsed < Duration::from_secs(20), "concurrent: {elapsed:?}");
    eprintln!("40 nodes in {elapsed:?}");

    // With a window of 4, seven one-second commands take two rounds.
    let limited = ops.clone().with_concurrency(4);
    let few: Vec<NodeId> = (0..8)
        .map(NodeId)
        .filter(|n| ips[n.index()] != "127.0.0.10")
        .collect();
    let start = Instant::now();
    let out = limited.run(&op, &few).await;
    assert!(out.failures().is_empty(), "{:?}", out.failures());
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn soft_power_over_ssh() {
    for flavor in [Flavor::OpenSsh, Flavor::Dropbear] {
        for action in [PowerAction::Reboot, PowerAction::Off] {
            let mut lab = Lab::new();
            lab.start(flavor, "127.0.0.2");
            let ops = lab.ops(&["127.0.0.2"]);
            harness::assert_safe_to_reboot(&ops, flavor).await;
            let power = SshPower::from_node_ops(&ops);
            let nodes = [NodeId(0)];
            let start = Instant::now();
            let out = power.power(action, PowerLevel::Soft, &nodes).await;
            assert!(
                out.failures().is_empty(),
                "{flavor:?} {action:?}: {:?}",
                out.failures()
            );
            harness::assert_detached(start, Duration::from_secs(6));
            match flavor {
                Flavor::OpenSsh => {
                    tokio::time::sleep(Duration::from_millis(2500)).await;
                    let expected = if action == PowerAction::Reboot {
                        "reboot \n"
                    } else {
                        "poweroff \n"
                    };
                    assert!(lab.calls().ends_with(expected), "{:?}", lab.calls());
                }
                Flavor::Dropbear => lab.wait_down("127.0.0.2").await,
            }
        }
    }
    let lab = Lab::new();
    let power = SshPower::new(nodes(&["127.0.0.2"]), lab.config()).unwrap();
    let nodes = [NodeId(0)];
    let out = power
        .power(PowerAction::Reboot, PowerLevel::Hard, &nodes)
        .await;
    let e = out.0[0].1.as_ref().unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (
            ErrorKind::NotSupported,
            "hard_reboot command is not provided"
        )
    );
    let out = power.power(PowerAction::On, PowerLevel::Soft, &nodes).await;
    assert_eq!(
        out.0[0].1.as_ref().unwrap_err().message,
        "soft_power_on command is not provided"
    );
    let out = power.status(&nodes).await;
    assert_eq!(
        out.0[0].1.as_ref().unwrap_err().kind,
        ErrorKind::NotSupported
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn start_agent_uploads_and_detaches() {
    let mut lab = Lab::new();
    lab.start(Flavor::OpenSsh, "127.0.0.2");
    lab.start(Flavor::Dropbear, "127.0.0.3");
    let ops = lab.ops(&["127.0.0.2", "127.0.0.3"]);
    let agent = lab.path("agent.sh");
    std::fs::write(
        &agent,
        "#!/bin/sh\nmkdir -p \"$1\"\necho \"$*\" > \"$1/args\"\necho started\nexec sleep 60\n",
    )
    .unwrap();
    let remote = lab.private("bin/kaagent");
    let args = format!("{} --port 25300", lab.private("out"));
    let nodes = [NodeId(0), NodeId(1)];
    let start = Instant::now();
    let out = ops.start_agent(&nodes, &agent, &remote, &args).await;
    assert!(out.failures().is_empty(), "{:?}", out.failures());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let running = r"for p in /proc/[0-9]*; do tr '\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c '^sleep 60'";
    for node in nodes {
        let check = format!(
            "cat {}/args; {running}; cat {remote}.log; ls -l {remote}",
            lab.private("out")
        );
        let out = ops.exec(node, &check, b"").await.unwrap();
        let text = out.stdout_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], args, "{node}: {text}");
        assert_eq!(
            lines[1], "1",
            "{node}: the agent outlived its SSH session: {text}"
        );
        assert_eq!(lines[2], "started", "{node}: {text}");
        assert!(lines[3].starts_with("-rwxr-xr-x"), "{node}: {text}");
    }
    // Replacing a running agent works (no "text file busy").
    let out = ops.start_agent(&nodes, &agent, &remote, &args).await;
    assert!(out.failures().is_empty(), "{:?}", out.failures());
    let missing = ops
        .start_agent(&nodes, &lab.path("nope"), &remote, "")
        .await;
    assert_eq!(
        missing.0[0].1.as_ref().unwrap_err().kind,
        ErrorKind::Transfer
    );
}

//! Reboot escalation (spec §5.5): soft → hard → very_hard for the nodes whose command fails, soft turned into hard
//! when the macro-step is retried, and the reboot window.

use super::scenario::{Boot, Broadcast, InstanceExt, Scenario, SetEnv, id, inst};
use hal::ErrorKind;

#[tokio::test(start_paused = true)]
async fn nodes_whose_command_fails_go_to_the_next_level() {
    let run = Scenario::new(4)
        .fail(2, "reboot:soft", 1)
        .run_deploy()
        .await;

    assert_eq!(
        run.ok(),
        [1, 2, 3, 4],
        "a hard reboot is as good as a soft one"
    );
    let reboots: Vec<_> = run
        .calls_to("reboot")
        .map(|c| (c.op.key(), c.nodes.clone()))
        .collect();
    assert_eq!(
        reboots,
        [
            ("reboot:soft".to_string(), (1..=4).map(id).collect()),
            ("reboot:hard".to_string(), vec![id(2)])
        ]
    );
    assert!(run.said("   * Performing a soft reboot on node-[1-4].test"));
    assert!(run.said("   * Performing a hard reboot on node-2.test"));
}

#[tokio::test(start_paused = true)]
async fn a_node_failing_every_level_is_ko_with_the_last_error() {
    let run = Scenario::new(3)
        .fail_with(
            3,
            "reboot:soft",
            None,
            ErrorKind::NotSupported,
            "soft_reboot command is not provided",
        )
        .fail_with(
            3,
            "reboot:hard",
            None,
            ErrorKind::CommandFailed,
            "ipmitool: connection refused",
        )
        .fail_with(
            3,
            "reboot:very_hard",
            None,
            ErrorKind::CommandFailed,
            "pdu: outlet unknown",
        )
        .run_deploy()
        .await;

    assert_eq!(run.ko(), [3]);
    let failure = run.failure(3);
    assert_eq!(
        (&*failure.micro_step, failure.error.as_str()),
        ("reboot", "pdu: outlet unknown")
    );
    assert_eq!(
        run.trace(3),
        [
            "set_profile:deploy_kernel",
            "reboot:soft",
            "reboot:hard",
            "reboot:very_hard"
        ]
    );
    assert_eq!(run.count(1, "reboot"), 1);
}

#[tokio::test(start_paused = true)]
async fn soft_becomes_hard_when_the_macro_step_is_retried() {
    let run = Scenario::new(3)
        .automata(
            [inst(SetEnv::Untrusted).retries(2)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec)],
        )
        .fail(1, "format", 1)
        .fail(2, "format", 1)
        .fail(2, "reboot:hard", 1)
        .run_deploy()
        .await;

    assert_eq!(run.ok(), [1, 2, 3]);
    assert_eq!(
        run.trace(1)[..4],
        [
            "set_profile:deploy_kernel",
            "reboot:soft",
            "run_script:partitioning",
            "format"
        ]
    );
    assert_eq!(run.count(1, "reboot:soft"), 1);
    assert_eq!(run.count(1, "reboot:hard"), 1, "the retry starts at hard");
    assert_eq!(
        run.count(2, "reboot:very_hard"),
        1,
        "and still escalates from there"
    );
    assert_eq!(run.count(3, "reboot:hard"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_retried_micro_step_keeps_the_soft_level() {
    let run = Scenario::new(2)
        .automata(
            [inst(SetEnv::Untrusted).micro("reboot", 1, 0.0)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec)],
        )
        .fail(1, "reboot", 3)
        .run_deploy()
        .await;

    assert_eq!(run.ok(), [1, 2]);
    let levels: Vec<String> = run.calls_for(1, "reboot").map(|c| c.op.key()).collect();
    assert_eq!(
        levels,
        [
            "reboot:soft",
            "reboot:hard",
            "reboot:very_hard",
            "reboot:soft"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn hard_reboot_boot_new_env_starts_at_hard() {
    let run = Scenario::new(2)
        .automata(
            [inst(SetEnv::Untrusted)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::HardReboot)],
        )
        .run_deploy()
        .await;

    assert_eq!(run.ok(), [1, 2]);
    assert_eq!(
        run.trace(1)[run.trace(1).len() - 2..],
        ["set_profile:local_disk", "reboot:hard"]
    );
}

#[tokio::test(start_paused = true)]
async fn reboot_commands_run_through_the_reboot_window() {
    let run = Scenario::new(5)
        .automata(
            [inst(SetEnv::Untrusted)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Classical)],
        )
        .server(|s| s.reboot_window = 2)
        .run_deploy()
        .await;

    assert_eq!(run.ok().len(), 5);
    let chunks: Vec<usize> = run.calls_to("reboot").map(|c| c.nodes.len()).collect();
    assert_eq!(chunks, [2, 2, 1]);
    let chunks: Vec<usize> = run
        .calls_to("reboot_from_deploy_env")
        .map(|c| c.nodes.len())
        .collect();
    assert_eq!(chunks, [2, 2, 1]);
}

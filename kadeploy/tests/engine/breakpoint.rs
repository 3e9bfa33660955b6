//! Breakpoints (`--breakpoint Macro[:micro]` and configured ones): nodes stop before the step, are reported OK/brk,
//! and nothing later runs; a breakpoint naming an unused step is refused with error 4.

use super::scenario::{Boot, Broadcast, InstanceExt, Scenario, SetEnv, inst};
use kadeploy::config::MicroSettings;
use kadeploy::engine::NodeStatus;

fn brk_at(at: &str) -> NodeStatus {
    NodeStatus::Brk { at: at.into() }
}

#[tokio::test(start_paused = true)]
async fn breakpoint_on_a_macro_step_stops_every_node_before_it() {
    let run = Scenario::new(5)
        .request(|r| r.breakpoint = Some("BroadcastEnvKascade".into()))
        .run_deploy()
        .await;

    assert_eq!(run.brk(), [1, 2, 3, 4, 5]);
    assert_eq!(run.status(3), &brk_at("BroadcastEnvKascade"));
    assert_eq!(
        run.report().ok().len(),
        5,
        "breakpointed nodes are reported in the OK list"
    );
    assert_eq!(run.calls_to("broadcast").count(), 0);
    assert_eq!(
        run.calls().last().map(|c| c.op.key()).as_deref(),
        Some("make_swap"),
        "SetDeploymentEnv's last step"
    );
    assert_eq!(run.macro_steps(), ["SetDeploymentEnvUntrusted"]);
    assert!(run.said("*** Breakpoint on BroadcastEnvKascade reached for node-[1-5].test"));
    assert!(run.said("Breakpoint reached for node-[1-5].test"));
}

#[tokio::test(start_paused = true)]
async fn breakpoint_on_a_micro_step_stops_the_nodes_inside_the_macro_step() {
    let run = Scenario::new(4)
        .request(|r| r.breakpoint = Some("BroadcastEnvKascade:install_bootloader".into()))
        .fail_always(2, "format")
        .run_deploy()
        .await;

    assert_eq!(run.brk(), [1, 3, 4]);
    assert_eq!(run.ko(), [2]);
    assert_eq!(
        run.status(1),
        &brk_at("BroadcastEnvKascade:install_bootloader")
    );
    assert_eq!(
        run.count(1, "check_kernel_files"),
        1,
        "the steps before it ran"
    );
    assert_eq!(run.calls_to("run_script:bootloader").count(), 0);
    assert_eq!(run.calls_to("sync").count(), 0);
    assert_eq!(run.calls_to("set_profile:local_disk").count(), 0);
    assert!(run.said("*** Breakpoint on install_bootloader reached for node-[1,3-4].test"));
}

#[tokio::test(start_paused = true)]
async fn breakpoint_on_a_fallback_only_stops_the_nodes_that_fall_back() {
    let run = Scenario::new(3)
        .automata(
            [inst(SetEnv::Untrusted)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec), inst(Boot::Classical)],
        )
        .request(|r| r.breakpoint = Some("BootNewEnvClassical".into()))
        .fail_always(2, "kexec")
        .run_deploy()
        .await;

    assert_eq!(run.ok(), [1, 3]);
    assert_eq!(run.brk(), [2]);
    assert_eq!(run.calls_to("reboot_from_deploy_env").count(), 0);
    assert_eq!(
        run.report().logs[1].retries,
        [0, 0, 1],
        "the fallback was taken"
    );
}

#[tokio::test(start_paused = true)]
async fn breakpoints_from_the_cluster_configuration() {
    let mut boot = inst(Boot::Kexec);
    boot.breakpoint = true;
    let run = Scenario::new(2)
        .automata(
            [inst(SetEnv::Untrusted)],
            [inst(Broadcast::Kascade)],
            [boot],
        )
        .run_deploy()
        .await;
    assert_eq!(run.status(1), &brk_at("BootNewEnvKexec"));
    assert_eq!(run.calls_to("set_profile:local_disk").count(), 0);

    let mut set_env = inst(SetEnv::Untrusted);
    set_env.microsteps.insert(
        "format_deploy_part".into(),
        MicroSettings {
            breakpoint: true,
            ..Default::default()
        },
    );
    let run = Scenario::new(2)
        .automata([set_env], [inst(Broadcast::Kascade)], [inst(Boot::Kexec)])
        .run_deploy()
        .await;
    assert_eq!(
        run.status(2),
        &brk_at("SetDeploymentEnvUntrusted:format_deploy_part")
    );
    assert_eq!(run.calls_to("format").count(), 0);
    assert_eq!(run.count(2, "run_script:partitioning"), 1);
}

#[tokio::test(start_paused = true)]
async fn breakpoint_on_a_step_not_used_is_refused_with_error_4_before_any_call() {
    for breakpoint in [
        "BroadcastEnvChain",                         // not in the automata
        "SetDeploymentEnvUntrusted:format_tmp_part", // deleted: no tmp reformat asked
        "BroadcastEnvKascade:send_key",              // deleted: no key given
        "BroadcastEnvKascade:no_such_step",
        "",
    ] {
        let run = Scenario::new(3)
            .request(|r| r.breakpoint = Some(breakpoint.into()))
            .run_deploy()
            .await;
        assert_eq!(run.error().kind.code(), 4, "breakpoint {breakpoint:?}");
        assert_eq!(run.calls().count(), 0);
        assert!(
            run.transcript(5).is_empty(),
            "nothing printed for {breakpoint:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn breakpoint_with_retries_configured_still_stops_at_once() {
    let run = Scenario::new(2)
        .automata(
            [inst(SetEnv::Untrusted)],
            [inst(Broadcast::Kascade).retries(2)],
            [inst(Boot::Kexec)],
        )
        .request(|r| r.breakpoint = Some("BroadcastEnvKascade".into()))
        .run_deploy()
        .await;
    assert_eq!(run.brk(), [1, 2]);
    assert_eq!(run.report().logs[0].retries, [0, 0, 0]);
}

//! Scenarios about time: macro-step timeouts, raisable and non-raisable macro-steps, and `wait_reboot`'s timeout
//! expression of `n`.

use super::fake::Op;
use super::run::close;
use super::scenario::{Boot, Broadcast, InstanceExt, Scenario, SetEnv, id, inst};
use hal::ErrorKind;
use kadeploy::expr::Expr;

#[tokio::test(start_paused = true)]
async fn timeout_a_hanging_group_is_ko_at_the_timeout_and_nothing_runs_after_it() {
    let run = Scenario::new(10)
        .automata(
            [inst(SetEnv::Untrusted).timeout(100.0)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec)],
        )
        .hang(4, "format")
        .run_deploy()
        .await;

    assert_eq!(
        run.ko(),
        (1..=10).collect::<Vec<_>>(),
        "the hang holds the whole parallel format"
    );
    for n in 1..=10 {
        let failure = run.failure(n);
        assert_eq!(
            failure.error,
            "Timeout in the SetDeploymentEnvUntrusted step"
        );
        assert_eq!(failure.kind, ErrorKind::Timeout);
        assert_eq!(&*failure.micro_step, "format_deploy_part");
    }
    let last = run.calls().last().expect("calls");
    assert_eq!(last.op.key(), "format");
    assert!(run.calls().all(|c| c.time <= 100.0));
    assert!(
        close(run.report().seconds, 100.0),
        "ended at {}",
        run.report().seconds
    );
    assert_eq!(run.calls_to("broadcast").count(), 0);
    assert!(run.said("Timeout in the SetDeploymentEnvUntrusted step"));
    assert_eq!(
        run.report().logs[3].durations,
        [100.0, 0.0, 0.0],
        "the step's duration is its timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn timeout_of_a_retry_only_hits_the_retried_node() {
    let run = Scenario::new(5)
        .automata(
            [inst(SetEnv::Untrusted).retries(1).timeout(100.0)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec)],
        )
        .fail(4, "format", 1)
        .hang(4, "reboot:hard")
        .run_deploy()
        .await;

    assert_eq!(run.ok(), [1, 2, 3, 5]);
    assert_eq!(
        run.failure(4).error,
        "Timeout in the SetDeploymentEnvUntrusted step"
    );
    assert_eq!(&*run.failure(4).micro_step, "reboot");
    // The retry starts with switch_pxe; the timeout fires 100 s later and node-4 is done then.
    let retry_start = run
        .calls_for(4, "set_profile:deploy_kernel")
        .nth(1)
        .expect("a retry")
        .time;
    let done_at = run.done_time(4);
    assert!(
        close(done_at, retry_start + 100.0),
        "done at {done_at}, retry at {retry_start}"
    );
    let last_call = run
        .calls()
        .filter(|c| c.nodes.contains(&id(4)))
        .last()
        .expect("calls");
    assert!(last_call.time <= retry_start + 100.0);
}

#[tokio::test(start_paused = true)]
async fn raise_nodes_done_early_move_on_while_slower_ones_are_still_in_the_macro_step() {
    let run = Scenario::new(10)
        .automata(
            [inst(SetEnv::Untrusted).micro("format_deploy_part", 1, 0.0)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec)],
        )
        .fail(1, "format", 1)
        .delay(1, "make_swap", 20.0)
        .run_deploy()
        .await;

    assert_eq!(run.ok().len(), 10);
    let broadcasts: Vec<_> = run.calls_to("broadcast").collect();
    assert_eq!(broadcasts.len(), 2);
    assert_eq!(broadcasts[0].nodes, (2..=10).map(id).collect::<Vec<_>>());
    assert_eq!(broadcasts[1].nodes, [id(1)]);
    let swap_1 = run
        .calls_for(1, "make_swap")
        .next()
        .expect("node-1 swap")
        .time;
    assert!(
        broadcasts[0].time < swap_1 + 20.0,
        "the others broadcast while node-1 formats its swap"
    );
    assert!(
        close(broadcasts[1].time - broadcasts[0].time, 20.0),
        "node-1 formats again, mounts, then 20 s of swap"
    );
}

#[tokio::test(start_paused = true)]
async fn raisable_false_keeps_nodes_until_the_macro_step_ends_and_moves_them_together() {
    let run = Scenario::new(10)
        .automata(
            [inst(SetEnv::Untrusted)
                .raisable(false)
                .micro("format_deploy_part", 1, 0.0)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec)],
        )
        .fail(1, "format", 1)
        .delay(1, "make_swap", 20.0)
        .run_deploy()
        .await;

    assert_eq!(run.ok().len(), 10);
    let broadcasts: Vec<_> = run.calls_to("broadcast").collect();
    assert_eq!(
        broadcasts.len(),
        1,
        "one group leaves the macro-step: {broadcasts:?}"
    );
    assert_eq!(broadcasts[0].nodes.len(), 10);
    let swap_1 = run
        .calls_for(1, "make_swap")
        .next()
        .expect("node-1 swap")
        .time;
    assert!(
        close(broadcasts[0].time, swap_1 + 20.0),
        "they wait for node-1"
    );
    let ends = run
        .lines_at(1)
        .into_iter()
        .filter(|l| l.starts_with("End of step Deploy[SetDeploymentEnv"))
        .count();
    assert_eq!(ends, 1);
}

#[tokio::test(start_paused = true)]
async fn raisable_false_failed_nodes_leave_with_the_others_at_the_end() {
    let run = Scenario::new(4)
        .automata(
            [inst(SetEnv::Untrusted).raisable(false)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec)],
        )
        .fail_always(2, "run_script:partitioning")
        .delay(3, "make_swap", 50.0)
        .run_deploy()
        .await;

    assert_eq!(run.ko(), [2]);
    let swap_end = run.calls_to("make_swap").next().expect("swap").time + 50.0;
    let failed_at = run.done_time(2);
    assert!(
        close(failed_at, swap_end),
        "node-2 reported at {failed_at} instead of the step's end {swap_end}"
    );
}

#[tokio::test(start_paused = true)]
async fn wait_reboot_timeout_is_an_expression_of_the_number_of_nodes_waited_for() {
    let run = Scenario::new(8)
        .automata(
            [inst(SetEnv::Untrusted).retries(1)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec)],
        )
        .cluster(|c| {
            c.timeout_reboot = Expr::parse("10 + 5 * Math.log(n)").expect("an expression");
            c.boot.sleep_time_before_ping = 5.0;
        })
        .timings(|t| t.boot_secs = 12.0)
        .never_boots(3)
        .run_deploy()
        .await;

    assert_eq!(run.ko(), [3]);
    assert_eq!(run.failure(3).error, "Unreachable after the reboot");
    let soft = run
        .calls_for(3, "reboot:soft")
        .next()
        .expect("first reboot")
        .time;
    let hard = run
        .calls_for(3, "reboot:hard")
        .next()
        .expect("reboot of the retry")
        .time;
    let probes: Vec<f64> = run.calls_for(3, "probe").map(|c| c.time).collect();
    let last_before = |t: f64| probes.iter().copied().rfind(|&p| p < t).expect("a probe");
    // The first wait is for 8 nodes, the retry's for node-3 alone; each starts when its reboot returns (1 s).
    let first = last_before(hard) - (soft + 1.0);
    let second = probes.last().expect("a probe") - (hard + 1.0);
    assert!(close(first, 10.0 + 5.0 * 8f64.ln()), "first wait {first}");
    assert!(close(second, 10.0), "second wait {second}");
    assert!(
        close(probes[0] - (soft + 1.0), 5.0),
        "first probe after sleep_time_before_ping"
    );
}

#[tokio::test(start_paused = true)]
async fn wait_reboot_with_a_timeout_that_cannot_be_evaluated_fails_the_nodes_with_a_message() {
    let run = Scenario::new(2)
        .cluster(|c| c.timeout_reboot = Expr::parse("100 / (n - 2)").expect("an expression"))
        .run_deploy()
        .await;

    assert_eq!(run.ko(), [1, 2]);
    let failure = run.failure(1);
    assert_eq!(&*failure.micro_step, "wait_reboot");
    assert!(
        failure
            .error
            .starts_with("Invalid reboot timeout '100 / (n - 2)'"),
        "{}",
        failure.error
    );
    assert_eq!(failure.kind, ErrorKind::Config);
}

#[tokio::test(start_paused = true)]
async fn wait_reboot_only_accepts_the_expected_environment() {
    // Accepted commands that do not reboot the node: node-2 stays in its production environment (25300 closed)
    // where the deploy environment is expected, node-3 stays in the deploy environment (25300 open) where its
    // deployed environment is expected.
    let run = Scenario::new(3)
        .no_effect(2, "reboot")
        .no_effect(3, "kexec")
        .run_deploy()
        .await;

    assert_eq!(run.ok(), [1]);
    assert_eq!(run.ko(), [2, 3]);
    for (n, instance) in [(2, "SetDeploymentEnvUntrusted"), (3, "BootNewEnvKexec")] {
        let failure = run.failure(n);
        assert_eq!(
            (&*failure.macro_step, &*failure.micro_step),
            (instance, "wait_reboot")
        );
        assert_eq!(failure.error, "Unreachable after the reboot");
    }
    let checks: Vec<_> = run
        .calls_to("probe")
        .filter_map(|c| match &c.op {
            Op::Probe(check) => Some((check.up.clone(), check.down.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        checks.first(),
        Some(&(vec![22, 25300], vec![])),
        "deploy env: ssh and 25300 up"
    );
    assert_eq!(
        checks.last(),
        Some(&(vec![22], vec![25300])),
        "user env: ssh up, 25300 down"
    );
}

#[tokio::test(start_paused = true)]
async fn wait_reboot_probes_through_the_check_window() {
    let run = Scenario::new(5)
        .server(|s| s.check_window = 2)
        .run_deploy()
        .await;

    assert_eq!(run.ok().len(), 5);
    let first_round: Vec<usize> = run
        .calls_to("probe")
        .take(3)
        .map(|c| c.nodes.len())
        .collect();
    assert_eq!(first_round, [2, 2, 1]);
}

#[tokio::test(start_paused = true)]
async fn wait_reboot_probes_every_probe_period() {
    let run = Scenario::new(2)
        .cluster(|c| {
            c.boot.sleep_time_before_ping = 5.0;
            c.boot.probe_period = 1.5;
        })
        .timings(|t| t.boot_secs = 12.0)
        .run_deploy()
        .await;

    assert!(run.ko().is_empty(), "{:?}", run.ko());
    let probes: Vec<f64> = run.calls_for(1, "probe").map(|c| c.time).collect();
    let gaps: Vec<f64> = probes.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().any(|&g| close(g, 1.5)),
        "probes 1.5 s apart while the node boots: {probes:?}"
    );
    assert!(
        gaps.iter().all(|&g| g > 1.4),
        "no two probes closer than the period: {probes:?}"
    );
}

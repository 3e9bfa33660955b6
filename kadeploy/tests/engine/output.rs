//! Kadeploy's output lines, level by level (spec §5.10), on a 3-node deployment where node-2 fails.

use super::run::Run;
use super::scenario::Scenario;

async fn three_nodes_one_failing() -> Run {
    Scenario::new(3).fail_always(2, "format").run_deploy().await
}

#[tokio::test(start_paused = true)]
async fn levels_0_and_1_tell_the_story_of_the_deployment() {
    let run = three_nodes_one_failing().await;

    assert_eq!(
        run.transcript(1),
        [
            "Launching a deployment on node-[1-3].test",
            "Performing a Deploy[SetDeploymentEnvUntrusted] step",
            "Step Deploy[SetDeploymentEnvUntrusted] failed for node-2.test after 34s",
            "Nodeset [1] split into :",
            "  Nodeset [2]: node-2.test",
            "  Nodeset [3]: node-[1,3].test",
            "Deployment failed for node-2.test after 34s",
            "End of step Deploy[SetDeploymentEnvUntrusted] after 36s",
            "Performing a Deploy[BroadcastEnvKascade] step",
            "End of step Deploy[BroadcastEnvKascade] after 4s",
            "Performing a Deploy[BootNewEnvKexec] step",
            "End of step Deploy[BootNewEnvKexec] after 24s",
            "End of deployment for node-[1,3].test after 64s",
            "End of deployment on cluster test after 64s",
        ]
    );
    assert_eq!(
        run.lines_at(0),
        [
            "Launching a deployment on node-[1-3].test",
            "End of deployment on cluster test after 64s"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn levels_2_to_5_detail_failures_micro_steps_times_and_nodes() {
    let run = three_nodes_one_failing().await;

    assert_eq!(
        run.lines_at(2),
        ["!!! The nodes node-2.test failed on step format_deploy_part"]
    );
    let level3 = run.lines_at(3);
    assert_eq!(
        &level3[..4],
        [
            "  switch_pxe",
            "  reboot",
            "   * Performing a soft reboot on node-[1-3].test",
            "  wait_reboot"
        ]
    );
    assert!(level3.contains(&"   * Broadcast time: 1s".to_string()));
    let level4 = run.lines_at(4);
    assert_eq!(level4[0], "   *  ~ Time in switch_pxe: 1s");
    assert!(level4.contains(&"   *  ~ Time in wait_reboot: 30s".to_string()));
    let level5 = run.lines_at(5);
    assert_eq!(
        &level5[..3],
        [
            "node-1.test is here after 30s",
            "node-2.test is here after 30s",
            "node-3.test is here after 30s"
        ]
    );
    assert!(level5.contains(&"node-2.test: format failed".to_string()));
}

#[tokio::test(start_paused = true)]
async fn lines_carry_their_virtual_time_in_order() {
    let run = three_nodes_one_failing().await;
    let times: Vec<f64> = run
        .events
        .iter()
        .filter_map(|e| match e {
            super::fake::Event::Line(l) => Some(l.time),
            _ => None,
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(times.last().copied().map(f64::round), Some(64.0));
}

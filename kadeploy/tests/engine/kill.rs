//! Cancelling a running workflow (Kadeploy's kill): every node ends KO, the report says aborted, and no HAL call is
//! made after the cancellation, even out of a hung call.

use super::fake::Event;
use super::run::close;
use super::scenario::{Boot, Broadcast, InstanceExt, Scenario, SetEnv, id, inst};
use hal::ErrorKind;

/// The index of the cancellation in the event log.
fn cancel_index(events: &[Event]) -> usize {
    events
        .iter()
        .position(|e| matches!(e, Event::Cancel))
        .expect("the workflow was cancelled")
}

#[tokio::test(start_paused = true)]
async fn kill_mid_run_fails_every_node_as_aborted_and_stops_all_calls() {
    let run = Scenario::new(6).cancel_at(12.0).run_deploy().await;

    let report = run.report();
    assert!(report.aborted);
    assert_eq!(run.ko(), [1, 2, 3, 4, 5, 6]);
    for n in 1..=6 {
        let failure = run.failure(n);
        assert_eq!(failure.error, "Deployment aborted");
        assert_eq!(failure.kind, ErrorKind::Cancelled);
        assert_eq!(
            (&*failure.macro_step, &*failure.micro_step),
            ("SetDeploymentEnvUntrusted", "wait_reboot")
        );
    }
    let cancel = cancel_index(&run.events);
    assert!(
        run.events[cancel..]
            .iter()
            .all(|e| !matches!(e, Event::Call(_))),
        "a HAL call after the cancel"
    );
    assert!(close(report.seconds, 12.0));
    assert!(run.said("Deployment aborted"));
    assert!(run.said("End of deployment on cluster test after 12s"));
}

#[tokio::test(start_paused = true)]
async fn kill_interrupts_a_hung_call_without_timeout() {
    let run = Scenario::new(3)
        .hang(2, "broadcast")
        .cancel_at(500.0)
        .run_deploy()
        .await;

    assert!(run.report().aborted);
    assert_eq!(run.ko(), [1, 2, 3]);
    assert_eq!(&*run.failure(1).micro_step, "send_environment");
    assert!(close(run.report().seconds, 500.0));
}

#[tokio::test(start_paused = true)]
async fn kill_marks_nodes_already_done_ko_too_but_keeps_earlier_failures() {
    // node-2 fails in SetDeploymentEnv; node-3 retries BootNewEnv while the others are already deployed.
    let scenario = || {
        Scenario::new(5)
            .automata(
                [inst(SetEnv::Untrusted)],
                [inst(Broadcast::Kascade)],
                [inst(Boot::Kexec).retries(1)],
            )
            .fail_always(2, "format")
            .fail(3, "kexec", 1)
    };
    let full = scenario().run_deploy().await;
    assert_eq!(full.ok(), [1, 3, 4, 5]);
    let (others_done, node_3_done) = (full.done_time(5), full.done_time(3));
    assert!(others_done < node_3_done);

    let run = scenario()
        .cancel_at((others_done + node_3_done) / 2.0)
        .run_deploy()
        .await;
    assert!(run.report().aborted);
    assert_eq!(
        run.ok(),
        Vec::<u32>::new(),
        "Kadeploy's kill moves every node to the KO list"
    );
    assert_eq!(run.failure(2).error, "format failed");
    for n in [1, 3, 4, 5] {
        assert_eq!(run.failure(n).error, "Deployment aborted", "node-{n}");
    }
    let cancel = cancel_index(&run.events);
    assert!(
        run.events[cancel..]
            .iter()
            .all(|e| !matches!(e, Event::Call(c) if c.nodes.contains(&id(3))))
    );
}

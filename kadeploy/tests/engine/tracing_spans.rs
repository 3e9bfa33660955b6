//! The engine's tracing spans: a node's history can be followed in the logs, from the workflow through its node
//! group, macro-step and micro-step, with each span's outcome recorded when it closes.

use super::logs::Capture;
use super::run::Run;
use super::scenario::{Boot, Broadcast, InstanceExt, Scenario, SetEnv, inst};

/// Runs `scenario`'s deployment and returns the debug logs it wrote.
async fn deploy_with_logs(scenario: Scenario) -> (Run, String) {
    let capture = Capture::start();
    let run = scenario.run_deploy().await;
    (run, capture.text())
}

/// The line logging the close of the span that starts with `span`: the innermost span of its scope.
fn closing<'a>(logs: &'a str, span: &str) -> &'a str {
    let innermost = |line: &str| {
        line.find(span).is_some_and(|at| {
            let rest = &line[at..];
            rest.find("}:")
                .is_some_and(|end| rest[end..].starts_with("}: "))
        })
    };
    logs.lines()
        .filter(|l| l.contains(": close"))
        .find(|l| innermost(l))
        .unwrap_or_else(|| panic!("no close of {span} in the logs:\n{logs}"))
}

#[tokio::test(start_paused = true)]
async fn a_failing_nodes_spans_name_its_macro_and_micro_step() {
    let (run, logs) = deploy_with_logs(Scenario::new(4).fail_always(3, "format")).await;
    assert_eq!(run.ko(), [3]);
    let failed = logs
        .lines()
        .find(|l| l.contains("node failed") && l.contains("node=node-3.test"))
        .unwrap_or_else(|| panic!("no failure of node-3 in the logs:\n{logs}"));
    for span in [
        "workflow{",
        "nodeset{",
        "macro_step{name=SetDeploymentEnvUntrusted attempt=0 nodes=node-[1-4].test",
        "micro_step{name=format_deploy_part attempt=0 nodes=node-[1-4].test",
    ] {
        assert!(failed.contains(span), "{span} missing from: {failed}");
    }
    assert!(failed.contains(r#"error=format failed"#), "{failed}");

    // Closing spans record their outcome: the micro-step's, its node group's and the macro-step's.
    let micro = closing(&logs, "micro_step{name=format_deploy_part");
    assert!(micro.contains("ok=3 ko=1 failed=node-3.test"), "{micro}");
    let group = closing(&logs, "nodeset{id=5 task=format_deploy_part");
    assert!(group.contains("ok=3 ko=1 failed=node-3.test"), "{group}");
    assert!(group.contains("timed_out=false"), "{group}");
    let instance = closing(&logs, "macro_step{name=SetDeploymentEnvUntrusted");
    assert!(
        instance.contains("ok=3 ko=1 failed=node-3.test"),
        "{instance}"
    );

    // The healthy nodes go on without it.
    let boot = closing(&logs, "macro_step{name=BootNewEnvKexec");
    assert!(boot.contains("nodes=node-[1-2,4].test"), "{boot}");
    assert!(boot.contains("ok=3 ko=0"), "{boot}");
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_recorded_on_the_node_group_that_hit_it() {
    let scenario = Scenario::new(3)
        .automata(
            [inst(SetEnv::Untrusted).timeout(100.0)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec)],
        )
        .hang(2, "format");
    let (run, logs) = deploy_with_logs(scenario).await;
    // node-2 hangs the group's format call: the whole group times out in the instance.
    assert_eq!(run.ko(), [1, 2, 3]);
    let group = closing(&logs, "nodeset{id=1 task=SetDeploymentEnvUntrusted");
    assert!(
        group.contains("ok=0 ko=3 failed=node-[1-3].test timed_out=true"),
        "{group}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_engines_spans_and_events_are_debug_level() {
    let (_, logs) = deploy_with_logs(Scenario::new(2).fail_always(1, "format")).await;
    assert!(logs.contains("macro_step{"), "{logs}");
    let info: Vec<&str> = logs.lines().filter(|l| !l.contains(" DEBUG ")).collect();
    // The workflow's span, the engine's only one above debug, closes at info level.
    assert_eq!(info.len(), 1, "{info:#?}");
    assert!(info[0].contains("INFO workflow{"), "{}", info[0]);
}

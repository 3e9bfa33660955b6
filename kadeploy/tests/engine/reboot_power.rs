//! The Reboot (simple, set_pxe, deploy_env, recorded_env) and Power (on, off, status) workflows.

use super::fake::{Env, Op};
use super::run::close;
use super::scenario::{Scenario, id};
use hal::{BootProfile, ErrorKind, Operation, PowerLevel};
use kadeploy::engine::{PowerOperation, RebootKind, UserPxe};
use kadeploy::expr::Expr;

#[tokio::test(start_paused = true)]
async fn reboot_simple_reboots_and_waits_for_the_user_environment() {
    let run = Scenario::new(3)
        .run_reboot(RebootKind::Simple, |_| {})
        .await;

    assert_eq!(run.ok(), [1, 2, 3]);
    assert_eq!(run.macro_steps(), ["Simple"]);
    assert!(run.said("Performing a Reboot[Simple] step"));
    assert_eq!(run.micro_steps(), ["reboot", "wait_reboot"]);
    assert_eq!(run.trace(2), ["reboot:soft"]);
    assert!(run.said("Launching a reboot on node-[1-3].test"));
    assert!(run.said("End of reboot for node-[1-3].test after 31s"));
}

#[tokio::test(start_paused = true)]
async fn reboot_from_the_requested_level_and_with_the_requested_timeout() {
    let run = Scenario::new(3)
        .never_boots(2)
        .run_reboot(RebootKind::Simple, |r| {
            r.level = PowerLevel::Hard;
            r.timeout_reboot_classical = Some(Expr::constant(50.0));
        })
        .await;

    assert_eq!(run.ok(), [1, 3]);
    assert_eq!(run.failure(2).error, "Unreachable after the reboot");
    assert_eq!(run.trace(1), ["reboot:hard"]);
    let last_probe = run.calls_for(2, "probe").last().expect("probes").time;
    assert!(
        close(last_probe, 51.0),
        "50 s after the 1 s reboot command, not 120 s: {last_probe}"
    );
}

#[tokio::test(start_paused = true)]
async fn reboot_deploy_env_boots_the_deployment_kernel_and_installs_the_key() {
    let run = Scenario::new(2)
        .run_reboot(RebootKind::DeployEnv, |r| {
            r.ssh_key = Some("ssh-rsa AAAA".into())
        })
        .await;

    assert_eq!(run.ok(), [1, 2]);
    assert_eq!(
        run.trace(1),
        ["set_profile:deploy_kernel", "reboot:soft", "send_key"]
    );
    let key = run.calls_to("send_key").next().expect("a key sent");
    let Op::Node(Operation::SendKey { keys, destination }) = &key.op else {
        unreachable!()
    };
    assert_eq!(
        (keys.as_str(), destination.as_str()),
        ("ssh-rsa AAAA", "/root/.ssh/authorized_keys")
    );
    assert_eq!(run.fake.env(id(1)), Some(Env::Deploy));

    let run = Scenario::new(2)
        .run_reboot(RebootKind::DeployEnv, |_| {})
        .await;
    assert_eq!(
        run.micro_steps(),
        ["switch_pxe", "reboot", "wait_reboot"],
        "no key, no send_key_in_deploy_env"
    );
}

#[tokio::test(start_paused = true)]
async fn reboot_set_pxe_writes_the_users_profile_and_needs_one() {
    let run = Scenario::new(2)
        .run_reboot(RebootKind::SetPxe, |_| {})
        .await;
    assert_eq!(run.error().kind.code(), 12);
    assert_eq!(run.calls().count(), 0);

    let run = Scenario::new(2)
        .run_reboot(RebootKind::SetPxe, |r| {
            r.pxe_profile = Some(UserPxe {
                profile: "LABEL x".into(),
                user: "alice".into(),
                singularities: None,
            })
        })
        .await;
    assert_eq!(run.ok(), [1, 2]);
    let profile = run.calls_to("set_profile").next().expect("a profile");
    assert_eq!(
        profile.op,
        Op::Profile(BootProfile::Custom {
            name: "alice".into(),
            content: "LABEL x".into(),
            singularities: None,
        })
    );
    assert_eq!(run.trace(2), ["set_profile:custom", "reboot:soft"]);
}

#[tokio::test(start_paused = true)]
async fn reboot_recorded_env_boots_the_deploy_partition() {
    let run = Scenario::new(2)
        .run_reboot(RebootKind::RecordedEnv, |_| {})
        .await;

    assert_eq!(run.ok(), [1, 2]);
    let profile = run.calls_to("set_profile").next().expect("a profile");
    assert_eq!(
        profile.op,
        Op::Profile(BootProfile::LocalDisk {
            device: "/dev/sda".into(),
            partition: 3,
            system: None,
        })
    );
    assert_eq!(run.fake.env(id(2)), Some(Env::User));
}

/// `kareboot3 -r recorded_env -b /dev/sdb -p 5` boots the given device and partition (before, the request
/// had no such fields and the cluster's deploy partition was booted whatever was asked).
#[tokio::test(start_paused = true)]
async fn reboot_recorded_env_boots_the_requested_device_and_partition() {
    let run = Scenario::new(2)
        .run_reboot(RebootKind::RecordedEnv, |r| {
            r.block_device = Some("/dev/sdb".into());
            r.deploy_partition = Some(5);
        })
        .await;

    assert_eq!(run.ok(), [1, 2]);
    let profile = run.calls_to("set_profile").next().expect("a profile");
    assert!(
        matches!(
            &profile.op,
            Op::Profile(BootProfile::LocalDisk { device, partition: 5, .. }) if device == "/dev/sdb"
        ),
        "{:?}",
        profile.op
    );
}

#[tokio::test(start_paused = true)]
async fn reboot_breakpoints_stop_or_are_refused() {
    let run = Scenario::new(2)
        .run_reboot(RebootKind::Simple, |r| {
            r.breakpoint = Some("RebootSimple:wait_reboot".into())
        })
        .await;
    assert_eq!(run.brk(), [1, 2]);
    assert_eq!(run.calls_to("probe").count(), 0);

    let run = Scenario::new(2)
        .run_reboot(RebootKind::Simple, |r| {
            r.breakpoint = Some("RebootSetPXE".into())
        })
        .await;
    assert_eq!(run.error().kind.code(), 4);
}

#[tokio::test(start_paused = true)]
async fn power_on_and_off_escalate_over_levels() {
    let run = Scenario::new(3)
        .powered_off(1)
        .powered_off(2)
        .run_power(PowerOperation::On, PowerLevel::Soft)
        .await;
    assert_eq!(run.ok(), [1, 2, 3]);
    assert_eq!(run.macro_steps(), ["On"]);
    assert!(run.said("End of step Power[On] after 1s"));
    assert!(run.said("   * Performing a soft power on on node-[1-3].test"));
    assert!(run.said("Launching a power operation on node-[1-3].test"));
    assert!(run.said("End of power operation for node-[1-3].test after 1s"));

    let run = Scenario::new(3)
        .fail(2, "power_off:hard", 1)
        .fail_always(3, "power_off")
        .run_power(PowerOperation::Off, PowerLevel::Hard)
        .await;
    assert_eq!(run.ok(), [1, 2]);
    assert_eq!(run.ko(), [3]);
    assert_eq!(run.failure(3).error, "power_off failed");
    assert!(run.said("Power operation failed for node-3.test after 2s"));
    assert_eq!(run.trace(2), ["power_off:hard", "power_off:very_hard"]);
    assert_eq!(
        run.count(1, "power_off:soft"),
        0,
        "starts at the requested level"
    );
    assert_eq!(run.fake.env(id(1)), None, "node-1 is off");
}

#[tokio::test(start_paused = true)]
async fn power_status_reads_each_nodes_state_into_its_log() {
    let run = Scenario::new(3)
        .powered_off(2)
        .fail_with(
            3,
            "power_status",
            None,
            ErrorKind::Unreachable,
            "BMC unreachable",
        )
        .run_power(PowerOperation::Status, PowerLevel::Soft)
        .await;

    assert_eq!(run.ok(), [1, 2]);
    assert_eq!(run.failure(3).error, "BMC unreachable");
    let out: Vec<Option<&str>> = run.report().logs.iter().map(|l| l.out.as_deref()).collect();
    assert_eq!(out, [Some("on"), Some("off"), None]);
    assert_eq!(run.calls().count(), 1, "one status call");
}

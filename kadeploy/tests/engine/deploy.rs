//! Deployment scenarios of Kadeploy's automata tests: success in each implementation's micro-step order, fail,
//! retries, fallback and a mixed scenario.

use super::fake::Op;
use super::scenario::{Boot, Broadcast, InstanceExt, Scenario, SetEnv, id, inst};
use hal::{BootProfile, Operation, Strategy};

const KEY: &str = "ssh-ed25519 AAAAC3Nza test@kadeploy";

#[tokio::test(start_paused = true)]
async fn success_untrusted_kascade_kexec_runs_kadeploys_micro_steps_in_order() {
    let run = Scenario::new(10)
        .request(|r| r.ssh_key = Some(KEY.into()))
        .run_deploy()
        .await;

    assert_eq!(run.ok(), (1..=10).collect::<Vec<_>>());
    assert!(!run.report().aborted);
    assert_eq!(
        run.macro_steps(),
        [
            "SetDeploymentEnvUntrusted",
            "BroadcastEnvKascade",
            "BootNewEnvKexec"
        ]
    );
    assert_eq!(
        run.micro_steps(),
        [
            // SetDeploymentEnvUntrusted (format_tmp_part: no reformat asked)
            "switch_pxe",
            "reboot",
            "wait_reboot",
            "send_key_in_deploy_env",
            "create_partition_table",
            "format_deploy_part",
            "mount_deploy_part",
            "format_swap_part",
            // BroadcastEnvKascade (decompress: decompressing broadcast; mount: tar mounted before)
            "send_environment",
            "manage_user_post_install",
            "check_kernel_files",
            "send_key",
            "install_bootloader",
            "sync",
            // BootNewEnvKexec
            "switch_pxe",
            "umount_deploy_part",
            "mount_deploy_part",
            "kexec",
            "wait_reboot",
        ]
    );
    assert_eq!(
        run.trace(4),
        [
            "set_profile:deploy_kernel",
            "reboot:soft",
            "send_key",
            "run_script:partitioning",
            "format",
            "mount",
            "make_swap",
            "broadcast",
            "check_kernel_files",
            "send_key",
            "run_script:bootloader",
            "sync",
            "set_profile:local_disk",
            "umount",
            "mount",
            "kexec",
        ]
    );
    let broadcast = run.calls_to("broadcast").next().expect("a broadcast");
    assert!(matches!(
        broadcast.op,
        Op::Broadcast(Strategy::FaultTolerantChain, _)
    ));
    assert_eq!(
        broadcast.nodes.len(),
        10,
        "one broadcast for the whole group"
    );
    let profile = run
        .calls_to("set_profile:local_disk")
        .next()
        .expect("a local boot profile");
    assert_eq!(
        profile.op,
        Op::Profile(BootProfile::LocalDisk {
            device: "/dev/sda".into(),
            partition: 3,
            system: Some(hal::LocalSystem {
                os: "linux".into(),
                kernel: "/vmlinuz".into(),
                initrd: "/initrd.img".into(),
                params: "console=ttyS0".into(),
                ..Default::default()
            }),
        })
    );
    let log = &run.report().logs[0];
    assert_eq!(log.retries, [0, 0, 0]);
    assert_eq!(
        log.steps.each_ref().map(|s| s.as_deref()),
        [
            Some("SetDeploymentEnvUntrusted"),
            Some("BroadcastEnvKascade"),
            Some("BootNewEnvKexec")
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn success_kexec_chain_classical_runs_kadeploys_micro_steps_in_order() {
    let run = Scenario::new(3)
        .automata(
            [inst(SetEnv::Kexec)],
            [inst(Broadcast::Chain)],
            [inst(Boot::Classical)],
        )
        .request(|r| r.ssh_key = Some(KEY.into()))
        .run_deploy()
        .await;

    assert_eq!(run.ok(), [1, 2, 3]);
    assert_eq!(
        run.micro_steps(),
        [
            "send_deployment_kernel",
            "sync",
            "kexec",
            "wait_reboot",
            "send_key_in_deploy_env",
            "create_partition_table",
            "format_deploy_part",
            "mount_deploy_part",
            "format_swap_part",
            "send_environment",
            "manage_user_post_install",
            "check_kernel_files",
            "send_key",
            "install_bootloader",
            "sync",
            "switch_pxe",
            "umount_deploy_part",
            "reboot_from_deploy_env",
            "wait_reboot",
        ]
    );
    assert_eq!(
        &run.trace(2)[..4],
        ["send_file", "send_file", "sync", "kexec"]
    );
    let kexec = run.calls_to("kexec").next().expect("a kexec");
    let Op::Node(Operation::Kexec {
        kernel,
        initrd,
        params,
    }) = &kexec.op
    else {
        unreachable!()
    };
    assert_eq!(kernel, "/dev/shm/kexec_repository/deploy-vmlinuz");
    assert_eq!(initrd, "/dev/shm/kexec_repository/deploy-initrd");
    assert_eq!(params, "console=tty0 rw");
    assert!(matches!(
        run.calls_to("broadcast").next().expect("a broadcast").op,
        Op::Broadcast(Strategy::Chain, _)
    ));
    assert_eq!(
        run.count(1, "reboot"),
        0,
        "neither the kexec path nor reboot_from_deploy_env uses power commands"
    );
    assert_eq!(run.count(1, "reboot_from_deploy_env"), 1);
}

#[tokio::test(start_paused = true)]
async fn fail_a_node_failing_a_micro_step_is_ko_there_with_its_message() {
    let run = Scenario::new(10)
        .fail_always(4, "format")
        .run_deploy()
        .await;

    assert_eq!(run.ko(), [4]);
    assert_eq!(run.ok().len(), 9);
    let failure = run.failure(4);
    assert_eq!(&*failure.macro_step, "SetDeploymentEnvUntrusted");
    assert_eq!(&*failure.micro_step, "format_deploy_part");
    assert_eq!(failure.error, "format failed");
    assert_eq!(
        run.trace(4).last().map(String::as_str),
        Some("format"),
        "nothing runs on a failed node"
    );
    assert!(run.said("!!! The nodes node-4.test failed on step format_deploy_part"));
}

#[tokio::test(start_paused = true)]
async fn retries_a_node_failing_once_succeeds_on_the_retry() {
    let run = Scenario::new(10)
        .automata(
            [inst(SetEnv::Untrusted)],
            [inst(Broadcast::Kascade).retries(1)],
            [inst(Boot::Kexec)],
        )
        .fail(2, "broadcast", 1)
        .run_deploy()
        .await;

    assert_eq!(run.ok(), (1..=10).collect::<Vec<_>>());
    assert_eq!(run.count(2, "broadcast"), 2);
    assert_eq!(run.count(3, "broadcast"), 1);
    assert_eq!(run.report().logs[1].retries, [0, 1, 0]);
    assert_eq!(run.report().logs[2].retries, [0, 0, 0]);
}

#[tokio::test(start_paused = true)]
async fn retries_never_exceed_the_configured_number() {
    let run = Scenario::new(4)
        .automata(
            [inst(SetEnv::Untrusted)],
            [inst(Broadcast::Kascade).retries(2)],
            [inst(Boot::Kexec)],
        )
        .fail_always(2, "broadcast")
        .run_deploy()
        .await;

    assert_eq!(run.ko(), [2]);
    assert_eq!(run.count(2, "broadcast"), 3, "one try and two retries");
    assert_eq!(run.failure(2).error, "broadcast failed");
    assert_eq!(&*run.failure(2).micro_step, "send_environment");
    assert_eq!(run.report().logs[1].retries, [0, 2, 0]);
    assert_eq!(
        run.count(2, "set_profile:local_disk"),
        0,
        "a failed node never reaches BootNewEnv"
    );
}

#[tokio::test(start_paused = true)]
async fn micro_step_retries_repeat_only_the_micro_step() {
    let run = Scenario::new(3)
        .automata(
            [inst(SetEnv::Untrusted).micro("format_deploy_part", 2, 0.0)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec)],
        )
        .fail(3, "format", 2)
        .run_deploy()
        .await;

    assert_eq!(run.ok(), [1, 2, 3]);
    assert_eq!(run.count(3, "format"), 3);
    assert_eq!(
        run.count(3, "reboot"),
        1,
        "the macro-step itself is not retried"
    );
    assert_eq!(run.report().logs[2].retries, [0, 0, 0]);
}

#[tokio::test(start_paused = true)]
async fn fallback_boot_new_env_kexec_failing_goes_to_classical() {
    let run = Scenario::new(6)
        .automata(
            [inst(SetEnv::Untrusted)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec).retries(1), inst(Boot::Classical)],
        )
        .fail_always(5, "kexec")
        .run_deploy()
        .await;

    assert_eq!(run.ok(), (1..=6).collect::<Vec<_>>());
    assert_eq!(run.count(5, "kexec"), 2, "Kexec tried then retried");
    assert_eq!(run.count(5, "reboot_from_deploy_env"), 1, "then Classical");
    assert_eq!(
        run.count(4, "reboot_from_deploy_env"),
        0,
        "only the failing node falls back"
    );
    let log = &run.report().logs[4];
    assert_eq!(log.retries, [0, 0, 2], "a retry and a fallback both count");
    assert_eq!(log.steps[2].as_deref(), Some("BootNewEnvClassical"));
    assert_eq!(
        run.macro_steps()
            .iter()
            .filter(|m| *m == "BootNewEnvClassical")
            .count(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn fallback_exhausted_reports_the_last_alternatives_failure() {
    let run = Scenario::new(2)
        .automata(
            [inst(SetEnv::Kexec), inst(SetEnv::Untrusted)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec)],
        )
        .fail_always(1, "sync")
        .fail_always(2, "send_file")
        .fail_always(2, "format")
        .run_deploy()
        .await;

    // node-1 fails `sync` in Kexec, falls back to Untrusted (no sync there), then fails the broadcast's sync.
    assert_eq!(run.ko(), [1, 2]);
    assert_eq!(&*run.failure(1).macro_step, "BroadcastEnvKascade");
    assert_eq!(&*run.failure(1).micro_step, "sync");
    assert_eq!(
        run.count(1, "set_profile:deploy_kernel"),
        1,
        "Untrusted ran after Kexec"
    );
    // node-2 fails Kexec's first micro-step, then Untrusted's format.
    assert_eq!(&*run.failure(2).macro_step, "SetDeploymentEnvUntrusted");
    assert_eq!(&*run.failure(2).micro_step, "format_deploy_part");
    assert_eq!(run.count(2, "broadcast"), 0);
}

#[tokio::test(start_paused = true)]
async fn mixed_retries_fallbacks_failures_timeouts_and_slow_boots_in_one_deployment() {
    let run = Scenario::new(12)
        .automata(
            [inst(SetEnv::Untrusted).retries(1)],
            [inst(Broadcast::Kascade).retries(1).timeout(600.0)],
            [inst(Boot::Kexec).retries(1), inst(Boot::Classical)],
        )
        .fail(1, "format", 1) // SetDeploymentEnv retried alone, then OK
        .fail_always(2, "broadcast") // KO after the broadcast's retry
        .never_boots(3) // lost after its first reboot: KO in wait_reboot, twice
        .fail_always(4, "kexec") // Kexec, its retry, then Classical: OK
        .boot_secs(5, 90.0) // slow, within the 120 s reboot timeout: OK
        .fail(6, "broadcast", 1) // retried with node-2 and node-7...
        .fail(7, "broadcast", 1)
        .hang(6, "check_kernel_files") // ...where node-6 hangs: both time out in the retry
        .run_deploy()
        .await;

    assert_eq!(run.ok(), [1, 4, 5, 8, 9, 10, 11, 12]);
    assert_eq!(run.ko(), [2, 3, 6, 7]);
    assert_eq!(run.failure(2).error, "broadcast failed");
    assert_eq!(run.failure(3).error, "Unreachable after the reboot");
    assert_eq!(&*run.failure(3).micro_step, "wait_reboot");
    for n in [6, 7] {
        assert_eq!(
            run.failure(n).error,
            "Timeout in the BroadcastEnvKascade step",
            "node-{n}"
        );
        assert_eq!(&*run.failure(n).micro_step, "check_kernel_files");
        assert_eq!(run.count(n, "broadcast"), 2);
    }
    assert_eq!(
        run.count(1, "reboot:hard"),
        1,
        "the retried macro-step reboots hard"
    );
    assert_eq!(run.count(3, "reboot:hard"), 1);
    assert_eq!(run.count(4, "kexec"), 2);
    assert_eq!(run.count(4, "reboot_from_deploy_env"), 1);
    assert_eq!(run.count(8, "kexec"), 1);
    let logs = &run.report().logs;
    assert_eq!(logs[0].retries, [1, 0, 0]);
    assert_eq!(logs[3].retries, [0, 0, 2]);
    assert_eq!(logs[5].retries, [0, 1, 0]);
}

#[tokio::test(start_paused = true)]
async fn an_empty_node_list_runs_nothing() {
    let run = Scenario::new(3)
        .request(|r| r.nodes.clear())
        .run_deploy()
        .await;

    assert!(run.report().nodes.is_empty());
    assert_eq!(run.calls().count(), 0, "no HAL call on an empty node set");
    assert!(run.macro_steps().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_node_listed_twice_is_deployed_once() {
    let run = Scenario::new(3)
        .request(|r| r.nodes = vec![id(2), id(1), id(2)])
        .run_deploy()
        .await;

    assert_eq!(run.ok(), [2, 1]);
    assert!(
        run.calls().all(|c| c.nodes.len() <= 2),
        "node-2 appears once per call"
    );
    assert_eq!(run.count(2, "broadcast"), 1);
}

//! How a request becomes macro-steps and micro-steps: Kadeploy's deletion rules, automatic substitutions and the
//! checks that refuse a request before any HAL call.

use super::fake::Op;
use super::run::{Run, close};
use super::scenario::{Boot, Broadcast, InstanceExt, Scenario, SetEnv, inst};
use hal::{BootProfile, ImageKind, Operation, WriteTarget};
use kadeploy::config::Archive;
use kadeploy::expr::Expr;

fn archive(file: &str) -> Archive {
    Archive {
        file: file.into(),
        format: "tgz".into(),
        script: Some("run.sh".into()),
    }
}

fn has_step(run: &Run, micro: &str) -> bool {
    run.micro_steps().iter().any(|m| m == micro)
}

#[tokio::test(start_paused = true)]
async fn no_key_deletes_both_key_steps() {
    let run = Scenario::new(2).run_deploy().await;
    assert!(!has_step(&run, "send_key_in_deploy_env") && !has_step(&run, "send_key"));
    assert_eq!(run.calls_to("send_key").count(), 0);

    let run = Scenario::new(2)
        .request(|r| r.ssh_key = Some("k".into()))
        .run_deploy()
        .await;
    let destinations: Vec<String> = run
        .calls_to("send_key")
        .filter_map(|c| match &c.op {
            Op::Node(Operation::SendKey { destination, .. }) => Some(destination.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        destinations,
        [
            "/root/.ssh/authorized_keys",
            "/mnt/dest/root/.ssh/authorized_keys"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn dd_image_is_written_raw_and_mounted_after_the_broadcast() {
    let run = Scenario::new(2)
        .request(|r| r.environment.image.kind = ImageKind::Dd)
        .run_deploy()
        .await;

    assert_eq!(run.ok(), [1, 2]);
    assert_eq!(
        run.micro_steps(),
        [
            "switch_pxe",
            "reboot",
            "wait_reboot",
            "create_partition_table",
            "format_swap_part",
            "send_environment",
            "mount_deploy_part",
            "manage_user_post_install",
            "check_kernel_files",
            "install_bootloader",
            "sync",
            "switch_pxe",
            "umount_deploy_part",
            "mount_deploy_part",
            "kexec",
            "wait_reboot",
        ]
    );
    assert_eq!(run.calls_to("format").count(), 0);
}

#[tokio::test(start_paused = true)]
async fn bootloader_is_not_installed_with_grub_pxe_or_when_disabled() {
    let run = Scenario::new(2)
        .server(|s| s.localboot_method = "GrubPXE".into())
        .run_deploy()
        .await;
    assert!(!has_step(&run, "install_bootloader"));
    assert_eq!(run.calls_to("run_script:bootloader").count(), 0);

    let run = Scenario::new(2)
        .request(|r| r.disable_bootloader_install = true)
        .run_deploy()
        .await;
    assert!(!has_step(&run, "install_bootloader"));

    let run = Scenario::new(2).run_deploy().await;
    assert_eq!(run.calls_to("run_script:bootloader").count(), 1);
}

#[tokio::test(start_paused = true)]
async fn non_linux_environment_boots_classically_with_kadeploys_notice_and_timeout() {
    let run = Scenario::new(4)
        .automata(
            [inst(SetEnv::Untrusted)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec).retries(2)],
        )
        .cluster(|c| c.timeout_reboot = Expr::parse("10 * n").expect("an expression"))
        .request(|r| r.environment.os = "bsd".into())
        .hang(3, "reboot_from_deploy_env")
        .run_deploy()
        .await;

    assert_eq!(
        run.lines_at(0)[1],
        "Using classical reboot instead of kexec one with this non-linux environment (BootNewEnv)"
    );
    assert_eq!(
        run.macro_steps().last().map(String::as_str),
        Some("BootNewEnvClassical")
    );
    assert!(
        !has_step(&run, "format_swap_part"),
        "no swap for a non-linux environment"
    );
    assert_eq!(run.calls_to("kexec").count(), 0);
    // Retries forced to 0 and timeout = eval(timeout_reboot) + 200 with n = 4 nodes.
    assert_eq!(run.ko(), [1, 2, 3, 4]);
    assert_eq!(
        run.failure(1).error,
        "Timeout in the BootNewEnvClassical step"
    );
    assert_eq!(run.calls_to("reboot_from_deploy_env").count(), 1);
    let start = run
        .calls_to("set_profile:local_disk")
        .next()
        .expect("BootNewEnv ran")
        .time;
    assert!(close(run.report().seconds, start + 240.0));
}

#[tokio::test(start_paused = true)]
async fn unsupported_filesystem_skips_the_steps_that_need_it_mounted() {
    let run = Scenario::new(2)
        .request(|r| r.environment.filesystem = "xfs".into())
        .run_deploy()
        .await;

    assert_eq!(
        run.lines_at(0)[1],
        "Using classical reboot instead of kexec since the filesystem is not supported by the deployment environment (BootNewEnv)"
    );
    for micro in [
        "mount_deploy_part",
        "umount_deploy_part",
        "check_kernel_files",
        "manage_user_post_install",
    ] {
        assert!(!has_step(&run, micro), "{micro} should be deleted");
    }
    assert_eq!(run.ok(), [1, 2]);
}

#[tokio::test(start_paused = true)]
async fn no_kexec_replaces_both_kexec_implementations() {
    let run = Scenario::new(2)
        .automata(
            [inst(SetEnv::Kexec)],
            [inst(Broadcast::Chain)],
            [inst(Boot::Kexec)],
        )
        .request(|r| r.disable_kexec = true)
        .run_deploy()
        .await;

    assert_eq!(
        run.macro_steps(),
        [
            "SetDeploymentEnvUntrusted",
            "BroadcastEnvChain",
            "BootNewEnvClassical"
        ]
    );
    assert!(run.said("Using classical reboot instead of kexec (BootNewEnv)"));
    assert_eq!(run.calls_to("kexec").count(), 0);
}

#[tokio::test(start_paused = true)]
async fn environment_preinstall_replaces_the_set_deployment_env_slot() {
    let run = Scenario::new(2)
        .automata(
            [inst(SetEnv::Kexec).retries(1), inst(SetEnv::Untrusted)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec)],
        )
        .request(|r| r.environment.preinstall = Some(archive("/envs/pre.tgz")))
        .run_deploy()
        .await;

    assert!(run.said("A specific presinstall will be used with this environment"));
    assert_eq!(
        run.macro_steps()[0],
        "SetDeploymentEnvUntrustedCustomPreInstall"
    );
    assert_eq!(
        &run.micro_steps()[..4],
        [
            "switch_pxe",
            "reboot",
            "wait_reboot",
            "manage_admin_pre_install"
        ]
    );
    let install = run
        .calls_to("install_archive")
        .next()
        .expect("the preinstall");
    assert!(
        matches!(&install.op, Op::Node(Operation::InstallArchive { archive, .. }) if archive == "/envs/pre.tgz")
    );
}

#[tokio::test(start_paused = true)]
async fn partition_rules_for_tmp_swap_multipart_and_partitioning() {
    let run = Scenario::new(1)
        .request(|r| r.reformat_tmp = Some("ext4".into()))
        .run_deploy()
        .await;
    let tmp = run
        .calls_to("format")
        .nth(1)
        .expect("tmp formatted after the deploy partition");
    assert!(
        matches!(&tmp.op, Op::Node(Operation::Format { device, fs, .. }) if device == "/dev/sda5" && fs == "ext4")
    );

    let run = Scenario::new(1)
        .request(|r| r.reformat_tmp = Some("zfs".into()))
        .run_deploy()
        .await;
    assert_eq!(run.error().kind.code(), 13);

    let run = Scenario::new(1)
        .request(|r| {
            r.environment.multipart = true;
            r.reformat_tmp = Some("ext4".into());
            r.disable_disk_partitioning = true;
        })
        .run_deploy()
        .await;
    for micro in [
        "format_tmp_part",
        "format_swap_part",
        "create_partition_table",
    ] {
        assert!(!has_step(&run, micro), "{micro} should be deleted");
    }

    let run = Scenario::new(1)
        .request(|r| r.deploy_partition = Some(Some(1)))
        .run_deploy()
        .await;
    assert!(
        !has_step(&run, "format_swap_part"),
        "never format the swap partition deployed on"
    );
    let format = run
        .calls_to("format")
        .next()
        .expect("deploy partition formatted");
    assert!(
        matches!(&format.op, Op::Node(Operation::Format { device, .. }) if device == "/dev/sda1")
    );
}

#[tokio::test(start_paused = true)]
async fn whole_disk_deployment_needs_a_dd_image_and_a_boot_partition_and_boots_it() {
    let whole_disk = |dd: bool, boot: Option<u32>| {
        Scenario::new(1).request(move |r| {
            r.deploy_partition = Some(None);
            r.boot_partition = boot;
            if dd {
                r.environment.image.kind = ImageKind::Dd;
            }
        })
    };
    assert_eq!(
        whole_disk(false, Some(2))
            .run_deploy()
            .await
            .error()
            .kind
            .code(),
        13
    );
    assert_eq!(
        whole_disk(true, None)
            .run_deploy()
            .await
            .error()
            .kind
            .code(),
        12
    );

    let run = whole_disk(true, Some(2)).run_deploy().await;
    assert_eq!(run.ok(), [1]);
    for micro in [
        "create_partition_table",
        "format_deploy_part",
        "format_swap_part",
    ] {
        assert!(!has_step(&run, micro), "{micro} should be deleted");
    }
    let Op::Broadcast(_, target) = &run.calls_to("broadcast").next().expect("a broadcast").op
    else {
        unreachable!()
    };
    assert_eq!(target.device, "/dev/sda");
    let profile = run
        .calls_to("set_profile:local_disk")
        .next()
        .expect("a local boot");
    let Op::Profile(BootProfile::LocalDisk {
        device, partition, ..
    }) = &profile.op
    else {
        panic!("{:?}", profile.op)
    };
    assert_eq!((device.as_str(), *partition), ("/dev/sda", 2));
}

#[tokio::test(start_paused = true)]
async fn admin_postinstall_and_non_decompressing_broadcast_add_their_steps() {
    let run = Scenario::new(1)
        .cluster(|c| {
            c.admin_postinstalls = vec![archive("/admin/post.tgz")];
            c.broadcast_decompress = false;
        })
        .run_deploy()
        .await;

    assert_eq!(run.ok(), [1]);
    assert!(has_step(&run, "manage_admin_post_install"));
    assert!(has_step(&run, "decompress_environment"));
    let Op::Broadcast(_, target) = &run.calls_to("broadcast").next().expect("a broadcast").op
    else {
        unreachable!()
    };
    assert_eq!(
        target,
        &WriteTarget {
            device: "/rambin/_KATMP_debian12-min.tgz".into(),
            extraction_dir: String::new()
        }
    );
    assert_eq!(run.calls_to("write_image").count(), 1);
}

#[tokio::test(start_paused = true)]
async fn bad_automata_are_refused_with_error_4_and_never_panic() {
    let run = Scenario::new(2)
        .automata([inst(SetEnv::Untrusted)], [], [inst(Boot::Kexec)])
        .run_deploy()
        .await;
    assert_eq!(run.error().kind.code(), 4);
}

/// A step this deployer lacks fails only the nodes that reach it, with a clear error, and a fallback
/// after it still deploys them (before, listing `Bittorrent`, `Custom` or `Nfsroot` anywhere in a cluster's
/// automata refused every deployment on that cluster with error 4, before any node was touched).
#[tokio::test(start_paused = true)]
async fn a_missing_strategy_fails_only_the_nodes_that_reach_it() {
    let run = Scenario::new(2)
        .automata(
            [inst(SetEnv::Nfsroot)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec)],
        )
        .run_deploy()
        .await;
    assert_eq!(run.ko(), [1, 2]);
    let failure = run.failure(1);
    assert_eq!(
        (&*failure.macro_step, failure.error.as_str()),
        (
            "SetDeploymentEnvNfsroot",
            "SetDeploymentEnvNfsroot is not supported by this deployer"
        )
    );
    let run = Scenario::new(2)
        .automata(
            [inst(SetEnv::Nfsroot), inst(SetEnv::Untrusted)],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec)],
        )
        .run_deploy()
        .await;
    assert_eq!(run.ok(), [1, 2], "the fallback deploys them");
}

/// Kadeploy's `BroadcastEnvBittorrent` deploys, through kaagent's swarm (before: refused, then failed).
#[tokio::test(start_paused = true)]
async fn bittorrent_broadcasts_by_the_swarm() {
    let run = Scenario::new(3)
        .automata(
            [inst(SetEnv::Untrusted)],
            [inst(Broadcast::Bittorrent)],
            [inst(Boot::Kexec)],
        )
        .run_deploy()
        .await;
    assert_eq!(run.ok(), [1, 2, 3]);
    assert!(has_step(&run, "send_environment"), "the image was sent");
}

fn exec(name: &str) -> kadeploy::engine::custom::CustomOp {
    kadeploy::engine::custom::CustomOp {
        name: name.into(),
        action: kadeploy::engine::custom::CustomAction::Exec {
            command: format!("echo {name}"),
        },
        timeout: 0.0,
        retries: 0,
    }
}

/// `{macro: {micro: ops}}` of one entry.
fn ops_of(
    macro_name: &str,
    micro: &str,
    ops: kadeploy::engine::custom::CustomMicro,
) -> kadeploy::engine::custom::CustomOps {
    [(macro_name.to_string(), [(micro.to_string(), ops)].into())].into()
}

#[tokio::test(start_paused = true)]
async fn admin_custom_operations_run_with_the_users_unless_overridden() {
    use kadeploy::config::MicroSettings;
    use kadeploy::engine::custom::CustomMicro;
    let mut set_env = inst(SetEnv::Untrusted);
    set_env.microsteps.insert(
        "format_deploy_part".into(),
        MicroSettings {
            raisable: true,
            custom: CustomMicro {
                pre: vec![exec("admin")],
                ..CustomMicro::default()
            },
            ..MicroSettings::default()
        },
    );
    let user = |replaces_admin: bool| {
        ops_of(
            "SetDeploymentEnv",
            "format_deploy_part",
            CustomMicro {
                post: vec![exec("user")],
                replaces_admin,
                ..CustomMicro::default()
            },
        )
    };
    let run = Scenario::new(2)
        .automata(
            [set_env.clone()],
            [inst(Broadcast::Kascade)],
            [inst(Boot::Kexec)],
        )
        .request(|r| r.custom_operations = user(false))
        .run_deploy()
        .await;
    assert_eq!(run.ok(), [1, 2]);
    let steps = run.micro_steps();
    let at = |s: &str| {
        steps
            .iter()
            .position(|m| m == s)
            .unwrap_or_else(|| panic!("no {s} in {steps:?}"))
    };
    assert!(at("format_deploy_part-admin") < at("format_deploy_part"));
    assert!(at("format_deploy_part") < at("format_deploy_part-user"));
    assert_eq!(run.calls_to("exec").count(), 2);

    let run = Scenario::new(2)
        .automata([set_env], [inst(Broadcast::Kascade)], [inst(Boot::Kexec)])
        .request(|r| r.custom_operations = user(true))
        .run_deploy()
        .await;
    assert!(has_step(&run, "format_deploy_part-user"));
    assert!(!has_step(&run, "format_deploy_part-admin"));
}

#[tokio::test(start_paused = true)]
async fn reboots_run_their_custom_operations() {
    use kadeploy::engine::RebootKind;
    use kadeploy::engine::custom::CustomMicro;
    let after = CustomMicro {
        post: vec![exec("after")],
        ..CustomMicro::default()
    };
    let run = Scenario::new(2)
        .run_reboot(RebootKind::Simple, |r| {
            r.custom_operations = ops_of("Reboot", "reboot", after.clone())
        })
        .await;
    assert_eq!(run.ok(), [1, 2]);
    let trace = run.trace(1);
    let reboot = trace.iter().position(|k| k.starts_with("reboot:"));
    let exec = trace.iter().position(|k| k == "exec");
    assert!(reboot.is_some() && exec > reboot, "{trace:?}");
    assert!(has_step(&run, "reboot-after"), "{:?}", run.micro_steps());

    // An implementation's own entry (`RebootSimple`) applies too; another kind's does not.
    let run = Scenario::new(1)
        .run_reboot(RebootKind::Simple, |r| {
            r.custom_operations = ops_of("RebootDeployEnv", "reboot", after.clone())
        })
        .await;
    assert_eq!(run.calls_to("exec").count(), 0);
    let run = Scenario::new(1)
        .run_reboot(RebootKind::Simple, |r| {
            r.custom_operations = ops_of("RebootSimple", "reboot", after.clone())
        })
        .await;
    assert_eq!(run.calls_to("exec").count(), 1);
}

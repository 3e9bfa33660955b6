//! Unit tests of the translation of micro-steps into actions: operations, devices and refusals, without drivers.

use super::action::{Action, StepContext};
use super::translate::translate;
use crate::config::{
    Archive, Automata, BootConfig, ClusterConfig, Partitioning, ServerConfig, VlanConfig,
    default_automata,
};
use crate::engine::custom::{CustomAction, CustomOp};
use crate::engine::step::{BootTarget, Job, PxeSwitch, Step, UserPxe};
use crate::environment::Environment;
use crate::expr::Expr;
use hal::{
    BootProfile, ImageKind, LocalSystem, Operation, PortCheck, PowerAction, PowerLevel, Strategy,
    WriteTarget,
};
use std::collections::BTreeMap;

mod parity;

fn server() -> ServerConfig {
    ServerConfig {
        ssh_port: 22,
        test_deploy_env_port: 25300,
        reboot_window: 50,
        reboot_window_sleep: 10.0,
        check_window: 50,
        extraction_dir: "/mnt/dest".into(),
        rambin_dir: "/rambin".into(),
        mkfs_args: BTreeMap::from([("ext4".to_string(), "-F -q".to_string())]),
        tar_options: String::new(),
        verbosity: 3,
        localboot_method: "PXElinux".into(),
        taktuk_connector: "ssh -q".into(),
        vlan: Some(VlanConfig {
            hostname_suffix: "-kavlan-VLAN_ID".into(),
            set_cmd: "kavlan NODES -s -i VLAN_ID -u USER".into(),
        }),
    }
}

/// `/dev/sda` with swap 1, prod 2, deploy 3, tmp 5.
fn cluster() -> ClusterConfig {
    let automata: Automata = default_automata();
    ClusterConfig {
        name: "grisou".into(),
        prefix: None,
        nodes: Vec::new(),
        partitioning: Partitioning {
            block_device: "/dev/sda".into(),
            deploy: 3,
            swap: Some(1),
            prod: Some(2),
            tmp: Some(5),
            script: "parted -s /dev/sda mklabel gpt".into(),
        },
        boot: BootConfig {
            sleep_time_before_ping: 20.0,
            probe_period: 5.0,
            probe_timeout: 2.0,
            install_bootloader: "install_grub".into(),
            user_params: "console=ttyS0".into(),
            deploy_vmlinuz: "/srv/kernels/deploy-vmlinuz".into(),
            deploy_initrd: "/srv/kernels/deploy-initrd".into(),
            deploy_params: "console=tty0 rw".into(),
            deploy_drivers: Vec::new(),
            supported_fs: vec!["ext4".into()],
        },
        timeout_reboot: Expr::constant(120.0),
        timeout_kexec: Expr::constant(60.0),
        kexec_repository: "/dev/shm/kexec_repository".into(),
        broadcast_decompress: true,
        broadcast_cmd: Some(
            "bcast -f ENVFILE -n NODEFILE -c 'DECOMPRESS' -s 'TAKTUK_CONNECTOR'".into(),
        ),
        admin_preinstalls: Vec::new(),
        admin_postinstalls: vec![Archive {
            file: "/srv/post.tgz".into(),
            format: "tgz".into(),
            script: Some("run.sh".into()),
        }],
        automata,
        reboot_levels: PowerLevel::ALL.to_vec(),
        use_ip_to_deploy: false,
        macs: BTreeMap::new(),
        switches: BTreeMap::new(),
    }
}

/// A deployment of a Linux tarball on partition 3 with keys.
fn job() -> Job {
    Job {
        environment: Some(Environment::sample_tarball(1 << 20, 2.0)),
        ssh_key: Some("ssh-ed25519 AAAA".into()),
        block_device: "/dev/sda".into(),
        deploy_partition: Some(3),
        ..Job::default()
    }
}

/// The action of `step` for `job` on the test cluster, first try.
fn action(step: Step, job: &Job) -> Action {
    action_with(step, job, &cluster())
}

fn action_with(step: Step, job: &Job, cluster: &ClusterConfig) -> Action {
    let server = server();
    let cx = StepContext {
        server: &server,
        cluster,
        job,
    };
    translate(&step, cx, 0)
}

fn no_environment() -> Job {
    Job {
        environment: None,
        ..job()
    }
}

#[test]
fn steps_that_need_an_environment_refuse_without_one() {
    let job = no_environment();
    for step in [
        Step::FormatDeployPart,
        Step::KexecDeployedEnv,
        Step::DecompressEnvironment,
        Step::CheckKernelFiles,
    ] {
        assert_eq!(
            action(step.clone(), &job),
            Action::refuse("No environment"),
            "{}",
            step.name()
        );
    }
    assert_eq!(
        action(Step::SendEnvironment(Strategy::Chain), &job),
        Action::refuse("No environment to send")
    );
}

#[test]
fn other_refusals_say_what_is_missing() {
    let mut windows = job();
    windows.environment.as_mut().unwrap().os = "windows".into();
    assert_eq!(
        action(Step::KexecDeployedEnv, &windows),
        Action::refuse("Cannot kexec an environment of kind windows")
    );
    assert_eq!(
        action(Step::FormatTmpPart, &job()),
        Action::refuse("No tmp partition to format"),
        "no file system requested for tmp"
    );
    assert_eq!(
        action(Step::SwitchPxe(PxeSwitch::SetPxe), &job()),
        Action::refuse("No PXE profile given")
    );
    let mut no_prod = cluster();
    no_prod.partitioning.prod = None;
    assert_eq!(
        action_with(Step::CheckProdEnvBooted, &job(), &no_prod),
        Action::refuse("Bad root partition")
    );
}

#[test]
fn missing_keys_or_swap_leave_nothing_to_do() {
    let keyless = Job {
        ssh_key: None,
        ..job()
    };
    assert_eq!(action(Step::SendKey, &keyless), Action::Nothing);
    assert_eq!(action(Step::SendKeyInDeployEnv, &keyless), Action::Nothing);
    let mut no_swap = cluster();
    no_swap.partitioning.swap = None;
    assert_eq!(
        action_with(Step::FormatSwapPart, &job(), &no_swap),
        Action::Nothing
    );
}

#[test]
fn partitions_are_named_after_the_jobs_block_device() {
    let job = Job {
        block_device: "/dev/nvme0n1p".into(),
        reformat_tmp: Some("ext4".into()),
        ..job()
    };
    assert_eq!(
        action(Step::FormatDeployPart, &job),
        Action::Run(Operation::Format {
            device: "/dev/nvme0n1p3".into(),
            fs: "ext4".into(),
            args: "-F -q".into(),
        })
    );
    assert_eq!(
        action(Step::FormatTmpPart, &job),
        Action::Run(Operation::Format {
            device: "/dev/nvme0n1p5".into(),
            fs: "ext4".into(),
            args: "-F -q".into(),
        })
    );
    assert_eq!(
        action(Step::FormatSwapPart, &job),
        Action::Run(Operation::MakeSwap {
            device: "/dev/nvme0n1p1".into()
        })
    );
    assert_eq!(
        action(Step::CheckProdEnvBooted, &job),
        Action::CheckRootDevice(Operation::CheckRootDevice {
            device: "/dev/nvme0n1p2".into()
        })
    );
    assert_eq!(
        action(Step::MountDeployPart, &job),
        Action::Run(Operation::Mount {
            device: "/dev/nvme0n1p3".into(),
            dir: "/mnt/dest".into(),
        })
    );
}

#[test]
fn whole_disk_deployments_use_the_block_device_and_boot_the_boot_partition() {
    let job = Job {
        deploy_partition: None,
        boot_partition: Some(2),
        ..job()
    };
    assert_eq!(
        action(Step::UmountDeployPart, &job),
        Action::Run(Operation::Umount {
            target: "/dev/sda".into()
        })
    );
    assert_eq!(
        action(Step::SwitchPxe(PxeSwitch::DeployToDeployedEnv), &job),
        Action::SetProfile(BootProfile::LocalDisk {
            device: "/dev/sda".into(),
            partition: 2,
            system: Some(LocalSystem {
                os: "linux".into(),
                kernel: "/vmlinuz".into(),
                initrd: "/initrd.img".into(),
                params: "console=ttyS0".into(),
                ..LocalSystem::default()
            }),
        })
    );
    let singularities: BTreeMap<String, String> = [("n-1".to_string(), "7".to_string())].into();
    let profiled = Job {
        pxe_profile: Some(UserPxe {
            profile: "DEFAULT user".into(),
            user: "alice".into(),
            singularities: Some(singularities.clone()),
        }),
        ..job
    };
    assert_eq!(
        action(Step::SwitchPxe(PxeSwitch::DeployToDeployedEnv), &profiled),
        Action::SetProfile(BootProfile::Custom {
            name: "alice".into(),
            content: "DEFAULT user".into(),
            singularities: Some(singularities),
        }),
        "the profile is the user's: FILES_PREFIX names their files (before, every profile was `user`'s)"
    );
}

#[test]
fn a_soft_reboot_turns_hard_when_the_macro_step_is_retried() {
    let (server, cluster, job) = (server(), cluster(), job());
    let cx = StepContext {
        server: &server,
        cluster: &cluster,
        job: &job,
    };
    let reboot = Step::Reboot(PowerLevel::Soft);
    assert_eq!(
        translate(&reboot, cx, 0),
        Action::Power(PowerAction::Reboot, PowerLevel::Soft)
    );
    assert_eq!(
        translate(&reboot, cx, 1),
        Action::Power(PowerAction::Reboot, PowerLevel::Hard)
    );
    let off = Step::Power(PowerAction::Off, PowerLevel::Soft);
    assert_eq!(
        translate(&off, cx, 1),
        Action::Power(PowerAction::Off, PowerLevel::Soft)
    );
}

#[test]
fn waits_use_the_jobs_timeout_first_and_the_targets_ports() {
    let job = Job {
        timeout_kexec: Some(Expr::constant(30.0)),
        ..job()
    };
    let wait = |kexec, target| action(Step::WaitReboot { kexec, target }, &job);
    assert_eq!(
        wait(true, BootTarget::Deploy),
        Action::WaitReboot {
            timeout: Expr::constant(30.0),
            check: PortCheck {
                up: vec![22, 25300],
                down: vec![]
            }
        }
    );
    assert_eq!(
        wait(false, BootTarget::User),
        Action::WaitReboot {
            timeout: Expr::constant(120.0),
            check: PortCheck {
                up: vec![22],
                down: vec![25300]
            }
        }
    );
}

#[test]
fn kexec_steps_use_the_repository_and_the_extracted_kernel() {
    let sends = action(Step::SendDeploymentKernel, &job());
    let Action::RunInSequence(sends) = sends else {
        panic!("{sends:?}")
    };
    let destinations: Vec<_> = sends
        .iter()
        .map(|op| match op {
            Operation::SendFile { destination, .. } => destination.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        destinations,
        [
            "/dev/shm/kexec_repository/deploy-vmlinuz",
            "/dev/shm/kexec_repository/deploy-initrd"
        ]
    );
    assert_eq!(
        action(Step::KexecDeployedEnv, &job()),
        Action::Run(Operation::Kexec {
            kernel: "/mnt/dest/vmlinuz".into(),
            initrd: "/mnt/dest/initrd.img".into(),
            params: "root=/dev/sda3 console=ttyS0".into(),
        })
    );
}

#[test]
fn broadcasts_go_to_the_partition_or_to_a_temporary_file() {
    let image = job().environment.unwrap().image;
    assert_eq!(
        action(Step::SendEnvironment(Strategy::Chain), &job()),
        Action::Broadcast {
            image: image.clone(),
            target: WriteTarget {
                device: "/dev/sda3".into(),
                extraction_dir: "/mnt/dest".into()
            },
            strategy: Strategy::Chain
        }
    );
    let to_file = Job {
        broadcast_to_file: true,
        ..job()
    };
    assert_eq!(
        action(Step::SendEnvironment(Strategy::Chain), &to_file),
        Action::Broadcast {
            image: image.clone(),
            target: WriteTarget {
                device: "/rambin/_KATMP_debian12-min.tgz".into(),
                extraction_dir: String::new()
            },
            strategy: Strategy::Chain
        }
    );
    assert_eq!(
        action(Step::DecompressEnvironment, &to_file),
        Action::Run(Operation::WriteImage {
            source: "/rambin/_KATMP_debian12-min.tgz".into(),
            kind: ImageKind::Tar,
            target: WriteTarget {
                device: "/dev/sda3".into(),
                extraction_dir: "/mnt/dest".into()
            },
            fsa_parts: Vec::new(),
        })
    );
}

#[test]
fn archives_and_scripts_carry_kadeploys_environment() {
    let Action::RunInSequence(ops) = action(Step::ManageAdminPostInstall, &job()) else {
        panic!("a sequence of archives")
    };
    let [
        Operation::InstallArchive {
            archive, dir, env, ..
        },
    ] = &ops[..]
    else {
        panic!("{ops:?}")
    };
    assert_eq!(
        (archive.as_str(), dir.as_str()),
        ("/srv/post.tgz", "/rambin")
    );
    let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(var("KADEPLOY_CLUSTER"), Some("grisou"));
    assert_eq!(var("KADEPLOY_DEPLOY_PART"), Some("/dev/sda3"));
    assert_eq!(var("KADEPLOY_SWAP_PART_NUM"), Some("1"));
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "KADEPLOY_CLUSTER",
            "KADEPLOY_DEPLOY_PART",
            "KADEPLOY_BLOCK_DEVICE",
            "KADEPLOY_DEPLOY_PART_NUM",
            "KADEPLOY_SWAP_PART_NUM",
            "KADEPLOY_PROD_PART_NUM",
            "KADEPLOY_TMP_PART_NUM",
            "KADEPLOY_PREPOST_EXTRACTION_DIR",
            "KADEPLOY_TMP_DIR",
            "KADEPLOY_ENV",
            "KADEPLOY_ENV_KERNEL",
            "KADEPLOY_ENV_INITRD",
            "KADEPLOY_ENV_KERNEL_PARAMS",
            "KADEPLOY_ENV_HYPERVISOR",
            "KADEPLOY_ENV_HYPERVISOR_PARAMS",
            "KADEPLOY_OS_KIND",
            "KADEPLOY_PART_TYPE",
            "KADEPLOY_FS_TYPE",
            "KADEPLOY_ENV_EXTRACTION_DIR",
        ],
        "Kadeploy 3.3's variables in its order (before, the two hypervisor ones were missing)"
    );
    let mut xen = job();
    if let Some(e) = &mut xen.environment {
        e.os = "xen".into();
        e.hypervisor = "/boot/xen.gz".into();
        e.hypervisor_params = "dom0_mem=2G".into();
    }
    let Action::Run(Operation::RunScript { env, .. }) = action(Step::InstallBootloader, &xen)
    else {
        panic!("the bootloader script")
    };
    let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(var("KADEPLOY_ENV_HYPERVISOR"), Some("/boot/xen.gz"));
    assert_eq!(var("KADEPLOY_ENV_HYPERVISOR_PARAMS"), Some("dom0_mem=2G"));
    assert_eq!(
        action(Step::ManageUserPostInstall, &job()),
        Action::RunInSequence(Vec::new()),
        "no user archive: an empty sequence, every node OK"
    );
    let custom = CustomOp {
        name: "hello".into(),
        action: CustomAction::Exec {
            command: "echo $KADEPLOY_ENV".into(),
        },
        timeout: 0.0,
        retries: 0,
    };
    let Action::Custom { action: exec, env } = action(Step::Custom(Box::new(custom)), &job())
    else {
        panic!("a custom action")
    };
    assert!(matches!(exec, CustomAction::Exec { .. }));
    assert!(env.contains(&("KADEPLOY_ENV".to_string(), "debian12-min".to_string())));
}

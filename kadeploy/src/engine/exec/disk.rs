//! Translation of the micro-steps that prepare the disk: partitioning, formats, mounts and the production
//! environment's root check. Partition devices are the block device followed by the partition number
//! (`/dev/sda` + `3` = `/dev/sda3`).

use super::action::{Action, StepContext};
use super::install::script_env;
use hal::Operation;

/// The device of partition `number` of the job's block device.
fn partition(cx: StepContext<'_>, number: u32) -> String {
    format!("{}{number}", cx.job.block_device)
}

/// The server's extra mkfs arguments for `fs`.
fn mkfs_args(cx: StepContext<'_>, fs: &str) -> String {
    cx.server.mkfs_args.get(fs).cloned().unwrap_or_default()
}

/// `create_partition_table`: the cluster's partitioning script.
pub fn create_partition_table(cx: StepContext<'_>) -> Action {
    Action::Run(Operation::RunScript {
        purpose: "partitioning".into(),
        script: cx.cluster.partitioning.script.clone(),
        env: script_env(cx),
    })
}

/// `format_deploy_part`: the deploy partition with the environment's file system.
pub fn format_deploy_part(cx: StepContext<'_>) -> Action {
    let Some(env) = &cx.job.environment else {
        return Action::refuse("No environment");
    };
    Action::Run(Operation::Format {
        device: cx.job.deploy_device(),
        fs: env.filesystem.clone(),
        args: mkfs_args(cx, &env.filesystem),
    })
}

/// `format_tmp_part`: the tmp partition with the requested file system.
pub fn format_tmp_part(cx: StepContext<'_>) -> Action {
    let (Some(tmp), Some(fs)) = (cx.cluster.partitioning.tmp, &cx.job.reformat_tmp) else {
        return Action::refuse("No tmp partition to format");
    };
    Action::Run(Operation::Format {
        device: partition(cx, tmp),
        fs: fs.clone(),
        args: mkfs_args(cx, fs),
    })
}

/// `format_swap_part`: the swap partition, when the cluster has one.
pub fn format_swap_part(cx: StepContext<'_>) -> Action {
    match cx.cluster.partitioning.swap {
        None => Action::Nothing,
        Some(swap) => Action::Run(Operation::MakeSwap {
            device: partition(cx, swap),
        }),
    }
}

/// `mount_deploy_part`: the deploy partition on the extraction directory.
pub fn mount_deploy_part(cx: StepContext<'_>) -> Action {
    Action::Run(Operation::Mount {
        device: cx.job.deploy_device(),
        dir: cx.server.extraction_dir.clone(),
    })
}

/// `umount_deploy_part`.
pub fn umount_deploy_part(cx: StepContext<'_>) -> Action {
    Action::Run(Operation::Umount {
        target: cx.job.deploy_device(),
    })
}

/// `check_nodes("prod_env_booted")`: the nodes run from the production partition.
pub fn check_prod_env_booted(cx: StepContext<'_>) -> Action {
    match cx.cluster.partitioning.prod {
        None => Action::refuse("Bad root partition"),
        Some(prod) => Action::CheckRootDevice(Operation::CheckRootDevice {
            device: partition(cx, prod),
        }),
    }
}

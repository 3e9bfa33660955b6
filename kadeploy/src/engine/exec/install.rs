//! Translation of the micro-steps that install the environment: broadcast, decompression, admin and user
//! archives, kernel checks and the bootloader; and the values they share (Kadeploy's script environment, the
//! temporary image path, the deployed kernel's command line).

use super::action::{Action, StepContext};
use super::local::CustomBroadcast;
use crate::config::Archive;
use hal::{FsaPart, ImageKind, Operation, Strategy, WriteTarget};

/// `send_environment`: broadcast the image and write it (or keep it in a temporary file).
pub fn send_environment(cx: StepContext<'_>, strategy: Strategy) -> Action {
    let job = cx.job;
    let Some(env) = &job.environment else {
        return Action::refuse("No environment to send");
    };
    let target = if job.broadcast_to_file {
        WriteTarget {
            device: temp_image_path(cx),
            extraction_dir: String::new(),
        }
    } else {
        WriteTarget {
            device: job.deploy_device(),
            extraction_dir: cx.server.extraction_dir.clone(),
        }
    };
    Action::Broadcast {
        image: env.image.clone(),
        target,
        strategy,
    }
}

/// `send_environment(:custom)`: the cluster's `localops/broadcastenv/cmd`, run on the server.
pub fn send_environment_custom(cx: StepContext<'_>) -> Action {
    let Some(template) = &cx.cluster.broadcast_cmd else {
        return Action::refuse(format!(
            "BroadcastEnvCustom needs localops/broadcastenv/cmd in the configuration of the cluster {}",
            cx.cluster.name
        ));
    };
    let Some(env) = &cx.job.environment else {
        return Action::refuse("No environment to send");
    };
    Action::CustomBroadcast(CustomBroadcast {
        template: template.clone(),
        envfile: env.image.path.clone(),
        decompress: decompress_command(cx),
        connector: cx.server.taktuk_connector.clone(),
    })
}

/// What a node runs on the image it receives (Kadeploy's `get_decompress_cmd`, the custom broadcast's
/// `DECOMPRESS`): a copy to the temporary file when the image is written later, else the extraction or the
/// write of the image's kind.
pub fn decompress_command(cx: StepContext<'_>) -> String {
    let Some(env) = &cx.job.environment else {
        return String::new();
    };
    if cx.job.broadcast_to_file {
        return format!("cat - > {}", temp_image_path(cx));
    }
    let (tar, dir, part) = (
        &cx.server.tar_options,
        &cx.server.extraction_dir,
        cx.job.deploy_device(),
    );
    // (tar's flag, the dd image's decompressor) of the compression.
    let (flag, unzip) = match env.image.compression.as_str() {
        "gzip" => ("-xz", "gzip -cd"),
        "bzip2" => ("-xj", "bzip2 -cd"),
        "xz" => ("-xJ", "xz -cd"),
        "zstd" => ("--zstd -x", "zstd -cd"),
        _ => ("-x", "cat"),
    };
    match env.image.kind {
        ImageKind::Tar => format!("tar {tar} -C {dir} {flag}"),
        ImageKind::Dd | ImageKind::Fsa => format!("{unzip} > {part}"),
    }
}

/// `decompress_environment`: write the image kept in the temporary file.
pub fn decompress_environment(cx: StepContext<'_>) -> Action {
    let Some(env) = &cx.job.environment else {
        return Action::refuse("No environment");
    };
    Action::Run(Operation::WriteImage {
        source: temp_image_path(cx),
        kind: env.image.kind,
        target: WriteTarget {
            device: cx.job.deploy_device(),
            extraction_dir: cx.server.extraction_dir.clone(),
        },
        fsa_parts: fsa_parts(cx),
    })
}

/// The file systems an fsarchiver image restores (Kadeploy's `decompress_environment`): a multipart image's
/// whole `options/partitions` map; another image's first id to the deploy partition; none (id 0 to the
/// deploy partition) without a map.
fn fsa_parts(cx: StepContext<'_>) -> Vec<FsaPart> {
    let Some(env) = &cx.job.environment else {
        return Vec::new();
    };
    if env.image.kind != ImageKind::Fsa {
        return Vec::new();
    }
    if env.multipart {
        return env.fsa_partitions.clone();
    }
    env.fsa_partitions
        .first()
        .map(|p| FsaPart {
            id: p.id,
            device: cx.job.deploy_device(),
        })
        .into_iter()
        .collect()
}

/// `manage_admin_pre_install`: the environment's pre-install, then the cluster's.
pub fn manage_admin_pre_install(cx: StepContext<'_>) -> Action {
    let mut archives: Vec<Archive> = cx
        .job
        .environment
        .iter()
        .filter_map(|e| e.preinstall.clone())
        .collect();
    archives.extend(cx.cluster.admin_preinstalls.iter().cloned());
    install_archives(cx, &archives)
}

/// `manage_admin_post_install`: the cluster's post-installs.
pub fn manage_admin_post_install(cx: StepContext<'_>) -> Action {
    install_archives(cx, &cx.cluster.admin_postinstalls)
}

/// `manage_user_post_install`: the environment's post-installs.
pub fn manage_user_post_install(cx: StepContext<'_>) -> Action {
    let archives = cx
        .job
        .environment
        .as_ref()
        .map(|e| e.postinstalls.as_slice())
        .unwrap_or_default();
    install_archives(cx, archives)
}

/// `check_kernel_files`: the environment's kernel and initrd exist in the extraction directory.
pub fn check_kernel_files(cx: StepContext<'_>) -> Action {
    let Some(env) = &cx.job.environment else {
        return Action::refuse("No environment");
    };
    Action::Run(Operation::CheckKernelFiles {
        dir: cx.server.extraction_dir.clone(),
        kernel: env.kernel.clone(),
        initrd: env.initrd.clone(),
    })
}

/// `install_bootloader`: the cluster's bootloader script.
pub fn install_bootloader(cx: StepContext<'_>) -> Action {
    Action::Run(Operation::RunScript {
        purpose: "bootloader".into(),
        script: cx.cluster.boot.install_bootloader.clone(),
        env: script_env(cx),
    })
}

/// `manage_*_install`: extract each archive into the rambin directory and run its script, in order.
fn install_archives(cx: StepContext<'_>, archives: &[Archive]) -> Action {
    let env = script_env(cx);
    let ops = archives
        .iter()
        .map(|a| Operation::InstallArchive {
            archive: a.file.clone(),
            dir: cx.server.rambin_dir.clone(),
            script: a.script.clone(),
            env: env.clone(),
        })
        .collect();
    Action::RunInSequence(ops)
}

/// Kadeploy's `KADEPLOY_*` script environment (`set_env`, spec §6), in Kadeploy's order.
pub fn script_env(cx: StepContext<'_>) -> Vec<(String, String)> {
    let (c, job) = (cx.cluster, cx.job);
    let p = &c.partitioning;
    let num = |v: Option<u32>| v.map(|x| x.to_string()).unwrap_or_else(|| "-1".into());
    let mut env = vec![
        ("KADEPLOY_CLUSTER", c.name.clone()),
        ("KADEPLOY_DEPLOY_PART", job.deploy_device()),
        ("KADEPLOY_BLOCK_DEVICE", job.block_device.clone()),
        (
            "KADEPLOY_DEPLOY_PART_NUM",
            job.deploy_partition
                .map(|x| x.to_string())
                .unwrap_or_default(),
        ),
        (
            "KADEPLOY_SWAP_PART_NUM",
            p.swap
                .map(|x| x.to_string())
                .unwrap_or_else(|| "none".into()),
        ),
        ("KADEPLOY_PROD_PART_NUM", num(p.prod)),
        ("KADEPLOY_TMP_PART_NUM", num(p.tmp)),
        (
            "KADEPLOY_PREPOST_EXTRACTION_DIR",
            cx.server.rambin_dir.clone(),
        ),
        ("KADEPLOY_TMP_DIR", "/tmp".to_string()),
    ];
    if let Some(e) = &job.environment {
        env.extend([
            ("KADEPLOY_ENV", e.name.clone()),
            ("KADEPLOY_ENV_KERNEL", e.kernel.clone()),
            ("KADEPLOY_ENV_INITRD", e.initrd.clone()),
            (
                "KADEPLOY_ENV_KERNEL_PARAMS",
                format!("{} {}", c.boot.user_params, e.kernel_params),
            ),
            ("KADEPLOY_ENV_HYPERVISOR", e.hypervisor.clone()),
            (
                "KADEPLOY_ENV_HYPERVISOR_PARAMS",
                e.hypervisor_params.clone(),
            ),
            ("KADEPLOY_OS_KIND", e.os.clone()),
            ("KADEPLOY_PART_TYPE", format!("{:x}", e.partition_type)),
            ("KADEPLOY_FS_TYPE", e.filesystem.clone()),
        ]);
    }
    if let Some(fs) = &job.reformat_tmp {
        env.push(("KADEPLOY_FS_TYPE_TMP", fs.clone()));
    }
    env.push((
        "KADEPLOY_ENV_EXTRACTION_DIR",
        cx.server.extraction_dir.clone(),
    ));
    env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Where a non-decompressing broadcast leaves the image on the nodes (`<rambin>/_KATMP_<basename>`).
pub fn temp_image_path(cx: StepContext<'_>) -> String {
    let base = cx
        .job
        .environment
        .as_ref()
        .map(|e| {
            e.image
                .path
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default();
    format!("{}/_KATMP_{base}", cx.server.rambin_dir)
}

/// The kernel command line of the deployed environment: cluster user params + env params, with `root=`.
pub fn deployed_kernel_params(cx: StepContext<'_>) -> String {
    let env_params = cx
        .job
        .environment
        .as_ref()
        .map(|e| e.kernel_params.as_str())
        .unwrap_or("");
    let params = format!("{} {}", cx.cluster.boot.user_params, env_params)
        .trim()
        .to_string();
    if params.split_whitespace().any(|p| p.starts_with("root=")) {
        params
    } else {
        format!("root={} {params}", cx.job.deploy_device())
            .trim()
            .to_string()
    }
}

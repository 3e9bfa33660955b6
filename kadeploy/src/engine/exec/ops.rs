//! Micro-steps that run node operations or the broadcast (spec §6), translated to typed `hal` operations.

use crate::config::Archive;
use crate::engine::context::Context;
use crate::engine::step::Job;
use crate::output::secs;
use hal::{ErrorKind, NodeError, NodeId, Operation, Outcomes, Strategy, WriteTarget};
use std::collections::BTreeMap;

/// Runs `op` on `nodes`.
pub async fn run(ctx: &Context, op: Operation, nodes: &[NodeId]) -> Outcomes {
    ctx.drivers.ops.run(&op, nodes).await
}

/// Runs a sequence of operations: each on the nodes every previous one succeeded on.
pub async fn run_all(ctx: &Context, ops: Vec<Operation>, nodes: &[NodeId]) -> Outcomes {
    let mut failed: BTreeMap<NodeId, NodeError> = BTreeMap::new();
    let mut alive = nodes.to_vec();
    for op in ops {
        if alive.is_empty() {
            break;
        }
        let outcomes = run(ctx, op, &alive).await;
        alive = outcomes.ok_nodes();
        failed.extend(outcomes.failures());
    }
    Outcomes::from_fn(nodes, |n| match failed.remove(&n) {
        Some(e) => Err(e),
        None => Ok(()),
    })
}

/// Fails every node with a configuration error.
pub fn refuse(nodes: &[NodeId], message: impl Into<String>) -> Outcomes {
    Outcomes::all(nodes, Err(NodeError::new(ErrorKind::Config, message)))
}

/// Kadeploy's `KADEPLOY_*` script environment (`set_env`, spec §6), in Kadeploy's order.
pub fn script_env(ctx: &Context, job: &Job) -> Vec<(String, String)> {
    let c = &ctx.cluster;
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
            ctx.server.rambin_dir.clone(),
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
        ctx.server.extraction_dir.clone(),
    ));
    env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// `manage_*_install`: extract each archive into the rambin directory and run its script.
pub async fn install_archives(
    ctx: &Context,
    job: &Job,
    archives: &[Archive],
    nodes: &[NodeId],
) -> Outcomes {
    let env = script_env(ctx, job);
    let ops = archives
        .iter()
        .map(|a| Operation::InstallArchive {
            archive: a.file.clone(),
            dir: ctx.server.rambin_dir.clone(),
            script: a.script.clone(),
            env: env.clone(),
        })
        .collect();
    run_all(ctx, ops, nodes).await
}

/// `send_environment`: broadcast the image and write it (or keep it in a temporary file).
pub async fn send_environment(
    ctx: &Context,
    job: &Job,
    strategy: Strategy,
    nodes: &[NodeId],
) -> Outcomes {
    let Some(env) = &job.environment else {
        return refuse(nodes, "No environment to send");
    };
    let target = if job.broadcast_to_file {
        WriteTarget {
            device: temp_image_path(ctx, job),
            extraction_dir: String::new(),
        }
    } else {
        WriteTarget {
            device: job.deploy_device(),
            extraction_dir: ctx.server.extraction_dir.clone(),
        }
    };
    let start = ctx.now();
    let outcomes = ctx
        .drivers
        .broadcast
        .broadcast(&env.image, &target, strategy, nodes)
        .await;
    crate::metrics::broadcast(
        strategy.name(),
        env.image.size,
        ctx.now() - start,
        &outcomes,
    );
    ctx.output.push(
        3,
        format!("   * Broadcast time: {}", secs(ctx.now() - start)),
    );
    outcomes
}

/// Where a non-decompressing broadcast leaves the image on the nodes (`<rambin>/_KATMP_<basename>`).
pub fn temp_image_path(ctx: &Context, job: &Job) -> String {
    let base = job
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
    format!("{}/_KATMP_{base}", ctx.server.rambin_dir)
}

/// The kernel command line of the deployed environment: cluster user params + env params, with `root=`.
pub fn deployed_kernel_params(ctx: &Context, job: &Job) -> String {
    let env_params = job
        .environment
        .as_ref()
        .map(|e| e.kernel_params.as_str())
        .unwrap_or("");
    let params = format!("{} {}", ctx.cluster.boot.user_params, env_params)
        .trim()
        .to_string();
    if params.split_whitespace().any(|p| p.starts_with("root=")) {
        params
    } else {
        format!("root={} {params}", job.deploy_device())
            .trim()
            .to_string()
    }
}

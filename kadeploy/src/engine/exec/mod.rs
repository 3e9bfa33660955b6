//! What each micro-step does, over the `hal` traits (spec §6).

pub mod ops;
pub mod power;
pub mod wait;

use super::context::Context;
use super::step::{Job, PxeSwitch, Step};
use hal::{
    BootProfile, ErrorKind, NodeError, NodeId, Operation, Outcomes, PowerAction, PowerLevel,
};

/// Runs `step` on `nodes`; `macro_attempt` counts retries of the enclosing macro-step
/// (a soft reboot becomes hard when the macro-step is retried).
pub async fn execute(
    ctx: &Context,
    job: &Job,
    step: &Step,
    nodes: &[NodeId],
    macro_attempt: u32,
) -> Outcomes {
    let server = &ctx.server;
    let cluster = &ctx.cluster;
    let part = &cluster.partitioning;
    let dev = &job.block_device;
    match step {
        Step::SwitchPxe(switch) => {
            let profile = match (switch, &job.pxe_profile) {
                (PxeSwitch::ProdToDeployEnv, _) => BootProfile::DeployKernel {
                    kernel: cluster.boot.deploy_vmlinuz.clone(),
                    initrd: cluster.boot.deploy_initrd.clone(),
                    params: cluster.boot.deploy_params.clone(),
                },
                (PxeSwitch::DeployToDeployedEnv | PxeSwitch::SetPxe, Some(content)) => {
                    BootProfile::Custom {
                        name: "user".into(),
                        content: content.clone(),
                    }
                }
                (PxeSwitch::DeployToDeployedEnv, None) => {
                    let partition = job.boot_partition.or(job.deploy_partition).unwrap_or(0);
                    BootProfile::LocalDisk {
                        device: dev.clone(),
                        partition,
                    }
                }
                (PxeSwitch::SetPxe, None) => return ops::refuse(nodes, "No PXE profile given"),
            };
            ctx.drivers.netboot.set_profile(nodes, &profile).await
        }
        Step::Reboot(level) => {
            let level = if *level == PowerLevel::Soft && macro_attempt > 0 {
                PowerLevel::Hard
            } else {
                *level
            };
            power::escalate(ctx, PowerAction::Reboot, level, nodes).await
        }
        Step::Power(action, level) => power::escalate(ctx, *action, *level, nodes).await,
        Step::PowerStatus => {
            let outcomes = ctx.drivers.power.status(nodes).await;
            Outcomes(
                outcomes
                    .into_iter()
                    .map(|(n, o)| {
                        let o = o.map(|state| {
                            ctx.log(&[n], |l| l.out = Some(state.to_string()));
                        });
                        (n, o)
                    })
                    .collect(),
            )
        }
        Step::WaitReboot { kexec, target } => {
            wait::wait_reboot(ctx, job, nodes, *kexec, *target).await
        }
        Step::SendKeyInDeployEnv | Step::SendKey => {
            let Some(keys) = &job.ssh_key else {
                return Outcomes::all(nodes, Ok(()));
            };
            let destination = if *step == Step::SendKey {
                format!("{}/root/.ssh/authorized_keys", server.extraction_dir)
            } else {
                "/root/.ssh/authorized_keys".to_string()
            };
            ops::run(
                ctx,
                Operation::SendKey {
                    keys: keys.clone(),
                    destination,
                },
                nodes,
            )
            .await
        }
        Step::CreatePartitionTable => {
            let op = Operation::RunScript {
                purpose: "partitioning".into(),
                script: part.script.clone(),
                env: ops::script_env(ctx, job),
            };
            ops::run(ctx, op, nodes).await
        }
        Step::FormatDeployPart => {
            let Some(env) = &job.environment else {
                return ops::refuse(nodes, "No environment");
            };
            let fs = env.filesystem.clone();
            let args = server.mkfs_args.get(&fs).cloned().unwrap_or_default();
            ops::run(
                ctx,
                Operation::Format {
                    device: job.deploy_device(),
                    fs,
                    args,
                },
                nodes,
            )
            .await
        }
        Step::FormatTmpPart => {
            let (Some(tmp), Some(fs)) = (part.tmp, &job.reformat_tmp) else {
                return ops::refuse(nodes, "No tmp partition to format");
            };
            let args = server.mkfs_args.get(fs).cloned().unwrap_or_default();
            ops::run(
                ctx,
                Operation::Format {
                    device: format!("{dev}{tmp}"),
                    fs: fs.clone(),
                    args,
                },
                nodes,
            )
            .await
        }
        Step::FormatSwapPart => {
            let Some(swap) = part.swap else {
                return Outcomes::all(nodes, Ok(()));
            };
            ops::run(
                ctx,
                Operation::MakeSwap {
                    device: format!("{dev}{swap}"),
                },
                nodes,
            )
            .await
        }
        Step::MountDeployPart => {
            let op = Operation::Mount {
                device: job.deploy_device(),
                dir: server.extraction_dir.clone(),
            };
            ops::run(ctx, op, nodes).await
        }
        Step::UmountDeployPart => {
            ops::run(
                ctx,
                Operation::Umount {
                    target: job.deploy_device(),
                },
                nodes,
            )
            .await
        }
        Step::SendDeploymentKernel => {
            let repo = &cluster.kexec_repository;
            let sends = [&cluster.boot.deploy_vmlinuz, &cluster.boot.deploy_initrd]
                .into_iter()
                .map(|f| Operation::SendFile {
                    source: f.clone(),
                    destination: format!("{repo}/{}", basename(f)),
                    size: 0,
                })
                .collect();
            ops::run_all(ctx, sends, nodes).await
        }
        Step::Sync => ops::run(ctx, Operation::Sync, nodes).await,
        Step::KexecDeployKernel => {
            let repo = &cluster.kexec_repository;
            let op = Operation::Kexec {
                kernel: format!("{repo}/{}", basename(&cluster.boot.deploy_vmlinuz)),
                initrd: format!("{repo}/{}", basename(&cluster.boot.deploy_initrd)),
                params: cluster.boot.deploy_params.clone(),
            };
            ops::run(ctx, op, nodes).await
        }
        Step::KexecDeployedEnv => {
            let Some(env) = &job.environment else {
                return ops::refuse(nodes, "No environment");
            };
            if env.os != "linux" {
                return ops::refuse(
                    nodes,
                    format!("Cannot kexec an environment of kind {}", env.os),
                );
            }
            let dir = &server.extraction_dir;
            let initrd = if env.initrd.is_empty() {
                String::new()
            } else {
                format!("{dir}{}", env.initrd)
            };
            let op = Operation::Kexec {
                kernel: format!("{dir}{}", env.kernel),
                initrd,
                params: ops::deployed_kernel_params(ctx, job),
            };
            ops::run(ctx, op, nodes).await
        }
        Step::SendEnvironment(strategy) => ops::send_environment(ctx, job, *strategy, nodes).await,
        Step::DecompressEnvironment => {
            let Some(env) = &job.environment else {
                return ops::refuse(nodes, "No environment");
            };
            let op = Operation::WriteImage {
                source: ops::temp_image_path(ctx, job),
                kind: env.image.kind,
                target: hal::WriteTarget {
                    device: job.deploy_device(),
                    extraction_dir: server.extraction_dir.clone(),
                },
            };
            ops::run(ctx, op, nodes).await
        }
        Step::ManageAdminPreInstall => {
            let mut archives: Vec<_> = job
                .environment
                .iter()
                .filter_map(|e| e.preinstall.clone())
                .collect();
            archives.extend(cluster.admin_preinstalls.iter().cloned());
            ops::install_archives(ctx, job, &archives, nodes).await
        }
        Step::ManageAdminPostInstall => {
            ops::install_archives(ctx, job, &cluster.admin_postinstalls, nodes).await
        }
        Step::ManageUserPostInstall => {
            let archives = job
                .environment
                .as_ref()
                .map(|e| e.postinstalls.clone())
                .unwrap_or_default();
            ops::install_archives(ctx, job, &archives, nodes).await
        }
        Step::CheckKernelFiles => {
            let Some(env) = &job.environment else {
                return ops::refuse(nodes, "No environment");
            };
            let op = Operation::CheckKernelFiles {
                dir: server.extraction_dir.clone(),
                kernel: env.kernel.clone(),
                initrd: env.initrd.clone(),
            };
            ops::run(ctx, op, nodes).await
        }
        Step::InstallBootloader => {
            let op = Operation::RunScript {
                purpose: "bootloader".into(),
                script: cluster.boot.install_bootloader.clone(),
                env: ops::script_env(ctx, job),
            };
            ops::run(ctx, op, nodes).await
        }
        Step::RebootFromDeployEnv => {
            power::windowed(ctx, nodes, |chunk| {
                let node_ops = ctx.drivers.ops.clone();
                async move { node_ops.run(&Operation::RebootFromDeployEnv, &chunk).await }
            })
            .await
        }
        Step::CheckProdEnvBooted => {
            let Some(prod) = part.prod else {
                return ops::refuse(nodes, "Bad root partition");
            };
            let outcomes = ops::run(
                ctx,
                Operation::CheckRootDevice {
                    device: format!("{dev}{prod}"),
                },
                nodes,
            )
            .await;
            Outcomes(
                outcomes
                    .into_iter()
                    .map(|(n, o)| {
                        let o = o.map_err(|e| match e.kind {
                            ErrorKind::CommandFailed => {
                                NodeError::new(e.kind, "Bad root partition")
                            }
                            _ => e,
                        });
                        (n, o)
                    })
                    .collect(),
            )
        }
        Step::Dummy => ops::run(ctx, Operation::Dummy, nodes).await,
        Step::Custom(op) => match super::custom::operation(&op.action, ops::script_env(ctx, job)) {
            Ok(operation) => ops::run(ctx, operation, nodes).await,
            Err(e) => ops::refuse(nodes, e),
        },
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

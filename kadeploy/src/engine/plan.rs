//! Turns a request into the slots of tasks the manager runs: Kadeploy's `load_tasks` (spec §5.3) with its
//! automatic substitutions, micro-step deletion rules and request checks.

use super::deletions::Deletions;
use super::manager::{Slots, Task, TaskSpec};
use super::request::{DeployRequest, PowerOperation, PowerRequest, RebootKind, RebootRequest};
use super::step::{BootTarget, Job, PxeSwitch, Step};
use super::task::{MacroTask, MicroTask};
use crate::config::{ClusterConfig, MacroInstance, MicroSettings, ServerConfig};
use crate::error::{ApiError, RequestError};
use hal::{ImageKind, PowerAction, Strategy};
use std::sync::Arc;

/// Everything needed to run a workflow.
pub struct Plan {
    /// `deployment`, `reboot` or `power operation`: the words of the output lines.
    pub operation: &'static str,
    /// Tasks, slot by slot.
    pub slots: Slots,
    /// Level-0 notices printed at start (substitutions).
    pub notices: Vec<String>,
}

const SLOT_NAMES: [&str; 3] = ["SetDeploymentEnv", "BroadcastEnv", "BootNewEnv"];

/// Builds the plan of a deployment.
pub fn deploy(
    server: &ServerConfig,
    cluster: &ClusterConfig,
    req: &DeployRequest,
) -> Result<Plan, RequestError> {
    let env = &req.environment;
    let deploy_partition = match req.deploy_partition {
        None => Some(cluster.partitioning.deploy),
        Some(p) => p,
    };
    let whole_disk = deploy_partition.is_none();
    if whole_disk && env.image.kind != ImageKind::Dd {
        return Err(RequestError::new(
            ApiError::ConflictingOptions,
            "Deploying on a whole block device needs a dd image",
        ));
    }
    if whole_disk && req.boot_partition.is_none() {
        return Err(RequestError::new(
            ApiError::MissingOption,
            "You must specify the partition to boot on",
        ));
    }
    let supported = |fs: &str| cluster.boot.supported_fs.iter().any(|s| s == fs);
    if let Some(fs) = &req.reformat_tmp
        && !supported(fs)
    {
        return Err(RequestError::new(
            ApiError::ConflictingOptions,
            format!("The filesystem {fs} is not supported by the deployment environment"),
        ));
    }
    let fs_supported = supported(&env.filesystem);
    let broadcast_to_file = !cluster.broadcast_decompress || env.image.kind == ImageKind::Fsa;
    let job = Arc::new(Job {
        environment: Some(env.clone()),
        ssh_key: req.ssh_key.clone(),
        block_device: req
            .block_device
            .clone()
            .unwrap_or_else(|| cluster.partitioning.block_device.clone()),
        deploy_partition,
        boot_partition: req.boot_partition,
        reformat_tmp: req.reformat_tmp.clone(),
        timeout_reboot: req.timeout_reboot_classical.clone(),
        timeout_kexec: req.timeout_reboot_kexec.clone(),
        pxe_profile: req.pxe_profile.clone(),
        broadcast_to_file,
    });

    let automata = req
        .automata
        .clone()
        .unwrap_or_else(|| cluster.automata.clone());
    let mut notices = Vec::new();
    let mut set_env = automata.set_deployment_env.clone();
    let mut boot_env = automata.boot_new_env.clone();
    if req.disable_kexec {
        for i in set_env.iter_mut().filter(|i| i.kind == "Kexec") {
            i.kind = "Untrusted".into();
        }
    }
    if env.preinstall.is_some()
        && let Some(first) = set_env.first().cloned()
    {
        set_env = vec![MacroInstance {
            kind: "UntrustedCustomPreInstall".into(),
            ..first
        }];
        notices.push("A specific presinstall will be used with this environment".into());
    }
    // Kadeploy's notices (`Workflow::Deploy#load_tasks`).
    let kexec_reason = if env.os != "linux" {
        Some(" one with this non-linux environment")
    } else if !fs_supported {
        Some(" since the filesystem is not supported by the deployment environment")
    } else if req.disable_kexec {
        Some("")
    } else {
        None
    };
    if let Some(reason) = kexec_reason
        && boot_env.iter().any(|i| i.kind == "Kexec")
    {
        let expr = req
            .timeout_reboot_classical
            .as_ref()
            .unwrap_or(&cluster.timeout_reboot);
        let timeout = expr.eval(req.nodes.len() as f64).map_err(|e| {
            RequestError::new(
                ApiError::InvalidOption,
                format!("Invalid reboot timeout: {e}"),
            )
        })? + 200.0;
        for i in boot_env.iter_mut().filter(|i| i.kind == "Kexec") {
            i.kind = "Classical".into();
            i.retries = 0;
            i.timeout = timeout;
        }
        notices.push(format!(
            "Using classical reboot instead of kexec{reason} (BootNewEnv)"
        ));
    }

    let rules = Deletions::new(server, cluster, req, &job, fs_supported);
    let mut slots: Slots = Vec::new();
    let mut used = Vec::new();
    for (slot, instances) in [set_env, automata.broadcast_env.clone(), boot_env]
        .into_iter()
        .enumerate()
    {
        if instances.is_empty() {
            return Err(RequestError::new(
                ApiError::InvalidOption,
                format!(
                    "No implementation given for the macro-step {}",
                    SLOT_NAMES[slot]
                ),
            ));
        }
        let mut alternatives: Vec<Arc<dyn Task>> = Vec::new();
        for inst in instances {
            let name = format!("{}{}", SLOT_NAMES[slot], inst.kind);
            let steps: Vec<Step> = deploy_steps(slot, &inst.kind, req.broadcast_strategy)
                .ok_or_else(|| unsupported(&name))?
                .into_iter()
                .filter(|s| !rules.deletes(slot, s.name()))
                .collect();
            used.push((name.clone(), steps.iter().map(Step::name).collect()));
            let steps = with_custom_ops(
                &req.custom_operations,
                &inst,
                SLOT_NAMES[slot],
                &name,
                steps,
            );
            alternatives.push(macro_task(
                "Deploy",
                slot,
                &name,
                &inst,
                steps,
                &job,
                req.breakpoint.as_deref(),
            ));
        }
        slots.push(alternatives);
    }
    check_breakpoint(&used, req.breakpoint.as_deref())?;
    Ok(Plan {
        operation: "deployment",
        slots,
        notices,
    })
}

/// Builds the plan of a reboot.
pub fn reboot(cluster: &ClusterConfig, req: &RebootRequest) -> Result<Plan, RequestError> {
    if req.kind == RebootKind::SetPxe && req.pxe_profile.is_none() {
        return Err(RequestError::new(
            ApiError::MissingOption,
            "A PXE profile must be given with set_pxe",
        ));
    }
    let job = Arc::new(Job {
        ssh_key: req.ssh_key.clone(),
        block_device: cluster.partitioning.block_device.clone(),
        deploy_partition: Some(cluster.partitioning.deploy),
        timeout_reboot: req.timeout_reboot_classical.clone(),
        pxe_profile: req.pxe_profile.clone(),
        ..Job::default()
    });
    let user = Step::WaitReboot {
        kexec: false,
        target: BootTarget::User,
    };
    let steps = match req.kind {
        RebootKind::Simple => vec![Step::Reboot(req.level), user],
        RebootKind::SetPxe => vec![
            Step::SwitchPxe(PxeSwitch::SetPxe),
            Step::Reboot(req.level),
            user,
        ],
        RebootKind::DeployEnv => {
            let mut s = vec![
                Step::SwitchPxe(PxeSwitch::ProdToDeployEnv),
                Step::Reboot(req.level),
                Step::WaitReboot {
                    kexec: false,
                    target: BootTarget::Deploy,
                },
            ];
            if req.ssh_key.is_some() {
                s.push(Step::SendKeyInDeployEnv);
            }
            s
        }
        RebootKind::RecordedEnv => {
            vec![
                Step::SwitchPxe(PxeSwitch::DeployToDeployedEnv),
                Step::Reboot(req.level),
                user,
            ]
        }
    };
    let used = [(
        req.kind.step_name().to_string(),
        steps.iter().map(Step::name).collect(),
    )];
    check_breakpoint(&used, req.breakpoint.as_deref())?;
    let inst = plain_instance();
    let name = req.kind.step_name();
    let steps = with_custom_ops(&req.custom_operations, &inst, "Reboot", name, steps);
    let task = macro_task(
        "Reboot",
        0,
        name,
        &inst,
        steps,
        &job,
        req.breakpoint.as_deref(),
    );
    let slots: Slots = vec![vec![task]];
    Ok(Plan {
        operation: "reboot",
        slots,
        notices: Vec::new(),
    })
}

/// Builds the plan of a power operation.
pub fn power(req: &PowerRequest) -> Plan {
    let name = req.operation.step_name();
    let step = match req.operation {
        PowerOperation::On => Step::Power(PowerAction::On, req.level),
        PowerOperation::Off => Step::Power(PowerAction::Off, req.level),
        PowerOperation::Status => Step::PowerStatus,
    };
    let job = Arc::new(Job::default());
    let inst = plain_instance();
    let steps = with_custom_ops(&req.custom_operations, &inst, "Power", name, vec![step]);
    let task = macro_task("Power", 0, name, &inst, steps, &job, None);
    Plan {
        operation: "power operation",
        slots: vec![vec![task]],
        notices: Vec::new(),
    }
}

fn plain_instance() -> MacroInstance {
    MacroInstance {
        kind: String::new(),
        retries: 0,
        timeout: 0.0,
        raisable: true,
        breakpoint: false,
        microsteps: Default::default(),
    }
}

fn unsupported(name: &str) -> RequestError {
    RequestError::new(
        ApiError::InvalidOption,
        format!("The macro-step {name} is not supported by this deployer"),
    )
}

/// The micro-steps of a deployment macro-step implementation, before deletions (spec §5.3).
fn deploy_steps(slot: usize, kind: &str, strategy: Option<Strategy>) -> Option<Vec<Step>> {
    use Step::*;
    let prepare = [
        SendKeyInDeployEnv,
        CreatePartitionTable,
        FormatDeployPart,
        MountDeployPart,
        FormatTmpPart,
        FormatSwapPart,
    ];
    let reboot_to_deploy = [
        SwitchPxe(PxeSwitch::ProdToDeployEnv),
        Reboot(hal::PowerLevel::Soft),
        WaitReboot {
            kexec: false,
            target: BootTarget::Deploy,
        },
    ];
    let user = WaitReboot {
        kexec: false,
        target: BootTarget::User,
    };
    let steps = match (slot, kind) {
        (0, "Untrusted") => [&reboot_to_deploy[..], &prepare[..]].concat(),
        (0, "Kexec") => [
            &[
                SendDeploymentKernel,
                Sync,
                KexecDeployKernel,
                WaitReboot {
                    kexec: true,
                    target: BootTarget::Deploy,
                },
            ][..],
            &prepare[..],
        ]
        .concat(),
        (0, "UntrustedCustomPreInstall") => [
            &reboot_to_deploy[..],
            &[SendKeyInDeployEnv, ManageAdminPreInstall][..],
        ]
        .concat(),
        (0, "Prod") => vec![
            CheckProdEnvBooted,
            FormatDeployPart,
            MountDeployPart,
            FormatTmpPart,
        ],
        (0..=2, "Dummy") => vec![Dummy, Dummy],
        (1, "Chain" | "Tree" | "Kastafior" | "Kascade") => {
            let default = match kind {
                "Chain" | "Kastafior" => Strategy::Chain,
                "Tree" => Strategy::Tree { arity: 2 },
                _ => Strategy::FaultTolerantChain,
            };
            vec![
                SendEnvironment(strategy.unwrap_or(default)),
                DecompressEnvironment,
                MountDeployPart,
                ManageAdminPostInstall,
                ManageUserPostInstall,
                CheckKernelFiles,
                SendKey,
                InstallBootloader,
                Sync,
            ]
        }
        (2, "Kexec") => vec![
            SwitchPxe(PxeSwitch::DeployToDeployedEnv),
            UmountDeployPart,
            MountDeployPart,
            KexecDeployedEnv,
            WaitReboot {
                kexec: true,
                target: BootTarget::User,
            },
        ],
        (2, "Classical") => vec![
            SwitchPxe(PxeSwitch::DeployToDeployedEnv),
            UmountDeployPart,
            RebootFromDeployEnv,
            user,
        ],
        (2, "HardReboot") => vec![
            SwitchPxe(PxeSwitch::DeployToDeployedEnv),
            Reboot(hal::PowerLevel::Hard),
            user,
        ],
        _ => return None,
    };
    Some(steps)
}

/// The micro-step names deployments use (what custom operations may name).
pub fn micro_step_names() -> std::collections::BTreeSet<&'static str> {
    use crate::config::{BOOT_NEW_ENV_TYPES, BROADCAST_ENV_TYPES, SET_DEPLOYMENT_ENV_TYPES};
    let kinds: [&[&str]; 3] = [
        &SET_DEPLOYMENT_ENV_TYPES,
        &BROADCAST_ENV_TYPES,
        &BOOT_NEW_ENV_TYPES,
    ];
    kinds
        .iter()
        .enumerate()
        .flat_map(|(slot, kinds)| kinds.iter().map(move |k| (slot, *k)))
        .filter_map(|(slot, kind)| deploy_steps(slot, kind, None))
        .flatten()
        .map(|s| s.name())
        .collect()
}

/// A micro-step with its custom operations, or a custom operation: the task name and the step.
struct Planned {
    name: String,
    step: Step,
    custom: Option<(u32, f64)>,
}

/// Inserts the custom operations of `instance` (of slot `slot`) around or instead of its micro-steps.
/// The micro-steps of an instance with their custom operations: the admin's (the instance's
/// `microsteps` in the cluster file) and the user's (`ops`), merged by [`CustomMicro::with_user`].
///
/// [`CustomMicro::with_user`]: super::custom::CustomMicro::with_user
fn with_custom_ops(
    ops: &super::custom::CustomOps,
    inst: &MacroInstance,
    slot: &str,
    instance: &str,
    steps: Vec<Step>,
) -> Vec<Planned> {
    let mut out = Vec::new();
    for step in steps {
        let micro = step.name();
        let user = super::custom::for_micro(ops, slot, instance, micro);
        let merged = match inst.microsteps.get(micro).map(|m| &m.custom) {
            Some(admin) => Some(admin.with_user(user)),
            None => user.cloned(),
        }
        .filter(|c| !c.is_empty());
        let custom = |op: &super::custom::CustomOp| Planned {
            name: format!("{micro}-{}", op.name),
            custom: Some((op.retries, op.timeout)),
            step: Step::Custom(Box::new(op.clone())),
        };
        match &merged {
            None => out.push(Planned {
                name: micro.to_string(),
                step,
                custom: None,
            }),
            Some(c) => {
                out.extend(c.pre.iter().map(custom));
                match &c.substitute {
                    Some(sub) => out.extend(sub.iter().map(custom)),
                    None => out.push(Planned {
                        name: micro.to_string(),
                        step,
                        custom: None,
                    }),
                }
                out.extend(c.post.iter().map(custom));
            }
        }
    }
    out
}

fn macro_task(
    operation: &'static str,
    slot: usize,
    name: &str,
    inst: &MacroInstance,
    steps: Vec<Planned>,
    job: &Arc<Job>,
    breakpoint: Option<&str>,
) -> Arc<dyn Task> {
    let macro_name: Arc<str> = Arc::from(name);
    let (bp_macro, bp_micro) = match breakpoint.map(|b| b.split_once(':').unwrap_or((b, ""))) {
        Some((m, u)) => (m, u),
        None => ("", ""),
    };
    let on_this_macro = bp_macro == name;
    let micro = steps
        .into_iter()
        .map(|Planned { name, step, custom }| {
            let settings = match custom {
                Some((retries, timeout)) => MicroSettings {
                    retries,
                    timeout,
                    raisable: true,
                    ..MicroSettings::default()
                },
                None => inst
                    .microsteps
                    .get(step.name())
                    .cloned()
                    .unwrap_or(MicroSettings {
                        raisable: true,
                        ..MicroSettings::default()
                    }),
            };
            let spec = TaskSpec {
                breakpoint: settings.breakpoint
                    || (custom.is_none() && on_this_macro && bp_micro == step.name()),
                name: Arc::from(name),
                retries: settings.retries,
                timeout: settings.timeout,
                raisable: settings.raisable,
            };
            let task: Arc<dyn Task> = Arc::new(MicroTask {
                spec,
                macro_name: macro_name.clone(),
                step,
                job: job.clone(),
            });
            vec![task]
        })
        .collect();
    let spec = TaskSpec {
        name: macro_name,
        retries: inst.retries,
        timeout: inst.timeout,
        raisable: inst.raisable,
        breakpoint: inst.breakpoint || (on_this_macro && bp_micro.is_empty()),
    };
    Arc::new(MacroTask {
        spec,
        operation,
        slot,
        micro,
    })
}

/// A requested breakpoint must name a macro-step (and micro-step) the plan uses (error 4).
fn check_breakpoint(
    used: &[(String, Vec<&'static str>)],
    breakpoint: Option<&str>,
) -> Result<(), RequestError> {
    let Some(bp) = breakpoint else { return Ok(()) };
    let (m, u) = bp.split_once(':').unwrap_or((bp, ""));
    let found = used
        .iter()
        .any(|(name, micros)| name == m && (u.is_empty() || micros.contains(&u)));
    if found {
        Ok(())
    } else {
        Err(RequestError::new(
            ApiError::InvalidOption,
            format!("The breakpoint {bp} names a step that is not used"),
        ))
    }
}

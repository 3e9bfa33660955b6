//! Turns a request into the slots of tasks the manager runs: Kadeploy's `load_tasks` (spec §5.3) with its
//! automatic substitutions, micro-step deletion rules and request checks.

mod implementations;
mod tasks;

pub use implementations::{broadcast_strategy, micro_step_names};

use super::deletions::Deletions;
use super::manager::{Slots, Task};
use super::request::{DeployRequest, PowerOperation, PowerRequest, RebootKind, RebootRequest};
use super::slot::{BootNewEnvKind, MacroKind, SetDeploymentEnvKind, Slot};
use super::step::{BootTarget, Job, PxeSwitch, Step};
use crate::config::{ClusterConfig, MacroInstance, ServerConfig};
use crate::error::{ApiError, RequestError};
use hal::{ImageKind, PowerAction};
use std::sync::Arc;
use tasks::{InstanceSettings, MacroPlace, check_breakpoint, macro_task, with_custom_ops};

/// Everything needed to run a workflow.
pub struct Plan {
    /// `deployment`, `reboot` or `power operation`: the words of the output lines.
    pub operation: &'static str,
    /// Tasks, slot by slot.
    pub slots: Slots,
    /// Level-0 notices printed at start (substitutions).
    pub notices: Vec<String>,
}

/// The statistics slot of the single macro-step of reboots and power operations (the `step1` columns).
const SINGLE_STEP_SLOT: Slot = Slot::SetDeploymentEnv;

/// Builds the plan of a deployment.
pub fn deploy(
    server: &ServerConfig,
    cluster: &ClusterConfig,
    req: &DeployRequest,
) -> Result<Plan, RequestError> {
    let job = deploy_job(cluster, req)?;
    let fs_supported = supports(cluster, &req.environment.filesystem);
    let automata = req.automata.as_ref().unwrap_or(&cluster.automata);
    let Substituted {
        set_env,
        boot_env,
        notices,
    } = substitutions(cluster, req, automata, fs_supported)?;
    let rules = Deletions::new(server, cluster, req, &job, fs_supported);
    let mut slots: Slots = Vec::new();
    let mut used = Vec::new();
    let instances = [set_env, automata.broadcast_env.clone(), boot_env];
    for (slot, instances) in Slot::ALL.into_iter().zip(instances) {
        if instances.is_empty() {
            return Err(RequestError::new(
                ApiError::InvalidOption,
                format!("No implementation given for the macro-step {slot}"),
            ));
        }
        let mut alternatives: Vec<Arc<dyn Task>> = Vec::new();
        for inst in &instances {
            let name = format!("{slot}{}", inst.kind);
            let steps: Vec<Step> = implementations::steps(slot, inst.kind, req.broadcast_strategy)
                .unwrap_or_else(|| vec![Step::Unsupported(inst.kind)])
                .into_iter()
                .filter(|s| !rules.deletes(slot, s.name()))
                .collect();
            used.push((name.clone(), steps.iter().map(Step::name).collect()));
            let settings = InstanceSettings::from(inst);
            let steps =
                with_custom_ops(&req.custom_operations, settings, slot.name(), &name, steps);
            let place = MacroPlace {
                operation: "Deploy",
                slot,
                name: &name,
            };
            let breakpoint = req.breakpoint.as_deref();
            alternatives.push(macro_task(place, settings, steps, &job, breakpoint));
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

fn supports(cluster: &ClusterConfig, fs: &str) -> bool {
    cluster.boot.supported_fs.iter().any(|s| s == fs)
}

/// Checks the request's partitions and file systems and gathers what the micro-steps need.
fn deploy_job(cluster: &ClusterConfig, req: &DeployRequest) -> Result<Arc<Job>, RequestError> {
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
    if let Some(fs) = &req.reformat_tmp
        && !supports(cluster, fs)
    {
        return Err(RequestError::new(
            ApiError::ConflictingOptions,
            format!("The filesystem {fs} is not supported by the deployment environment"),
        ));
    }
    let broadcast_to_file = !cluster.broadcast_decompress || env.image.kind == ImageKind::Fsa;
    Ok(Arc::new(Job {
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
        vlan: req.vlan.clone(),
        broadcast_to_file,
    }))
}

/// The `SetDeploymentEnv` and `BootNewEnv` instances after Kadeploy's automatic substitutions.
struct Substituted {
    set_env: Vec<MacroInstance>,
    boot_env: Vec<MacroInstance>,
    /// The notices the substitutions print.
    notices: Vec<String>,
}

/// Kadeploy's automatic substitutions (`Workflow::Deploy#load_tasks`): no kexec into the deploy kernel with
/// `--no-kexec`, the environment's pre-install instead of the disk preparation, a classical reboot instead of
/// kexec when kexec cannot boot the environment.
fn substitutions(
    cluster: &ClusterConfig,
    req: &DeployRequest,
    automata: &crate::config::Automata,
    fs_supported: bool,
) -> Result<Substituted, RequestError> {
    let env = &req.environment;
    let mut notices = Vec::new();
    let mut set_env = automata.set_deployment_env.clone();
    let mut boot_env = automata.boot_new_env.clone();
    let set_env_kexec =
        |i: &&mut MacroInstance| i.kind == MacroKind::SetDeploymentEnv(SetDeploymentEnvKind::Kexec);
    if req.disable_kexec {
        for i in set_env.iter_mut().filter(set_env_kexec) {
            i.kind = SetDeploymentEnvKind::Untrusted.into();
        }
    }
    if env.preinstall.is_some()
        && let Some(first) = set_env.first().cloned()
    {
        set_env = vec![MacroInstance {
            kind: SetDeploymentEnvKind::UntrustedCustomPreInstall.into(),
            ..first
        }];
        notices.push("A specific presinstall will be used with this environment".into());
    }
    let kexec_reason = if env.os != "linux" {
        Some(" one with this non-linux environment")
    } else if !fs_supported {
        Some(" since the filesystem is not supported by the deployment environment")
    } else if req.disable_kexec {
        Some("")
    } else {
        None
    };
    let boot_kexec = MacroKind::BootNewEnv(BootNewEnvKind::Kexec);
    if let Some(reason) = kexec_reason
        && boot_env.iter().any(|i| i.kind == boot_kexec)
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
        for i in boot_env.iter_mut().filter(|i| i.kind == boot_kexec) {
            i.kind = BootNewEnvKind::Classical.into();
            i.retries = 0;
            i.timeout = timeout;
        }
        notices.push(format!(
            "Using classical reboot instead of kexec{reason} (BootNewEnv)"
        ));
    }
    Ok(Substituted {
        set_env,
        boot_env,
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
        environment: req.environment.clone(),
        ssh_key: req.ssh_key.clone(),
        block_device: (req.block_device.clone())
            .unwrap_or_else(|| cluster.partitioning.block_device.clone()),
        deploy_partition: Some(req.deploy_partition.unwrap_or(cluster.partitioning.deploy)),
        timeout_reboot: req.timeout_reboot_classical.clone(),
        pxe_profile: req.pxe_profile.clone(),
        vlan: req.vlan.clone(),
        ..Job::default()
    });
    let user = Step::WaitReboot {
        kexec: false,
        target: BootTarget::User,
    };
    let mut steps = match req.kind {
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
    if req.vlan.is_some()
        && let Some(wait) = steps
            .iter()
            .position(|s| matches!(s, Step::WaitReboot { .. }))
    {
        steps.insert(wait, Step::SetVlan { default: false });
    }
    let used = [(
        req.kind.step_name().to_string(),
        steps.iter().map(Step::name).collect(),
    )];
    check_breakpoint(&used, req.breakpoint.as_deref())?;
    let inst = InstanceSettings::plain();
    let name = req.kind.step_name();
    let steps = with_custom_ops(&req.custom_operations, inst, "Reboot", name, steps);
    let place = MacroPlace {
        operation: "Reboot",
        slot: SINGLE_STEP_SLOT,
        name,
    };
    let task = macro_task(place, inst, steps, &job, req.breakpoint.as_deref());
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
    let inst = InstanceSettings::plain();
    let steps = with_custom_ops(&req.custom_operations, inst, "Power", name, vec![step]);
    let place = MacroPlace {
        operation: "Power",
        slot: SINGLE_STEP_SLOT,
        name,
    };
    let task = macro_task(place, inst, steps, &job, None);
    Plan {
        operation: "power operation",
        slots: vec![vec![task]],
        notices: Vec::new(),
    }
}

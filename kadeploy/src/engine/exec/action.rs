//! The translation of a micro-step into what runs on its nodes (spec §6): a pure function of the step, the job,
//! the cluster and the server settings, which decides the `hal` operation(s) to run or an outcome known at once
//! (a refusal, or nothing to do); [`super::translate`] picks the translation of each step and
//! [`super::execute`] runs what it decides.

use crate::config::{ClusterConfig, ServerConfig};
use crate::engine::custom::CustomAction;
use crate::engine::step::{BootTarget, Job, PxeSwitch};
use crate::expr::Expr;
use hal::{
    BootProfile, ImageSpec, LocalSystem, Operation, PortCheck, PowerAction, PowerLevel, Strategy,
    WriteTarget,
};

/// What the translation of a micro-step reads: the job, its cluster and the server settings.
#[derive(Clone, Copy)]
pub struct StepContext<'a> {
    /// Server settings.
    pub server: &'a ServerConfig,
    /// The cluster the nodes belong to.
    pub cluster: &'a ClusterConfig,
    /// Data of the job.
    pub job: &'a Job,
}

/// What a micro-step does on its nodes.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Nothing to do: every node succeeds at once.
    Nothing,
    /// The step cannot run: every node fails at once with a configuration error and this message.
    Refuse(String),
    /// Write a boot profile.
    SetProfile(BootProfile),
    /// A power action from a level upwards (Kadeploy's escalation), through the reboot window.
    Power(PowerAction, PowerLevel),
    /// Read the power state, kept as each node's output.
    PowerStatus,
    /// Probe the nodes until they answer `check`, within `timeout` (an expression of the node count).
    WaitReboot {
        /// The timeout expression.
        timeout: Expr,
        /// Ports that must be up and down.
        check: PortCheck,
    },
    /// One node operation.
    Run(Operation),
    /// Node operations in order, each on the nodes every previous one succeeded on.
    RunInSequence(Vec<Operation>),
    /// One node operation through the reboot window.
    RunWindowed(Operation),
    /// A root device check whose failed command means a bad root partition (`check_nodes`).
    CheckRootDevice(Operation),
    /// Broadcast the image.
    Broadcast {
        /// The image.
        image: ImageSpec,
        /// Where the nodes write it.
        target: WriteTarget,
        /// How it travels.
        strategy: Strategy,
    },
    /// Broadcast the image with the strategy and chunk size the cluster's planner chooses.
    AutoBroadcast {
        /// The image.
        image: ImageSpec,
        /// Where the nodes write it.
        target: WriteTarget,
    },
    /// `set_vlan`: the server's `set_cmd` moves the nodes to VLAN `id` for `user`.
    SetVlan {
        /// The VLAN id (`DEFAULT` for the default VLAN).
        id: String,
        /// Who asks.
        user: String,
    },
    /// The custom broadcast: the cluster's command, run on the server.
    CustomBroadcast(super::local::CustomBroadcast),
    /// A custom operation, whose server-side file is read when it runs.
    Custom {
        /// What it does.
        action: CustomAction,
        /// The `KADEPLOY_*` variables.
        env: Vec<(String, String)>,
    },
}

impl Action {
    /// A refusal with `message`.
    pub fn refuse(message: impl Into<String>) -> Self {
        Action::Refuse(message.into())
    }
}

/// `switch_pxe`: the profile the nodes boot next.
pub(super) fn switch_pxe(switch: PxeSwitch, cx: StepContext<'_>) -> Action {
    let (boot, job) = (&cx.cluster.boot, cx.job);
    let profile = match (switch, &job.pxe_profile) {
        (PxeSwitch::ProdToDeployEnv, _) => BootProfile::DeployKernel {
            kernel: boot.deploy_vmlinuz.clone(),
            initrd: boot.deploy_initrd.clone(),
            params: boot.deploy_params.clone(),
        },
        (PxeSwitch::DeployToDeployedEnv | PxeSwitch::SetPxe, Some(pxe)) => BootProfile::Custom {
            name: pxe.user.clone(),
            content: pxe.profile.clone(),
            singularities: pxe.singularities.clone(),
        },
        (PxeSwitch::DeployToDeployedEnv, None) => BootProfile::LocalDisk {
            device: job.block_device.clone(),
            partition: job.boot_partition.or(job.deploy_partition).unwrap_or(0),
            system: job.environment.as_ref().map(|env| LocalSystem {
                os: env.os.clone(),
                kernel: env.kernel.clone(),
                initrd: env.initrd.clone(),
                params: if env.kernel_params.is_empty() {
                    boot.user_params.clone()
                } else {
                    env.kernel_params.clone()
                },
                hypervisor: env.hypervisor.clone(),
                hypervisor_params: env.hypervisor_params.clone(),
            }),
        },
        (PxeSwitch::SetPxe, None) => return Action::refuse("No PXE profile given"),
    };
    Action::SetProfile(profile)
}

/// `set_vlan`: the job's VLAN, or the default one; nothing without a VLAN.
pub(super) fn set_vlan(default: bool, cx: StepContext<'_>) -> Action {
    match &cx.job.vlan {
        None => Action::Nothing,
        Some(_) if cx.server.vlan.is_none() => Action::refuse("VLAN management is disabled"),
        Some(v) => Action::SetVlan {
            id: if default {
                "DEFAULT".into()
            } else {
                v.id.clone()
            },
            user: v.user.clone(),
        },
    }
}

/// `wait_reboot`: the timeout of the boot kind (the job's override first) and the ports of the target.
pub(super) fn wait_reboot(kexec: bool, target: BootTarget, cx: StepContext<'_>) -> Action {
    let (job, cluster, server) = (cx.job, cx.cluster, cx.server);
    let timeout = if kexec {
        job.timeout_kexec.as_ref().unwrap_or(&cluster.timeout_kexec)
    } else {
        job.timeout_reboot
            .as_ref()
            .unwrap_or(&cluster.timeout_reboot)
    };
    let check = match target {
        BootTarget::Deploy => PortCheck {
            up: vec![server.ssh_port, server.test_deploy_env_port],
            down: vec![],
        },
        BootTarget::User => PortCheck {
            up: vec![server.ssh_port],
            down: vec![server.test_deploy_env_port],
        },
    };
    Action::WaitReboot {
        timeout: timeout.clone(),
        check,
    }
}

/// `send_key_in_deploy_env` and `send_key`: the job's keys to `destination`, when it has any.
pub(super) fn send_key(destination: String, cx: StepContext<'_>) -> Action {
    match &cx.job.ssh_key {
        None => Action::Nothing,
        Some(keys) => Action::Run(Operation::SendKey {
            keys: keys.clone(),
            destination,
        }),
    }
}

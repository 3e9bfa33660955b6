//! Micro-steps as typed values (Kadeploy's `ms_<name>` methods with their arguments), and the data of
//! the job they act for.

use super::slot::{MacroKind, Slot};
use crate::environment::Environment;
use crate::expr::Expr;
use hal::{PowerAction, PowerLevel, Strategy};
use std::collections::BTreeMap;

/// Which boot profile `switch_pxe` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PxeSwitch {
    /// `prod_to_deploy_env`: boot the deploy kernel.
    ProdToDeployEnv,
    /// `deploy_to_deployed_env`: boot the deployed partition (or the user's profile).
    DeployToDeployedEnv,
    /// `set_pxe`: boot the user's profile.
    SetPxe,
}

/// Which environment `wait_reboot` expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootTarget {
    /// The deployment environment: ssh and 25300 up.
    Deploy,
    /// A user environment: ssh up, 25300 down.
    User,
}

/// One micro-step.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// `switch_pxe`.
    SwitchPxe(PxeSwitch),
    /// `reboot(level)`, with escalation.
    Reboot(PowerLevel),
    /// `wait_reboot(kind, env)`; `kexec` selects the kexec timeout.
    WaitReboot {
        /// After a kexec (kexec timeout) or a classical reboot.
        kexec: bool,
        /// Environment expected.
        target: BootTarget,
    },
    /// `send_key_in_deploy_env`.
    SendKeyInDeployEnv,
    /// `create_partition_table`.
    CreatePartitionTable,
    /// `format_deploy_part`.
    FormatDeployPart,
    /// `mount_deploy_part`.
    MountDeployPart,
    /// `umount_deploy_part`.
    UmountDeployPart,
    /// `format_tmp_part`.
    FormatTmpPart,
    /// `format_swap_part`.
    FormatSwapPart,
    /// `send_deployment_kernel`.
    SendDeploymentKernel,
    /// `sync`.
    Sync,
    /// `kexec` into the deploy kernel (SetDeploymentEnvKexec).
    KexecDeployKernel,
    /// `kexec` into the deployed environment (BootNewEnvKexec).
    KexecDeployedEnv,
    /// `send_environment(strategy)`.
    SendEnvironment(Strategy),
    /// `send_environment` with the strategy and chunk size the cluster's broadcast planner chooses
    /// (BroadcastEnvAuto).
    SendEnvironmentAuto,
    /// `send_environment(:custom)`: the cluster's `localops/broadcastenv/cmd`, run on the server.
    SendEnvironmentCustom,
    /// `set_vlan`: the server's `network/vlan/set_cmd`, moving the nodes to the job's VLAN, or back to the
    /// default one (`DEFAULT`) when `default`.
    SetVlan {
        /// To the default VLAN (SetDeploymentEnv), not the job's.
        default: bool,
    },
    /// A macro-step implementation this deployer does not have: its nodes fail with a clear error (and go
    /// on to the next implementation of the slot, if any).
    Unsupported(MacroKind),
    /// `decompress_environment`.
    DecompressEnvironment,
    /// `manage_admin_pre_install`.
    ManageAdminPreInstall,
    /// `manage_admin_post_install`.
    ManageAdminPostInstall,
    /// `manage_user_post_install`.
    ManageUserPostInstall,
    /// `check_kernel_files`.
    CheckKernelFiles,
    /// `send_key`.
    SendKey,
    /// `install_bootloader`.
    InstallBootloader,
    /// `reboot_from_deploy_env`.
    RebootFromDeployEnv,
    /// `check_nodes("prod_env_booted")`.
    CheckProdEnvBooted,
    /// `power(action, level)`, with escalation.
    Power(PowerAction, PowerLevel),
    /// `power(:status)`.
    PowerStatus,
    /// `dummy`.
    Dummy,
    /// A custom operation (`--custom-steps`) run before, after or instead of a micro-step.
    Custom(Box<super::custom::CustomOp>),
}

impl Step {
    /// Kadeploy's micro-step name.
    pub fn name(&self) -> &'static str {
        match self {
            Step::SwitchPxe(_) => "switch_pxe",
            Step::Reboot(_) => "reboot",
            Step::WaitReboot { .. } => "wait_reboot",
            Step::SendKeyInDeployEnv => "send_key_in_deploy_env",
            Step::CreatePartitionTable => "create_partition_table",
            Step::FormatDeployPart => "format_deploy_part",
            Step::MountDeployPart => "mount_deploy_part",
            Step::UmountDeployPart => "umount_deploy_part",
            Step::FormatTmpPart => "format_tmp_part",
            Step::FormatSwapPart => "format_swap_part",
            Step::SendDeploymentKernel => "send_deployment_kernel",
            Step::Sync => "sync",
            Step::KexecDeployKernel | Step::KexecDeployedEnv => "kexec",
            Step::SendEnvironment(_) | Step::SendEnvironmentAuto | Step::SendEnvironmentCustom => {
                "send_environment"
            }
            Step::SetVlan { .. } => "set_vlan",
            Step::Unsupported(kind) => match kind.slot() {
                Slot::BroadcastEnv => "send_environment",
                Slot::SetDeploymentEnv | Slot::BootNewEnv => "switch_pxe",
            },
            Step::DecompressEnvironment => "decompress_environment",
            Step::ManageAdminPreInstall => "manage_admin_pre_install",
            Step::ManageAdminPostInstall => "manage_admin_post_install",
            Step::ManageUserPostInstall => "manage_user_post_install",
            Step::CheckKernelFiles => "check_kernel_files",
            Step::SendKey => "send_key",
            Step::InstallBootloader => "install_bootloader",
            Step::RebootFromDeployEnv => "reboot_from_deploy_env",
            Step::CheckProdEnvBooted => "check_nodes",
            Step::Power(..) | Step::PowerStatus => "power",
            Step::Dummy => "dummy",
            Step::Custom(_) => "custom",
        }
    }
}

/// What the micro-steps of one workflow need to know beyond the cluster configuration.
#[derive(Clone, Debug, Default)]
pub struct Job {
    /// The environment being deployed (deploy workflows, `recorded_env` reboots).
    pub environment: Option<Environment>,
    /// Keys to install.
    pub ssh_key: Option<String>,
    /// Block device to deploy on.
    pub block_device: String,
    /// Deploy partition number; `None` = the whole block device.
    pub deploy_partition: Option<u32>,
    /// Partition to boot the deployed environment from (`-c`); the deploy partition by default.
    pub boot_partition: Option<u32>,
    /// File system to reformat the tmp partition with.
    pub reformat_tmp: Option<String>,
    /// Override of the classical reboot timeout.
    pub timeout_reboot: Option<Expr>,
    /// Override of the kexec timeout.
    pub timeout_kexec: Option<Expr>,
    /// A user PXE profile.
    pub pxe_profile: Option<UserPxe>,
    /// The VLAN the nodes are moved to (`--vlan`), with who asks.
    pub vlan: Option<VlanRequest>,
    /// The workflow moves nodes to the deployment environment and keeps data written by the broadcast
    /// in a temporary file (`decompress_environment` kept).
    pub broadcast_to_file: bool,
}

/// A user's PXE profile (a request's `pxe`), written as is after Kadeploy's substitutions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserPxe {
    /// `pxe/profile`: the profile text.
    pub profile: String,
    /// The login of the user: `FILES_PREFIX` becomes `<userfiles>/pxe-<user>`, where the files the user
    /// uploaded are.
    pub user: String,
    /// `pxe/singularities`: `NODE_SINGULARITY` by host name; `None` when the request has none.
    pub singularities: Option<BTreeMap<String, String>>,
}

/// `--vlan`: the VLAN to put the nodes in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VlanRequest {
    /// The VLAN id (`VLAN_ID` of `set_cmd`).
    pub id: String,
    /// The login of the user (`USER` of `set_cmd`).
    pub user: String,
}

impl Job {
    /// The deploy partition's device (`/dev/sda3`), or the block device itself for whole-disk deployments.
    pub fn deploy_device(&self) -> String {
        match self.deploy_partition {
            Some(p) => format!("{}{}", self.block_device, p),
            None => self.block_device.clone(),
        }
    }
}

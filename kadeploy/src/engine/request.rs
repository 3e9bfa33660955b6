//! What a client asks for: a deployment, a reboot or a power operation, already resolved to typed values.

use super::step::{UserPxe, VlanRequest};
use crate::config::Automata;
use crate::environment::Environment;
use crate::expr::Expr;
use hal::{NodeId, PowerLevel, Strategy};

/// A deployment request (`POST /deployment`, `kadeploy3`).
#[derive(Clone, Debug)]
pub struct DeployRequest {
    /// Nodes to deploy, as indices into the cluster's node table.
    pub nodes: Vec<NodeId>,
    /// The environment to deploy.
    pub environment: Environment,
    /// Public keys to install (`-k`), when given.
    pub ssh_key: Option<String>,
    /// Block device (`-b`); the cluster's by default.
    pub block_device: Option<String>,
    /// Deploy partition (`-p`): `Some(None)` deploys on the whole block device (dd images only).
    pub deploy_partition: Option<Option<u32>>,
    /// Boot partition (`-c`), mandatory for whole-disk deployments.
    pub boot_partition: Option<u32>,
    /// Reformat the tmp partition with this file system (`-r`).
    pub reformat_tmp: Option<String>,
    /// `--no-kexec`.
    pub disable_kexec: bool,
    /// `--disable-bootloader-install`.
    pub disable_bootloader_install: bool,
    /// `--disable-disk-partitioning`.
    pub disable_disk_partitioning: bool,
    /// `--reboot-classical-timeout`.
    pub timeout_reboot_classical: Option<Expr>,
    /// `--reboot-kexec-timeout`.
    pub timeout_reboot_kexec: Option<Expr>,
    /// `--force-steps`: replaces the cluster's automata.
    pub automata: Option<Automata>,
    /// `--breakpoint Macro[:micro]`.
    pub breakpoint: Option<String>,
    /// Use this broadcast strategy in every BroadcastEnv instance (simulator and benchmarks).
    pub broadcast_strategy: Option<Strategy>,
    /// `-w`: a PXE profile to boot after the deployment instead of the local disk.
    pub pxe_profile: Option<UserPxe>,
    /// `--vlan`: the VLAN to put the nodes in.
    pub vlan: Option<VlanRequest>,
    /// `--custom-steps`: custom operations by macro-step and micro-step.
    pub custom_operations: super::custom::CustomOps,
}

impl DeployRequest {
    /// A request deploying `environment` on `nodes` with every option at its default.
    pub fn new(nodes: Vec<NodeId>, environment: Environment) -> Self {
        DeployRequest {
            nodes,
            environment,
            ssh_key: None,
            block_device: None,
            deploy_partition: None,
            boot_partition: None,
            reformat_tmp: None,
            disable_kexec: false,
            disable_bootloader_install: false,
            disable_disk_partitioning: false,
            timeout_reboot_classical: None,
            timeout_reboot_kexec: None,
            automata: None,
            breakpoint: None,
            broadcast_strategy: None,
            pxe_profile: None,
            vlan: None,
            custom_operations: Default::default(),
        }
    }
}

/// Kinds of reboot (`kareboot3 -r`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebootKind {
    /// `simple`: reboot, wait for the node.
    Simple,
    /// `set_pxe`: write a PXE profile, then reboot.
    SetPxe,
    /// `deploy_env`: reboot into the deployment environment.
    DeployEnv,
    /// `recorded_env`: reboot into the environment deployed on the disk.
    RecordedEnv,
}

impl RebootKind {
    /// Every kind.
    pub const ALL: [RebootKind; 4] = [
        RebootKind::Simple,
        RebootKind::SetPxe,
        RebootKind::DeployEnv,
        RebootKind::RecordedEnv,
    ];

    /// Kadeploy's macro-step name of the kind.
    pub fn step_name(self) -> &'static str {
        match self {
            RebootKind::Simple => "RebootSimple",
            RebootKind::SetPxe => "RebootSetPXE",
            RebootKind::DeployEnv => "RebootDeployEnv",
            RebootKind::RecordedEnv => "RebootRecordedEnv",
        }
    }
}

/// A reboot request (`kareboot3`).
#[derive(Clone, Debug)]
pub struct RebootRequest {
    /// Nodes to reboot.
    pub nodes: Vec<NodeId>,
    /// What to reboot into.
    pub kind: RebootKind,
    /// First level of the escalation (`-l`, default soft).
    pub level: PowerLevel,
    /// Public keys to install in the deploy environment (`-k`, with `deploy_env`).
    pub ssh_key: Option<String>,
    /// The PXE profile for `set_pxe`.
    pub pxe_profile: Option<UserPxe>,
    /// `--vlan`: the VLAN to put the nodes in.
    pub vlan: Option<VlanRequest>,
    /// `--reboot-classical-timeout`.
    pub timeout_reboot_classical: Option<Expr>,
    /// `--breakpoint`.
    pub breakpoint: Option<String>,
    /// `--custom-steps`: custom operations of the reboot's macro-step (`Reboot<Kind>` or `Reboot`).
    pub custom_operations: super::custom::CustomOps,
    /// `recorded_env`: the recorded environment the nodes boot (`-e`).
    pub environment: Option<Environment>,
    /// `recorded_env`: the block device it is on (`-b`); the cluster's by default.
    pub block_device: Option<String>,
    /// `recorded_env`: the partition it is on (`-p`); the cluster's deploy partition by default.
    pub deploy_partition: Option<u32>,
}

/// Power operations (`kapower3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerOperation {
    /// `--on`.
    On,
    /// `--off`.
    Off,
    /// `--status`.
    Status,
}

impl PowerOperation {
    /// Every operation.
    pub const ALL: [PowerOperation; 3] = [
        PowerOperation::On,
        PowerOperation::Off,
        PowerOperation::Status,
    ];

    /// Kadeploy's macro-step name of the operation.
    pub fn step_name(self) -> &'static str {
        match self {
            PowerOperation::On => "PowerOn",
            PowerOperation::Off => "PowerOff",
            PowerOperation::Status => "PowerStatus",
        }
    }
}

/// A power request (`kapower3`).
#[derive(Clone, Debug)]
pub struct PowerRequest {
    /// Nodes to act on.
    pub nodes: Vec<NodeId>,
    /// What to do.
    pub operation: PowerOperation,
    /// First level of the escalation (`-l`, default soft).
    pub level: PowerLevel,
    /// `--custom-steps`: custom operations of the power macro-step (`Power<Operation>` or `Power`).
    pub custom_operations: super::custom::CustomOps,
}

//! `POST /reboot` (spec §3.7): a typed reboot, and its engine request.

use super::common::{Common, Context, Fetched, Head, PartCluster, Pxe, err, expr, level};
use super::environment::{self, SelectedEnv};
use crate::auth::Caller;
use crate::params::Params;
use crate::workflow::Kind;
use hal::{NodeId, PowerLevel};
use kadeploy::config::ClusterConfig;
use kadeploy::engine::{RebootKind, RebootRequest};
use kadeploy::error::{ApiError, RequestError};
use kadeploy::expr::Expr;

/// A reboot, as its request asks.
#[derive(Clone, Debug)]
pub struct Reboot {
    /// What every submission carries.
    pub common: Common,
    /// `kind`.
    pub kind: RebootKind,
    /// `environment` (mandatory for `recorded_env`).
    pub environment: Option<SelectedEnv>,
    /// `deploy_partition` as text, when it is one (mandatory for `recorded_env`): the nodes are then in
    /// their production environment (`prod_env`) if it is their cluster's production partition.
    pub deploy_partition: Option<String>,
    /// `block_device` (`recorded_env`), instead of the cluster's.
    pub block_device: Option<String>,
    /// `level`.
    pub level: PowerLevel,
    /// `ssh_authorized_keys`: the keys file, as the request names it.
    pub ssh_key_file: Option<String>,
    /// `pxe` (a profile is mandatory for `set_pxe`).
    pub pxe: Pxe,
    /// `timeout_reboot_classical`.
    pub timeout_reboot_classical: Option<Expr>,
}

impl Reboot {
    /// Reads a reboot request, in Kadeploy's order (`Kareboot#reboot_prepare`); for `recorded_env` with
    /// `check_destructive`, refuses (error 30) nodes whose last deployed environment is destructive.
    pub fn parse(ctx: &Context<'_>, caller: &Caller, p: &Params) -> Result<Reboot, RequestError> {
        let head = Head::parse(ctx, p, Kind::Reboot)?;
        let environment = environment::select(ctx, caller, p)?;
        let common = head.finish(caller, p)?;
        let kind = p
            .one_of("kind", &["set_pxe", "simple", "deploy_env", "recorded_env"])?
            .ok_or_else(|| err(ApiError::MissingOption, "Parameter 'kind': is mandatory"))?;
        let pxe = Pxe::parse(p)?;
        let level = level(p)?;
        // Kadeploy checks the destructive tag of `recorded_env` reboots only.
        if kind == "recorded_env" && p.toggle("check_destructive") {
            refuse_destructive(ctx, &common.nodes)?;
        }
        let deploy_partition = p.string_or_empty("deploy_partition")?;
        let kind = match kind.as_str() {
            "set_pxe" if pxe.profile.as_deref().is_none_or(str::is_empty) => {
                return Err(err(
                    ApiError::MissingOption,
                    "You must specify a PXE boot profile when rebooting using set_pxe",
                ));
            }
            "set_pxe" => RebootKind::SetPxe,
            "deploy_env" => RebootKind::DeployEnv,
            "recorded_env" if environment.as_ref().is_none_or(|e| e.id.is_none()) => {
                return Err(err(
                    ApiError::MissingOption,
                    "You must specify an environment when rebooting using recorded_env",
                ));
            }
            "recorded_env" if deploy_partition.as_deref().is_none_or(str::is_empty) => {
                return Err(err(
                    ApiError::MissingOption,
                    "You must specify a partition when rebooting using recorded_env",
                ));
            }
            "recorded_env" => RebootKind::RecordedEnv,
            _ => RebootKind::Simple,
        };
        if let Some(part) = &deploy_partition
            && !part.is_empty()
            && part.parse::<u32>().is_err()
        {
            return Err(err(
                ApiError::InvalidOption,
                "Parameter 'deploy_partition': should be a partition number",
            ));
        }
        Ok(Reboot {
            common,
            kind,
            environment,
            block_device: p.string("block_device")?,
            deploy_partition: deploy_partition.filter(|s| !s.is_empty()),
            level,
            ssh_key_file: p.string("ssh_authorized_keys")?,
            pxe,
            timeout_reboot_classical: expr(p, "timeout_reboot_classical")?,
        })
    }

    /// The engine request of the nodes `nodes` of `cluster`: for `recorded_env`, the environment as that
    /// cluster's backend sees it, on the requested device and partition.
    pub fn engine_request(
        &self,
        files: &Fetched,
        cluster: PartCluster<'_>,
        nodes: Vec<NodeId>,
    ) -> RebootRequest {
        let recorded = self.kind == RebootKind::RecordedEnv;
        let environment = (self.environment.as_ref()).filter(|_| recorded).map(|env| {
            env.desc
                .to_engine(&env.owner, cluster.image_size, cluster.image_ratio)
        });
        RebootRequest {
            environment,
            block_device: self.block_device.clone().filter(|_| recorded),
            deploy_partition: (self.deploy_partition.as_deref())
                .filter(|_| recorded)
                .and_then(|p| p.parse().ok()),
            nodes,
            kind: self.kind,
            level: self.level,
            ssh_key: files.ssh_key.clone(),
            pxe_profile: self.pxe.for_engine(&self.common.requester.user),
            vlan: super::common::vlan_request(&self.common.vlan, &self.common.requester.user),
            timeout_reboot_classical: self.timeout_reboot_classical.clone(),
            breakpoint: self.common.breakpoint.clone(),
            custom_operations: files.custom_operations.clone(),
        }
    }

    /// The database state of the nodes of `cluster` once rebooted.
    pub fn ok_state(&self, cluster: &ClusterConfig) -> &'static str {
        match self.kind {
            RebootKind::DeployEnv => "deploy_env",
            RebootKind::RecordedEnv => {
                let prod = cluster.partitioning.prod.map(|p| p.to_string());
                if self.deploy_partition == prod {
                    "prod_env"
                } else {
                    "recorded_env"
                }
            }
            RebootKind::Simple | RebootKind::SetPxe => "rebooted",
        }
    }

    /// The step-1 name of its log rows.
    pub fn step1(&self) -> &'static str {
        match self.kind {
            RebootKind::Simple => "Simple",
            RebootKind::SetPxe => "SetPXE",
            RebootKind::DeployEnv => "DeployEnv",
            RebootKind::RecordedEnv => "RecordedEnv",
        }
    }
}

/// Error 13 when one of `nodes` has a destructive environment recorded.
fn refuse_destructive(ctx: &Context<'_>, nodes: &[String]) -> Result<(), RequestError> {
    let rows = ctx.store.nodes_get(nodes)?;
    for row in rows.values().filter(|n| n.env_id >= 0) {
        if ctx
            .store
            .env_by_id(row.env_id)?
            .is_some_and(|e| e.desc.destructive)
        {
            return Err(err(ApiError::DestructiveEnvironment, ""));
        }
    }
    Ok(())
}

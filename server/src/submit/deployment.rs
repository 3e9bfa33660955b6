//! `POST /deployment` (spec §3.7): a typed deployment, and the engine request of each of its parts.

use super::common::{Common, Context, Fetched, Head, PartCluster, Pxe, err, expr};
use super::environment::{self, SelectedEnv};
use crate::auth::Caller;
use crate::params::Params;
use crate::steps;
use crate::workflow::Kind;
use hal::NodeId;
use kadeploy::config::{Automata, ClusterConfig};
use kadeploy::engine::DeployRequest;
use kadeploy::error::{ApiError, RequestError};
use kadeploy::expr::Expr;

/// A deployment, as its request asks.
#[derive(Clone, Debug)]
pub struct Deployment {
    /// What every submission carries.
    pub common: Common,
    /// `environment` (mandatory).
    pub environment: SelectedEnv,
    /// `block_device`, instead of the cluster's.
    pub block_device: Option<String>,
    /// `deploy_partition`: a partition number, `Some(None)` for the whole disk (an empty value), or
    /// `None` for the cluster's deploy partition.
    pub deploy_partition: Option<Option<u32>>,
    /// `boot_partition`.
    pub boot_partition: Option<u32>,
    /// `reformat_tmp_partition`: the file system to format the tmp partition with.
    pub reformat_tmp: Option<String>,
    /// `disable_kexec`.
    pub disable_kexec: bool,
    /// `disable_bootloader_install`.
    pub disable_bootloader_install: bool,
    /// `disable_disk_partitioning`.
    pub disable_disk_partitioning: bool,
    /// `timeout_reboot_classical`.
    pub timeout_reboot_classical: Option<Expr>,
    /// `timeout_reboot_kexec`.
    pub timeout_reboot_kexec: Option<Expr>,
    /// `automata`: forced automata (`--force-steps`).
    pub automata: Option<Automata>,
    /// `ssh_authorized_keys`: the keys file, as the request names it.
    pub ssh_key_file: Option<String>,
    /// `pxe`.
    pub pxe: Pxe,
}

fn partition_number(key: &str) -> RequestError {
    err(
        ApiError::InvalidOption,
        format!("Parameter '{key}': should be a partition number"),
    )
}

impl Deployment {
    /// Reads a deployment request, in Kadeploy's order.
    pub fn parse(
        ctx: &Context<'_>,
        caller: &Caller,
        p: &Params,
    ) -> Result<Deployment, RequestError> {
        let head = Head::parse(ctx, p, Kind::Deploy)?;
        let environment = environment::select(ctx, caller, p)?;
        let common = head.finish(caller, p)?;
        let environment = environment.ok_or_else(|| {
            err(
                ApiError::MissingOption,
                "Parameter 'environment': is mandatory",
            )
        })?;
        let block_device = p.string("block_device")?;
        let deploy_partition = match p.string_or_empty("deploy_partition")? {
            None => None,
            Some(s) if s.is_empty() => Some(None),
            Some(s) => Some(Some(
                s.parse()
                    .map_err(|_| partition_number("deploy_partition"))?,
            )),
        };
        Ok(Deployment {
            common,
            environment,
            block_device,
            deploy_partition,
            boot_partition: p
                .int("boot_partition")?
                .map(|b| u32::try_from(b.max(0)))
                .transpose()
                .map_err(|_| partition_number("boot_partition"))?,
            reformat_tmp: p.string("reformat_tmp_partition")?,
            disable_kexec: p.toggle("disable_kexec"),
            disable_bootloader_install: p.toggle("disable_bootloader_install"),
            disable_disk_partitioning: p.toggle("disable_disk_partitioning"),
            timeout_reboot_classical: expr(p, "timeout_reboot_classical")?,
            timeout_reboot_kexec: expr(p, "timeout_reboot_kexec")?,
            automata: p.object("automata")?.map(steps::automata).transpose()?,
            ssh_key_file: p.string("ssh_authorized_keys")?,
            pxe: Pxe::parse(p)?,
        })
    }

    /// The partition the deployment writes on `cluster`, as rights name it (`/dev/sda3`): the requested
    /// block device and partition, or the cluster's.
    pub fn partition_on(&self, cluster: &ClusterConfig) -> String {
        let device = (self.block_device.clone())
            .unwrap_or_else(|| cluster.partitioning.block_device.clone());
        let partition = match self.deploy_partition {
            Some(Some(n)) => n.to_string(),
            Some(None) => String::new(),
            None => cluster.partitioning.deploy.to_string(),
        };
        format!("{device}{partition}")
    }

    /// The engine request of the nodes `nodes` of `cluster`: the environment as that cluster's backend
    /// sees it, pointing at the fetched files.
    pub fn engine_request(
        &self,
        files: &Fetched,
        cluster: PartCluster<'_>,
        nodes: Vec<NodeId>,
    ) -> DeployRequest {
        let env = &self.environment;
        let mut environment =
            env.desc
                .to_engine(&env.owner, cluster.image_size, cluster.image_ratio);
        if let Some(fetched) = &files.environment {
            environment.image.path = fetched.image.clone();
            if let (Some(pre), Some(file)) = (&mut environment.preinstall, &fetched.preinstall) {
                pre.file = file.clone();
            }
            for (post, file) in environment
                .postinstalls
                .iter_mut()
                .zip(&fetched.postinstalls)
            {
                post.file = file.clone();
            }
        }
        let mut d = DeployRequest::new(nodes, environment);
        d.block_device = self.block_device.clone();
        d.deploy_partition = self.deploy_partition;
        d.boot_partition = self.boot_partition;
        d.reformat_tmp = self.reformat_tmp.clone();
        d.disable_kexec = self.disable_kexec;
        d.disable_bootloader_install = self.disable_bootloader_install;
        d.disable_disk_partitioning = self.disable_disk_partitioning;
        d.timeout_reboot_classical = self.timeout_reboot_classical.clone();
        d.timeout_reboot_kexec = self.timeout_reboot_kexec.clone();
        d.breakpoint = self.common.breakpoint.clone();
        d.automata = self.automata.clone();
        d.ssh_key = files.ssh_key.clone();
        let user = &self.common.requester.user;
        d.pxe_profile = self.pxe.for_engine(user);
        d.vlan = super::common::vlan_request(&self.common.vlan, user);
        d.custom_operations = files.custom_operations.clone();
        d
    }
}

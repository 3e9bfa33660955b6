//! Kadeploy's micro-step deletion rules (`Macrostep::Deploy#load_tasks`, spec §5.3): which micro-steps
//! a deployment skips given its environment, request and cluster.

use super::request::DeployRequest;
use super::slot::Slot;
use super::step::Job;
use crate::config::{ClusterConfig, ServerConfig};
use hal::ImageKind;
use std::collections::BTreeSet;

/// Kadeploy's micro-step deletion rules (`Macrostep::Deploy#load_tasks`).
pub struct Deletions {
    everywhere: BTreeSet<&'static str>,
    in_set_env: BTreeSet<&'static str>,
    in_broadcast: BTreeSet<&'static str>,
}

impl Deletions {
    /// The rules for one deployment; `fs_ok` tells whether the deploy kernel supports the environment's file system.
    pub fn new(
        server: &ServerConfig,
        cluster: &ClusterConfig,
        req: &DeployRequest,
        job: &Job,
        fs_ok: bool,
    ) -> Self {
        let env = &req.environment;
        let part = &cluster.partitioning;
        let mut all = BTreeSet::new();
        let mut in_set_env = BTreeSet::new();
        let mut in_broadcast = BTreeSet::new();
        if job.deploy_partition.is_none() {
            all.extend([
                "create_partition_table",
                "format_deploy_part",
                "format_tmp_part",
                "format_swap_part",
            ]);
        }
        if !job.broadcast_to_file {
            all.insert("decompress_environment");
        }
        match env.image.kind {
            ImageKind::Dd | ImageKind::Fsa => {
                all.insert("format_deploy_part");
                in_set_env.insert("mount_deploy_part");
            }
            ImageKind::Tar => {
                in_broadcast.insert("mount_deploy_part");
            }
        }
        if !fs_ok {
            all.extend([
                "mount_deploy_part",
                "umount_deploy_part",
                "manage_admin_post_install",
                "manage_user_post_install",
                "check_kernel_files",
                "send_key",
                "install_bootloader",
            ]);
        }
        if env.multipart {
            all.extend(["format_tmp_part", "format_swap_part"]);
        }
        if req.vlan.is_none() {
            all.insert("set_vlan");
        }
        if req.ssh_key.is_none() {
            all.extend(["send_key_in_deploy_env", "send_key"]);
        }
        if req.disable_disk_partitioning {
            all.insert("create_partition_table");
        }
        if req.reformat_tmp.is_none() || part.tmp.is_none() {
            all.insert("format_tmp_part");
        }
        if part.swap.is_none() || env.os != "linux" {
            all.insert("format_swap_part");
        }
        if server.localboot_method == "GrubPXE" || req.disable_bootloader_install {
            all.insert("install_bootloader");
        }
        if env.preinstall.is_none() && cluster.admin_preinstalls.is_empty() {
            all.insert("manage_admin_pre_install");
        }
        if cluster.admin_postinstalls.is_empty() {
            all.insert("manage_admin_post_install");
        }
        if job.deploy_partition.is_some() && job.deploy_partition == part.swap {
            all.insert("format_swap_part");
        }
        if job.deploy_partition.is_some() && job.deploy_partition == part.tmp {
            all.insert("format_tmp_part");
        }
        Deletions {
            everywhere: all,
            in_set_env,
            in_broadcast,
        }
    }

    /// Whether micro-step `micro` is deleted from macro-step slot `slot`.
    pub fn deletes(&self, slot: Slot, micro: &str) -> bool {
        self.everywhere.contains(micro)
            || match slot {
                Slot::SetDeploymentEnv => self.in_set_env.contains(micro),
                Slot::BroadcastEnv => self.in_broadcast.contains(micro),
                Slot::BootNewEnv => false,
            }
    }
}

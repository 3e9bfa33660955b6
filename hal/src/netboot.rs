//! Network boot: choose what a node boots next by writing its boot profile (PXE, iPXE, GRUB).
//!
//! A real backend writes Kadeploy's profile files atomically in the TFTP/HTTP tree (spec §7), so a node
//! never reads a half-written profile. The simulator records the profile per node: the next boot of the
//! node follows it (deploy kernel → deploy environment, local disk → deployed environment).
//!
//! The real services live in the submodules, named after their protocol: [`pxe`] writes the profiles,
//! `dhcp`, `tftp` and `http` serve nodes at boot (embedded in the daemon or in `kabootd`; they need the
//! `netboot` feature).

pub mod atomic;
#[cfg(feature = "netboot")]
pub mod dhcp;
#[cfg(feature = "netboot")]
pub mod fsroot;
#[cfg(feature = "netboot")]
pub mod http;
#[cfg(feature = "netboot")]
pub mod load;
pub mod mac;
#[cfg(feature = "netboot")]
pub mod per_client;
pub mod pxe;
#[cfg(feature = "netboot")]
pub mod services;
#[cfg(feature = "netboot")]
pub mod socket;
pub mod stats;
#[cfg(feature = "netboot")]
pub mod tftp;

pub use mac::Mac;

use crate::node::NodeId;
use crate::outcome::Outcomes;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a node boots at its next network boot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum BootProfile {
    /// The deployment kernel and initrd (Kadeploy's `prod_to_deploy_env`).
    DeployKernel {
        /// Kernel path, relative to the network-boot repository.
        kernel: String,
        /// Initrd path, relative to the network-boot repository.
        initrd: String,
        /// Kernel command line.
        params: String,
    },
    /// Chain-load the local disk (Kadeploy's `deploy_to_deployed_env` without a user profile).
    LocalDisk {
        /// Block device, e.g. `/dev/sda`.
        device: String,
        /// Partition number to boot; 0 boots the device's MBR.
        partition: u32,
        /// The deployed system, for loaders that boot it directly (GrubPXE); `None` chain-loads the
        /// partition.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        system: Option<LocalSystem>,
    },
    /// A user-provided profile (`kadeploy3 -w`) of the user `name`, whose files are `pxe-<name>--<file>`.
    Custom {
        /// The user's login (`FILES_PREFIX` becomes `<userfiles>/pxe-<name>`).
        name: String,
        /// The profile text.
        content: String,
        /// `NODE_SINGULARITY` of each node by host name (`pxe.singularities`); `None` leaves the word as it is,
        /// as Kadeploy does when the request has none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        singularities: Option<BTreeMap<String, String>>,
    },
}

/// The deployed system a loader boots from the local disk without chain-loading it (Kadeploy's GrubPXE
/// `boot_local`): paths are inside the deployed partition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LocalSystem {
    /// The environment's `os`: `linux`, `xen`, `bsd`, `windows` or `other`.
    pub os: String,
    /// Kernel path.
    pub kernel: String,
    /// Initrd path (may be empty).
    pub initrd: String,
    /// Kernel parameters: the environment's, or the cluster's `boot/kernels/user/params` when it has none.
    pub params: String,
    /// Hypervisor path (xen).
    pub hypervisor: String,
    /// Hypervisor parameters (xen).
    pub hypervisor_params: String,
}

/// Writes boot profiles for node sets.
#[async_trait]
pub trait NetBoot: Send + Sync {
    /// Makes every node of `nodes` boot `profile` at its next network boot; one outcome per node, in order.
    /// Nothing changes on a node until that boot: it answers probes as the profile's environment only
    /// once the boot after a reboot is over, never as the reboot is accepted.
    async fn set_profile(&self, nodes: &[NodeId], profile: &BootProfile) -> Outcomes;
}

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
    },
    /// A user-provided profile (`kadeploy3 -w`), stored under `name`.
    Custom {
        /// Name of the profile.
        name: String,
        /// The profile text.
        content: String,
    },
}

/// Writes boot profiles for node sets.
#[async_trait]
pub trait NetBoot: Send + Sync {
    /// Makes every node of `nodes` boot `profile` at its next network boot; one outcome per node, in order.
    /// Nothing changes on a node until that boot: it answers probes as the profile's environment only
    /// once the boot after a reboot is over, never as the reboot is accepted.
    async fn set_profile(&self, nodes: &[NodeId], profile: &BootProfile) -> Outcomes;
}

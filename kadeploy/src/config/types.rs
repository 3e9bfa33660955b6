//! Validated, typed configuration the engine consumes (built from the wire structs of Kadeploy's YAML).

use crate::engine::custom::CustomMicro;
pub use crate::engine::slot::{
    BootNewEnvKind, BroadcastEnvKind, MacroKind, SetDeploymentEnvKind, Slot,
};
use crate::expr::Expr;
use hal::netboot::Mac;
use hal::{NodeInfo, PowerLevel};
use std::collections::BTreeMap;

/// The whole configuration of a server: global settings and its clusters.
#[derive(Clone, Debug)]
pub struct Config {
    /// `server.conf`.
    pub server: ServerConfig,
    /// Clusters in the order of `clusters.conf`.
    pub clusters: Vec<ClusterConfig>,
}

/// Global settings (`server.conf`) the engine uses.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `network/ports/ssh` (22).
    pub ssh_port: u16,
    /// `network/ports/test_deploy_env` (25300): open in the deploy env, closed in the deployed one.
    pub test_deploy_env_port: u16,
    /// `windows/reboot/size` (50).
    pub reboot_window: usize,
    /// `windows/reboot/sleep_time` in seconds (10).
    pub reboot_window_sleep: f64,
    /// `windows/check/size` (50).
    pub check_window: usize,
    /// `environments/deployment/extraction_dir` (`/mnt/dest`).
    pub extraction_dir: String,
    /// `environments/deployment/rambin_dir` (`/rambin`).
    pub rambin_dir: String,
    /// `external/mkfs`: extra mkfs arguments per file system type.
    pub mkfs_args: BTreeMap<String, String>,
    /// `external/tar`: extra tar options.
    pub tar_options: String,
    /// `verbosity/clients` (3).
    pub verbosity: u8,
    /// Method of `pxe/localboot` (`PXElinux`, `GPXElinux`, `IPXE`, `GrubPXE`).
    pub localboot_method: String,
    /// `external/taktuk/connector` with `DEFAULT_CONNECTOR` replaced: `TAKTUK_CONNECTOR` of the custom
    /// broadcast command.
    pub taktuk_connector: String,
    /// `network/vlan/*`: `None` when `set_cmd` is empty (VLAN management disabled); an empty
    /// `hostname_suffix` names the nodes in a VLAN by their own names, as Kadeploy 3.3's formula does.
    pub vlan: Option<VlanConfig>,
}

/// `network/vlan/*`: how nodes are moved between VLANs (Kadeploy's `set_vlan`, KaVLAN on Grid'5000).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VlanConfig {
    /// `hostname_suffix`, e.g. `-kavlan-VLAN_ID`: a node's name in VLAN `id` is its short name, this suffix
    /// with `VLAN_ID` replaced by `id`, then its domain.
    pub hostname_suffix: String,
    /// `set_cmd`, e.g. `kavlan NODES -s -i VLAN_ID -u USER`, run on the server.
    pub set_cmd: String,
}

impl VlanConfig {
    /// The name of `host` (a fully qualified name) in VLAN `id`: `<short><suffix>.<domain>`.
    pub fn host_in_vlan(&self, host: &str, id: &str) -> String {
        let suffix = self.hostname_suffix.replace("VLAN_ID", id);
        match host.split_once('.') {
            Some((short, domain)) => format!("{short}{suffix}.{domain}"),
            None => format!("{host}{suffix}"),
        }
    }

    /// The `set_cmd` moving `hosts` into VLAN `id` for `user` (`NODES` = ` -m h1 -m h2…`); a user name that
    /// is not a plain word is single-quoted (it comes from the client's authentication).
    pub fn command(&self, hosts: &[&str], id: &str, user: &str) -> String {
        let nodes: String = hosts.iter().map(|h| format!(" -m {h}")).collect();
        let plain = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
        let user = if !user.is_empty() && user.chars().all(plain) {
            user.to_string()
        } else {
            format!("'{}'", user.replace('\'', r"'\''"))
        };
        self.set_cmd
            .replace("NODES", &nodes)
            .replace("VLAN_ID", id)
            .replace("USER", &user)
    }
}

/// One cluster: its nodes and its cluster-specific file.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Cluster name.
    pub name: String,
    /// Display prefix (`prefix`), when given.
    pub prefix: Option<String>,
    /// Nodes, in configuration order; `NodeId(i)` is `nodes[i]`.
    pub nodes: Vec<NodeInfo>,
    /// `partitioning/*`.
    pub partitioning: Partitioning,
    /// `boot/*`.
    pub boot: BootConfig,
    /// `timeouts/reboot` (120): expression of `n`.
    pub timeout_reboot: Expr,
    /// `timeouts/kexec` (60): expression of `n`.
    pub timeout_kexec: Expr,
    /// `kexec/repository` (`/dev/shm/kexec_repository`).
    pub kexec_repository: String,
    /// `localops/broadcastenv/decompress` (true); false adds `decompress_environment`.
    pub broadcast_decompress: bool,
    /// `localops/broadcastenv/cmd`: the server-side command of `BroadcastEnvCustom` (`ENVFILE`, `NODEFILE`,
    /// `TAKTUK_CONNECTOR`, `DECOMPRESS` substituted).
    pub broadcast_cmd: Option<String>,
    /// `preinstall/files`.
    pub admin_preinstalls: Vec<Archive>,
    /// `postinstall/files`.
    pub admin_postinstalls: Vec<Archive>,
    /// `automata/macrosteps`, or the default automata.
    pub automata: Automata,
    /// Power levels that have a command in `remoteops/reboot` (for reports; the backend decides).
    pub reboot_levels: Vec<PowerLevel>,
    /// `hooks/use_ip_to_deploy` (false).
    pub use_ip_to_deploy: bool,
    /// Boot interfaces given by `clusters.conf`'s new `mac` key, by node name (DHCP reservations).
    pub macs: BTreeMap<String, Mac>,
    /// Switches given by `clusters.conf`'s new `switch` key, by node name (broadcast order).
    pub switches: BTreeMap<String, String>,
}

/// `partitioning/*` of a cluster file.
#[derive(Clone, Debug)]
pub struct Partitioning {
    /// `block_device`, e.g. `/dev/sda`.
    pub block_device: String,
    /// `partitions/deploy`.
    pub deploy: u32,
    /// `partitions/swap`; `None` when `disable_swap`.
    pub swap: Option<u32>,
    /// `partitions/prod`; `None` for -1.
    pub prod: Option<u32>,
    /// `partitions/tmp`; `None` for -1.
    pub tmp: Option<u32>,
    /// Contents of the partitioning `script`.
    pub script: String,
}

/// `boot/*` of a cluster file.
#[derive(Clone, Debug)]
pub struct BootConfig {
    /// `sleep_time_before_ping` in seconds (20).
    pub sleep_time_before_ping: f64,
    /// `probe_period`: seconds between two probe rounds of `wait_reboot` (5).
    pub probe_period: f64,
    /// `probe_timeout`: seconds a probe waits for a port to accept (2).
    pub probe_timeout: f64,
    /// Contents of the `install_bootloader` script.
    pub install_bootloader: String,
    /// `kernels/user/params`.
    pub user_params: String,
    /// `kernels/deploy/vmlinuz`.
    pub deploy_vmlinuz: String,
    /// `kernels/deploy/initrd`.
    pub deploy_initrd: String,
    /// `kernels/deploy/params`.
    pub deploy_params: String,
    /// `kernels/deploy/drivers`.
    pub deploy_drivers: Vec<String>,
    /// `kernels/deploy/supported_fs` (`ext2, ext3, ext4, vfat`).
    pub supported_fs: Vec<String>,
}

/// An admin pre/post-install archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Archive {
    /// Path of the archive.
    pub file: String,
    /// `tgz`, `tbz2` or `txz`.
    pub format: String,
    /// Script to run, `None` for `none`.
    pub script: Option<String>,
}

/// The three macro-step slots of a deployment, each an ordered list of instances (fallback order).
#[derive(Clone, Debug, PartialEq)]
pub struct Automata {
    /// `SetDeploymentEnv` instances.
    pub set_deployment_env: Vec<MacroInstance>,
    /// `BroadcastEnv` instances.
    pub broadcast_env: Vec<MacroInstance>,
    /// `BootNewEnv` instances.
    pub boot_new_env: Vec<MacroInstance>,
}

impl Automata {
    /// The instances of `slot`, in fallback order.
    pub fn slot(&self, slot: Slot) -> &[MacroInstance] {
        match slot {
            Slot::SetDeploymentEnv => &self.set_deployment_env,
            Slot::BroadcastEnv => &self.broadcast_env,
            Slot::BootNewEnv => &self.boot_new_env,
        }
    }
}

/// One configured macro-step implementation with its settings.
#[derive(Clone, Debug, PartialEq)]
pub struct MacroInstance {
    /// Implementation type, e.g. `Untrusted`, `Chain`, `Kexec` (shown with its name within its slot).
    pub kind: MacroKind,
    /// Extra tries after the first (0 = one try).
    pub retries: u32,
    /// Seconds for the whole instance; 0 = none.
    pub timeout: f64,
    /// Nodes leave the instance as soon as they are done (true), or all together at its end.
    pub raisable: bool,
    /// Stop the nodes before this instance.
    pub breakpoint: bool,
    /// Per-micro-step settings, by micro-step name.
    pub microsteps: BTreeMap<String, MicroSettings>,
}

/// Settings of one micro-step inside an instance (`automata/macrosteps/<M>[i]/microsteps`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MicroSettings {
    /// Seconds; 0 = none.
    pub timeout: f64,
    /// Extra tries after the first.
    pub retries: u32,
    /// Default true.
    pub raisable: bool,
    /// Stop the nodes before this micro-step.
    pub breakpoint: bool,
    /// The admin's custom operations of the micro-step (`substitute`, `pre-ops`, `post-ops`).
    pub custom: CustomMicro,
}

//! Wire structs of a cluster-specific file (`ClusterSpecificConfig#load`).

use super::AutomataSection;
use serde::{Deserialize, Serialize};

/// A cluster-specific file, named by `conf_file` in `clusters.conf`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ClusterFile {
    /// `partitioning/*`: mandatory.
    pub partitioning: Option<PartitioningSection>,
    /// `boot/*`: mandatory.
    pub boot: Option<BootSection>,
    /// `remoteops/*`.
    pub remoteops: RemoteOpsSection,
    /// `localops/*`.
    pub localops: LocalOps,
    /// `preinstall/*`: admin pre-install archives.
    pub preinstall: Option<InstallSection>,
    /// `postinstall/*`: admin post-install archives.
    pub postinstall: Option<InstallSection>,
    /// `automata/*`: the default automata is used when absent.
    pub automata: Option<AutomataSection>,
    /// `timeouts/*`.
    pub timeouts: Timeouts,
    /// `kexec/*`.
    pub kexec: Kexec,
    /// `pxe/*`.
    pub pxe: ClusterPxe,
    /// `hooks/*`.
    pub hooks: ClusterHooks,
}

/// `partitioning/*`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PartitioningSection {
    /// `block_device`: mandatory, e.g. `/dev/sda`.
    pub block_device: Option<String>,
    /// `disable_swap` (false).
    pub disable_swap: bool,
    /// `partitions/*`: mandatory.
    pub partitions: Option<Partitions>,
    /// `script`: mandatory partitioning script file.
    pub script: Option<String>,
}

/// `partitioning/partitions/*`: partition numbers, -1 for none.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Partitions {
    /// `swap`: mandatory unless `disable_swap`.
    pub swap: Option<i64>,
    /// `prod` (-1).
    pub prod: i64,
    /// `deploy`: mandatory.
    pub deploy: Option<i64>,
    /// `tmp` (-1).
    pub tmp: i64,
}

impl Default for Partitions {
    fn default() -> Self {
        Partitions {
            swap: None,
            prod: -1,
            deploy: None,
            tmp: -1,
        }
    }
}

/// `boot/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct BootSection {
    /// `sleep_time_before_ping` in seconds (20).
    pub sleep_time_before_ping: u64,
    /// `probe_period`: seconds between two probe rounds of `wait_reboot` (5, Kadeploy's fixed period).
    pub probe_period: f64,
    /// `probe_timeout`: seconds a probe waits for a node's port to accept (2).
    pub probe_timeout: f64,
    /// `install_bootloader`: mandatory bootloader script file.
    pub install_bootloader: Option<String>,
    /// `kernels/*`: mandatory (for `deploy`).
    pub kernels: Option<Kernels>,
    /// `next_boot_device/*`: the boot device set out of band before each reboot (off when absent).
    pub next_boot_device: Option<NextBootDevice>,
}

impl Default for BootSection {
    fn default() -> Self {
        BootSection {
            sleep_time_before_ping: 20,
            probe_period: 5.0,
            probe_timeout: 2.0,
            install_bootloader: None,
            kernels: None,
            next_boot_device: None,
        }
    }
}

/// `boot/next_boot_device/*`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct NextBootDevice {
    /// `device`: mandatory, `pxe`, `disk` or `auto` (PXE before the deploy kernel, the disk before the
    /// deployed system).
    pub device: Option<String>,
    /// `persistent` (false): for every future boot, not only the next one.
    pub persistent: bool,
    /// `efiboot` (false): ask for an EFI boot.
    pub efiboot: bool,
}

/// `boot/kernels/*`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Kernels {
    /// `user/*`.
    pub user: UserKernel,
    /// `deploy/*`: mandatory.
    pub deploy: Option<DeployKernel>,
    /// `nfsroot/*`.
    pub nfsroot: NfsrootKernel,
}

/// `boot/kernels/user/*`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct UserKernel {
    /// `params` (`''`): prepended to the environment's kernel parameters.
    pub params: String,
}

/// `boot/kernels/deploy/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct DeployKernel {
    /// `vmlinuz`: mandatory, relative to the `networkboot` repository.
    pub vmlinuz: Option<String>,
    /// `initrd`: mandatory, relative to the `networkboot` repository.
    pub initrd: Option<String>,
    /// `params` (`''`).
    pub params: String,
    /// `drivers`: comma-separated (`''`).
    pub drivers: String,
    /// `supported_fs`: comma-separated (`ext2, ext3, ext4, vfat`).
    pub supported_fs: String,
}

impl Default for DeployKernel {
    fn default() -> Self {
        DeployKernel {
            vmlinuz: None,
            initrd: None,
            params: String::new(),
            drivers: String::new(),
            supported_fs: "ext2, ext3, ext4, vfat".into(),
        }
    }
}

/// `boot/kernels/nfsroot/*`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct NfsrootKernel {
    /// `vmlinuz` (`''`).
    pub vmlinuz: String,
    /// `params` (`''`).
    pub params: String,
}

/// `remoteops/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct RemoteOpsSection {
    /// `level_name` (`[soft, hard, very_hard]`).
    pub level_name: Vec<String>,
    /// `reboot`: at most one command per level.
    pub reboot: Vec<Operation>,
    /// `power_on`: at most one command per level.
    pub power_on: Vec<Operation>,
    /// `power_off`: at most one command per level.
    pub power_off: Vec<Operation>,
    /// `power_status`: at most one command.
    pub power_status: Vec<Operation>,
    /// `console`: at most one command.
    pub console: Vec<Operation>,
}

impl Default for RemoteOpsSection {
    fn default() -> Self {
        RemoteOpsSection {
            level_name: vec!["soft".into(), "hard".into(), "very_hard".into()],
            reboot: Vec::new(),
            power_on: Vec::new(),
            power_off: Vec::new(),
            power_status: Vec::new(),
            console: Vec::new(),
        }
    }
}

/// An item of a `remoteops` list.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Operation {
    /// `name`: the level (mandatory for reboot and power commands).
    pub name: Option<String>,
    /// `cmd`: mandatory; `HOSTNAME_FQDN`, `HOSTNAME_SHORT`, `DEFAULT_CONNECTOR`, `GROUP_FQDN`, `GROUP_SHORT`.
    pub cmd: Option<String>,
    /// `group`: file listing node groups, one comma-separated group per line.
    pub group: Option<String>,
}

/// `localops/*`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct LocalOps {
    /// `broadcastenv/*`.
    pub broadcastenv: BroadcastEnvOps,
}

/// `localops/broadcastenv/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct BroadcastEnvOps {
    /// `cmd`: for `BroadcastEnvCustom`.
    pub cmd: Option<String>,
    /// `decompress` (true).
    pub decompress: bool,
}

impl Default for BroadcastEnvOps {
    fn default() -> Self {
        BroadcastEnvOps {
            cmd: None,
            decompress: true,
        }
    }
}

/// `preinstall/*` or `postinstall/*`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct InstallSection {
    /// `files`.
    pub files: Vec<ArchiveEntry>,
}

/// An item of `preinstall/files` or `postinstall/files`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ArchiveEntry {
    /// `file`: mandatory.
    pub file: Option<String>,
    /// `format`: `tgz`, `tbz2` or `txz`, mandatory.
    pub format: Option<String>,
    /// `script`: mandatory; `none` runs nothing.
    pub script: Option<String>,
}

/// `timeouts/*`: Integers or Ruby expressions of `n`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Timeouts {
    /// `reboot` (120).
    pub reboot: String,
    /// `kexec` (60).
    pub kexec: String,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            reboot: "120".into(),
            kexec: "60".into(),
        }
    }
}

/// `kexec/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Kexec {
    /// `repository` (`/dev/shm/kexec_repository`).
    pub repository: String,
}

impl Default for Kexec {
    fn default() -> Self {
        Kexec {
            repository: "/dev/shm/kexec_repository".into(),
        }
    }
}

/// `pxe/*` of a cluster.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ClusterPxe {
    /// `headers/*`.
    pub headers: PxeHeaders,
}

/// `pxe/headers/*`: text put at the top of the generated profiles (`''`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PxeHeaders {
    /// `dhcp`.
    pub dhcp: String,
    /// `localboot`.
    pub localboot: String,
    /// `networkboot`.
    pub networkboot: String,
}

/// `hooks/*` of a cluster.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ClusterHooks {
    /// `use_ip_to_deploy` (false).
    pub use_ip_to_deploy: bool,
}

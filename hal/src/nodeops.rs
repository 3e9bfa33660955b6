//! Node operations: what Kadeploy's micro-steps run on the nodes, as typed operations.
//!
//! A real backend translates each [`Operation`] into a command over SSH (compatible with Kadeploy deploy
//! kernels: root, sshd, a POSIX shell) or into a call to our node agent, runs it on every node of the set
//! concurrently, and reports one outcome per node: exit status 0 is OK, anything else is
//! [`crate::ErrorKind::CommandFailed`] with the command's stderr as message; a lost connection is
//! [`crate::ErrorKind::Unreachable`]. The simulator models each operation's duration per node (disk rate
//! for formats and writes, fixed costs for the rest) and the failures its configuration injects.

use crate::broadcast::{ImageKind, WriteTarget};
use crate::node::NodeId;
use crate::outcome::Outcomes;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// `KEY=value` pairs passed to scripts (Kadeploy's `KADEPLOY_*` variables), in order.
pub type ScriptEnv = Vec<(String, String)>;

/// One file system of an fsarchiver image and the device it is restored to (an environment's
/// `options/partitions` entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsaPart {
    /// The file system's id inside the archive.
    pub id: u32,
    /// The device it is restored to (`/dev/sda2`).
    pub device: String,
}

/// One operation run on every node of a set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum Operation {
    /// Append public keys to an `authorized_keys` file (`send_key_in_deploy_env`, `send_key`).
    SendKey {
        /// The keys, one per line.
        keys: String,
        /// The `authorized_keys` file to append to.
        destination: String,
    },
    /// Stream an admin script to the nodes and run it with `env` (partitioning, bootloader).
    RunScript {
        /// What the script is for, e.g. `partitioning` or `bootloader`.
        purpose: String,
        /// The script itself.
        script: String,
        /// Environment of the script.
        env: ScriptEnv,
    },
    /// Create a file system (`mkfs -t <fs> <args> <device>`).
    Format {
        /// Partition to format.
        device: String,
        /// File system type.
        fs: String,
        /// Extra `mkfs` arguments.
        args: String,
    },
    /// Initialise a swap partition (`mkswap <device>`).
    MakeSwap {
        /// Swap partition.
        device: String,
    },
    /// Mount `device` on `dir`.
    Mount {
        /// Partition to mount.
        device: String,
        /// Mount point.
        dir: String,
    },
    /// Lazily unmount `target` (`umount -l`).
    Umount {
        /// Partition or mount point.
        target: String,
    },
    /// Copy a server-side file to every node.
    SendFile {
        /// Path of the file on the server.
        source: String,
        /// Path of the copy on the node.
        destination: String,
        /// Size in bytes (for progress and models).
        size: u64,
    },
    /// Extract a pre/post-install archive into `dir` and run its script (`script` `none` runs nothing).
    InstallArchive {
        /// Path of the archive on the server.
        archive: String,
        /// Where to extract it on the node.
        dir: String,
        /// Script to run after extraction, relative to `dir`, with arguments.
        script: Option<String>,
        /// Environment of the script.
        env: ScriptEnv,
    },
    /// Write an image already on the node (a non-decompressing broadcast's temporary file) to `target`.
    WriteImage {
        /// Path of the image on the node.
        source: String,
        /// Kind of image.
        kind: ImageKind,
        /// Where to write it.
        target: WriteTarget,
        /// The file systems of an fsarchiver image to restore (`id=<id>,dest=<device>` each); empty restores
        /// id 0 to `target.device`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fsa_parts: Vec<FsaPart>,
    },
    /// Check that the environment's kernel and initrd exist under `dir`.
    CheckKernelFiles {
        /// Root of the extracted environment.
        dir: String,
        /// Kernel path inside the environment.
        kernel: String,
        /// Initrd path inside the environment (may be empty).
        initrd: String,
    },
    /// Load a kernel with kexec and jump into it after a short delay (the node reboots).
    Kexec {
        /// Kernel path on the node.
        kernel: String,
        /// Initrd path on the node (may be empty).
        initrd: String,
        /// Kernel command line.
        params: String,
    },
    /// Reboot from the deploy environment (`reboot -f`, detached).
    RebootFromDeployEnv,
    /// Flush file systems (`sync`).
    Sync,
    /// Check that `/` is mounted from `device` (Kadeploy's `check_nodes("prod_env_booted")`).
    CheckRootDevice {
        /// Expected root device.
        device: String,
    },
    /// Run an arbitrary shell command with `env` (custom operations, `load_drivers`).
    Exec {
        /// The command line.
        command: String,
        /// Environment of the command.
        env: ScriptEnv,
    },
    /// Do nothing for a short while (Kadeploy's `dummy` micro-step, for tests).
    Dummy,
}

impl Operation {
    /// A short name for logs and models.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::SendKey { .. } => "send_key",
            Operation::RunScript { .. } => "run_script",
            Operation::Format { .. } => "format",
            Operation::MakeSwap { .. } => "make_swap",
            Operation::Mount { .. } => "mount",
            Operation::Umount { .. } => "umount",
            Operation::SendFile { .. } => "send_file",
            Operation::InstallArchive { .. } => "install_archive",
            Operation::WriteImage { .. } => "write_image",
            Operation::CheckKernelFiles { .. } => "check_kernel_files",
            Operation::Kexec { .. } => "kexec",
            Operation::RebootFromDeployEnv => "reboot_from_deploy_env",
            Operation::Sync => "sync",
            Operation::CheckRootDevice { .. } => "check_root_device",
            Operation::Exec { .. } => "exec",
            Operation::Dummy => "dummy",
        }
    }
}

/// Runs typed operations on node sets.
#[async_trait]
pub trait NodeOps: Send + Sync {
    /// Runs `op` on every node of `nodes`, concurrently; one outcome per node, in order. A node that
    /// cannot be contacted (no server, powered off) fails alone with [`crate::ErrorKind::Unreachable`];
    /// [`Operation::Dummy`] touches no node.
    async fn run(&self, op: &Operation, nodes: &[NodeId]) -> Outcomes;
}

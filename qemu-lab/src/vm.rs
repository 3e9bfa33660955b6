//! QEMU virtual machines of the lab: disks, NICs with the iPXE ROM, serial consoles and QMP.

mod accel;
mod disk;
mod firmware;
pub mod firmware_time;
mod script;

pub use accel::probe_accel;
pub use disk::{DiskFormat, create_disk};
pub use firmware::{Firmware, NicBoot, OVMF_CODE, OVMF_VARS, VARS_FILE};
pub use script::{KVM_CPU, TCG_CPU, qemu_args, sh_quote, start_script};

use crate::net::{LabNet, alive, signal, wait_gone};
use crate::qmp::{Qmp, QmpError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A QEMU accelerator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Software emulation (works everywhere, slow).
    Tcg,
    /// Hardware virtualisation through `/dev/kvm`.
    Kvm,
}

/// One lab VM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSpec {
    /// The VM's name (`node-1`); also its directory under `dir`.
    pub name: String,
    /// The NIC's MAC address (`52:54:00:..`), the key of its DHCP reservation.
    pub mac: String,
    /// The tap device in the lab namespace ([`LabNet::tap`]).
    pub tap: String,
    /// The disk image (`.qcow2` for qcow2, anything else raw).
    pub disk: PathBuf,
    /// The disk size for [`create_disk`].
    pub disk_size_mib: u64,
    /// Guest memory.
    pub memory_mib: u32,
    /// Virtual CPUs.
    pub cpus: u32,
    /// The accelerator ([`probe_accel`]).
    pub accel: Accel,
    /// The lab directory: the VM's files go to `<dir>/<name>/`.
    pub dir: PathBuf,
    /// SeaBIOS or OVMF.
    #[serde(default)]
    pub firmware: Firmware,
    /// What network-boots the VM (QEMU's iPXE ROM, or OVMF's own PXE or HTTP boot).
    #[serde(default)]
    pub nic_boot: NicBoot,
}

impl VmSpec {
    /// `<dir>/<name>`: start.sh, qemu.pid, console.sock, console.log, qmp.sock, bios.log.
    pub fn vm_dir(&self) -> PathBuf {
        self.dir.join(&self.name)
    }
}

/// The MAC address of lab VM `index`: `52:54:00:1a:<index / 256>:<index % 256>`.
pub fn lab_mac(index: usize) -> String {
    format!(
        "52:54:00:1a:{:02x}:{:02x}",
        (index >> 8) & 0xff,
        index & 0xff
    )
}

/// Why a VM operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A program could not be started.
    #[error("cannot run {command}: {source}")]
    Spawn {
        /// The program.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A program exited non-zero.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command.
        command: String,
        /// Its standard error.
        stderr: String,
    },
    /// The spec is unusable.
    #[error("VM spec: {0}")]
    Spec(String),
    /// QEMU did not stop.
    #[error("QEMU pid {0} did not exit")]
    Stuck(u32),
    /// A QMP exchange failed.
    #[error(transparent)]
    Qmp(#[from] QmpError),
}

impl VmError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VmError + use<> {
        let path = path.to_path_buf();
        move |source| VmError::Io { path, source }
    }
}

fn validate(spec: &VmSpec) -> Result<(), VmError> {
    let name_ok = !spec.name.is_empty()
        && spec
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !name_ok {
        return Err(VmError::Spec(format!("name {:?}", spec.name)));
    }
    let mac: Vec<&str> = spec.mac.split(':').collect();
    let mac_ok = mac.len() == 6
        && mac
            .iter()
            .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()));
    if !mac_ok {
        return Err(VmError::Spec(format!("MAC {:?}", spec.mac)));
    }
    let tap_ok = !spec.tap.is_empty()
        && spec.tap.len() < 16
        && spec
            .tap
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !tap_ok {
        return Err(VmError::Spec(format!("tap {:?}", spec.tap)));
    }
    if spec.firmware == Firmware::Bios && spec.nic_boot != NicBoot::IpxeRom {
        return Err(VmError::Spec(
            "only UEFI firmware network-boots without the iPXE ROM".into(),
        ));
    }
    if spec.memory_mib == 0 || spec.cpus == 0 {
        return Err(VmError::Spec("memory and cpus must be positive".into()));
    }
    Ok(())
}

/// Writes `<dir>/<name>/start.sh` (mode 755) for `spec` in `net`'s namespace; returns its path.
pub fn write_start_script(spec: &VmSpec, net: &LabNet) -> Result<PathBuf, VmError> {
    validate(spec)?;
    let dir = spec.vm_dir();
    std::fs::create_dir_all(&dir).map_err(VmError::io(&dir))?;
    let path = dir.join("start.sh");
    std::fs::write(&path, start_script(spec, net.ns())).map_err(VmError::io(&path))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .map_err(VmError::io(&path))?;
    Ok(path)
}

/// A lab VM's files and process.
#[derive(Clone, Debug)]
pub struct Vm {
    spec: VmSpec,
}

impl Vm {
    /// The VM of `spec` (nothing is started or written).
    pub fn new(spec: VmSpec) -> Vm {
        Vm { spec }
    }

    /// The spec.
    pub fn spec(&self) -> &VmSpec {
        &self.spec
    }

    /// `<dir>/<name>/start.sh`.
    pub fn start_script(&self) -> PathBuf {
        self.spec.vm_dir().join("start.sh")
    }

    /// `<dir>/<name>/qemu.pid`.
    pub fn pidfile(&self) -> PathBuf {
        self.spec.vm_dir().join("qemu.pid")
    }

    /// `<dir>/<name>/console.sock`: the serial console (one client at a time).
    pub fn console_socket(&self) -> PathBuf {
        self.spec.vm_dir().join("console.sock")
    }

    /// `<dir>/<name>/console.log`: everything the serial console printed, across restarts.
    pub fn console_log(&self) -> PathBuf {
        self.spec.vm_dir().join("console.log")
    }

    /// `<dir>/<name>/qmp.sock`.
    pub fn qmp_socket(&self) -> PathBuf {
        self.spec.vm_dir().join("qmp.sock")
    }

    /// Runs `start.sh` (written by [`write_start_script`]) and returns QEMU's PID.
    pub fn start(&self) -> Result<u32, VmError> {
        let script = self.start_script();
        let out = std::process::Command::new(&script)
            .output()
            .map_err(|source| VmError::Spawn {
                command: script.display().to_string(),
                source,
            })?;
        if !out.status.success() {
            return Err(VmError::Command {
                command: script.display().to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        self.pid().ok_or_else(|| VmError::Command {
            command: script.display().to_string(),
            stderr: "no live QEMU after start".into(),
        })
    }

    /// QEMU's PID from the pidfile, when that process is alive.
    pub fn pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.pidfile())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        alive(pid).then_some(pid)
    }

    /// True when QEMU runs (the guest may be halted or paused).
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// Kills QEMU (SIGKILL: a pulled plug) and waits until it is gone.
    pub fn kill(&self) -> Result<(), VmError> {
        if let Some(pid) = self.pid() {
            signal(pid, "KILL");
            if !wait_gone(&[pid], Duration::from_secs(5)) {
                return Err(VmError::Stuck(pid));
            }
            let _ = std::fs::remove_file(self.pidfile());
        }
        Ok(())
    }

    /// A negotiated QMP connection (reads time out after `timeout`).
    pub fn qmp(&self, timeout: Duration) -> Result<Qmp, VmError> {
        Ok(Qmp::connect(&self.qmp_socket(), timeout)?)
    }
}

//! What the lab Redfish service does to its VM: the resets of `ComputerSystem.Reset` and the one-time boot
//! override, applied through QMP by changing the NIC's `bootindex` (QEMU rebuilds the firmware's boot
//! order at each reset) just before the reset that boots, and restoring it right after.

use crate::bmc::vm::Vm;
use crate::qmp::{Qmp, QmpError};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The NIC's boot index when the network boots first (the lab's default, see `vm::script`).
const NET_FIRST: u64 = 1;
/// The NIC's boot index that puts it after the disk (`bootindex=2`).
const NET_AFTER_DISK: u64 = 3;
/// Longest wait for each QMP read or write.
const QMP_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections tried (300 ms apart) after a power-on before QMP is given up.
const QMP_START_TRIES: u32 = 20;

/// Why a reset failed.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// Starting or stopping the VM failed.
    #[error(transparent)]
    Vm(#[from] crate::bmc::vm::VmError),
    /// QMP failed.
    #[error("QMP: {0}")]
    Qmp(String),
}

/// One VM as its Redfish service drives it.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Power on/off through the start script and QMP (shared with `kalab-bmc`).
    pub vm: Vm,
    /// The QMP socket.
    pub qmp: PathBuf,
}

/// Runs `f` on a QMP connection to `sock`, off the async threads, bounded in time.
async fn with_qmp<T: Send + 'static>(
    sock: &Path,
    f: impl FnOnce(&mut Qmp) -> Result<T, QmpError> + Send + 'static,
) -> Result<T, MachineError> {
    let sock = sock.to_path_buf();
    let job = tokio::task::spawn_blocking(move || {
        let mut qmp = Qmp::connect(&sock, QMP_TIMEOUT)?;
        f(&mut qmp)
    });
    match tokio::time::timeout(QMP_TIMEOUT * 5, job).await {
        Ok(Ok(result)) => result.map_err(|e| MachineError::Qmp(e.to_string())),
        Ok(Err(e)) => Err(MachineError::Qmp(format!("task failed: {e}"))),
        Err(_) => Err(MachineError::Qmp("no answer in time".into())),
    }
}

/// Sets the `bootindex` of every virtio NIC of the machine.
fn set_nic_bootindex(qmp: &mut Qmp, index: u64) -> Result<(), QmpError> {
    let base = "/machine/peripheral-anon";
    let list = qmp.execute("qom-list", Some(json!({"path": base})))?;
    let nics: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"].as_str() == Some("child<virtio-net-pci>"))
        .filter_map(|e| e["name"].as_str().map(|n| format!("{base}/{n}")))
        .collect();
    for path in nics {
        qmp.execute(
            "qom-set",
            Some(json!({"path": path, "property": "bootindex", "value": index})),
        )?;
    }
    Ok(())
}

impl Machine {
    /// True when the VM runs.
    pub fn is_on(&self) -> bool {
        self.vm.is_on()
    }

    /// Powers on; with `network_first`, the first boot uses that order (a reset right after the start).
    pub async fn power_on(&self, network_first: Option<bool>) -> Result<(), MachineError> {
        let was_on = self.vm.is_on();
        self.vm.power_on().await?;
        match network_first {
            // A VM starts with the network first: only the disk needs a reset with another order, once
            // QMP answers. Before, every override reset the VM right after its start, which failed the
            // power-on (seen with `next_boot_device: auto`, whose Pxe override precedes each power-on).
            Some(false) if !was_on => {
                let mut tries = 0;
                loop {
                    match self.reset_with(Some(false)).await {
                        Err(MachineError::Qmp(why)) if tries < QMP_START_TRIES => {
                            tracing::debug!(%why, "QMP not ready after the power-on, retrying");
                            tries += 1;
                            tokio::time::sleep(Duration::from_millis(300)).await;
                        }
                        other => return other,
                    }
                }
            }
            _ => Ok(()),
        }
    }

    /// Immediate power off.
    pub async fn force_off(&self) -> Result<(), MachineError> {
        Ok(self.vm.power_off().await?)
    }

    /// An ACPI power button press (the guest decides).
    pub async fn graceful_shutdown(&self) -> Result<(), MachineError> {
        if !self.vm.is_on() {
            return Ok(());
        }
        with_qmp(&self.qmp, |q| {
            q.execute("system_powerdown", None).map(|_| ())
        })
        .await
    }

    /// A hard reset (power on when off), booting with `network_first` when given.
    pub async fn force_restart(&self, network_first: Option<bool>) -> Result<(), MachineError> {
        if !self.vm.is_on() {
            return self.power_on(network_first).await;
        }
        self.reset_with(network_first).await
    }

    /// Off, then on.
    pub async fn power_cycle(&self, network_first: Option<bool>) -> Result<(), MachineError> {
        self.vm.power_off().await?;
        self.power_on(network_first).await
    }

    /// `system_reset`, with the boot order of `network_first` for this boot only.
    async fn reset_with(&self, network_first: Option<bool>) -> Result<(), MachineError> {
        with_qmp(&self.qmp, move |q| {
            if let Some(first) = network_first {
                set_nic_bootindex(q, if first { NET_FIRST } else { NET_AFTER_DISK })?;
            }
            let reset = q.execute("system_reset", None).map(|_: Value| ());
            if network_first.is_some() {
                // The firmware's order was fixed by the reset; the next boots use the default again.
                set_nic_bootindex(q, NET_FIRST)?;
            }
            reset
        })
        .await
    }
}

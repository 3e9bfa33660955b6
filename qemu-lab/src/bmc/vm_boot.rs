//! How the BMC makes its VM boot a device: the boot order of the running QEMU set over QMP (see
//! [`super::bootorder`]), a reset, and a start that waits for the order before the firmware runs.
//!
//! QEMU hands the order to the firmware when the firmware first reads it after a reset, so the order
//! must stay until the firmware has booted; a reset in the first instants of a QEMU process can hang
//! SeaBIOS, so a VM the BMC starts for an override is started paused (the start script adds `-S` when
//! `KALAB_START_PAUSED` is set), given the order, reset and resumed.

use super::bootorder::{self, BootEntry};
use super::vm::{BootDefaults, QMP_TIMEOUT, Vm, VmError, with_qmp};
use crate::qmp::{Qmp, QmpError};
use hal::power::ipmi::bootdev::BootDevice;
use tracing::{info, warn};

/// The boot order QEMU process `pid` was started with: read now the first time, remembered after.
fn own_order(qmp: &mut Qmp, pid: u32, defaults: &BootDefaults) -> Result<Vec<BootEntry>, QmpError> {
    let mut known = defaults.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((known_pid, entries)) = known.as_ref()
        && *known_pid == pid
    {
        return Ok(entries.clone());
    }
    let entries = bootorder::boot_entries(qmp)?;
    *known = Some((pid, entries.clone()));
    Ok(entries)
}

/// Sets `device` first (`None`: the VM's own order) in the QEMU of `pid`.
fn set_device(
    qmp: &mut Qmp,
    pid: u32,
    defaults: &BootDefaults,
    device: BootDevice,
) -> Result<(), QmpError> {
    let own = own_order(qmp, pid, defaults)?;
    match device {
        BootDevice::None => bootorder::restore(qmp, &own),
        _ => bootorder::set_order(qmp, &bootorder::order_for(&own, device)),
    }
}

impl Vm {
    /// Makes the running VM boot `device` first from its next reset on (`BootDevice::None`: its own
    /// order). Nothing when the VM is off (the BMC sets the order when it starts the VM) or has no QMP.
    pub async fn set_boot_device(&self, device: BootDevice) -> Result<(), VmError> {
        let (Some(sock), Some(pid)) = (&self.qmp, self.running_pid()) else {
            return Ok(());
        };
        let defaults = self.boot_defaults.clone();
        with_qmp(sock, QMP_TIMEOUT * 5, move |qmp| {
            set_device(qmp, pid, &defaults, device)
        })
        .await?;
        info!(pid, %device, "boot order set");
        Ok(())
    }

    /// Resets the running VM booting `device` first; the order stays until changed again. Without QMP
    /// the order cannot change: the VM keeps its own (logged).
    pub async fn reset_booting(&self, device: BootDevice) -> Result<(), VmError> {
        let Some(sock) = &self.qmp else {
            warn!(%device, "no QMP socket: the VM boots in its own order");
            return self.reset().await;
        };
        let Some(pid) = self.running_pid() else {
            return self.power_on_booting(device).await;
        };
        let defaults = self.boot_defaults.clone();
        with_qmp(sock, QMP_TIMEOUT * 5, move |qmp| {
            set_device(qmp, pid, &defaults, device)?;
            bootorder::reset_and_wait(qmp, QMP_TIMEOUT)
        })
        .await?;
        info!(pid, %device, "reset booting {device}");
        Ok(())
    }

    /// Starts the VM booting `device` first: paused, given the order, reset, resumed. A start script
    /// that ignores `KALAB_START_PAUSED` gives a running VM: it gets the order for its next reset only.
    pub async fn power_on_booting(&self, device: BootDevice) -> Result<(), VmError> {
        let Some(sock) = self.qmp.clone() else {
            warn!(%device, "no QMP socket: the VM boots in its own order");
            return self.power_on().await;
        };
        if self.is_on() {
            return Ok(());
        }
        self.start(true).await?;
        let Some(pid) = self.running_pid() else {
            return Ok(());
        };
        let defaults = self.boot_defaults.clone();
        let booted = with_qmp(&sock, QMP_TIMEOUT * 5, move |qmp| {
            set_device(qmp, pid, &defaults, device)?;
            if qmp.query_status()? == "running" {
                return Ok(false);
            }
            bootorder::reset_and_wait(qmp, QMP_TIMEOUT)?;
            qmp.cont()?;
            Ok(true)
        })
        .await;
        match booted {
            Ok(true) => info!(pid, %device, "started booting {device}"),
            Ok(false) => {
                warn!(pid, %device, "the start script ignores KALAB_START_PAUSED: {device} from the next reset")
            }
            Err(e) => {
                // Never leave the VM paused.
                let _ = with_qmp(&sock, QMP_TIMEOUT * 2, |qmp| qmp.cont()).await;
                return Err(e.into());
            }
        }
        Ok(())
    }
}

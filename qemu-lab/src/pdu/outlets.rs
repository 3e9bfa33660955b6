//! The PDU's outlets: each powers one lab VM. A switch is recorded at once (what a relay does) and carried
//! out on the VM in the background, one at a time per outlet; the outlet reads its pending state until
//! the VM follows.

use crate::bmc::vm::Vm;
use std::sync::{Arc, Mutex};

/// What a SET asks of an outlet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// Power on.
    On,
    /// Power off.
    Off,
    /// Off, then on.
    Reboot,
}

/// One outlet and the VM it powers.
#[derive(Debug)]
pub struct Outlet {
    vm: Vm,
    /// The state a switch in progress leads to, with its generation.
    pending: Mutex<(u64, Option<bool>)>,
    /// Serialises the VM operations of this outlet.
    busy: tokio::sync::Mutex<()>,
}

impl Outlet {
    /// The outlet powering `vm`.
    pub fn new(vm: Vm) -> Arc<Outlet> {
        Arc::new(Outlet {
            vm,
            pending: Mutex::new((0, None)),
            busy: tokio::sync::Mutex::new(()),
        })
    }

    /// True when the outlet is (or is being switched) on.
    pub fn is_on(&self) -> bool {
        let pending = self.pending.lock().map(|p| p.1).unwrap_or(None);
        pending.unwrap_or_else(|| self.vm.is_on())
    }

    /// Records `switch` and carries it out in the background.
    pub fn switch(self: &Arc<Self>, switch: Switch) {
        let generation = match self.pending.lock() {
            Ok(mut p) => {
                p.0 += 1;
                p.1 = Some(switch != Switch::Off);
                p.0
            }
            Err(_) => return,
        };
        let this = self.clone();
        tokio::spawn(async move {
            let _turn = this.busy.lock().await;
            let result = match switch {
                Switch::On => this.vm.power_on().await,
                Switch::Off => this.vm.power_off().await,
                Switch::Reboot => this.vm.cycle().await,
            };
            if let Err(e) = result {
                tracing::warn!(?switch, "outlet switch failed: {e}");
            }
            if let Ok(mut p) = this.pending.lock()
                && p.0 == generation
            {
                p.1 = None;
            }
        });
    }
}

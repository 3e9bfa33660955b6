//! The set of backends that drive one cluster, one per hardware concern.

use crate::{Broadcast, Console, NetBoot, NodeOps, Power, Reachability};
use std::sync::Arc;

/// Every hardware concern of a cluster, as trait objects. The engine sees only this.
#[derive(Clone)]
pub struct Drivers {
    /// Power control.
    pub power: Arc<dyn Power>,
    /// Boot profiles.
    pub netboot: Arc<dyn NetBoot>,
    /// Operations on nodes.
    pub ops: Arc<dyn NodeOps>,
    /// Port probes.
    pub reachability: Arc<dyn Reachability>,
    /// Image delivery.
    pub broadcast: Arc<dyn Broadcast>,
    /// Serial consoles.
    pub console: Arc<dyn Console>,
}

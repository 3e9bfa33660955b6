//! The backends `backend/kind` can name, built side by side: the simulated cluster (`simulated`, the
//! default) and the real drivers of a site (`site`).

pub mod simulated;
pub mod site;

use kadeploy_server::Backends;
use std::sync::Arc;

/// The name → constructor table.
pub fn backends() -> Backends {
    let mut b = Backends::new();
    b.register(simulated::KIND, true, Arc::new(simulated::backend));
    b.register(site::KIND, false, Arc::new(site::backend));
    b
}

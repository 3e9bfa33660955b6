//! `GET /info` (spec §3.6, no authentication): the server's PXE method (`pxe/dhcp/method`), each cluster's automata and
//! supported file systems, and the variables exported to custom scripts.

use super::extract::OnlyGet;
use crate::App;
use crate::reply::Reply;
use axum::Router;
use axum::extract::State;
use axum::routing::any;
use kadeploy::config::MacroInstance;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Kadeploy's base variables exported to custom scripts.
const VARS: [&str; 16] = [
    "KADEPLOY_BLOCK_DEVICE",
    "KADEPLOY_CLUSTER",
    "KADEPLOY_DEPLOY_PART",
    "KADEPLOY_DEPLOY_PART_NUM",
    "KADEPLOY_ENV",
    "KADEPLOY_ENV_HYPERVISOR",
    "KADEPLOY_ENV_HYPERVISOR_PARAMS",
    "KADEPLOY_ENV_INITRD",
    "KADEPLOY_ENV_KERNEL",
    "KADEPLOY_ENV_KERNEL_PARAMS",
    "KADEPLOY_OS_KIND",
    "KADEPLOY_PREPOST_EXTRACTION_DIR",
    "KADEPLOY_PROD_PART_NUM",
    "KADEPLOY_SWAP_PART_NUM",
    "KADEPLOY_TMP_DIR",
    "KADEPLOY_TMP_PART_NUM",
];

/// The routes of this file.
pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/info", any(get))
}

async fn get(_: OnlyGet, State(app): State<Arc<App>>) -> Reply {
    Reply::Data(info(&app))
}

fn instances(prefix: &str, list: &[MacroInstance]) -> Value {
    list.iter()
        .map(|m| json!({"name": format!("{prefix}{}", m.kind), "retries": m.retries, "timeout": m.timeout.round() as i64}))
        .collect()
}

/// The document of `GET /info`.
pub fn info(app: &App) -> Value {
    let mut automata = Map::new();
    let mut fs = Map::new();
    for c in &app.clusters {
        let a = &c.config.automata;
        automata.insert(
            c.config.name.clone(),
            json!({"SetDeploymentEnv": instances("SetDeploymentEnv", &a.set_deployment_env),
                   "BroadcastEnv": instances("BroadcastEnv", &a.broadcast_env),
                   "BootNewEnv": instances("BootNewEnv", &a.boot_new_env)}),
        );
        fs.insert(c.config.name.clone(), json!(c.config.boot.supported_fs));
    }
    json!({"pxe": app.settings.pxe_method, "automata": automata, "supported_fs": fs, "vars": VARS})
}

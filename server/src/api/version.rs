//! What a client asks before anything else, without authentication (spec §3.5, §3.6): `GET /version`,
//! `GET /auth_headers_prefix` and `GET /clusters`.

use super::extract::OnlyGet;
use crate::reply::Reply;
use crate::{App, VERSION};
use axum::Router;
use axum::extract::State;
use axum::routing::any;
use serde_json::Value;
use std::sync::Arc;

/// The routes of this file.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/version", any(version))
        .route("/auth_headers_prefix", any(headers_prefix))
        .route("/clusters", any(clusters))
}

/// `GET /version`: the server's version.
async fn version(_: OnlyGet) -> Reply {
    Reply::Text(VERSION.into())
}

/// `GET /auth_headers_prefix`: the prefix of the authentication headers (`X-Kadeploy-`).
async fn headers_prefix(_: OnlyGet, State(app): State<Arc<App>>) -> Reply {
    Reply::Text(app.settings.headers_prefix.clone())
}

/// `GET /clusters`: the clusters' names.
async fn clusters(_: OnlyGet, State(app): State<Arc<App>>) -> Reply {
    Reply::Data(
        app.clusters
            .iter()
            .map(|c| Value::from(c.config.name.clone()))
            .collect(),
    )
}

//! `/deployment` (spec §3.5, §3.7): `POST` starts a deployment, `GET` lists them; the routes of one
//! deployment are [`super::workflows`]'.

use super::submission;
use super::workflows;
use crate::App;
use crate::auth::Caller;
use crate::params::Params;
use crate::reply::{HttpError, Reply, method_not_allowed};
use crate::submit::{Deployment, Submission};
use crate::workflow::Kind;
use axum::Router;
use axum::extract::State;
use axum::http::Method;
use axum::routing::any;
use std::sync::Arc;

/// The routes of this file.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/deployment", any(collection))
        .merge(workflows::routes(Kind::Deploy))
}

async fn collection(
    State(app): State<Arc<App>>,
    caller: Caller,
    params: Params,
    method: Method,
) -> Result<Reply, HttpError> {
    match method {
        Method::POST => {
            let parse: submission::Parse =
                |ctx, caller, p| Deployment::parse(ctx, caller, p).map(Submission::Deployment);
            submission::create(app, caller, params, parse).await
        }
        Method::GET => Ok(workflows::list(&app, Kind::Deploy, &caller)),
        _ => Err(method_not_allowed("GET, POST")),
    }
}

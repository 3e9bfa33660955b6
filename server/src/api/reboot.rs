//! `/reboot` (spec §3.5, §3.7): `POST` starts a reboot, `GET` lists them; the routes of one
//! reboot are [`super::workflows`]'.

use super::submission;
use super::workflows;
use crate::App;
use crate::auth::Caller;
use crate::params::Params;
use crate::reply::{HttpError, Reply, method_not_allowed};
use crate::submit::{Reboot, Submission};
use crate::workflow::Kind;
use axum::Router;
use axum::extract::State;
use axum::http::Method;
use axum::routing::any;
use std::sync::Arc;

/// The routes of this file.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/reboot", any(collection))
        .merge(workflows::routes(Kind::Reboot))
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
                |ctx, caller, p| Reboot::parse(ctx, caller, p).map(Submission::Reboot);
            submission::create(app, caller, params, parse).await
        }
        Method::GET => Ok(workflows::list(&app, Kind::Reboot, &caller)),
        _ => Err(method_not_allowed("GET, POST")),
    }
}

//! `/power` (spec §3.5, §3.7): `PUT` powers nodes on or off, `GET` with `nodes` queries their power
//! status (a workflow too), `GET` alone lists the power workflows; the routes of one workflow are
//! [`super::workflows`]'.

use super::submission;
use super::workflows;
use crate::App;
use crate::auth::Caller;
use crate::params::Params;
use crate::reply::{HttpError, Reply, method_not_allowed};
use crate::submit::{Power, Submission};
use crate::workflow::Kind;
use axum::Router;
use axum::extract::State;
use axum::http::Method;
use axum::routing::any;
use std::sync::Arc;

/// The routes of this file.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/power", any(collection))
        .merge(workflows::routes(Kind::Power))
}

async fn collection(
    State(app): State<Arc<App>>,
    caller: Caller,
    params: Params,
    method: Method,
) -> Result<Reply, HttpError> {
    match method {
        Method::PUT => {
            let parse: submission::Parse =
                |ctx, caller, p| Power::parse(ctx, caller, p, false).map(Submission::Power);
            submission::create(app, caller, params, parse).await
        }
        Method::GET if params.has("nodes") => {
            let parse: submission::Parse =
                |ctx, caller, p| Power::parse(ctx, caller, p, true).map(Submission::Power);
            submission::create(app, caller, params, parse).await
        }
        Method::GET => Ok(workflows::list(&app, Kind::Power, &caller)),
        _ => Err(method_not_allowed("GET, PUT")),
    }
}

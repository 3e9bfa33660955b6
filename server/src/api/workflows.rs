//! Routes of existing workflows (spec §3.5, §3.7), the same for deployments, reboots and power
//! operations: the list, the workflow object, `logs`, `debugs`, `state`, `status`, `error`, and
//! `DELETE`, which cancels and frees. The workflow is looked up before anything else is checked, as
//! Kadeploy does.

use super::extract::Segments;
use crate::App;
use crate::auth::Caller;
use crate::reply::{HttpError, Reply, Ruby, forbidden, method_not_allowed, not_found};
use crate::workflow::Kind;
use axum::Router;
use axum::extract::State;
use axum::http::Method;
use axum::routing::any;
use kadeploy::error::{ApiError, RequestError};
use serde::Deserialize;
use std::sync::Arc;

/// `/<base>/{wid}[/{resource}[/{arg}[/{rest}]]]`.
#[derive(Deserialize)]
struct WorkflowPath {
    wid: String,
    resource: Option<String>,
    arg: Option<String>,
    /// Anything deeper: 404, once the workflow is found.
    rest: Option<String>,
}

/// The routes of the existing workflows of `kind`.
pub fn routes(kind: Kind) -> Router<Arc<App>> {
    let handler = move |State(app): State<Arc<App>>,
                        caller: Caller,
                        method: Method,
                        Segments(path): Segments<WorkflowPath>| async move {
        one(&app, kind, &caller, &method, &path)
    };
    let base = format!("/{}/{{wid}}", kind.base());
    Router::new()
        .route(&base, any(handler))
        .route(&format!("{base}/{{resource}}"), any(handler))
        .route(&format!("{base}/{{resource}}/{{arg}}"), any(handler))
        .route(
            &format!("{base}/{{resource}}/{{arg}}/{{*rest}}"),
            any(handler),
        )
}

/// `GET /<base>`: every workflow of that kind, full for the owner or an almighty user.
pub fn list(app: &App, kind: Kind, caller: &Caller) -> Reply {
    let all = app.workflows.lock().unwrap_or_else(|e| e.into_inner());
    let items: Vec<Ruby> = all
        .values()
        .filter(|w| w.kind == kind)
        .map(|w| w.view(caller.almighty || w.user == caller.user))
        .collect();
    Reply::Ruby(Ruby::Array(items))
}

/// `GET|DELETE /<base>/<wid>[/<resource>[/<arg>]]`.
fn one(
    app: &App,
    kind: Kind,
    caller: &Caller,
    method: &Method,
    path: &WorkflowPath,
) -> Result<Reply, HttpError> {
    let wid = path.wid.as_str();
    let wf = app
        .workflow(wid)
        .filter(|w| w.kind == kind)
        .ok_or_else(|| {
            RequestError::new(
                ApiError::InvalidWorkflowId,
                format!("Invalid workflow ID '{wid}'"),
            )
        })?;
    let owner = caller.almighty || wf.user == caller.user;
    let sub = path.resource.as_deref();
    if path.rest.is_some() {
        return Err(not_found(String::new()));
    }
    if *method == Method::DELETE {
        if sub.is_some() {
            return Err(method_not_allowed("GET"));
        }
        if !owner {
            return Err(forbidden("You do not the rights to perform this operation"));
        }
        wf.cancel.cancel();
        app.workflows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&wf.wid);
        return Ok(Reply::Ruby(Ruby::symbols([("wid", Ruby::from(&wf.wid))])));
    }
    if *method != Method::GET {
        return Err(method_not_allowed("GET, DELETE"));
    }
    if sub.is_none() {
        return Ok(Reply::Ruby(wf.view(owner)));
    }
    if !owner {
        return Err(forbidden("You do not the rights to perform this operation"));
    }
    match sub {
        Some("logs") => {
            if let Some(cluster) = &path.arg
                && !wf.parts.iter().any(|p| &p.cluster_name == cluster)
            {
                return Err(not_found(format!("no cluster {cluster} in this workflow")));
            }
            Ok(Reply::Text(
                wf.take_logs(path.arg.as_deref())
                    .trim_end_matches('\n')
                    .to_string(),
            ))
        }
        Some("debugs") if wf.debug => {
            if let Some(node) = &path.arg
                && !wf.node_names().contains(node)
            {
                return Err(not_found(format!("no node {node} in this workflow")));
            }
            Ok(Reply::Text(
                wf.take_debugs(path.arg.as_deref())
                    .trim_end_matches('\n')
                    .to_string(),
            ))
        }
        Some("state") => Ok(Reply::Ruby(wf.state())),
        Some("status") => Ok(Reply::Ruby(wf.status())),
        Some("error") => match wf.error() {
            Some(e) => Err(HttpError::Api(e)),
            _ => Ok(Reply::Text(String::new())),
        },
        _ => Err(not_found(String::new())),
    }
}

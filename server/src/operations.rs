//! Routes of existing workflows (spec §3.7): the list, the workflow object, `logs`, `debugs`, `state`,
//! `status`, `error`, and `DELETE` which cancels and frees.

use super::App;
use super::reply::{HttpError, Reply, Ruby, forbidden, not_found};
use super::route::{Req, method_not_allowed};
use super::workflow::Kind;
use axum::http::Method;
use kadeploy::error::{ApiError, RequestError};
use std::sync::Arc;

/// `GET /<base>`: every workflow of that kind, full for the owner or an almighty user.
pub fn list(app: &App, kind: Kind, r: &Req) -> Reply {
    let all = app.workflows.lock().unwrap_or_else(|e| e.into_inner());
    let items: Vec<Ruby> = all
        .values()
        .filter(|w| w.kind == kind)
        .map(|w| w.view(r.almighty || w.user == r.user))
        .collect();
    Reply::Ruby(Ruby::Array(items))
}

/// `GET|DELETE /<base>/<wid>[/<resource>[/<arg>]]`.
pub fn one(app: &Arc<App>, kind: Kind, r: &Req) -> Result<Reply, HttpError> {
    let wid = r.segs.get(1).map(String::as_str).unwrap_or("");
    let wf = app
        .workflow(wid)
        .filter(|w| w.kind == kind)
        .ok_or_else(|| {
            RequestError::new(
                ApiError::InvalidWorkflowId,
                format!("Invalid workflow ID '{wid}'"),
            )
        })?;
    let owner = r.almighty || wf.user == r.user;
    let sub = r.segs.get(2).map(String::as_str);
    if r.segs.len() > 4 {
        return Err(not_found(String::new()));
    }
    if r.method == Method::DELETE {
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
    if r.method != Method::GET {
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
            if let Some(cluster) = r.segs.get(3)
                && !wf.parts.iter().any(|p| &p.cluster_name == cluster)
            {
                return Err(not_found(format!("no cluster {cluster} in this workflow")));
            }
            Ok(Reply::Text(
                wf.take_logs().trim_end_matches('\n').to_string(),
            ))
        }
        Some("debugs") if wf.debug => Ok(Reply::Text(String::new())),
        Some("state") => Ok(Reply::Ruby(wf.state())),
        Some("status") => Ok(Reply::Ruby(wf.status())),
        Some("error") => match wf.error() {
            Some(e) => Err(HttpError::Api(e)),
            _ => Ok(Reply::Text(String::new())),
        },
        _ => Err(not_found(String::new())),
    }
}

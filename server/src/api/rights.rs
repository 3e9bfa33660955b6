//! `/rights[/<user>[/<node>]]` (spec §3.10), for almighty users only: `GET` lists rights, `POST` adds
//! them, `DELETE` removes them and then cancels the user's workflows and closes their consoles on the
//! nodes where they no longer hold any right.

use super::extract::Segments;
use super::guard::blocking;
use crate::App;
use crate::auth::Caller;
use crate::console::Console;
use crate::nodeset;
use crate::params::Params;
use crate::reply::{HttpError, Reply, forbidden, method_not_allowed, not_found};
use axum::Router;
use axum::extract::State;
use axum::http::Method;
use axum::routing::any;
use kadeploy::error::RequestError;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// `/rights[/{user}[/{node}[/{rest}]]]` (deeper segments are ignored, as Kadeploy does).
#[derive(Default, Deserialize)]
struct RightsPath {
    user: Option<String>,
    node: Option<String>,
}

/// The routes of this file.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/rights", any(collection))
        .route("/rights/{user}", any(one))
        .route("/rights/{user}/{node}", any(one))
        .route("/rights/{user}/{node}/{*rest}", any(one))
}

async fn collection(
    State(app): State<Arc<App>>,
    caller: Caller,
    params: Params,
    method: Method,
) -> Result<Reply, HttpError> {
    let path = RightsPath::default();
    blocking(&app, move |app| {
        rights(app, &caller, &params, &method, &path)
    })
    .await
}

async fn one(
    State(app): State<Arc<App>>,
    caller: Caller,
    params: Params,
    method: Method,
    Segments(path): Segments<RightsPath>,
) -> Result<Reply, HttpError> {
    blocking(&app, move |app| {
        rights(app, &caller, &params, &method, &path)
    })
    .await
}

fn rights_json(r: crate::store::Rights) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

/// `POST|GET|DELETE /rights[/<user>[/<node>]]`: 403 for other users than almighty ones, whatever the
/// method.
fn rights(
    app: &App,
    caller: &Caller,
    p: &Params,
    method: &Method,
    path: &RightsPath,
) -> Result<Reply, HttpError> {
    if !caller.almighty {
        return Err(forbidden("You do not the rights to perform this operation"));
    }
    let mut nodes = p.strings("nodes")?;
    if let Some(n) = &path.node {
        nodes.push(n.clone());
    }
    let nodes = if nodes.iter().any(|n| n == "*") {
        Vec::new()
    } else {
        nodeset::resolve_or_empty(&app.nodes, &nodes)?
    };
    let parts = p.strings("partitions")?;
    match *method {
        Method::GET => {
            let rights = app.store.rights_get(path.user.as_deref(), &nodes)?;
            if rights.is_empty() {
                return Err(not_found("No rights have been found"));
            }
            Ok(Reply::Data(rights_json(rights)))
        }
        Method::POST => {
            let user = p.string("username")?.unwrap_or_else(|| caller.user.clone());
            let added = app.store.rights_add(
                &user,
                &nodes,
                &parts,
                p.toggle("overwrite"),
                &app.settings.almighty,
            )?;
            Ok(Reply::Data(rights_json(added)))
        }
        Method::DELETE => {
            let user = path.user.clone().ok_or_else(|| not_found(String::new()))?;
            let deleted = app.store.rights_delete(&user, &nodes, &parts)?;
            cancel_unauthorized_workflows(app, &user)?;
            close_unauthorized_consoles(app, &user)?;
            Ok(Reply::Data(rights_json(deleted)))
        }
        _ => Err(method_not_allowed("GET, POST, DELETE")),
    }
}

/// Cancels `user`'s running workflows on nodes where they no longer hold any right.
fn cancel_unauthorized_workflows(app: &App, user: &str) -> Result<(), RequestError> {
    let running: Vec<_> = app
        .workflows
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .filter(|w| w.user == user && !w.done())
        .cloned()
        .collect();
    for wf in running {
        if !app.settings.rights_dummy && !app.store.granted(user, &wf.node_names(), "")? {
            wf.cancel.cancel();
        }
    }
    Ok(())
}

/// Closes `user`'s consoles on nodes where they no longer hold any right.
fn close_unauthorized_consoles(app: &App, user: &str) -> Result<(), RequestError> {
    if app.settings.rights_dummy {
        return Ok(());
    }
    let mine: Vec<Arc<Console>> = app
        .consoles
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .filter(|c| c.user == user)
        .cloned()
        .collect();
    for c in mine {
        if !app.store.granted(user, std::slice::from_ref(&c.node), "")? {
            c.cancel.cancel();
            app.consoles
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&c.id);
        }
    }
    Ok(())
}

//! `/console` (spec §3.8): `POST /console {node}` opens a TCP listener relaying the node's console
//! ([`crate::console`]), `GET /console[/<id>]` lists or shows consoles, `GET /console/<id>/error` tells
//! whether its listener died and `DELETE /console/<id>` closes it.

use super::extract::Segments;
use super::guard::blocking;
use crate::App;
use crate::auth::Caller;
use crate::console::Console;
use crate::console::relay::{self, Place};
use crate::nodeset;
use crate::params::Params;
use crate::reply::{HttpError, Reply, Ruby, forbidden, method_not_allowed, not_found};
use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::any;
use kadeploy::error::{ApiError, RequestError};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// `/console/{id}[/{resource}[/{rest}]]`.
#[derive(Deserialize)]
struct ConsolePath {
    id: String,
    resource: Option<String>,
    /// Anything deeper: 404.
    rest: Option<String>,
}

/// The routes of this file.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/console", any(collection))
        .route("/console/{id}", any(one))
        .route("/console/{id}/{resource}", any(one))
        .route("/console/{id}/{resource}/{*rest}", any(one))
}

fn invalid_id(id: &str) -> HttpError {
    RequestError::new(
        ApiError::InvalidWorkflowId,
        format!("Invalid console ID '{id}'"),
    )
    .into()
}

/// The server's host name, as Kadeploy's `Socket.gethostname`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `POST /console`, `GET /console`.
async fn collection(
    State(app): State<Arc<App>>,
    caller: Caller,
    params: Params,
    method: Method,
) -> Result<Reply, HttpError> {
    match method {
        Method::POST => blocking(&app, move |app| create(app, &caller, &params)).await,
        Method::GET => {
            let all = app.consoles.lock().unwrap_or_else(|e| e.into_inner());
            let items: Vec<Ruby> = all
                .values()
                .map(|c| c.view(caller.almighty || c.user == caller.user))
                .collect();
            Ok(Reply::Ruby(Ruby::Array(items)))
        }
        _ => Err(method_not_allowed("GET, POST")),
    }
}

/// `GET|DELETE /console/<id>[/error]`.
async fn one(
    State(app): State<Arc<App>>,
    caller: Caller,
    method: Method,
    Segments(path): Segments<ConsolePath>,
) -> Result<Reply, HttpError> {
    if path.rest.is_some() {
        return Err(not_found(String::new()));
    }
    let id = path.id.as_str();
    let console = app
        .consoles
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id)
        .cloned()
        .ok_or_else(|| invalid_id(id))?;
    let owner = caller.almighty || console.user == caller.user;
    match (&method, path.resource.as_deref()) {
        (&Method::DELETE, None) => {
            if !owner {
                return Err(forbidden("You do not the rights to perform this operation"));
            }
            console.cancel.cancel();
            app.consoles
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&console.id);
            Ok(Reply::Ruby(Ruby::symbols([(
                "wid",
                Ruby::from(&console.id),
            )])))
        }
        (&Method::DELETE, _) => Err(method_not_allowed("GET")),
        (&Method::GET, None) => Ok(Reply::Ruby(console.view(owner))),
        (&Method::GET, Some("error")) => {
            if !owner {
                return Err(forbidden("You do not the rights to perform this operation"));
            }
            if console.failed() {
                Err(HttpError::Status(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the console listener died".into(),
                ))
            } else {
                Ok(Reply::Text(String::new()))
            }
        }
        (&Method::GET, Some(_)) => Err(not_found(String::new())),
        _ => Err(method_not_allowed("GET, DELETE")),
    }
}

/// `POST /console {node}`: checks the node, the caller's rights, the cluster's console and the console
/// limit, then opens a listener on the API's runtime.
fn create(app: &Arc<App>, caller: &Caller, p: &Params) -> Result<Reply, HttpError> {
    let node = p.string("node")?.ok_or_else(|| {
        RequestError::new(ApiError::MissingOption, "Parameter 'node': is mandatory")
    })?;
    let names = nodeset::resolve(&app.nodes, &[node])?;
    let [name] = names.as_slice() else {
        return Err(RequestError::new(
            ApiError::InvalidNodelist,
            "Parameter 'node': exactly one node is expected",
        )
        .into());
    };
    if !app.settings.rights_dummy && !app.store.granted(&caller.user, names.as_slice(), "")? {
        return Err(RequestError::new(ApiError::InvalidRights, "").into());
    }
    let Some((cluster, id)) = app.nodes.get(name).copied() else {
        return Err(invalid_id(name));
    };
    let cluster_name = app.clusters.get(cluster).map(|c| c.config.name.as_str());
    if let (Some(enabled), Some(cluster_name)) = (&app.settings.console_clusters, cluster_name)
        && !enabled.iter().any(|c| c == cluster_name)
    {
        return Err(forbidden(
            "This feature is disabled: no console command is given in configuration file.",
        ));
    }
    let limits = &app.settings.limits;
    let too_many = || {
        HttpError::Status(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "Too many open consoles (limits/max_consoles is {}): close one with DELETE /console/<id> \
                 or wait for unattached ones to expire",
                limits.max_consoles
            ),
        )
    };
    if app.consoles.lock().unwrap_or_else(|e| e.into_inner()).len() >= limits.max_consoles {
        return Err(too_many());
    }
    let internal = |what: &str, e: &dyn std::fmt::Display| {
        HttpError::Status(StatusCode::INTERNAL_SERVER_ERROR, format!("{what}: {e}"))
    };
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|e| internal("no runtime for the console listener", &e))?;
    let ip = if app.settings.local_only {
        "127.0.0.1"
    } else {
        "0.0.0.0"
    };
    let opening = "the console listener cannot be opened";
    let listener = std::net::TcpListener::bind((ip, 0)).map_err(|e| internal(opening, &e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| internal(opening, &e))?;
    let port = listener
        .local_addr()
        .map_err(|e| internal(opening, &e))?
        .port();
    let uri = format!("tcp://{}:{port}", hostname());
    let (console, secret) = Console::open(&caller.user, name, uri, caller.peer.ip());
    {
        let mut table = app.consoles.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= limits.max_consoles {
            return Err(too_many());
        }
        table.insert(console.id.clone(), console.clone());
    }
    let place = Place {
        app: Arc::downgrade(app),
        cluster,
        node: id,
        wait: limits.header_timeout,
        expire: limits.console_timeout,
    };
    runtime.spawn(relay::listen(console.clone(), listener, place));
    let base = format!("/console/{}", console.id);
    Ok(Reply::Data(json!({
        "wid": console.id,
        "resources": {"resource": format!("{base}/"), "error": format!("{base}/error"), "console": console.uri},
        "secret": secret,
    })))
}

//! `/environments` (spec §3.9): add, list with Kadeploy's visibility rules, modify (visibility, destructive
//! tag, checksums, file prefixes) and delete.

use super::extract::Segments;
use super::guard::blocking;
use crate::App;
use crate::auth::Caller;
use crate::fetch::checksum::{self, Which};
use crate::params::Params;
use crate::reply::{HttpError, Reply, forbidden, method_not_allowed, not_found};
use crate::store::{EnvFilter, EnvRow};
use axum::Router;
use axum::extract::State;
use axum::http::Method;
use axum::routing::any;
use kadeploy::envdesc::{EnvDesc, Visibility};
use kadeploy::error::{ApiError, RequestError};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

const NOT_ALLOWED: &str = "You do not the rights to perform this operation";

/// `/environments[/{user}[/{name}[/{version}[/{rest}]]]]`.
#[derive(Default, Deserialize)]
struct EnvPath {
    user: Option<String>,
    name: Option<String>,
    version: Option<String>,
    /// Anything deeper: 404.
    rest: Option<String>,
}

/// One request to `/environments`.
struct Req {
    caller: Caller,
    params: Params,
    path: EnvPath,
}

/// The routes of this file.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/environments", any(collection))
        .route("/environments/{user}", any(one))
        .route("/environments/{user}/{name}", any(one))
        .route("/environments/{user}/{name}/{version}", any(one))
        .route("/environments/{user}/{name}/{version}/{*rest}", any(one))
}

async fn collection(
    State(app): State<Arc<App>>,
    caller: Caller,
    params: Params,
    method: Method,
) -> Result<Reply, HttpError> {
    let path = EnvPath::default();
    blocking(&app, move |app| {
        route(
            app,
            &method,
            &Req {
                caller,
                params,
                path,
            },
        )
    })
    .await
}

async fn one(
    State(app): State<Arc<App>>,
    caller: Caller,
    params: Params,
    method: Method,
    Segments(path): Segments<EnvPath>,
) -> Result<Reply, HttpError> {
    blocking(&app, move |app| {
        route(
            app,
            &method,
            &Req {
                caller,
                params,
                path,
            },
        )
    })
    .await
}

/// Dispatches `/environments[/<user>[/<name>[/<version>]]]`.
fn route(app: &App, method: &Method, r: &Req) -> Result<Reply, HttpError> {
    if r.path.rest.is_some() {
        return Err(not_found(String::new()));
    }
    let collection = r.path.user.is_none();
    match *method {
        Method::POST if collection => add(app, r),
        Method::GET if collection => list(app, r),
        Method::PUT if collection => move_files(app, r),
        Method::PUT => modify(app, r),
        Method::DELETE if r.path.name.is_some() => delete(app, r),
        Method::DELETE => Err(not_found(String::new())),
        _ => Err(method_not_allowed("GET, POST, PUT, DELETE")),
    }
}

fn add(app: &App, r: &Req) -> Result<Reply, HttpError> {
    let env = r.params.object("environment")?.ok_or_else(|| {
        RequestError::new(
            ApiError::MissingOption,
            "Parameter 'environment': is mandatory",
        )
    })?;
    let (desc, _warnings) = EnvDesc::from_value(&Value::Object(env.clone()))?;
    let owner = match env.get("user").and_then(Value::as_str) {
        Some(u) if u != r.caller.user && !r.caller.almighty => return Err(forbidden(NOT_ALLOWED)),
        Some(u) => u.to_string(),
        None => r.caller.user.clone(),
    };
    if desc.visibility == Visibility::Public && !r.caller.almighty {
        return Err(forbidden(
            "Only administrators can use the public visibility",
        ));
    }
    check_file(app, r, &desc.image.file)?;
    if r.params.toggle("dry_run") {
        return Ok(Reply::Text(String::new()));
    }
    let client = r.params.string("client")?;
    let sums = on_runtime(checksum::environment(app, client.as_deref(), &desc))?;
    let row = app.store.env_add(&owner, &desc, &sums)?;
    Ok(Reply::Data(row.desc.to_value()))
}

/// Runs `f` to its end from this blocking-pool thread (file checksums read and download).
fn on_runtime<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Handle::current().block_on(f)
}

/// Local files need the client's file server (error 3), unless every backend is simulated.
fn check_file(app: &App, r: &Req, file: &str) -> Result<(), RequestError> {
    let local = !file.contains("://") || file.starts_with("local://");
    if local && !r.params.has("client") && !app.clusters.iter().all(|c| c.backend.virtual_time) {
        return Err(RequestError::new(
            ApiError::InvalidClient,
            format!(
                "There is no way to retrieve {file} from the Kadeploy server. Consider using a server:// or a http:// URL"
            ),
        ));
    }
    Ok(())
}

fn version(s: Option<&String>) -> Result<Option<u32>, RequestError> {
    s.map(|v| {
        v.parse().map_err(|_| {
            RequestError::new(
                ApiError::InvalidOption,
                "Parameter 'version': should be an Integer",
            )
        })
    })
    .transpose()
}

fn list(app: &App, r: &Req) -> Result<Reply, HttpError> {
    let p = &r.params;
    let filter = EnvFilter {
        caller: r.caller.user.clone(),
        almighty: r.caller.almighty,
        username: p.string("username")?,
        name: p.string("name")?,
        version: version(p.string("version")?.as_ref())?,
        last: p.toggle("last"),
    };
    let rows = app.store.env_list(&filter)?;
    if rows.is_empty() && (filter.name.is_some() || filter.version.is_some()) {
        return Err(not_found("No environment has been found"));
    }
    Ok(Reply::Data(rows.iter().map(EnvRow::to_value).collect()))
}

/// The rows a `PUT`/`DELETE` path designates: one version, the last one, or all.
fn targets(app: &App, r: &Req, all_without_last: bool) -> Result<Vec<EnvRow>, HttpError> {
    let (Some(user), Some(name)) = (&r.path.user, &r.path.name) else {
        return Err(not_found(String::new()));
    };
    if *user != r.caller.user && !r.caller.almighty {
        return Err(forbidden(NOT_ALLOWED));
    }
    let rows = app.store.env_versions(user, name)?;
    let rows: Vec<EnvRow> = match version(r.path.version.as_ref())? {
        Some(v) => rows.into_iter().filter(|e| e.desc.version == v).collect(),
        None if r.params.toggle("last") => rows.into_iter().take(1).collect(),
        None if all_without_last => rows,
        None => Vec::new(),
    };
    if rows.is_empty() {
        return Err(not_found(format!(
            "No environment {name} of {user} has been found"
        )));
    }
    Ok(rows)
}

fn modify(app: &App, r: &Req) -> Result<Reply, HttpError> {
    let rows = targets(app, r, false)?;
    let p = &r.params;
    let mut out = Vec::new();
    for row in rows {
        let mut desc = row.desc.clone();
        if let Some(v) = p.one_of("visibility", &["private", "shared", "public"])? {
            if v == "public" && !r.caller.almighty {
                return Err(forbidden(
                    "Only administrators can use the public visibility",
                ));
            }
            desc.visibility = Visibility::parse(&v).unwrap_or(desc.visibility);
        }
        if p.toggle("toggle_destructive") {
            desc.destructive = !desc.destructive;
        }
        let checksum = [
            ("update_image_checksum", Which::Image),
            ("update_preinstall_checksum", Which::Preinstall),
            ("update_postinstalls_checksum", Which::Postinstalls),
        ];
        let mut sums = row.checksums.clone();
        let client = p.string("client")?;
        for (_, which) in checksum.iter().filter(|(k, _)| p.toggle(k)) {
            on_runtime(checksum::update(
                app,
                client.as_deref(),
                &desc,
                *which,
                &mut sums,
            ))?;
        }
        let asked = checksum.iter().any(|(k, _)| p.toggle(k));
        if asked && desc == row.desc && sums == row.checksums {
            return Err(
                RequestError::new(ApiError::NothingModified, "the checksum is unchanged").into(),
            );
        }
        app.store.env_update(row.id, &desc, &sums)?;
        out.push(desc.to_value());
    }
    Ok(Reply::Data(out.into_iter().next().unwrap_or(Value::Null)))
}

fn move_files(app: &App, r: &Req) -> Result<Reply, HttpError> {
    if !r.caller.almighty {
        return Err(forbidden(NOT_ALLOWED));
    }
    let moves = r.params.object("update_files")?.ok_or_else(|| {
        RequestError::new(
            ApiError::MissingOption,
            "Parameter 'update_files': is mandatory",
        )
    })?;
    let all = app.store.env_list(&EnvFilter {
        caller: r.caller.user.clone(),
        almighty: true,
        ..Default::default()
    })?;
    let mut out = Vec::new();
    for row in all {
        let mut desc = row.desc.clone();
        for (old, new) in moves {
            let Some(new) = new.as_str() else { continue };
            let swap = |f: &mut String| {
                if let Some(rest) = f.strip_prefix(old.as_str()) {
                    *f = format!("{new}{rest}");
                }
            };
            swap(&mut desc.image.file);
            if let Some(pre) = desc.preinstall.as_mut() {
                swap(&mut pre.archive);
            }
            for post in &mut desc.postinstalls {
                swap(&mut post.archive);
            }
        }
        if desc != row.desc {
            app.store.env_update(row.id, &desc, &row.checksums)?;
            out.push(EnvRow { desc, ..row }.to_value());
        }
    }
    if out.is_empty() {
        return Err(RequestError::new(
            ApiError::NothingModified,
            "No environment has been updated",
        )
        .into());
    }
    Ok(Reply::Data(Value::Array(out)))
}

fn delete(app: &App, r: &Req) -> Result<Reply, HttpError> {
    let rows = targets(app, r, true)?;
    app.store
        .env_delete(&rows.iter().map(|e| e.id).collect::<Vec<_>>())?;
    Ok(Reply::Data(rows.iter().map(EnvRow::to_value).collect()))
}

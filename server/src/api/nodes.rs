//! `GET /nodes[/<node>][?list&nodes=…]` (spec §3.11): the nodes' states, environments and users as
//! Kadeploy's `kanodes` builds them (JSON, or Psych's YAML), or the list of node names.

use super::extract::Segments;
use super::guard::blocking;
use crate::App;
use crate::nodeset;
use crate::params::Params;
use crate::reply::{HttpError, Key, Reply, Ruby, method_not_allowed, not_found};
use axum::Router;
use axum::extract::State;
use axum::http::Method;
use axum::routing::any;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `/nodes[/{node}[/{rest}]]` (deeper segments are ignored, as Kadeploy does).
#[derive(Default, Deserialize)]
struct NodePath {
    node: Option<String>,
}

/// The routes of this file.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/nodes", any(collection))
        .route("/nodes/{node}", any(one))
        .route("/nodes/{node}/{*rest}", any(one))
}

async fn collection(
    State(app): State<Arc<App>>,
    params: Params,
    method: Method,
) -> Result<Reply, HttpError> {
    blocking(&app, move |app| nodes(app, &method, &params, None)).await
}

async fn one(
    State(app): State<Arc<App>>,
    params: Params,
    method: Method,
    Segments(path): Segments<NodePath>,
) -> Result<Reply, HttpError> {
    blocking(&app, move |app| nodes(app, &method, &params, path.node)).await
}

/// `GET /nodes[/<node>][?list&nodes=…]`.
fn nodes(
    app: &App,
    method: &Method,
    p: &Params,
    single: Option<String>,
) -> Result<Reply, HttpError> {
    if *method != Method::GET {
        return Err(method_not_allowed("GET"));
    }
    let requested = p.strings("nodes")?;
    if p.has("list") {
        if let Some(unknown) = requested.iter().find(|n| !app.nodes.contains_key(*n)) {
            return Err(not_found(format!("The node {unknown} does not exist")));
        }
        return Ok(Reply::Data(app.nodes.keys().cloned().collect()));
    }
    let names = match &single {
        Some(n) => nodeset::resolve(&app.nodes, std::slice::from_ref(n))
            .map_err(|_| not_found(format!("The node {n} does not exist")))?,
        None if requested.is_empty() => app.nodes.keys().cloned().collect(),
        None => nodeset::resolve(&app.nodes, &requested)?,
    };
    let rows = app.store.nodes_get(&names)?;
    // Built as Kadeploy's `kanodes.rb` does: String keys, in this order (its YAML is Psych's).
    let strings = |entries: Vec<(&str, Ruby)>| {
        Ruby::Hash(
            entries
                .into_iter()
                .map(|(k, v)| (Key::Str(k.into()), v))
                .collect(),
        )
    };
    // Nodes mostly share a few environments: each is read once.
    let mut envs: BTreeMap<i64, Ruby> = BTreeMap::new();
    let mut out = Vec::new();
    for n in &names {
        let v = match rows.get(n) {
            None => Ruby::Nil,
            Some(row) => {
                let env = match envs.get(&row.env_id) {
                    Some(env) => env.clone(),
                    None => {
                        let env = app.store.env_by_id(row.env_id)?;
                        let env = strings(vec![
                            ("name", env.as_ref().map(|e| e.desc.name.clone()).into()),
                            (
                                "version",
                                env.as_ref().map(|e| i64::from(e.desc.version)).into(),
                            ),
                            ("user", env.as_ref().map(|e| e.user.clone()).into()),
                        ]);
                        envs.insert(row.env_id, env.clone());
                        env
                    }
                };
                strings(vec![
                    ("state", (&row.state).into()),
                    ("user", (&row.user).into()),
                    ("environment", env),
                ])
            }
        };
        out.push((Key::Str(n.clone()), v));
    }
    match single {
        Some(_) => out
            .into_iter()
            .next()
            .map(|(_, v)| v)
            .filter(|v| *v != Ruby::Nil)
            .map(Reply::Ruby)
            .ok_or_else(|| not_found(String::new())),
        None => Ok(Reply::Ruby(Ruby::Hash(out))),
    }
}

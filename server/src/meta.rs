//! `/info`, `/nodes` (JSON or YAML), `/rights` (almighty users only) and `/stats` (gzipped CSV and failure
//! rates): spec §3.6, §3.10–§3.12.

use super::App;
use super::reply::{HttpError, Key, Reply, Ruby, forbidden, not_found};
use super::route::{Req, method_not_allowed};
use crate::store::{STAT_FIELDS, StatsQuery};
use axum::http::Method;
use kadeploy::config::MacroInstance;
use kadeploy::error::{ApiError, RequestError};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Kadeploy's base variables exported to custom scripts.
const VARS: [&str; 16] = [
    "KADEPLOY_BLOCK_DEVICE",
    "KADEPLOY_CLUSTER",
    "KADEPLOY_DEPLOY_PART",
    "KADEPLOY_DEPLOY_PART_NUM",
    "KADEPLOY_ENV",
    "KADEPLOY_ENV_HYPERVISOR",
    "KADEPLOY_ENV_HYPERVISOR_PARAMS",
    "KADEPLOY_ENV_INITRD",
    "KADEPLOY_ENV_KERNEL",
    "KADEPLOY_ENV_KERNEL_PARAMS",
    "KADEPLOY_OS_KIND",
    "KADEPLOY_PREPOST_EXTRACTION_DIR",
    "KADEPLOY_PROD_PART_NUM",
    "KADEPLOY_SWAP_PART_NUM",
    "KADEPLOY_TMP_DIR",
    "KADEPLOY_TMP_PART_NUM",
];

fn instances(prefix: &str, list: &[MacroInstance]) -> Value {
    list.iter()
        .map(|m| json!({"name": format!("{prefix}{}", m.kind), "retries": m.retries, "timeout": m.timeout.round() as i64}))
        .collect()
}

/// `GET /info`.
pub fn info(app: &App) -> Value {
    let mut automata = Map::new();
    let mut fs = Map::new();
    for c in &app.clusters {
        let a = &c.config.automata;
        automata.insert(
            c.config.name.clone(),
            json!({"SetDeploymentEnv": instances("SetDeploymentEnv", &a.set_deployment_env),
                   "BroadcastEnv": instances("BroadcastEnv", &a.broadcast_env),
                   "BootNewEnv": instances("BootNewEnv", &a.boot_new_env)}),
        );
        fs.insert(c.config.name.clone(), json!(c.config.boot.supported_fs));
    }
    json!({"pxe": "PXElinux", "automata": automata, "supported_fs": fs, "vars": VARS})
}

/// `GET /nodes[/<node>][?list&nodes=…]`.
pub fn nodes(app: &App, r: Req) -> Result<Reply, HttpError> {
    if r.method != Method::GET {
        return Err(method_not_allowed("GET"));
    }
    let requested = r.params.strings("nodes")?;
    if r.params.has("list") {
        if let Some(unknown) = requested.iter().find(|n| !app.nodes.contains_key(*n)) {
            return Err(not_found(format!("The node {unknown} does not exist")));
        }
        return Ok(Reply::Data(app.nodes.keys().cloned().collect()));
    }
    let single = r.segs.get(1).cloned();
    let names = match &single {
        Some(n) => super::submit::resolve(app, std::slice::from_ref(n))
            .map_err(|_| not_found(format!("The node {n} does not exist")))?,
        None if requested.is_empty() => app.nodes.keys().cloned().collect(),
        None => super::submit::resolve(app, &requested)?,
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

fn rights_json(r: crate::store::Rights) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

/// `POST|GET|DELETE /rights[/<user>[/<node>]]`.
pub fn rights(app: &App, r: Req) -> Result<Reply, HttpError> {
    if !r.almighty {
        return Err(forbidden("You do not the rights to perform this operation"));
    }
    let p = &r.params;
    let mut nodes = p.strings("nodes")?;
    if let Some(n) = r.segs.get(2) {
        nodes.push(n.clone());
    }
    let nodes = if nodes.iter().any(|n| n == "*") {
        Vec::new()
    } else {
        super::submit::resolve_or_empty(app, &nodes)?
    };
    let parts = p.strings("partitions")?;
    match r.method {
        Method::GET => {
            let rights = app
                .store
                .rights_get(r.segs.get(1).map(String::as_str), &nodes)?;
            if rights.is_empty() {
                return Err(not_found("No rights have been found"));
            }
            Ok(Reply::Data(rights_json(rights)))
        }
        Method::POST => {
            let user = p.string("username")?.unwrap_or_else(|| r.user.clone());
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
            let user = r
                .segs
                .get(1)
                .cloned()
                .ok_or_else(|| not_found(String::new()))?;
            let deleted = app.store.rights_delete(&user, &nodes, &parts)?;
            kill_unauthorized(app, &user)?;
            super::console::kill_unauthorized(app, &user)?;
            Ok(Reply::Data(rights_json(deleted)))
        }
        _ => Err(method_not_allowed("GET, POST, DELETE")),
    }
}

/// Cancels `user`'s running workflows on nodes where they no longer hold any right.
fn kill_unauthorized(app: &App, user: &str) -> Result<(), RequestError> {
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

/// `GET /stats[/deploy|reboot|power]`.
pub fn stats(app: &App, r: Req) -> Result<Reply, HttpError> {
    if r.method != Method::GET {
        return Err(method_not_allowed("GET"));
    }
    let p = &r.params;
    let op_prefix = match r.segs.get(1).map(String::as_str) {
        None => None,
        Some("deploy") => Some('D'),
        Some("reboot") => Some('R'),
        Some("power") => Some('P'),
        Some(_) => return Err(not_found(String::new())),
    };
    let bad = |m: String| HttpError::Api(RequestError::new(ApiError::InvalidOption, m));
    let fields = p.strings("fields")?;
    if let Some(f) = fields
        .iter()
        .chain(p.strings("sort")?.iter())
        .find(|f| !STAT_FIELDS.contains(&f.as_str()))
    {
        return Err(bad(format!("Parameter 'fields': invalid field '{f}'")));
    }
    let date = |k: &str| -> Result<Option<i64>, HttpError> {
        p.string(k)?
            .map(|d| {
                httpdate::parse_http_date(&d)
                    .map(|t| {
                        t.duration_since(std::time::UNIX_EPOCH)
                            .map(|x| x.as_secs() as i64)
                            .unwrap_or(0)
                    })
                    .map_err(|_| bad(format!("Parameter '{k}': invalid RFC 2616 date")))
            })
            .transpose()
    };
    let step_retries = p
        .strings("step_retries")?
        .iter()
        .map(|s| {
            s.parse::<u8>()
                .ok()
                .filter(|n| (1..=3).contains(n))
                .ok_or_else(|| bad(format!("Parameter 'step_retries': invalid step '{s}'")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let q = StatsQuery {
        op_prefix,
        nodes: p.strings("nodes")?,
        fields,
        sort: p.strings("sort")?,
        limit: p.int("limit")?.map(|l| l.max(0) as u64),
        wid: p.string("wid")?,
        date_min: date("date_min")?,
        date_max: date("date_max")?,
        min_retries: p.int("min_retries")?,
        step_retries,
    };
    match p.one_of("kind", &["all", "failure_rates"])?.as_deref() {
        Some("failure_rates") => {
            let min = p
                .string("min_failure_rate")?
                .map(|m| {
                    m.parse::<f64>()
                        .map_err(|_| bad("Parameter 'min_failure_rate': should be a Float".into()))
                })
                .transpose()?;
            Ok(Reply::Data(
                serde_json::to_value(app.store.failure_rates(&q, min)?).unwrap_or(Value::Null),
            ))
        }
        _ => Ok(Reply::Csv(app.store.stats_csv(&q)?)),
    }
}

//! Creating workflows (spec §3.7): `POST /deployment`, `POST /reboot`, `PUT /power`, `GET /power?nodes=`.
//! Parameters become the engine's typed requests; rights, the "in use" check and the database rows are
//! settled before the `wid` is returned; the engine then runs on each cluster's executor.

use super::App;
use super::files;
use super::operations;
use super::params::Params;
use super::reply::{HttpError, Reply};
use super::route::{Req, empty, method_not_allowed};
use super::steps;
use super::workflow::{DbStates, Kind, Part, Workflow};
use crate::store::WorkflowRow;
use axum::http::Method;
use hal::{NodeId, PowerLevel};
use kadeploy::engine::{
    self, Context, DeployRequest, PowerOperation, PowerRequest, RebootKind, RebootRequest,
};
use kadeploy::envdesc::EnvDesc;
use kadeploy::error::{ApiError, RequestError};
use kadeploy::expr::Expr;
use kadeploy::output::{LogLine, Output, Sink};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The engine request of one cluster.
#[allow(clippy::large_enum_variant)]
enum EngineReq {
    Deploy(DeployRequest),
    Reboot(RebootRequest),
    Power(PowerRequest),
}

fn err(kind: ApiError, msg: impl Into<String>) -> RequestError {
    RequestError::new(kind, msg)
}

/// The request only touches workflows held in memory (a workflow's resources, its cancellation, the
/// list): it needs no database and is answered on the runtime's workers.
pub fn in_memory(r: &Req) -> bool {
    r.segs.len() > 1
        || (r.method == Method::GET && (r.segs[0] != "power" || !r.params.has("nodes")))
}

/// Dispatches `/deployment`, `/reboot` and `/power` routes.
pub fn route(app: &Arc<App>, r: Req) -> Result<Reply, HttpError> {
    let Some(kind) = Kind::from_base(&r.segs[0]) else {
        return Err(method_not_allowed("GET"));
    };
    if r.segs.len() > 1 {
        return operations::one(app, kind, &r);
    }
    match (kind, &r.method) {
        (Kind::Deploy, &Method::POST)
        | (Kind::Reboot, &Method::POST)
        | (Kind::Power, &Method::PUT) => create(app, kind, &r),
        (Kind::Power, &Method::GET) if r.params.has("nodes") => create(app, kind, &r),
        (_, &Method::GET) => Ok(operations::list(app, kind, &r)),
        (Kind::Power, _) => Err(method_not_allowed("GET, PUT")),
        _ => Err(method_not_allowed("GET, POST")),
    }
}

/// How many names a request may list beyond the server's nodes (repeats, a name given both short and
/// long): the expansion of its node lists stops there, so its cost is bounded by the cluster, not by the
/// ranges a client writes.
pub const NODELIST_MARGIN: usize = 64;

/// Resolves node names, ranges and short names to the configured nodes, sorted and deduplicated.
///
/// Identical items are read once; all items together may expand to at most the number of configured
/// nodes plus [`NODELIST_MARGIN`] names, counted before any name is built (error 2 beyond), and each
/// name is looked up in O(log nodes).
pub fn resolve(app: &App, requested: &[String]) -> Result<Vec<String>, RequestError> {
    if requested.is_empty() {
        return Err(err(
            ApiError::MissingOption,
            "Parameter 'nodes': is mandatory",
        ));
    }
    let budget = app.nodes.len().saturating_add(NODELIST_MARGIN);
    let mut left = budget;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = std::collections::BTreeSet::new();
    for item in requested {
        if !seen.insert(item.trim()) {
            continue;
        }
        let names = kadeploy::nodelist::expand_at_most(item, left).map_err(|e| match e {
            kadeploy::nodelist::NodeListError::TooLarge { .. } => err(
                ApiError::InvalidNodelist,
                format!(
                    "The node list names more than {budget} nodes (this server has {})",
                    app.nodes.len()
                ),
            ),
            e => err(ApiError::InvalidNodelist, e.to_string()),
        })?;
        left = left.saturating_sub(names.len());
        for name in names {
            out.insert(known_node(&app.nodes, &name)?.clone());
        }
    }
    Ok(out.into_iter().collect())
}

/// The configured node `name` designates: itself, or the one node it is a short name of (the node's
/// name continues with something other than a digit, `node-7` for `node-7.sim.kadeploy`).
fn known_node<'a, V>(
    nodes: &'a BTreeMap<String, V>,
    name: &str,
) -> Result<&'a String, RequestError> {
    use std::ops::Bound::{Excluded, Included, Unbounded};
    if let Some((node, _)) = nodes.get_key_value(name) {
        return Ok(node);
    }
    // Names continuing with a digit sort from `name0` to `name9…`, before `name:`: the candidates are
    // the names between `name` and `name0`, and those from `name:` on that start with `name`.
    let (digit, after_digits) = (format!("{name}0"), format!("{name}:"));
    let before = nodes.range::<str, _>((Excluded(name), Excluded(digit.as_str())));
    let after = nodes
        .range::<str, _>((Included(after_digits.as_str()), Unbounded))
        .take_while(|(node, _)| node.starts_with(name));
    let hits: Vec<&String> = before.chain(after).map(|(node, _)| node).take(2).collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(err(
            ApiError::InvalidNodelist,
            format!(
                "The node '{}' does not exist",
                kadeploy::nodelist::shown(name)
            ),
        )),
        _ => Err(err(
            ApiError::InvalidNodelist,
            format!("Ambiguous node name '{}'", kadeploy::nodelist::shown(name)),
        )),
    }
}

fn level(p: &Params) -> Result<PowerLevel, RequestError> {
    Ok(
        match p
            .one_of("level", &["soft", "hard", "very_hard"])?
            .as_deref()
        {
            Some("hard") => PowerLevel::Hard,
            Some("very_hard") => PowerLevel::VeryHard,
            _ => PowerLevel::Soft,
        },
    )
}

fn expr(p: &Params, key: &str) -> Result<Option<Expr>, RequestError> {
    p.string(key)?
        .map(|s| {
            Expr::parse(&s)
                .map_err(|e| err(ApiError::InvalidOption, format!("Parameter '{key}': {e}")))
        })
        .transpose()
}

fn breakpoint(p: &Params) -> Result<Option<String>, RequestError> {
    let b = p.string("breakpoint")?;
    if let Some(b) = &b {
        let word =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let ok = match b.split_once(':') {
            Some((m, s)) => word(m) && word(s),
            None => word(b),
        };
        if !ok {
            return Err(err(
                ApiError::InvalidOption,
                format!("Invalid breakpoint '{b}' (Macro or Macro:micro)"),
            ));
        }
    }
    Ok(b)
}

/// The environment of a request: its description, owner, database id (-1 when anonymous).
fn environment(app: &App, r: &Req) -> Result<Option<(EnvDesc, String, i64)>, RequestError> {
    let Some(env) = r.params.object("environment")? else {
        return Ok(None);
    };
    let kind = env
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("database");
    if kind == "anonymous" {
        let (desc, _) = EnvDesc::from_value(&Value::Object(env.clone()))?;
        let local = !desc.image.file.contains("://") || desc.image.file.starts_with("local://");
        if local && !r.params.has("client") {
            return Err(err(
                ApiError::InvalidClient,
                format!(
                    "There is no way to retrieve {} from the Kadeploy server. Consider using a server:// or a http:// URL",
                    desc.image.file
                ),
            ));
        }
        return Ok(Some((desc, r.user.clone(), -1)));
    }
    if kind != "database" {
        return Err(err(
            ApiError::InvalidOption,
            "Parameter 'environment/kind': must have a value in (anonymous, database)",
        ));
    }
    let name = env.get("name").and_then(Value::as_str).ok_or_else(|| {
        err(
            ApiError::MissingOption,
            "Parameter 'environment/name': is mandatory",
        )
    })?;
    let version = match env.get("version") {
        None | Some(Value::Null) => None,
        // Out of range is an error, not a wrap-around (4294967297 used to select version 1).
        Some(v) => Some(
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| {
                    err(
                        ApiError::InvalidOption,
                        "Parameter 'environment/version': should be an Integer from 0 to 4294967295",
                    )
                })?,
        ),
    };
    let owners: Vec<String> = match env.get("user").and_then(Value::as_str) {
        Some(u) => vec![u.to_string()],
        None => {
            let mut v = vec![r.user.clone()];
            v.extend(app.settings.almighty.iter().cloned());
            v
        }
    };
    for owner in &owners {
        let rows = app
            .store
            .env_versions(owner, name)
            .map_err(RequestError::from)?;
        let row = rows
            .into_iter()
            .find(|e| version.is_none_or(|v| e.desc.version == v));
        if let Some(row) = row {
            let visible = row.user == r.user
                || r.almighty
                || row.desc.visibility != kadeploy::envdesc::Visibility::Private;
            if visible {
                return Ok(Some((row.desc, row.user, row.id)));
            }
        }
    }
    let v = version.map(|v| v.to_string()).unwrap_or_default();
    Err(err(
        ApiError::InvalidEnvironment,
        format!("the environment {name},{v} of {} does not exist", owners[0]),
    ))
}

/// Parses, checks and starts a workflow.
fn create(app: &Arc<App>, kind: Kind, r: &Req) -> Result<Reply, HttpError> {
    let p = &r.params;
    let mut names = resolve(app, &p.strings("nodes")?)?;
    let verbose = p
        .int("verbose_level")?
        .unwrap_or(i64::from(app.settings.verbosity));
    if !(0..=5).contains(&verbose) {
        return Err(err(
            ApiError::InvalidOption,
            "Parameter 'verbose_level': must have a value in (0..5)",
        )
        .into());
    }
    if p.has("vlan") {
        return Err(err(
            ApiError::InvalidVlan,
            "no VLAN is configured on this server",
        )
        .into());
    }
    if p.has("custom_operations") {
        let ops = p
            .object("custom_operations")
            .map_err(|e| err(ApiError::InvalidCustomop, e.detail))?
            .cloned()
            .unwrap_or_default();
        steps::custom_operations(&Value::Object(ops), kind, &mut |f| Ok(f.to_string()))?;
    }
    let env = if kind == Kind::Power {
        None
    } else {
        environment(app, r)?
    };
    let bp = breakpoint(p)?;
    let mut template = match kind {
        Kind::Deploy => {
            let (desc, owner, _) = env.clone().ok_or_else(|| {
                err(
                    ApiError::MissingOption,
                    "Parameter 'environment': is mandatory",
                )
            })?;
            let spec = &app.clusters[0].backend;
            let mut d = DeployRequest::new(
                Vec::new(),
                desc.to_engine(&owner, spec.image_size, spec.image_ratio),
            );
            d.block_device = p.string("block_device")?;
            d.deploy_partition = match p.string_or_empty("deploy_partition")? {
                None => None,
                Some(s) if s.is_empty() => Some(None),
                Some(s) => Some(Some(s.parse().map_err(|_| {
                    err(
                        ApiError::InvalidOption,
                        "Parameter 'deploy_partition': should be a partition number",
                    )
                })?)),
            };
            d.boot_partition = p
                .int("boot_partition")?
                .map(|b| u32::try_from(b.max(0)))
                .transpose()
                .map_err(|_| {
                    err(
                        ApiError::InvalidOption,
                        "Parameter 'boot_partition': should be a partition number",
                    )
                })?;
            d.reformat_tmp = p.string("reformat_tmp_partition")?;
            d.disable_kexec = p.toggle("disable_kexec");
            d.disable_bootloader_install = p.toggle("disable_bootloader_install");
            d.disable_disk_partitioning = p.toggle("disable_disk_partitioning");
            d.timeout_reboot_classical = expr(p, "timeout_reboot_classical")?;
            d.timeout_reboot_kexec = expr(p, "timeout_reboot_kexec")?;
            d.breakpoint = bp;
            d.automata = p.object("automata")?.map(steps::automata).transpose()?;
            d.ssh_key = p.string("ssh_authorized_keys")?;
            d.pxe_profile = p
                .object("pxe")?
                .and_then(|x| x.get("profile"))
                .and_then(Value::as_str)
                .map(Into::into);
            EngineReq::Deploy(d)
        }
        Kind::Reboot => {
            let k = p
                .one_of("kind", &["set_pxe", "simple", "deploy_env", "recorded_env"])?
                .ok_or_else(|| err(ApiError::MissingOption, "Parameter 'kind': is mandatory"))?;
            let profile = p
                .object("pxe")?
                .and_then(|x| x.get("profile"))
                .and_then(Value::as_str)
                .map(String::from);
            let k = match k.as_str() {
                "set_pxe" if profile.is_none() => {
                    return Err(err(ApiError::MissingOption, "set_pxe needs a PXE profile").into());
                }
                "set_pxe" => RebootKind::SetPxe,
                "deploy_env" => RebootKind::DeployEnv,
                "recorded_env" if env.is_none() || !p.has("deploy_partition") => {
                    return Err(err(
                        ApiError::MissingOption,
                        "recorded_env needs an environment and a partition",
                    )
                    .into());
                }
                "recorded_env" => RebootKind::RecordedEnv,
                _ => RebootKind::Simple,
            };
            if p.toggle("check_destructive") {
                let rows = app.store.nodes_get(&names)?;
                for row in rows.values().filter(|n| n.env_id >= 0) {
                    if app
                        .store
                        .env_by_id(row.env_id)?
                        .is_some_and(|e| e.desc.destructive)
                    {
                        return Err(err(ApiError::DestructiveEnvironment, "").into());
                    }
                }
            }
            EngineReq::Reboot(RebootRequest {
                nodes: Vec::new(),
                kind: k,
                level: level(p)?,
                ssh_key: p.string("ssh_authorized_keys")?,
                pxe_profile: profile,
                timeout_reboot_classical: expr(p, "timeout_reboot_classical")?,
                breakpoint: bp,
                custom_operations: Default::default(),
            })
        }
        Kind::Power => {
            let op = if r.method == Method::GET {
                PowerOperation::Status
            } else {
                match p.one_of("status", &["on", "off"])?.as_deref() {
                    Some("on") => PowerOperation::On,
                    Some(_) => PowerOperation::Off,
                    None => {
                        return Err(err(
                            ApiError::MissingOption,
                            "Parameter 'status': is mandatory",
                        )
                        .into());
                    }
                }
            };
            EngineReq::Power(PowerRequest {
                nodes: Vec::new(),
                operation: op,
                level: level(p)?,
                custom_operations: Default::default(),
            })
        }
    };
    check_rights(app, r, kind, &template, &names)?;
    if p.toggle("dry_run") {
        return Ok(empty());
    }
    fetch_files(app, r, &mut template, env.as_ref())?;
    // Submissions run concurrently on the blocking pool: the "in use" check and the rows marking the
    // nodes busy (in `start`) happen under one lock, so two requests cannot both take the same nodes.
    let _admit = app.admit.lock().unwrap_or_else(|e| e.into_inner());
    if !p.toggle("force") {
        let busy = app
            .store
            .nodes_in_use(&names, crate::store::now_epoch() - app.settings.purge_timer)?;
        names.retain(|n| busy.binary_search(n).is_err());
        if names.is_empty() {
            return Err(err(
                ApiError::NothingModified,
                "All the nodes have been discarded",
            )
            .into());
        }
    }
    let wf = start(
        app,
        kind,
        r,
        &mut template,
        env,
        names,
        verbose as u8,
        p.toggle("debug"),
    )?;
    Ok(Reply::Data(resources(&wf)))
}

/// Fetches the files the request names into the cache (spec §3.4) and points the request at them.
fn fetch_files(
    app: &App,
    r: &Req,
    template: &mut EngineReq,
    env: Option<&(EnvDesc, String, i64)>,
) -> Result<(), RequestError> {
    let version = match env {
        Some((desc, _, id)) if *id >= 0 => format!("{}/{}", desc.name, desc.version),
        _ => "anon".to_string(),
    };
    if let Ok(Some(ops)) = r.params.object("custom_operations") {
        let (kind, slot) = match template {
            EngineReq::Deploy(d) => (Kind::Deploy, &mut d.custom_operations),
            EngineReq::Reboot(rr) => (Kind::Reboot, &mut rr.custom_operations),
            EngineReq::Power(pr) => (Kind::Power, &mut pr.custom_operations),
        };
        *slot = steps::custom_operations(&Value::Object(ops.clone()), kind, &mut |f| {
            files::custom_op(app, r, f)
        })?;
    }
    let key = match template {
        EngineReq::Deploy(d) => {
            if let Some((desc, _, _)) = env {
                files::deploy(app, r, d, desc, &version)?;
            }
            &mut d.ssh_key
        }
        EngineReq::Reboot(rr) => &mut rr.ssh_key,
        EngineReq::Power(_) => return Ok(()),
    };
    if let Some(file) = key.take() {
        *key = Some(files::keys(app, r, &file)?);
    }
    let pxe_files = r
        .params
        .object("pxe")?
        .and_then(|x| x.get("files"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for f in &pxe_files {
        let f = f.as_str().ok_or_else(|| {
            err(
                ApiError::InvalidOption,
                "Parameter 'pxe/files': should be an Array of String",
            )
        })?;
        files::pxe_file(app, r, f)?;
    }
    Ok(())
}

/// Kadeploy's rights checks (error 6): some right on every node, plus the deploy partition for deployments.
fn check_rights(
    app: &App,
    r: &Req,
    kind: Kind,
    req: &EngineReq,
    names: &[String],
) -> Result<(), RequestError> {
    if app.settings.rights_dummy {
        return Ok(());
    }
    let denied = || err(ApiError::InvalidRights, "");
    if !app.store.granted(&r.user, names, "")? {
        return Err(denied());
    }
    if let (Kind::Deploy, EngineReq::Deploy(d)) = (kind, req) {
        let mut by_cluster: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for n in names {
            if let Some((ci, _)) = app.nodes.get(n) {
                by_cluster.entry(*ci).or_default().push(n.clone());
            }
        }
        for (i, mine) in by_cluster {
            let c = &app.clusters[i];
            let dev = d
                .block_device
                .clone()
                .unwrap_or_else(|| c.config.partitioning.block_device.clone());
            let part = match d.deploy_partition {
                Some(Some(n)) => n.to_string(),
                Some(None) => String::new(),
                None => c.config.partitioning.deploy.to_string(),
            };
            if !app.store.granted(&r.user, &mine, &format!("{dev}{part}"))? {
                return Err(denied());
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn start(
    app: &Arc<App>,
    kind: Kind,
    r: &Req,
    template: &mut EngineReq,
    env: Option<(EnvDesc, String, i64)>,
    names: Vec<String>,
    verbose: u8,
    debug: bool,
) -> Result<Arc<Workflow>, RequestError> {
    let mut by_cluster: BTreeMap<usize, Vec<(NodeId, String)>> = BTreeMap::new();
    for n in &names {
        if let Some((c, id)) = app.nodes.get(n) {
            by_cluster.entry(*c).or_default().push((*id, n.clone()));
        }
    }
    let parts: Vec<Part> = by_cluster
        .iter()
        .map(|(c, nodes)| Part {
            cluster: *c,
            cluster_name: app.clusters[*c].config.name.clone(),
            nodes: nodes.iter().map(|x| x.0).collect(),
            names: nodes.iter().map(|x| x.1.clone()).collect(),
            ctx: OnceLock::new(),
            report: Mutex::new(None),
        })
        .collect();
    let env_id = env.as_ref().map(|e| e.2).unwrap_or(-1);
    let environment = env
        .as_ref()
        .map(|(d, u, id)| json!({"id": id, "user": u, "name": d.name, "version": d.version}));
    let label = env
        .as_ref()
        .map(|(d, _, id)| (format!("{}:{}", d.name, d.version), *id < 0))
        .unwrap_or_default();
    let (states, step1) = match template {
        EngineReq::Deploy(_) => (
            DbStates {
                running: "deploying",
                ok: "deployed".into(),
                ko: "deploy_failed",
            },
            None,
        ),
        EngineReq::Reboot(rr) => {
            let ok = match rr.kind {
                RebootKind::DeployEnv => "deploy_env".to_string(),
                RebootKind::RecordedEnv => {
                    let prod = app.clusters[0]
                        .config
                        .partitioning
                        .prod
                        .map(|p| p.to_string());
                    if r.params.string("deploy_partition").ok().flatten() == prod {
                        "prod_env".into()
                    } else {
                        "recorded_env".into()
                    }
                }
                _ => "rebooted".into(),
            };
            let s1 = match rr.kind {
                RebootKind::Simple => "Simple",
                RebootKind::SetPxe => "SetPXE",
                RebootKind::DeployEnv => "DeployEnv",
                RebootKind::RecordedEnv => "RecordedEnv",
            };
            (
                DbStates {
                    running: "rebooting",
                    ok,
                    ko: "reboot_failed",
                },
                Some(s1.to_string()),
            )
        }
        EngineReq::Power(pr) => {
            let s1 = match pr.operation {
                PowerOperation::On => "On",
                PowerOperation::Off => "Off",
                PowerOperation::Status => "Status",
            };
            (
                DbStates {
                    running: "powering",
                    ok: "powered".into(),
                    ko: "power_failed",
                },
                Some(s1.to_string()),
            )
        }
    };
    let wf = Arc::new(Workflow::new(
        kind,
        r.user.clone(),
        environment,
        label,
        debug,
        verbose,
        parts,
        states,
        step1,
    ));
    let row = WorkflowRow {
        wid: wf.wid.clone(),
        kind: kind.base().into(),
        user: r.user.clone(),
        state: "running".into(),
        nodes: names,
    };
    app.store.workflow_begin(&row, wf.states.running, env_id)?;
    app.workflows
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(wf.wid.clone(), wf.clone());
    let observer = super::observe::Observer::new(&app.logs, &wf);
    for (index, part) in wf.parts.iter().enumerate() {
        let req = match template {
            EngineReq::Deploy(d) => EngineReq::Deploy(DeployRequest {
                nodes: part.nodes.clone(),
                ..d.clone()
            }),
            EngineReq::Reboot(rr) => EngineReq::Reboot(RebootRequest {
                nodes: part.nodes.clone(),
                ..rr.clone()
            }),
            EngineReq::Power(pr) => EngineReq::Power(PowerRequest {
                nodes: part.nodes.clone(),
                ..pr.clone()
            }),
        };
        spawn(app, &wf, &observer, index, part.cluster, req);
    }
    Ok(wf)
}

fn spawn(
    app: &Arc<App>,
    wf: &Arc<Workflow>,
    observer: &Arc<super::observe::Observer>,
    index: usize,
    cluster: usize,
    req: EngineReq,
) {
    let c = &app.clusters[cluster];
    let (wf, store, server) = (wf.clone(), app.store.clone(), app.server.clone());
    let observer = observer.clone();
    let (config, drivers, windows) = (
        c.config.clone(),
        c.backend.drivers.clone(),
        c.windows.clone(),
    );
    let prefix = (wf.parts.len() > 1).then(|| {
        config
            .prefix
            .clone()
            .unwrap_or_else(|| format!("c{cluster}"))
    });
    let job = Box::new(
        move || -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
            Box::pin(async move {
                let weak = Arc::downgrade(&wf);
                let verbose = wf.verbose;
                let obs = observer.clone();
                let sink: Sink = Box::new(move |l: &LogLine| {
                    obs.line(prefix.as_deref(), l);
                    if l.level <= verbose
                        && let Some(w) = weak.upgrade()
                    {
                        w.push_log(l.time, prefix.as_deref(), &l.text);
                    }
                });
                let mut ctx = Context::new(
                    drivers,
                    server,
                    config,
                    windows,
                    Output::with_sink(sink, false),
                );
                ctx.cancel = wf.cancel.child_token();
                let ctx = Arc::new(ctx);
                if let Some(part) = wf.parts.get(index) {
                    let _ = part.ctx.set(ctx.clone());
                }
                let result = match req {
                    EngineReq::Deploy(d) => engine::deploy(&ctx, &d).await,
                    EngineReq::Reboot(rr) => engine::reboot(&ctx, &rr).await,
                    EngineReq::Power(pr) => Ok(engine::power(&ctx, &pr).await),
                };
                match result {
                    Ok(report) => {
                        observer.part_ending(&wf, index, Some(&report));
                        wf.part_done(index, Some(report), &store)
                    }
                    Err(e) => {
                        wf.fail(e);
                        observer.part_ending(&wf, index, None);
                        wf.part_done(index, None, &store);
                    }
                }
            })
        },
    );
    if !c.executor.spawn(job) {
        tracing::error!("the executor of cluster {} is gone", c.config.name);
    }
}

/// The submission answer: `wid` and the resource paths.
fn resources(wf: &Workflow) -> Value {
    let base = format!("/{}/{}", wf.kind.base(), wf.wid);
    let mut logs = serde_json::Map::new();
    for p in &wf.parts {
        logs.insert(
            p.cluster_name.clone(),
            json!(format!("{base}/logs/{}?user={}", p.cluster_name, wf.user)),
        );
    }
    let mut res = json!({
        "resource": format!("{base}/"), "log": format!("{base}/logs"), "logs": logs,
        "state": format!("{base}/state"), "status": format!("{base}/status"), "error": format!("{base}/error"),
    });
    if wf.debug {
        res["debug"] = json!(format!("{base}/debugs"));
        let debugs: serde_json::Map<String, Value> = wf
            .node_names()
            .into_iter()
            .map(|n| {
                (
                    n.clone(),
                    json!(format!("{base}/debugs/{n}?user={}", wf.user)),
                )
            })
            .collect();
        res["debugs"] = Value::Object(debugs);
    }
    json!({"wid": wf.wid, "resources": res})
}

/// Like [`resolve`], but an empty list stays empty.
pub fn resolve_or_empty(app: &App, requested: &[String]) -> Result<Vec<String>, RequestError> {
    if requested.is_empty() {
        Ok(Vec::new())
    } else {
        resolve(app, requested)
    }
}

#[cfg(test)]
mod tests {
    use super::known_node;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// The lookup before the range search: every node scanned for each name.
    fn scan<'a>(nodes: &'a BTreeMap<String, ()>, name: &str) -> Result<&'a String, usize> {
        if let Some((node, _)) = nodes.get_key_value(name) {
            return Ok(node);
        }
        let hits: Vec<&String> = nodes
            .keys()
            .filter(|n| {
                n.strip_prefix(name)
                    .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
            })
            .collect();
        match hits.as_slice() {
            [one] => Ok(one),
            other => Err(other.len().min(2)),
        }
    }

    #[test]
    fn short_names_resolve_by_range() {
        let nodes: BTreeMap<String, ()> = [
            "node-1.dom",
            "node-10.dom",
            "node-2.dom",
            "node-2-eth1.dom",
            "x",
        ]
        .iter()
        .map(|n| (n.to_string(), ()))
        .collect();
        let found = |n: &str| {
            known_node(&nodes, n)
                .map(String::as_str)
                .map_err(|e| e.kind.code())
        };
        assert_eq!(found("node-1"), Ok("node-1.dom"));
        assert_eq!(found("node-10"), Ok("node-10.dom"));
        assert_eq!(found("node-1.dom"), Ok("node-1.dom"));
        assert_eq!(found("x"), Ok("x"));
        assert_eq!(
            found("node-2"),
            Err(2),
            "node-2.dom and node-2-eth1.dom: ambiguous"
        );
        assert_eq!(found("node-3"), Err(2));
        assert_eq!(found("node-"), Err(2));
        assert_eq!(found("%"), Err(2));
    }

    proptest! {
        /// The range search finds what scanning every node finds.
        #[test]
        fn range_lookup_matches_a_full_scan(
            names in prop::collection::btree_set("[a-c0-9.:/é-]{1,6}", 0..40),
            name in "[a-c0-9.:/é-]{1,4}",
        ) {
            let nodes: BTreeMap<String, ()> = names.into_iter().map(|n| (n, ())).collect();
            let fast = known_node(&nodes, &name)
                .map_err(|e| if e.detail.starts_with("Ambiguous") { 2 } else { 0 });
            let slow = scan(&nodes, &name);
            prop_assert_eq!(fast, slow);
        }
    }
}

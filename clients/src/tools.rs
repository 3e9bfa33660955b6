//! `kaenv3`, `karights3`, `kastat3` and `kanodes3` (spec §2.5–§2.9): options, requests and outputs.

use super::{Api, ClientEnv, ClientError, block_on, export, nodes, parse_args as parse};
use crate::global::GlobalArgs;
use crate::workflow::SecureArgs;
use clap::Parser;
use reqwest::Method;
use serde_json::{Map, Value, json};

pub mod dates;

fn usage(m: &str) -> ClientError {
    ClientError::Usage(m.into())
}

/// Runs a non-workflow client: parses `args`, answers `-v`/`-I`, then runs `body` on the chosen server
/// (on every reachable server, one after the other, with `-M`).
fn tool<C, G, F>(name: &str, args: &[String], env: &ClientEnv, global: G, body: F) -> i32
where
    C: Parser,
    G: Fn(&C) -> &GlobalArgs,
    F: AsyncFn(&Api, &C) -> Result<(), ClientError>,
{
    let cli: C = match parse(name, args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    block_on(async move {
        let g = global(&cli);
        if g.answer_info(env).await? {
            return Ok(());
        }
        for api in g.connect(env).await? {
            body(&api, &cli).await?;
        }
        Ok(())
    })
}

/// Adds `dry_run: true` to a request's parameters (`Client.init_params`).
fn dry_run_body(g: &GlobalArgs, mut body: Value) -> Value {
    if g.dry_run
        && let Some(m) = body.as_object_mut()
    {
        m.insert("dry_run".into(), json!(true));
    }
    body
}

/// Adds `dry_run=true` to a query.
fn dry_run_query(g: &GlobalArgs, q: &mut Vec<(&str, String)>) {
    if g.dry_run {
        q.push(("dry_run", "true".into()));
    }
}

/// `kaenv3` options.
#[derive(Parser, Debug)]
#[command(
    name = "kaenv3",
    about = "Manage the environment catalogue",
    disable_version_flag = true
)]
pub struct EnvCli {
    #[command(flatten)]
    global: GlobalArgs,
    /// Add the environment described in FILE.
    #[arg(short = 'a', long = "add")]
    add: Option<String>,
    /// Delete an environment (last version unless -s).
    #[arg(short = 'd', long = "delete")]
    delete: Option<String>,
    /// List environments (optionally by name, `%` wildcard).
    #[arg(short = 'l', long = "list", num_args = 0..=1, default_missing_value = "")]
    list: Option<String>,
    /// Files to move (`src1::dst1,src2::dst2,...`), with --move-files.
    #[arg(short = 'm', long = "files-to-move", value_parser = files_to_move)]
    files_to_move: Option<Moves>,
    /// Print an environment's description.
    #[arg(short = 'p', long = "print")]
    print: Option<String>,
    /// Every version.
    #[arg(short = 's', long = "all-versions")]
    all_versions: bool,
    /// Visibility for --set-visibility-tag.
    #[arg(short = 't', long = "visibility-tag", value_parser = ["private", "shared", "public"])]
    visibility: Option<String>,
    /// Owner.
    #[arg(short = 'u', long = "env-user")]
    user: Option<String>,
    /// Version.
    #[arg(long = "env-version")]
    env_version: Option<u32>,
    /// Toggle the destructive tag.
    #[arg(long = "toggle-destructive-tag")]
    toggle_destructive: Option<String>,
    /// Set the visibility (with -t).
    #[arg(long = "set-visibility-tag")]
    set_visibility: Option<String>,
    /// Update the checksum of the environment's image.
    #[arg(long = "update-image-checksum")]
    update_image: Option<String>,
    /// Update the checksum of the environment's preinstall.
    #[arg(long = "update-preinstall-checksum")]
    update_preinstall: Option<String>,
    /// Update the checksums of the environment's postinstalls.
    #[arg(long = "update-postinstalls-checksum")]
    update_postinstalls: Option<String>,
    /// Move the files of the environments (administrators only), as -m says.
    #[arg(long = "move-files")]
    move_files: bool,
    #[command(flatten)]
    secure: SecureArgs,
}

/// `kaenv3 -m`: the `src::dst` prefix pairs.
#[derive(Clone, Debug)]
pub struct Moves(Vec<(String, String)>);

/// The `-m` syntax (`\A.+::.+(,.+::.+)*\Z`): `src::dst` pairs.
fn files_to_move(v: &str) -> Result<Moves, String> {
    v.split(',')
        .map(|pair| match pair.split_once("::") {
            Some((src, dst)) if !src.is_empty() && !dst.is_empty() => {
                Ok((src.to_string(), dst.to_string()))
            }
            _ => Err("Invalid synthax for files to move".to_string()),
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Moves)
}

/// A `kaenv3` modification of one environment (`PUT /environments/<U>/<NAME>[/<V>]`).
#[derive(Debug, PartialEq)]
pub enum EnvChange {
    /// `--toggle-destructive-tag`.
    ToggleDestructive,
    /// `--set-visibility-tag` with `-t`.
    Visibility(String),
    /// `--update-image-checksum`.
    ImageChecksum,
    /// `--update-preinstall-checksum`.
    PreinstallChecksum,
    /// `--update-postinstalls-checksum`.
    PostinstallsChecksum,
}

impl EnvChange {
    /// The request body: the change, plus `last: true` when no version is named.
    pub fn body(&self, version: Option<u32>) -> Value {
        let mut b = match self {
            EnvChange::ToggleDestructive => json!({"toggle_destructive": true}),
            EnvChange::Visibility(v) => json!({"visibility": v}),
            EnvChange::ImageChecksum => json!({"update_image_checksum": true}),
            EnvChange::PreinstallChecksum => json!({"update_preinstall_checksum": true}),
            EnvChange::PostinstallsChecksum => json!({"update_postinstalls_checksum": true}),
        };
        if version.is_none() {
            b["last"] = json!(true);
        }
        b
    }

    /// Checksum updates read the environment's files again: local ones are exported.
    fn reads_files(&self) -> bool {
        !matches!(
            self,
            EnvChange::ToggleDestructive | EnvChange::Visibility(_)
        )
    }
}

impl EnvCli {
    /// The modification asked for, with the environment's name.
    fn change(&self) -> Result<Option<(&String, EnvChange)>, ClientError> {
        Ok(Some(if let Some(n) = &self.toggle_destructive {
            (n, EnvChange::ToggleDestructive)
        } else if let Some(n) = &self.set_visibility {
            let v = (self.visibility.clone())
                .ok_or_else(|| usage("You must define the visibility value"))?;
            (n, EnvChange::Visibility(v))
        } else if let Some(n) = &self.update_image {
            (n, EnvChange::ImageChecksum)
        } else if let Some(n) = &self.update_preinstall {
            (n, EnvChange::PreinstallChecksum)
        } else if let Some(n) = &self.update_postinstalls {
            (n, EnvChange::PostinstallsChecksum)
        } else {
            return Ok(None);
        }))
    }

    /// `--move-files`: the `PUT /environments` body.
    pub fn move_body(&self) -> Result<Value, ClientError> {
        let pairs = (self.files_to_move.as_ref())
            .map(|m| &m.0)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| usage("You must define some files to move"))?;
        let map: Map<String, Value> = pairs.iter().map(|(s, d)| (s.clone(), json!(d))).collect();
        Ok(json!({"update_files": map}))
    }
}

/// Starts the file server for `files` (the local ones) and adds `client` to `body`.
async fn export_for(
    api: &Api,
    files: Vec<String>,
    secure: bool,
    body: &mut Value,
) -> Result<Option<export::FileServer>, ClientError> {
    let files: Vec<String> = files.into_iter().filter(|f| export::is_local(f)).collect();
    if files.is_empty() {
        return Ok(None);
    }
    let files: Vec<String> = files.iter().map(|f| export::absolute(f)).collect();
    let server = export::start(&files, &api.local_address()?, secure).await?;
    body["client"] = json!(server.url);
    Ok(Some(server))
}

/// Runs `kaenv3`.
pub fn kaenv(args: &[String], env: &ClientEnv) -> i32 {
    tool(
        "kaenv3",
        args,
        env,
        |c: &EnvCli| &c.global,
        async |api, cli: &EnvCli| {
            let g = &cli.global;
            let owner = cli.user.clone().unwrap_or_else(|| api.user.clone());
            let path = |name: &str| {
                let v = cli.env_version.map(|v| format!("/{v}")).unwrap_or_default();
                format!("/environments/{}/{}{v}", enc(&owner), enc(name))
            };
            let last = if cli.env_version.is_none() && !cli.all_versions {
                json!({"last": true})
            } else {
                json!({})
            };
            if let Some(file) = &cli.add {
                let text =
                    std::fs::read_to_string(file).map_err(|e| usage(&format!("{file}: {e}")))?;
                let desc: Value =
                    serde_saphyr::from_str(&text).map_err(|e| usage(&format!("{file}: {e}")))?;
                let (_, warnings) = kadeploy::envdesc::EnvDesc::from_value(&desc).map_err(|e| {
                    ClientError::Api(7, format!("Error[environment description] {}", e.detail))
                })?;
                warnings.iter().for_each(|w| eprintln!("{w}"));
                let body = dry_run_body(g, json!({"environment": desc}));
                api.json(Method::POST, "/environments", &[], Some(&body))
                    .await?;
            } else if cli.list.is_some() || cli.print.is_some() {
                let mut q = Vec::new();
                if let Some(u) = &cli.user {
                    q.push(("username", u.clone()));
                }
                if let Some(n) = cli
                    .list
                    .as_ref()
                    .filter(|n| !n.is_empty())
                    .or(cli.print.as_ref())
                {
                    q.push(("name", n.clone()));
                }
                match cli.env_version {
                    Some(v) => q.push(("version", v.to_string())),
                    None if !cli.all_versions => q.push(("last", "true".into())),
                    None => {}
                }
                dry_run_query(g, &mut q);
                let envs = match api.json(Method::GET, "/environments", &q, None).await {
                    Err(ClientError::Http(404, _)) => json!([]),
                    r => r?,
                };
                if g.dry_run {
                    return Ok(());
                }
                let envs = envs.as_array().cloned().unwrap_or_default();
                if envs.is_empty() {
                    println!("No environment has been found");
                } else if cli.print.is_some() {
                    let mine = envs
                        .iter()
                        .find(|e| e["user"] == json!(owner))
                        .unwrap_or(&envs[0])
                        .clone();
                    let mut e = mine;
                    if let Some(m) = e.as_object_mut() {
                        m.remove("user");
                    }
                    print!("{}", kadeploy::wire::to_yaml(&e));
                } else {
                    println!("{:<21} {:<7} {:<11} Description", "Name", "Version", "User");
                    println!("{:<21} {:<7} {:<11} ###########", "####", "#######", "####");
                    for e in envs {
                        let d: String = e["description"]
                            .as_str()
                            .unwrap_or("")
                            .chars()
                            .take(35)
                            .collect();
                        println!(
                            "{:<21} {:<7} {:<11} {d}",
                            e["name"].as_str().unwrap_or(""),
                            e["version"].to_string(),
                            e["user"].as_str().unwrap_or("")
                        );
                    }
                }
            } else if let Some(name) = &cli.delete {
                let body = dry_run_body(g, last);
                api.json(Method::DELETE, &path(name), &[], Some(&body))
                    .await?;
            } else if let Some((name, change)) = cli.change()? {
                let mut body = dry_run_body(g, change.body(cli.env_version));
                let mut _files = None;
                if change.reads_files() {
                    let mut q = vec![("username", owner.clone()), ("name", name.clone())];
                    match cli.env_version {
                        Some(v) => q.push(("version", v.to_string())),
                        None => q.push(("last", "true".into())),
                    }
                    let found = api.json(Method::GET, "/environments", &q, None).await?;
                    if let Some(e) = found.as_array().and_then(|a| a.first()) {
                        let mut stored = Map::new();
                        stored.insert("environment".into(), e.clone());
                        let files = export::collect(&mut stored);
                        _files = export_for(api, files, cli.secure.secure, &mut body).await?;
                    }
                }
                api.json(Method::PUT, &path(name), &[], Some(&body)).await?;
            } else if cli.move_files {
                let body = dry_run_body(g, cli.move_body()?);
                let moved = api
                    .json(Method::PUT, "/environments", &[], Some(&body))
                    .await?;
                for e in moved.as_array().into_iter().flatten() {
                    println!("{} v{}", e["name"].as_str().unwrap_or(""), e["version"]);
                }
            } else {
                return Err(usage("You must choose an operation"));
            }
            Ok(())
        },
    )
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// `karights3` options.
#[derive(Parser, Debug)]
#[command(
    name = "karights3",
    about = "Manage rights",
    disable_version_flag = true
)]
pub struct RightsCli {
    #[command(flatten)]
    global: GlobalArgs,
    /// Add rights.
    #[arg(short = 'a', long = "add")]
    add: bool,
    /// Delete rights.
    #[arg(short = 'd', long = "delete")]
    delete: bool,
    /// Node file.
    #[arg(short = 'f', long = "file")]
    files: Vec<String>,
    /// List rights.
    #[arg(short = 'l', long = "list")]
    list: bool,
    /// Node (`*` = all), repeatable.
    #[arg(short = 'm', long = "machine")]
    machines: Vec<String>,
    /// Replace other users' rights.
    #[arg(short = 'o', long = "overwrite-rights")]
    overwrite: bool,
    /// Partition (`*` = all), repeatable.
    #[arg(short = 'p', long = "part")]
    parts: Vec<String>,
    /// User.
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
}

impl RightsCli {
    /// The request body (`KarightsClient.prepare`): `*` nodes and partitions mean no filter.
    pub fn body(&self) -> Result<Value, ClientError> {
        let machines: Vec<String> = (self.machines.iter())
            .filter(|m| m.trim() != "*")
            .cloned()
            .collect();
        let list = nodes(&machines, &self.files)?;
        let parts: Vec<&String> = self.parts.iter().filter(|p| p.trim() != "*").collect();
        let mut body = json!({});
        if !list.is_empty() {
            body["nodes"] = json!(list);
        }
        if !parts.is_empty() && !self.list {
            body["partitions"] = json!(parts);
        }
        if self.add {
            body["username"] = json!(
                self.user
                    .clone()
                    .ok_or_else(|| usage("You must choose a user"))?
            );
        }
        if self.overwrite {
            body["overwrite"] = json!(true);
        }
        Ok(dry_run_body(&self.global, body))
    }
}

/// `karights3 -l` output (`print_headers`, `print_rights`).
pub fn rights_table(rights: &Value) -> String {
    let mut out = format!("{:<15} {:<41} Partitions\n", "User", "Node");
    out += &format!("{:<15} {:<41} ##########\n", "####", "####");
    for (u, nodes) in rights.as_object().into_iter().flatten() {
        for (n, parts) in nodes.as_object().into_iter().flatten() {
            let parts: Vec<&str> = (parts.as_array().into_iter().flatten())
                .filter_map(Value::as_str)
                .collect();
            out += &format!("{u:<15} {n:<41} {}\n", parts.join(","));
        }
    }
    out
}

/// Runs `karights3`.
pub fn karights(args: &[String], env: &ClientEnv) -> i32 {
    tool(
        "karights3",
        args,
        env,
        |c: &RightsCli| &c.global,
        async |api, cli: &RightsCli| {
            let body = cli.body()?;
            if cli.add {
                api.json(Method::POST, "/rights", &[], Some(&body)).await?;
            } else if cli.delete {
                let u = cli
                    .user
                    .clone()
                    .ok_or_else(|| usage("You must choose a user"))?;
                api.json(
                    Method::DELETE,
                    &format!("/rights/{}", enc(&u)),
                    &[],
                    Some(&body),
                )
                .await?;
            } else if cli.list {
                if body.get("nodes").is_some() {
                    return Err(usage(
                        "Node list is useless when showing rights of a specific user",
                    ));
                }
                let path = cli
                    .user
                    .as_ref()
                    .map(|u| format!("/rights/{}", enc(u)))
                    .unwrap_or_else(|| "/rights".into());
                let mut q = Vec::new();
                dry_run_query(&cli.global, &mut q);
                let rights = api.json(Method::GET, &path, &q, None).await?;
                if !cli.global.dry_run {
                    print!("{}", api.labelled(rights_table(&rights).trim_end()));
                    println!();
                }
            } else {
                return Err(usage("You must choose an operation"));
            }
            Ok(())
        },
    )
}

/// `kastat3` options.
#[derive(Parser, Debug)]
#[command(
    name = "kastat3",
    about = "Deployment statistics",
    disable_version_flag = true
)]
pub struct StatCli {
    #[command(flatten)]
    global: GlobalArgs,
    /// Every row (default).
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Failure rates, at least RATE.
    #[arg(short = 'b', long = "failure-rate", num_args = 0..=1, default_missing_value = "")]
    failure_rate: Option<String>,
    /// Node file.
    #[arg(short = 'f', long = "file")]
    files: Vec<String>,
    /// Fields, comma separated.
    #[arg(short = 'F', long = "fields", value_delimiter = ',')]
    fields: Vec<String>,
    /// Node, repeatable.
    #[arg(short = 'm', long = "machine")]
    machines: Vec<String>,
    /// `deploy`, `reboot` or `power`.
    #[arg(short = 'o', long = "operation", value_parser = ["deploy", "reboot", "power"])]
    operation: Option<String>,
    /// Minimum retries.
    #[arg(short = 'r', long = "min-retries")]
    min_retries: Option<u32>,
    /// Steps for --min-retries.
    #[arg(short = 's', long = "retry-steps", value_delimiter = ',')]
    steps: Vec<String>,
    /// Workflow id.
    #[arg(short = 'w', long = "workflow-id")]
    wid: Option<String>,
    /// Statistics from this date (`yyyy-mm-dd hh:mm:ss`, UTC, or an RFC 2616 date).
    #[arg(short = 'x', long = "date-min", value_parser = dates::http_date)]
    date_min: Option<String>,
    /// Statistics up to this date.
    #[arg(short = 'y', long = "date-max", value_parser = dates::http_date)]
    date_max: Option<String>,
    /// Rows at most.
    #[arg(long)]
    limit: Option<u64>,
    /// Sort fields.
    #[arg(long, value_delimiter = ',')]
    sort: Vec<String>,
}

/// The fields `-F` accepts (`KastatClient::FIELDS`).
const STAT_FIELDS: [&str; 20] = [
    "wid",
    "user",
    "hostname",
    "step1",
    "step2",
    "step3",
    "timeout_step1",
    "timeout_step2",
    "timeout_step3",
    "retry_step1",
    "retry_step2",
    "retry_step3",
    "start",
    "step1_duration",
    "step2_duration",
    "step3_duration",
    "env",
    "md5",
    "success",
    "error",
];

impl StatCli {
    /// The query of `GET /stats[/<op>]` (`KastatClient#run`).
    pub fn query(&self) -> Result<Vec<(&'static str, String)>, ClientError> {
        let invalid: Vec<&str> = (self.fields.iter())
            .filter(|f| !STAT_FIELDS.contains(&f.as_str()))
            .map(String::as_str)
            .collect();
        if !invalid.is_empty() {
            return Err(usage(&format!("Invalid field(s) {}", invalid.join(", "))));
        }
        let mut q: Vec<(&str, String)> = Vec::new();
        dry_run_query(&self.global, &mut q);
        match &self.failure_rate {
            Some(rate) => {
                q.push(("kind", "failure_rates".into()));
                if !rate.is_empty() {
                    q.push(("min_failure_rate", rate.clone()));
                }
            }
            None => q.push(("kind", "all".into())),
        }
        q.extend(
            nodes(&self.machines, &self.files)?
                .into_iter()
                .map(|n| ("nodes", n)),
        );
        q.extend(self.fields.iter().map(|f| ("fields", f.clone())));
        if let Some(l) = self.limit {
            q.push(("limit", l.to_string()));
        }
        q.extend(self.sort.iter().map(|f| ("sort", f.clone())));
        for (k, v) in [
            ("date_min", &self.date_min),
            ("date_max", &self.date_max),
            ("wid", &self.wid),
        ] {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        }
        if let Some(r) = self.min_retries {
            q.push(("min_retries", r.to_string()));
        }
        q.extend(self.steps.iter().map(|s| ("step_retries", s.clone())));
        Ok(q)
    }
}

/// Runs `kastat3`.
pub fn kastat(args: &[String], env: &ClientEnv) -> i32 {
    tool(
        "kastat3",
        args,
        env,
        |c: &StatCli| &c.global,
        async |api, cli: &StatCli| {
            let _ = cli.all;
            let q = cli.query()?;
            let path = match cli.operation.as_deref() {
                None => "/stats".to_string(),
                Some(op) => format!("/stats/{op}"),
            };
            if cli.failure_rate.is_some() {
                let rates = api.json(Method::GET, &path, &q, None).await?;
                if cli.global.dry_run {
                    return Ok(());
                }
                for (h, r) in rates.as_object().into_iter().flatten() {
                    api.say(&format!("{h}: {r}"));
                }
            } else {
                let text = api.text(Method::GET, &path, &q, None).await?;
                if !cli.global.dry_run && !text.is_empty() {
                    match &api.label {
                        None => print!("{text}"),
                        Some(_) => api.say(text.trim_end_matches('\n')),
                    }
                }
            }
            Ok(())
        },
    )
}

/// `kanodes3` options.
#[derive(Parser, Debug)]
#[command(
    name = "kanodes3",
    about = "Node states and workflow status",
    disable_version_flag = true
)]
pub struct NodesCli {
    #[command(flatten)]
    global: GlobalArgs,
    /// Status of every deployment, reboot, power and console operation.
    #[arg(short = 'a', long = "get-all-status")]
    all: bool,
    /// Console status.
    #[arg(short = 'c', long = "get-consoles-status")]
    console: bool,
    /// Deployment status.
    #[arg(
        short = 'd',
        long = "get-deployments-status",
        visible_alias = "get-deploy-status"
    )]
    deploy: bool,
    /// Node file.
    #[arg(short = 'f', long = "file")]
    files: Vec<String>,
    /// Node, repeatable.
    #[arg(short = 'm', long = "machine")]
    machines: Vec<String>,
    /// Power status.
    #[arg(
        short = 'p',
        long = "get-powers-status",
        visible_alias = "get-power-status"
    )]
    power: bool,
    /// Reboot status.
    #[arg(
        short = 'r',
        long = "get-reboots-status",
        visible_alias = "get-reboot-status"
    )]
    reboot: bool,
    /// Node states.
    #[arg(short = 's', long = "get-nodes-state")]
    state: bool,
    /// One workflow.
    #[arg(short = 'w', long = "workflow-id")]
    wid: Option<String>,
}

/// What `kanodes3` asks for.
#[derive(Debug, PartialEq)]
pub enum NodesQuery {
    /// `-s`: `GET /nodes` with the nodes in the query.
    States(Vec<(&'static str, String)>),
    /// `-d`, `-r`, `-p`, `-c`: one status path.
    Status(String),
    /// `-a`: every status, as JSON.
    All(Vec<&'static str>),
}

impl NodesCli {
    /// The request(s) of the chosen option.
    pub fn query(&self) -> Result<NodesQuery, ClientError> {
        let list = nodes(&self.machines, &self.files)?;
        let mut dry = Vec::new();
        dry_run_query(&self.global, &mut dry);
        if self.state {
            if self.wid.is_some() {
                return Err(usage("-w cannot be used with -s"));
            }
            let mut q: Vec<(&str, String)> = list.into_iter().map(|n| ("nodes", n)).collect();
            q.extend(dry);
            return Ok(NodesQuery::States(q));
        }
        if !list.is_empty() {
            return Err(usage("Node list is useless when gathering statuses"));
        }
        if self.all {
            return Ok(NodesQuery::All(vec![
                "/deployment",
                "/reboot",
                "/power",
                "/console",
            ]));
        }
        let base = match (self.deploy, self.reboot, self.power, self.console) {
            (true, false, false, false) => "/deployment",
            (false, true, false, false) => "/reboot",
            (false, false, true, false) => "/power",
            (false, false, false, true) => "/console",
            _ => return Err(usage("You must choose an operation")),
        };
        Ok(NodesQuery::Status(
            self.wid
                .as_ref()
                .map(|w| format!("{base}/{}", enc(w)))
                .unwrap_or_else(|| base.to_string()),
        ))
    }
}

/// Runs `kanodes3`.
pub fn kanodes(args: &[String], env: &ClientEnv) -> i32 {
    tool(
        "kanodes3",
        args,
        env,
        |c: &NodesCli| &c.global,
        async |api, cli: &NodesCli| {
            let yaml = "application/x-yaml";
            let mut dry = Vec::new();
            dry_run_query(&cli.global, &mut dry);
            let body = match cli.query()? {
                NodesQuery::States(q) => api.text_as(Method::GET, "/nodes", &q, None, yaml).await?,
                NodesQuery::Status(path) => {
                    api.text_as(Method::GET, &path, &dry, None, yaml).await?
                }
                NodesQuery::All(paths) => {
                    let mut all = Map::new();
                    for path in paths {
                        let v = api.json(Method::GET, path, &dry, None).await?;
                        all.insert(path.trim_start_matches('/').to_string(), v);
                    }
                    kadeploy::wire::to_yaml(&Value::Object(all))
                }
            };
            if !cli.global.dry_run {
                print!("{body}");
            }
            Ok(())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<C: Parser>(name: &str, args: &[&str]) -> C {
        C::try_parse_from(std::iter::once(name).chain(args.iter().copied())).expect("parses")
    }

    #[test]
    fn kaenv_changes_send_kadeploys_fields() {
        let cli: EnvCli = parse("kaenv3", &["--update-image-checksum", "deb"]);
        let (name, change) = cli.change().unwrap().unwrap();
        assert_eq!(name, "deb");
        assert_eq!(
            change.body(None),
            json!({"update_image_checksum": true, "last": true})
        );
        let cli: EnvCli = parse(
            "kaenv3",
            &["--update-preinstall-checksum", "deb", "--env-version", "2"],
        );
        let (_, change) = cli.change().unwrap().unwrap();
        assert_eq!(
            change.body(Some(2)),
            json!({"update_preinstall_checksum": true})
        );
        let cli: EnvCli = parse("kaenv3", &["--update-postinstalls-checksum", "deb"]);
        assert_eq!(
            cli.change().unwrap().unwrap().1,
            EnvChange::PostinstallsChecksum
        );
        let cli: EnvCli = parse("kaenv3", &["--set-visibility-tag", "deb"]);
        assert!(cli.change().is_err(), "-t is needed");
        let cli: EnvCli = parse(
            "kaenv3",
            &["--move-files", "-m", "http://old/::http://new/,/a::/b"],
        );
        assert_eq!(
            cli.move_body().unwrap(),
            json!({"update_files": {"http://old/": "http://new/", "/a": "/b"}})
        );
        assert!(EnvCli::try_parse_from(["kaenv3", "-m", "nothing"]).is_err());
        let cli: EnvCli = parse("kaenv3", &["--move-files"]);
        assert!(cli.move_body().is_err());
    }

    #[test]
    fn karights_body_and_list_output() {
        let cli: RightsCli = parse(
            "karights3",
            &["-a", "-u", "bob", "-m", "*", "-p", "*", "-o", "--dry-run"],
        );
        assert_eq!(
            cli.body().unwrap(),
            json!({"username": "bob", "overwrite": true, "dry_run": true})
        );
        let cli: RightsCli = parse(
            "karights3",
            &["-d", "-u", "bob", "-m", "node-1", "-p", "/dev/sda3"],
        );
        assert_eq!(
            cli.body().unwrap(),
            json!({"nodes": ["node-1"], "partitions": ["/dev/sda3"]})
        );
        let table = rights_table(&json!({"root": {"*": ["*"]}}));
        assert_eq!(
            table,
            format!(
                "{:<15} {:<41} Partitions\n{:<15} {:<41} ##########\n{:<15} {:<41} *\n",
                "User", "Node", "####", "####", "root", "*"
            )
        );
    }

    #[test]
    fn kastat_query() {
        let cli: StatCli = parse(
            "kastat3",
            &[
                "-x",
                "2013-10-08 12:34:56",
                "-y",
                "2013-10-09",
                "-b",
                "0.5",
                "-m",
                "node-1",
                "-o",
                "deploy",
            ],
        );
        let q = cli.query().unwrap();
        for pair in [
            ("date_min", "Tue, 08 Oct 2013 12:34:56 GMT"),
            ("date_max", "Wed, 09 Oct 2013 00:00:00 GMT"),
            ("kind", "failure_rates"),
            ("min_failure_rate", "0.5"),
            ("nodes", "node-1"),
        ] {
            assert!(
                q.contains(&(pair.0, pair.1.to_string())),
                "{pair:?} in {q:?}"
            );
        }
    }

    #[test]
    fn kanodes_queries() {
        let q = |args: &[&str]| parse::<NodesCli>("kanodes3", args).query();
        assert_eq!(q(&["-c"]).unwrap(), NodesQuery::Status("/console".into()));
        assert_eq!(
            q(&["--get-deployments-status", "-w", "D-1"]).unwrap(),
            NodesQuery::Status("/deployment/D-1".into())
        );
        assert_eq!(
            q(&["--get-reboots-status"]).unwrap(),
            NodesQuery::Status("/reboot".into())
        );
        assert_eq!(
            q(&["--get-powers-status"]).unwrap(),
            NodesQuery::Status("/power".into())
        );
        assert_eq!(
            q(&["-a"]).unwrap(),
            NodesQuery::All(vec!["/deployment", "/reboot", "/power", "/console"])
        );
        assert_eq!(
            q(&["-s", "-m", "node-1", "--dry-run"]).unwrap(),
            NodesQuery::States(vec![("nodes", "node-1".into()), ("dry_run", "true".into())])
        );
        assert!(q(&["-d", "-m", "node-1"]).is_err());
        assert!(
            parse::<StatCli>("kastat3", &["-F", "wid,nope"])
                .query()
                .is_err()
        );
        assert!(q(&["-s", "-w", "D-1"]).is_err());
    }
}

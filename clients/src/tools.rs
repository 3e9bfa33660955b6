//! `kaenv3`, `karights3`, `kastat3` and `kanodes3` (spec §2.5–§2.9): options, requests and outputs.

use super::{Api, ClientEnv, ClientError, block_on, nodes, parse_args as parse};
use clap::Parser;
use reqwest::Method;
use serde_json::{Value, json};

fn usage(m: &str) -> ClientError {
    ClientError::Usage(m.into())
}

/// `kaenv3` options.
#[derive(Parser, Debug)]
#[command(name = "kaenv3", about = "Manage the environment catalogue")]
struct EnvCli {
    /// Add the environment described in FILE.
    #[arg(short = 'a', long = "add")]
    add: Option<String>,
    /// List environments (optionally by name, `%` wildcard).
    #[arg(short = 'l', long = "list", num_args = 0..=1, default_missing_value = "")]
    list: Option<String>,
    /// Print an environment's description.
    #[arg(short = 'p', long = "print")]
    print: Option<String>,
    /// Delete an environment (last version unless -s).
    #[arg(short = 'd', long = "delete")]
    delete: Option<String>,
    /// Toggle the destructive tag.
    #[arg(long = "toggle-destructive-tag")]
    toggle_destructive: Option<String>,
    /// Set the visibility (with -t).
    #[arg(long = "set-visibility-tag")]
    set_visibility: Option<String>,
    /// Visibility for --set-visibility-tag.
    #[arg(short = 't', long = "visibility-tag")]
    visibility: Option<String>,
    /// Every version.
    #[arg(short = 's', long = "all-versions")]
    all_versions: bool,
    /// Owner.
    #[arg(short = 'u', long = "env-user")]
    user: Option<String>,
    /// Version.
    #[arg(long = "env-version")]
    version: Option<u32>,
    /// Server name.
    #[arg(short = 'S', long = "server")]
    server: Option<String>,
}

/// Runs `kaenv3`.
pub fn kaenv(args: &[String], env: &ClientEnv) -> i32 {
    let cli: EnvCli = match parse("kaenv3", args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    block_on(async move {
        let api = Api::connect(env, cli.server.as_deref()).await?;
        let owner = cli.user.clone().unwrap_or_else(|| api.user.clone());
        let path = |name: &str| {
            let v = cli.version.map(|v| format!("/{v}")).unwrap_or_default();
            format!("/environments/{}/{}{v}", enc(&owner), enc(name))
        };
        let last = if cli.version.is_none() && !cli.all_versions {
            json!({"last": true})
        } else {
            json!({})
        };
        if let Some(file) = &cli.add {
            let text = std::fs::read_to_string(file).map_err(|e| usage(&format!("{file}: {e}")))?;
            let desc: Value =
                serde_saphyr::from_str(&text).map_err(|e| usage(&format!("{file}: {e}")))?;
            let (_, warnings) = kadeploy::envdesc::EnvDesc::from_value(&desc).map_err(|e| {
                ClientError::Api(7, format!("Error[environment description] {}", e.detail))
            })?;
            warnings.iter().for_each(|w| eprintln!("{w}"));
            api.json(
                Method::POST,
                "/environments",
                &[],
                Some(&json!({"environment": desc})),
            )
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
            match cli.version {
                Some(v) => q.push(("version", v.to_string())),
                None if !cli.all_versions => q.push(("last", "true".into())),
                None => {}
            }
            let envs = match api.json(Method::GET, "/environments", &q, None).await {
                Err(ClientError::Http(404, _)) => json!([]),
                r => r?,
            };
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
            api.json(Method::DELETE, &path(name), &[], Some(&last))
                .await?;
        } else if let Some(name) = &cli.toggle_destructive {
            api.json(
                Method::PUT,
                &path(name),
                &[],
                Some(&json!({"toggle_destructive": true, "last": true})),
            )
            .await?;
        } else if let Some(name) = &cli.set_visibility {
            let v = cli
                .visibility
                .clone()
                .ok_or_else(|| usage("--set-visibility-tag needs -t"))?;
            api.json(
                Method::PUT,
                &path(name),
                &[],
                Some(&json!({"visibility": v, "last": true})),
            )
            .await?;
        } else {
            return Err(usage("No action specified (-a, -l, -p, -d, ...)"));
        }
        Ok(())
    })
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// `karights3` options.
#[derive(Parser, Debug)]
#[command(name = "karights3", about = "Manage rights")]
struct RightsCli {
    /// Add rights.
    #[arg(short = 'a', long = "add")]
    add: bool,
    /// Delete rights.
    #[arg(short = 'd', long = "delete")]
    delete: bool,
    /// List rights.
    #[arg(short = 'l', long = "list")]
    list: bool,
    /// User.
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// Node (`*` = all), repeatable.
    #[arg(short = 'm', long = "machine")]
    machines: Vec<String>,
    /// Node file.
    #[arg(short = 'f', long = "file")]
    files: Vec<String>,
    /// Partition (`*` = all), repeatable.
    #[arg(short = 'p', long = "part")]
    parts: Vec<String>,
    /// Replace other users' rights.
    #[arg(short = 'o', long = "overwrite-rights")]
    overwrite: bool,
    /// Server name.
    #[arg(short = 'S', long = "server")]
    server: Option<String>,
}

/// Runs `karights3`.
pub fn karights(args: &[String], env: &ClientEnv) -> i32 {
    let cli: RightsCli = match parse("karights3", args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    block_on(async move {
        let api = Api::connect(env, cli.server.as_deref()).await?;
        let star = cli.machines.iter().any(|m| m == "*");
        let list = if star {
            Vec::new()
        } else {
            nodes(&cli.machines, &cli.files)?
        };
        let mut body = json!({});
        if !list.is_empty() {
            body["nodes"] = json!(list);
        }
        if !cli.parts.is_empty() {
            body["partitions"] = json!(cli.parts);
        }
        if cli.add {
            body["username"] = json!(cli.user.clone().ok_or_else(|| usage("-u is mandatory"))?);
            if cli.overwrite {
                body["overwrite"] = json!(true);
            }
            api.json(Method::POST, "/rights", &[], Some(&body)).await?;
        } else if cli.delete {
            let u = cli.user.clone().ok_or_else(|| usage("-u is mandatory"))?;
            api.json(
                Method::DELETE,
                &format!("/rights/{}", enc(&u)),
                &[],
                Some(&body),
            )
            .await?;
        } else if cli.list {
            let path = cli
                .user
                .as_ref()
                .map(|u| format!("/rights/{}", enc(u)))
                .unwrap_or_else(|| "/rights".into());
            let rights = api.json(Method::GET, &path, &[], None).await?;
            println!("{:<15} {:<41} Partitions", "User", "Node");
            for (u, nodes) in rights.as_object().into_iter().flatten() {
                for (n, parts) in nodes.as_object().into_iter().flatten() {
                    let parts: Vec<&str> = parts
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    println!("{u:<15} {n:<41} {}", parts.join(","));
                }
            }
        } else {
            return Err(usage("No action specified (-a, -d or -l)"));
        }
        Ok(())
    })
}

/// `kastat3` options.
#[derive(Parser, Debug)]
#[command(name = "kastat3", about = "Deployment statistics")]
struct StatCli {
    /// Every row (default).
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Failure rates, at least RATE.
    #[arg(short = 'b', long = "failure-rate", num_args = 0..=1, default_missing_value = "")]
    failure_rate: Option<String>,
    /// Fields, comma separated.
    #[arg(short = 'F', long = "fields", value_delimiter = ',')]
    fields: Vec<String>,
    /// Node, repeatable.
    #[arg(short = 'm', long = "machine")]
    machines: Vec<String>,
    /// Node file.
    #[arg(short = 'f', long = "file")]
    files: Vec<String>,
    /// `deploy`, `reboot` or `power`.
    #[arg(short = 'o', long = "operation")]
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
    /// Rows at most.
    #[arg(long)]
    limit: Option<u64>,
    /// Sort fields.
    #[arg(long, value_delimiter = ',')]
    sort: Vec<String>,
    /// Server name.
    #[arg(short = 'S', long = "server")]
    server: Option<String>,
}

/// Runs `kastat3`.
pub fn kastat(args: &[String], env: &ClientEnv) -> i32 {
    let cli: StatCli = match parse("kastat3", args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    block_on(async move {
        let api = Api::connect(env, cli.server.as_deref()).await?;
        let mut q: Vec<(&str, String)> = Vec::new();
        q.extend(cli.fields.iter().map(|f| ("fields", f.clone())));
        q.extend(
            nodes(&cli.machines, &cli.files)?
                .into_iter()
                .map(|n| ("nodes", n)),
        );
        q.extend(cli.sort.iter().map(|f| ("sort", f.clone())));
        q.extend(cli.steps.iter().map(|s| ("step_retries", s.clone())));
        if let Some(r) = cli.min_retries {
            q.push(("min_retries", r.to_string()));
        }
        if let Some(w) = &cli.wid {
            q.push(("wid", w.clone()));
        }
        if let Some(l) = cli.limit {
            q.push(("limit", l.to_string()));
        }
        let path = match cli.operation.as_deref() {
            None => "/stats".to_string(),
            Some(op @ ("deploy" | "reboot" | "power")) => format!("/stats/{op}"),
            Some(op) => return Err(usage(&format!("Invalid operation {op}"))),
        };
        if let Some(rate) = &cli.failure_rate {
            q.push(("kind", "failure_rates".into()));
            if !rate.is_empty() {
                q.push(("min_failure_rate", rate.clone()));
            }
            let rates = api.json(Method::GET, &path, &q, None).await?;
            for (h, r) in rates.as_object().into_iter().flatten() {
                println!("{h}: {r}");
            }
        } else {
            let _ = cli.all;
            q.push(("kind", "all".into()));
            print!("{}", api.text(Method::GET, &path, &q, None).await?);
        }
        Ok(())
    })
}

/// `kanodes3` options.
#[derive(Parser, Debug)]
#[command(name = "kanodes3", about = "Node states and workflow status")]
struct NodesCli {
    /// Node states.
    #[arg(short = 's', long = "get-nodes-state")]
    state: bool,
    /// Deployment status.
    #[arg(short = 'd', long = "get-deploy-status")]
    deploy: bool,
    /// Reboot status.
    #[arg(short = 'r', long = "get-reboot-status")]
    reboot: bool,
    /// Power status.
    #[arg(short = 'p', long = "get-power-status")]
    power: bool,
    /// One workflow.
    #[arg(short = 'w', long = "workflow-id")]
    wid: Option<String>,
    /// Node, repeatable.
    #[arg(short = 'm', long = "machine")]
    machines: Vec<String>,
    /// Node file.
    #[arg(short = 'f', long = "file")]
    files: Vec<String>,
    /// Server name.
    #[arg(short = 'S', long = "server")]
    server: Option<String>,
}

/// Runs `kanodes3`.
pub fn kanodes(args: &[String], env: &ClientEnv) -> i32 {
    let cli: NodesCli = match parse("kanodes3", args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    block_on(async move {
        let api = Api::connect(env, cli.server.as_deref()).await?;
        let list = nodes(&cli.machines, &cli.files)?;
        let yaml = "application/x-yaml";
        let body = if cli.state {
            if cli.wid.is_some() {
                return Err(usage("-w cannot be used with -s"));
            }
            let q: Vec<(&str, String)> = list.into_iter().map(|n| ("nodes", n)).collect();
            api.text_as(Method::GET, "/nodes", &q, None, yaml).await?
        } else {
            if !list.is_empty() {
                return Err(usage("Nodes cannot be given with a status option"));
            }
            let base = match (cli.deploy, cli.reboot, cli.power) {
                (true, false, false) => "/deployment",
                (false, true, false) => "/reboot",
                (false, false, true) => "/power",
                _ => return Err(usage("Choose one of -s, -d, -r, -p")),
            };
            let path = cli
                .wid
                .as_ref()
                .map(|w| format!("{base}/{w}"))
                .unwrap_or_else(|| base.to_string());
            api.text_as(Method::GET, &path, &[], None, yaml).await?
        };
        print!("{body}");
        Ok(())
    })
}

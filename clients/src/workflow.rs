//! `kadeploy3`, `kareboot3` and `kapower3` (spec §2.1–§2.4): options, the submission, and the polling loop
//! (`GET resource`, incremental `logs`, `error`, `state`, `DELETE`), OK/KO files, `--json`.

use super::{Api, ClientEnv, ClientError, block_on, export, nodes, parse_args};
use clap::{Args, Parser};
use reqwest::Method;
use serde_json::{Map, Value, json};

mod poll;

use poll::run;

/// Options shared by the workflow tools.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Node list file (`-` = stdin).
    #[arg(short = 'f', long = "file")]
    pub files: Vec<String>,
    /// A node (ranges allowed), repeatable.
    #[arg(short = 'm', long = "machine")]
    pub machines: Vec<String>,
    /// Append the OK nodes to this file.
    #[arg(short = 'o', long = "output-ok-nodes")]
    pub ok_file: Option<String>,
    /// Append the KO nodes to this file.
    #[arg(short = 'n', long = "output-ko-nodes")]
    pub ko_file: Option<String>,
    /// Verbose level (1-5).
    #[arg(short = 'V', long = "verbose-level", value_parser = clap::value_parser!(u8).range(1..=5))]
    pub verbose: Option<u8>,
    /// Debug mode.
    #[arg(short = 'd', long = "debug-mode")]
    pub debug: bool,
    /// Server name from client.conf.
    #[arg(short = 'S', long = "server")]
    pub server: Option<String>,
    /// Print the server version.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// Ignore the "nodes already in use" check.
    #[arg(long)]
    pub force: bool,
    /// Do not wait: print `<wid> <resource>` and exit.
    #[arg(long = "no-wait")]
    pub no_wait: bool,
    /// Breakpoint (`Macro` or `Macro:micro`).
    #[arg(long)]
    pub breakpoint: Option<String>,
    /// Custom operations YAML file.
    #[arg(long = "custom-steps")]
    pub custom_steps: Option<String>,
    /// Write the workflow id to this file.
    #[arg(long = "write-workflow-id")]
    pub write_wid: Option<String>,
    /// Validate only.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Print one JSON summary object instead of the lists.
    #[arg(long)]
    pub json: bool,
}

/// Custom PXE options of `kadeploy3` and `kareboot3`.
#[derive(Args, Debug, Clone)]
pub struct PxeArgs {
    /// A PXE profile file, sent as `pxe.profile` (its content).
    #[arg(short = 'w', long = "set-pxe-profile")]
    profile: Option<String>,
    /// `hostname,value` lines substituted for `NODE_SINGULARITY` (`pxe.singularities`).
    #[arg(long = "set-pxe-pattern")]
    pattern: Option<String>,
    /// Files to put in the PXE repository (comma-separated); needs `-w`.
    #[arg(short = 'x', long = "upload-pxe-files", value_delimiter = ',')]
    pxe_files: Vec<String>,
}

impl PxeArgs {
    /// Adds the `pxe` parameter to `p` when any option is given.
    fn insert(&self, p: &mut Map<String, Value>) -> Result<(), ClientError> {
        if self.profile.is_none() && self.pattern.is_none() && self.pxe_files.is_empty() {
            return Ok(());
        }
        let read = |f: &str| std::fs::read_to_string(f).map_err(|e| usage(&format!("{f}: {e}")));
        let Some(profile) = &self.profile else {
            return Err(usage("The PXE options need a profile (-w)"));
        };
        let mut pxe = Map::new();
        pxe.insert("profile".into(), json!(read(profile)?));
        if let Some(pattern) = &self.pattern {
            let mut singularities = Map::new();
            for line in read(pattern)?.lines().filter(|l| !l.trim().is_empty()) {
                let (node, value) = line
                    .split_once(',')
                    .ok_or_else(|| usage(&format!("{pattern}: invalid line '{line}'")))?;
                singularities.insert(node.trim().into(), json!(value.trim()));
            }
            pxe.insert("singularities".into(), Value::Object(singularities));
        }
        if !self.pxe_files.is_empty() {
            pxe.insert("files".into(), json!(self.pxe_files));
        }
        p.insert("pxe".into(), Value::Object(pxe));
        Ok(())
    }
}

/// `kadeploy3` options.
#[derive(Parser, Debug)]
#[command(name = "kadeploy3", about = "Deploy an environment on nodes")]
pub struct DeployCli {
    #[command(flatten)]
    common: Common,
    /// Recorded environment name.
    #[arg(short = 'e', long = "env-name")]
    env_name: Option<String>,
    /// Anonymous environment description file.
    #[arg(short = 'a', long = "env-file")]
    env_file: Option<String>,
    /// Environment owner.
    #[arg(short = 'u', long = "env-user")]
    env_user: Option<String>,
    /// Environment version.
    #[arg(long = "env-version")]
    env_version: Option<u32>,
    /// Block device.
    #[arg(short = 'b', long = "block-device")]
    block_device: Option<String>,
    /// Deploy partition.
    #[arg(short = 'p', long = "partition-number")]
    partition: Option<String>,
    /// Authorized keys file to install.
    #[arg(short = 'k', long = "key", num_args = 0..=1, default_missing_value = "~/.ssh/authorized_keys")]
    key: Option<String>,
    /// Reformat the tmp partition.
    #[arg(short = 'r', long = "reformat-tmp")]
    reformat_tmp: Option<String>,
    /// No kexec.
    #[arg(long = "no-kexec")]
    no_kexec: bool,
    /// Forced automata: `SetDeploymentEnv|Impl:retries:timeout[,…]&BroadcastEnv|…&BootNewEnv|…`.
    #[arg(long = "force-steps")]
    force_steps: Option<String>,
    /// Serve the exported local files over HTTPS.
    #[arg(long)]
    secure: bool,
    #[command(flatten)]
    pxe: PxeArgs,
}

/// Parses `--force-steps` (`^SetDeploymentEnv\|(?:\w+:\d+:\d+,?)+&BroadcastEnv\|…&BootNewEnv\|…$`) into
/// the `automata` parameter.
pub fn force_steps(text: &str) -> Result<Value, ClientError> {
    let bad = || usage(&format!("Invalid --force-steps value: {text}"));
    let slots = ["SetDeploymentEnv", "BroadcastEnv", "BootNewEnv"];
    let parts: Vec<&str> = text.split('&').collect();
    if parts.len() != slots.len() {
        return Err(bad());
    }
    let mut out = Map::new();
    for (slot, part) in slots.iter().zip(parts) {
        let list = part
            .strip_prefix(slot)
            .and_then(|r| r.strip_prefix('|'))
            .ok_or_else(bad)?;
        let mut instances = Vec::new();
        for item in list.split(',').filter(|i| !i.is_empty()) {
            let f: Vec<&str> = item.split(':').collect();
            let word =
                |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let num = |s: &str| s.parse::<u64>().ok();
            match f.as_slice() {
                [name, r, t] if word(name) && num(r).is_some() && num(t).is_some() => {
                    instances.push(json!({"name": name, "retries": num(r), "timeout": num(t)}));
                }
                _ => return Err(bad()),
            }
        }
        if instances.is_empty() {
            return Err(bad());
        }
        out.insert(slot.to_string(), Value::Array(instances));
    }
    Ok(Value::Object(out))
}

/// Starts the file server for the client-side files `p` names (rewritten to absolute paths) and adds
/// `client` to `p`; `extra` are further local files (a recorded environment's).
async fn export_files(
    api: &Api,
    c: &Common,
    p: &mut Map<String, Value>,
    extra: Vec<String>,
    secure: bool,
) -> Result<Option<export::FileServer>, ClientError> {
    let mut files = export::collect(p);
    files.extend(extra);
    if files.is_empty() {
        return Ok(None);
    }
    if c.no_wait {
        return Err(usage(
            "--no-wait cannot be used when local files must be exported",
        ));
    }
    let server = export::start(&files, &api.local_address()?, secure).await?;
    p.insert("client".into(), json!(server.url));
    Ok(Some(server))
}

/// `kareboot3` options.
#[derive(Parser, Debug)]
#[command(name = "kareboot3", about = "Reboot nodes")]
pub struct RebootCli {
    #[command(flatten)]
    common: Common,
    /// `set_pxe`, `simple`, `deploy_env` or `recorded_env`.
    #[arg(short = 'r', long = "reboot-kind", default_value = "simple")]
    kind: String,
    /// `soft`, `hard` or `very_hard`.
    #[arg(short = 'l', long = "op-level")]
    level: Option<String>,
    /// Fail with error 30 when the last deployed environment was destructive.
    #[arg(short = 'c', long = "check-destructive-tag")]
    check_destructive: bool,
    /// Recorded environment (recorded_env).
    #[arg(short = 'e', long = "env-name")]
    env_name: Option<String>,
    /// Partition (recorded_env).
    #[arg(short = 'p', long = "partition-number")]
    partition: Option<String>,
    #[command(flatten)]
    pxe: PxeArgs,
}

/// `kapower3` options.
#[derive(Parser, Debug)]
#[command(
    name = "kapower3",
    about = "Power nodes on or off, or get their status"
)]
pub struct PowerCli {
    #[command(flatten)]
    common: Common,
    /// Power on.
    #[arg(long)]
    on: bool,
    /// Power off.
    #[arg(long)]
    off: bool,
    /// Power status.
    #[arg(long)]
    status: bool,
    /// `soft`, `hard` or `very_hard`.
    #[arg(short = 'l', long = "op-level")]
    level: Option<String>,
}

fn usage(m: &str) -> ClientError {
    ClientError::Usage(m.into())
}

fn base(c: &Common, list: Vec<String>) -> Result<Map<String, Value>, ClientError> {
    let mut m = Map::new();
    m.insert("nodes".into(), json!(list));
    if let Some(v) = c.verbose {
        m.insert("verbose_level".into(), json!(v));
    }
    for (flag, key) in [
        (c.debug, "debug"),
        (c.force, "force"),
        (c.dry_run, "dry_run"),
    ] {
        if flag {
            m.insert(key.into(), json!(true));
        }
    }
    if let Some(b) = &c.breakpoint {
        m.insert("breakpoint".into(), json!(b));
    }
    if let Some(f) = &c.custom_steps {
        let text = std::fs::read_to_string(f).map_err(|e| usage(&format!("{f}: {e}")))?;
        let v: Value = serde_saphyr::from_str(&text).map_err(|e| usage(&format!("{f}: {e}")))?;
        m.insert("custom_operations".into(), v);
    }
    Ok(m)
}

/// Runs `kadeploy3` with `args` (without the program name); returns the exit code.
pub fn deploy(args: &[String], env: &ClientEnv) -> i32 {
    launch("kadeploy3", args, env, |api, cli: DeployCli| async move {
        let list = nodes(&cli.common.machines, &cli.common.files)?;
        let mut p = base(&cli.common, list)?;
        let mut recorded_files = Vec::new();
        let environment = match (&cli.env_name, &cli.env_file) {
            (Some(name), None) => {
                let mut q = vec![("name", name.clone())];
                if let Some(u) = &cli.env_user {
                    q.push(("username", u.clone()));
                }
                match cli.env_version {
                    Some(v) => q.push(("version", v.to_string())),
                    None => q.push(("last", "true".into())),
                }
                let found = api.json(Method::GET, "/environments", &q, None).await?;
                let list = found.as_array().cloned().unwrap_or_default();
                let pick = list
                    .iter()
                    .find(|e| e["user"] == json!(api.user))
                    .or_else(|| list.first());
                let e =
                    pick.ok_or_else(|| usage(&format!("The environment {name} does not exist")))?;
                // A recorded environment whose files are client-side paths: export them too.
                let mut stored = Map::new();
                stored.insert("environment".into(), e.clone());
                recorded_files = export::collect(&mut stored);
                json!({"kind": "database", "user": e["user"], "name": e["name"], "version": e["version"]})
            }
            (None, Some(file)) => {
                let text =
                    std::fs::read_to_string(file).map_err(|e| usage(&format!("{file}: {e}")))?;
                let mut v: Value =
                    serde_saphyr::from_str(&text).map_err(|e| usage(&format!("{file}: {e}")))?;
                kadeploy::envdesc::EnvDesc::from_value(&v)
                    .map_err(|e| ClientError::Api(7, e.to_string()))?;
                v["kind"] = json!("anonymous");
                v
            }
            _ => return Err(usage("You must choose an environment (-e or -a)")),
        };
        p.insert("environment".into(), environment);
        for (k, v) in [
            ("block_device", &cli.block_device),
            ("deploy_partition", &cli.partition),
            ("ssh_authorized_keys", &cli.key),
            ("reformat_tmp_partition", &cli.reformat_tmp),
        ] {
            if let Some(v) = v {
                p.insert(k.into(), json!(v));
            }
        }
        if cli.block_device.is_some() && cli.partition.is_none() {
            p.insert("deploy_partition".into(), json!(""));
        }
        if cli.no_kexec {
            p.insert("disable_kexec".into(), json!(true));
        }
        cli.pxe.insert(&mut p)?;
        if let Some(steps) = &cli.force_steps {
            p.insert("automata".into(), force_steps(steps)?);
        }
        let _files = export_files(&api, &cli.common, &mut p, recorded_files, cli.secure).await?;
        run(
            &api,
            &cli.common,
            Method::POST,
            "/deployment",
            p,
            "Deployment",
            "deployment",
        )
        .await
    })
}

/// Runs `kareboot3`.
pub fn reboot(args: &[String], env: &ClientEnv) -> i32 {
    launch("kareboot3", args, env, |api, cli: RebootCli| async move {
        if cli.kind == "recorded_env" && (cli.env_name.is_none() || cli.partition.is_none()) {
            return Err(usage("recorded_env needs -e and -p"));
        }
        let mut p = base(&cli.common, nodes(&cli.common.machines, &cli.common.files)?)?;
        p.insert("kind".into(), json!(cli.kind));
        if let Some(l) = &cli.level {
            p.insert("level".into(), json!(l));
        }
        if cli.check_destructive {
            p.insert("check_destructive".into(), json!(true));
        }
        if let Some(e) = &cli.env_name {
            p.insert("environment".into(), json!({"kind": "database", "name": e}));
        }
        if let Some(part) = &cli.partition {
            p.insert("deploy_partition".into(), json!(part));
        }
        cli.pxe.insert(&mut p)?;
        let _files = export_files(&api, &cli.common, &mut p, Vec::new(), false).await?;
        run(
            &api,
            &cli.common,
            Method::POST,
            "/reboot",
            p,
            "Reboot operation",
            "reboot",
        )
        .await
    })
}

/// Runs `kapower3`.
pub fn power(args: &[String], env: &ClientEnv) -> i32 {
    launch("kapower3", args, env, |api, cli: PowerCli| async move {
        if cli.status && cli.level.is_some() {
            return Err(usage("-l cannot be used with --status"));
        }
        let mut p = base(&cli.common, nodes(&cli.common.machines, &cli.common.files)?)?;
        if let Some(l) = &cli.level {
            p.insert("level".into(), json!(l));
        }
        let method = match (cli.on, cli.off, cli.status) {
            (true, false, false) => {
                p.insert("status".into(), json!("on"));
                Method::PUT
            }
            (false, true, false) => {
                p.insert("status".into(), json!("off"));
                Method::PUT
            }
            (false, false, true) => Method::GET,
            _ => return Err(usage("Choose exactly one of --on, --off, --status")),
        };
        run(
            &api,
            &cli.common,
            method,
            "/power",
            p,
            "Power operation",
            "power operation",
        )
        .await
    })
}

/// The options every workflow client shares.
trait WorkflowCli: clap::Parser {
    fn common(&self) -> &Common;
}

impl WorkflowCli for DeployCli {
    fn common(&self) -> &Common {
        &self.common
    }
}

impl WorkflowCli for RebootCli {
    fn common(&self) -> &Common {
        &self.common
    }
}

impl WorkflowCli for PowerCli {
    fn common(&self) -> &Common {
        &self.common
    }
}

/// Parses a workflow client's arguments, connects to its server and answers `-v`; `body` does the rest.
fn launch<C, F, Fut>(name: &str, args: &[String], env: &ClientEnv, body: F) -> i32
where
    C: WorkflowCli,
    F: FnOnce(Api, C) -> Fut,
    Fut: std::future::Future<Output = Result<(), ClientError>>,
{
    let cli: C = match parse_args(name, args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    block_on(async move {
        let api = Api::connect(env, cli.common().server.as_deref()).await?;
        if cli.common().version {
            return print_version(&api).await;
        }
        body(api, cli).await
    })
}

async fn print_version(api: &Api) -> Result<(), ClientError> {
    let v = api.text(Method::GET, "/version", &[], None).await?;
    println!("Kadeploy version: {}", v.trim());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn command_lines_are_consistent() {
        DeployCli::command().debug_assert();
        RebootCli::command().debug_assert();
        PowerCli::command().debug_assert();
    }

    #[test]
    fn force_steps_syntax() {
        let a = force_steps(
            "SetDeploymentEnv|SetDeploymentEnvUntrusted:1:300&BroadcastEnv|BroadcastEnvKastafior:1:200&BootNewEnv|BootNewEnvClassical:1:200,BootNewEnvHardReboot:1:200",
        )
        .unwrap();
        assert_eq!(
            a["BootNewEnv"][1],
            json!({"name": "BootNewEnvHardReboot", "retries": 1, "timeout": 200})
        );
        for bad in [
            "SetDeploymentEnv|A:1:1&BroadcastEnv|B:1:1",
            "SetDeploymentEnv|A:1&BroadcastEnv|B:1:1&BootNewEnv|C:1:1",
            "BroadcastEnv|B:1:1&SetDeploymentEnv|A:1:1&BootNewEnv|C:1:1",
            "SetDeploymentEnv|&BroadcastEnv|B:1:1&BootNewEnv|C:1:1",
        ] {
            assert!(force_steps(bad).is_err(), "{bad}");
        }
    }
}

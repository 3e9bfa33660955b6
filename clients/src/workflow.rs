//! `kadeploy3`, `kareboot3` and `kapower3` (spec §2.1–§2.4): options, the submission, and the polling loop
//! (`GET resource`, incremental `logs`, `error`, `state`, `DELETE`), OK/KO files, `--json`.

use super::{Api, ClientEnv, ClientError, block_on, export, nodes, parse_args};
use crate::global::GlobalArgs;
use clap::{Args, Parser};
use reqwest::Method;
use serde_json::{Map, Value, json};

mod cli;
pub mod interrupt;
mod poll;

pub use cli::*;

pub use interrupt::Interrupt;
pub use poll::Job;
use poll::run;

fn usage(m: &str) -> ClientError {
    ClientError::Usage(m.into())
}

/// The parameters every workflow sends (`ClientWorkflow.init_params`).
fn base(c: &Common, list: Vec<String>) -> Result<Map<String, Value>, ClientError> {
    let mut m = Map::new();
    m.insert("nodes".into(), json!(list));
    if let Some(v) = c.verbose {
        m.insert("verbose_level".into(), json!(v));
    }
    insert_flags(
        &mut m,
        &[
            (c.debug, "debug"),
            (c.force, "force"),
            (c.global.dry_run, "dry_run"),
            (c.hook, "hook"),
        ],
    );
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

/// Finds a recorded environment as Kadeploy's client does (`GET /environments?last=true&name=N`, the
/// caller's own first) and gives the `environment` parameter naming it.
async fn recorded_env(
    api: &Api,
    name: &str,
    user: &Option<String>,
    version: Option<u32>,
) -> Result<(Value, Vec<String>), ClientError> {
    let mut q = vec![("name", name.to_string())];
    if let Some(u) = user {
        q.push(("username", u.clone()));
    }
    match version {
        Some(v) => q.push(("version", v.to_string())),
        None => q.push(("last", "true".into())),
    }
    let found = api.json(Method::GET, "/environments", &q, None).await?;
    let list = found.as_array().cloned().unwrap_or_default();
    let pick = list
        .iter()
        .find(|e| e["user"] == json!(api.user))
        .or_else(|| list.first());
    let e = pick.ok_or_else(|| usage(&format!("The environment {name} does not exist")))?;
    // A recorded environment whose files are client-side paths: export them too.
    let mut stored = Map::new();
    stored.insert("environment".into(), e.clone());
    let files = export::collect(&mut stored);
    Ok((
        json!({"kind": "database", "user": e["user"], "name": e["name"], "version": e["version"]}),
        files,
    ))
}

/// Runs `kadeploy3` with `args` (without the program name); returns the exit code. Ctrl-C cancels.
pub fn deploy(args: &[String], env: &ClientEnv) -> i32 {
    deploy_with(args, env, interrupt::ctrl_c())
}

/// Runs `kadeploy3`; `interrupt` resolving acts as Ctrl-C (the workflow is deleted, exit 1).
pub fn deploy_with(args: &[String], env: &ClientEnv, interrupt: Interrupt) -> i32 {
    launch(
        "kadeploy3",
        args,
        env,
        interrupt,
        async |api, cli: &DeployCli, job| {
            let (environment, recorded_files) = match (&cli.env_name, &cli.env_file) {
                (Some(name), None) => {
                    recorded_env(api, name, &cli.env_user, cli.env_version).await?
                }
                (None, Some(file)) => {
                    let text = std::fs::read_to_string(file)
                        .map_err(|e| usage(&format!("{file}: {e}")))?;
                    let mut v: Value = serde_saphyr::from_str(&text)
                        .map_err(|e| usage(&format!("{file}: {e}")))?;
                    kadeploy::envdesc::EnvDesc::from_value(&v)
                        .map_err(|e| ClientError::Api(7, e.to_string()))?;
                    v["kind"] = json!("anonymous");
                    (v, Vec::new())
                }
                _ => return Err(usage("You must choose an environment")),
            };
            let mut p = cli.params(job.nodes.clone(), environment)?;
            let _files =
                export_files(api, &cli.common, &mut p, recorded_files, cli.secure.secure).await?;
            let op = poll::Operation::new(Method::POST, "/deployment", "Deployment");
            run(api, &cli.common, op, p, job).await
        },
    )
}

/// Runs `kareboot3`. Ctrl-C cancels.
pub fn reboot(args: &[String], env: &ClientEnv) -> i32 {
    reboot_with(args, env, interrupt::ctrl_c())
}

/// Runs `kareboot3`; `interrupt` acts as Ctrl-C.
pub fn reboot_with(args: &[String], env: &ClientEnv, interrupt: Interrupt) -> i32 {
    launch(
        "kareboot3",
        args,
        env,
        interrupt,
        async |api, cli: &RebootCli, job| {
            cli.check()?;
            let (environment, files) = match &cli.env_name {
                Some(name) => {
                    let (e, f) = recorded_env(api, name, &cli.env_user, cli.env_version).await?;
                    (Some(e), f)
                }
                None => (None, Vec::new()),
            };
            let mut p = cli.params(job.nodes.clone(), environment)?;
            let _files = export_files(api, &cli.common, &mut p, files, cli.secure.secure).await?;
            let op = poll::Operation::new(Method::POST, "/reboot", "Reboot operation");
            run(api, &cli.common, op, p, job).await
        },
    )
}

/// Runs `kapower3`. Ctrl-C cancels.
pub fn power(args: &[String], env: &ClientEnv) -> i32 {
    power_with(args, env, interrupt::ctrl_c())
}

/// Runs `kapower3`; `interrupt` acts as Ctrl-C.
pub fn power_with(args: &[String], env: &ClientEnv, interrupt: Interrupt) -> i32 {
    launch(
        "kapower3",
        args,
        env,
        interrupt,
        async |api, cli: &PowerCli, job| {
            let (method, p) = cli.request(job.nodes.clone())?;
            let op = poll::Operation::new(method, "/power", "Power operation");
            run(api, &cli.common, op, p, job).await
        },
    )
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

/// Kadeploy's local checks of the workflow options (`ClientWorkflow.check_options`, `parse_scriptfile`).
fn check_common(c: &Common) -> Result<(), ClientError> {
    if c.ok_file.is_some() && c.ok_file == c.ko_file {
        return Err(usage(
            "The files used for the output of the OK and the KO nodes cannot be the same",
        ));
    }
    if c.no_wait && (c.ok_file.is_some() || c.ko_file.is_some()) {
        return Err(usage(
            "-o/--output-ok-nodes and/or -n/--output-ko-nodes cannot be used with --no-wait",
        ));
    }
    if let Some(f) = &c.script {
        let meta =
            std::fs::metadata(f).map_err(|_| usage(&format!("The file {f} cannot be read")))?;
        if !meta.is_file()
            || std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 == 0
        {
            return Err(usage(&format!("The file {f} must be executable")));
        }
    }
    Ok(())
}

/// Parses a workflow client's arguments, answers `-v`/`-I`, connects to its server(s) (every server with
/// `-M`, the nodes split among them), runs `body` on each server at once, cancels on `interrupt`, then
/// runs the `--script`.
fn launch<C, F>(name: &str, args: &[String], env: &ClientEnv, interrupt: Interrupt, body: F) -> i32
where
    C: WorkflowCli,
    F: AsyncFn(&Api, &C, &Job) -> Result<(), ClientError>,
{
    let cli: C = match parse_args(name, args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    block_on(async move {
        let c = cli.common();
        if c.global.answer_info(env).await? {
            return Ok(());
        }
        check_common(c)?;
        let list = nodes(&c.machines, &c.files)?;
        if list.is_empty() {
            return Err(usage("No node is chosen"));
        }
        let apis = c.global.connect(env).await?;
        let shares = split_nodes(&apis, &list, c.global.multi_server).await?;
        let status = interrupt::status_requests();
        let cancel = tokio_util::sync::CancellationToken::new();
        let jobs: Vec<Job> = shares
            .into_iter()
            .map(|(i, nodes)| Job {
                server: i,
                nodes,
                cancel: cancel.clone(),
                status: status.clone(),
            })
            .collect();
        let work = futures_util::future::join_all(
            jobs.iter()
                .filter_map(|j| apis.get(j.server).map(|api| body(api, &cli, j))),
        );
        let results = interrupt::until_interrupted(work, interrupt, &cancel).await?;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        if let Some(script) = &c.script {
            run_script(script);
        }
        Ok(())
    })
}

/// Runs the `--script` at the end and prints `Success !` or `Fail !` (the exit code is not changed).
fn run_script(script: &str) {
    let path = export::absolute(script);
    println!("\nRunning {path}");
    let ok = std::process::Command::new(&path)
        .status()
        .is_ok_and(|s| s.success());
    println!("\n{}", if ok { "Success !" } else { "Fail !" });
}

/// Gives each server its nodes: all of them for one server; with `-M`, the nodes each server knows
/// (`GET /nodes?user=U&list=true`), the first server taking a node first, as Kadeploy's client does.
async fn split_nodes(
    apis: &[Api],
    list: &[String],
    multi: bool,
) -> Result<Vec<(usize, Vec<String>)>, ClientError> {
    if !multi {
        return Ok(if apis.is_empty() {
            Vec::new()
        } else {
            vec![(0, list.to_vec())]
        });
    }
    let mut wanted: Vec<String> = Vec::new();
    for n in list {
        if !wanted.contains(n) {
            wanted.push(n.clone());
        }
    }
    let mut treated: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (i, api) in apis.iter().enumerate() {
        let q = [("user", api.user.clone()), ("list", "true".to_string())];
        let known = api.json(Method::GET, "/nodes", &q, None).await?;
        let known: Vec<&str> = known
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mine: Vec<String> = wanted
            .iter()
            .filter(|n| known.contains(&n.as_str()) && !treated.contains(n))
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        treated.extend(mine.iter().cloned());
        out.push((i, mine));
        if treated.len() == wanted.len() {
            break;
        }
    }
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|n| !treated.contains(n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(usage(&format!(
            "The nodes {} does not belongs to any server",
            missing.join(", ")
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;

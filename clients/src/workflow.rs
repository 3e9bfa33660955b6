//! `kadeploy3`, `kareboot3` and `kapower3` (spec §2.1–§2.4): options, the submission, and the polling loop
//! (`GET resource`, incremental `logs`, `error`, `state`, `DELETE`), OK/KO files, `--json`.

use super::{Api, ClientEnv, ClientError, block_on, export, nodes, parse_args};
use crate::global::GlobalArgs;
use clap::{Args, Parser};
use reqwest::Method;
use serde_json::{Map, Value, json};

pub mod interrupt;
mod poll;

pub use interrupt::Interrupt;
pub use poll::Job;
use poll::run;

/// Options shared by the workflow tools (`ClientWorkflow.global_parse_options`).
#[derive(Args, Debug, Clone)]
pub struct Common {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Activate the debug mode (`debug: true`).
    #[arg(short = 'd', long = "debug-mode", overrides_with = "no_debug")]
    pub debug: bool,
    /// Deactivate the debug mode.
    #[arg(long = "no-debug-mode", overrides_with = "debug")]
    pub no_debug: bool,
    /// Node list file (`-` = stdin).
    #[arg(short = 'f', long = "file")]
    pub files: Vec<String>,
    /// A node (ranges allowed), repeatable.
    #[arg(short = 'm', long = "machine")]
    pub machines: Vec<String>,
    /// Write the OK nodes to this file.
    #[arg(short = 'o', long = "output-ok-nodes")]
    pub ok_file: Option<String>,
    /// Write the KO nodes to this file.
    #[arg(short = 'n', long = "output-ko-nodes")]
    pub ko_file: Option<String>,
    /// Execute this (executable) script at the end of the operation.
    #[arg(short = 's', long = "script")]
    pub script: Option<String>,
    /// Verbose level (1-5).
    #[arg(short = 'V', long = "verbose-level", value_parser = clap::value_parser!(u8).range(1..=5))]
    pub verbose: Option<u8>,
    /// Write the workflow id to this file.
    #[arg(long = "write-workflow-id")]
    pub write_wid: Option<String>,
    /// Wait for the end of the operation (the default).
    #[arg(long = "wait", overrides_with = "no_wait")]
    pub wait: bool,
    /// Do not wait: print `<wid> <resource>` and exit.
    #[arg(long = "no-wait", overrides_with = "wait")]
    pub no_wait: bool,
    /// Ignore the "nodes already in use" check.
    #[arg(long = "force", overrides_with = "no_force")]
    pub force: bool,
    /// Keep the "nodes already in use" check.
    #[arg(long = "no-force", overrides_with = "force")]
    pub no_force: bool,
    /// Breakpoint (`Macro` or `Macro:micro`).
    #[arg(long, value_parser = breakpoint)]
    pub breakpoint: Option<String>,
    /// Custom operations YAML file.
    #[arg(long = "custom-steps")]
    pub custom_steps: Option<String>,
    /// Run the server's end-of-operation hook (`hook: true`).
    #[arg(long = "hook", overrides_with = "no_hook")]
    pub hook: bool,
    /// Do not run the end-of-operation hook.
    #[arg(long = "no-hook", overrides_with = "hook")]
    pub no_hook: bool,
    /// Print one JSON summary object instead of the lists.
    #[arg(long)]
    pub json: bool,
}

/// The `--breakpoint` syntax (`^\w+(?::\w+)?$`).
fn breakpoint(v: &str) -> Result<String, String> {
    let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let ok = match v.split_once(':') {
        Some((m, s)) => word(m) && word(s),
        None => word(v),
    };
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!("invalid argument: --breakpoint {v}"))
    }
}

/// `--[no-]secure`: serve the exported local files over HTTPS.
#[derive(Args, Debug, Clone, Default)]
pub struct SecureArgs {
    /// Use a secure connection (HTTPS) to export files to the server.
    #[arg(long = "secure", overrides_with = "no_secure")]
    pub secure: bool,
    /// Export files over plain HTTP (the default).
    #[arg(long = "no-secure", overrides_with = "secure")]
    pub no_secure: bool,
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
#[command(
    name = "kadeploy3",
    about = "Deploy an environment on nodes",
    disable_version_flag = true
)]
pub struct DeployCli {
    #[command(flatten)]
    common: Common,
    /// Anonymous environment description file.
    #[arg(short = 'a', long = "env-file")]
    env_file: Option<String>,
    /// Block device.
    #[arg(short = 'b', long = "block-device")]
    block_device: Option<String>,
    /// The partition to boot on (0 = the MBR), sent as the integer `boot_partition`.
    #[arg(short = 'c', long = "boot-partition")]
    boot_partition: Option<u32>,
    /// Recorded environment name.
    #[arg(short = 'e', long = "env-name")]
    env_name: Option<String>,
    /// Authorized keys file to install.
    #[arg(short = 'k', long = "key", num_args = 0..=1, default_missing_value = "~/.ssh/authorized_keys")]
    key: Option<String>,
    /// Deploy partition.
    #[arg(short = 'p', long = "partition-number")]
    partition: Option<String>,
    /// Reformat the tmp partition with this file system.
    #[arg(short = 'r', long = "reformat-tmp")]
    reformat_tmp: Option<String>,
    /// Environment owner.
    #[arg(short = 'u', long = "env-user")]
    env_user: Option<String>,
    /// The VLAN to put the nodes in (`vlan`).
    #[arg(long = "vlan")]
    vlan: Option<String>,
    #[command(flatten)]
    pxe: PxeArgs,
    /// Environment version.
    #[arg(long = "env-version")]
    env_version: Option<u32>,
    /// No kexec.
    #[arg(long = "no-kexec")]
    no_kexec: bool,
    /// Do not install a bootloader (`disable_bootloader_install`).
    #[arg(long = "disable-bootloader-install")]
    disable_bootloader_install: bool,
    /// Do not partition the disk (`disable_disk_partitioning`).
    #[arg(long = "disable-disk-partitioning")]
    disable_disk_partitioning: bool,
    /// Timeout of classical reboots (an expression of `n`, the number of nodes).
    #[arg(long = "reboot-classical-timeout")]
    reboot_classical_timeout: Option<String>,
    /// Timeout of kexec reboots (an expression of `n`).
    #[arg(long = "reboot-kexec-timeout")]
    reboot_kexec_timeout: Option<String>,
    /// Forced automata: `SetDeploymentEnv|Impl:retries:timeout[,…]&BroadcastEnv|…&BootNewEnv|…`.
    #[arg(long = "force-steps")]
    force_steps: Option<String>,
    #[command(flatten)]
    secure: SecureArgs,
}

/// Inserts the `Some` string values of `pairs` into `p`.
fn insert_strings(p: &mut Map<String, Value>, pairs: &[(&str, &Option<String>)]) {
    for (k, v) in pairs {
        if let Some(v) = v {
            p.insert((*k).into(), json!(v));
        }
    }
}

/// Inserts `key: true` into `p` for each set flag.
fn insert_flags(p: &mut Map<String, Value>, flags: &[(bool, &str)]) {
    for (flag, key) in flags {
        if *flag {
            p.insert((*key).into(), json!(true));
        }
    }
}

impl DeployCli {
    /// The `POST /deployment` parameters for `nodes` and the resolved `environment` (spec §2.2).
    pub fn params(
        &self,
        nodes: Vec<String>,
        environment: Value,
    ) -> Result<Map<String, Value>, ClientError> {
        let mut p = base(&self.common, nodes)?;
        p.insert("environment".into(), environment);
        insert_strings(
            &mut p,
            &[
                ("block_device", &self.block_device),
                ("deploy_partition", &self.partition),
                ("ssh_authorized_keys", &self.key),
                ("reformat_tmp_partition", &self.reformat_tmp),
                ("vlan", &self.vlan),
                ("timeout_reboot_classical", &self.reboot_classical_timeout),
                ("timeout_reboot_kexec", &self.reboot_kexec_timeout),
            ],
        );
        if self.block_device.is_some() && self.partition.is_none() {
            p.insert("deploy_partition".into(), json!(""));
        }
        if let Some(c) = self.boot_partition {
            p.insert("boot_partition".into(), json!(c));
        }
        insert_flags(
            &mut p,
            &[
                (self.no_kexec, "disable_kexec"),
                (
                    self.disable_bootloader_install,
                    "disable_bootloader_install",
                ),
                (self.disable_disk_partitioning, "disable_disk_partitioning"),
            ],
        );
        self.pxe.insert(&mut p)?;
        if let Some(steps) = &self.force_steps {
            p.insert("automata".into(), force_steps(steps)?);
        }
        Ok(p)
    }
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
        return Err(usage(&format!(
            "Cannot use --no-wait since some files have to be exported to the server:\n  {}",
            files.join("\n  ")
        )));
    }
    let server = export::start(&files, &api.local_address()?, secure).await?;
    p.insert("client".into(), json!(server.url));
    Ok(Some(server))
}

/// `kareboot3` options.
#[derive(Parser, Debug)]
#[command(
    name = "kareboot3",
    about = "Reboot nodes",
    disable_version_flag = true
)]
pub struct RebootCli {
    #[command(flatten)]
    common: Common,
    /// Block device.
    #[arg(short = 'b', long = "block-device")]
    block_device: Option<String>,
    /// Fail with error 30 when the last deployed environment was destructive.
    #[arg(short = 'c', long = "check-destructive-tag")]
    check_destructive: bool,
    /// Recorded environment (recorded_env).
    #[arg(short = 'e', long = "env-name")]
    env_name: Option<String>,
    /// Authorized keys file to install (deploy_env).
    #[arg(short = 'k', long = "key", num_args = 0..=1, default_missing_value = "~/.ssh/authorized_keys")]
    key: Option<String>,
    /// `soft`, `hard` or `very_hard`.
    #[arg(short = 'l', long = "op-level", value_parser = ["soft", "hard", "very_hard"])]
    level: Option<String>,
    /// Partition (recorded_env).
    #[arg(short = 'p', long = "partition-number")]
    partition: Option<String>,
    /// `set_pxe`, `simple`, `deploy_env` or `recorded_env`.
    #[arg(short = 'r', long = "reboot-kind", default_value = "simple",
          value_parser = ["set_pxe", "simple", "deploy_env", "recorded_env"])]
    kind: String,
    /// Environment owner (recorded_env).
    #[arg(short = 'u', long = "env-user")]
    env_user: Option<String>,
    /// The VLAN to put the nodes in.
    #[arg(long = "vlan")]
    vlan: Option<String>,
    #[command(flatten)]
    pxe: PxeArgs,
    /// Environment version (recorded_env).
    #[arg(long = "env-version")]
    env_version: Option<u32>,
    /// Timeout of classical reboots (an expression of `n`).
    #[arg(long = "reboot-classical-timeout")]
    reboot_classical_timeout: Option<String>,
    #[command(flatten)]
    secure: SecureArgs,
}

impl RebootCli {
    /// Kadeploy's client-side checks of the reboot kinds (spec §2.3).
    fn check(&self) -> Result<(), ClientError> {
        let recorded = self.kind == "recorded_env";
        if self.kind == "set_pxe" && self.pxe.profile.is_none() {
            return Err(usage("The set_pxe reboot must be used with the -w option"));
        }
        if recorded && (self.env_name.is_none() || self.partition.is_none()) {
            return Err(usage(
                "The recorded_env reboot must be used with the -e and -p options",
            ));
        }
        if self.key.is_some() && self.kind != "deploy_env" {
            return Err(usage(
                "The -k option can be only used with the deploy_env reboot kind",
            ));
        }
        if !recorded
            && (self.env_name.is_some() || self.env_user.is_some() || self.env_version.is_some())
        {
            return Err(usage(
                "The -e, -u and --env-version options can be only used with the recorded_env reboot kind",
            ));
        }
        Ok(())
    }

    /// The `POST /reboot` parameters (spec §2.3); `environment` is the resolved recorded environment.
    pub fn params(
        &self,
        nodes: Vec<String>,
        environment: Option<Value>,
    ) -> Result<Map<String, Value>, ClientError> {
        self.check()?;
        let mut p = base(&self.common, nodes)?;
        p.insert("kind".into(), json!(self.kind));
        insert_strings(
            &mut p,
            &[
                ("level", &self.level),
                ("block_device", &self.block_device),
                ("deploy_partition", &self.partition),
                ("ssh_authorized_keys", &self.key),
                ("vlan", &self.vlan),
                ("timeout_reboot_classical", &self.reboot_classical_timeout),
            ],
        );
        insert_flags(&mut p, &[(self.check_destructive, "check_destructive")]);
        if let Some(e) = environment {
            p.insert("environment".into(), e);
        }
        self.pxe.insert(&mut p)?;
        Ok(p)
    }
}

/// `kapower3` options.
#[derive(Parser, Debug)]
#[command(
    name = "kapower3",
    about = "Power nodes on or off, or get their status",
    disable_version_flag = true
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
    #[arg(short = 'l', long = "op-level", value_parser = ["soft", "hard", "very_hard"])]
    level: Option<String>,
}

impl PowerCli {
    /// The method and parameters of the power request (spec §2.4).
    pub fn request(&self, nodes: Vec<String>) -> Result<(Method, Map<String, Value>), ClientError> {
        if self.status && self.level.is_some() {
            return Err(usage("-l cannot be used with --status"));
        }
        let mut p = base(&self.common, nodes)?;
        insert_strings(&mut p, &[("level", &self.level)]);
        let method = match (self.on, self.off, self.status) {
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
        Ok((method, p))
    }
}

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

    fn parse<C: clap::Parser>(name: &str, args: &[&str]) -> C {
        C::try_parse_from(std::iter::once(name).chain(args.iter().copied())).expect("parses")
    }

    fn nodes() -> Vec<String> {
        vec!["node-1".into()]
    }

    #[test]
    fn kadeploy_options_put_kadeploys_parameters_in_the_request() {
        let cli: DeployCli = parse(
            "kadeploy3",
            &[
                "-m",
                "node-1",
                "-b",
                "/dev/sdb",
                "-c",
                "0",
                "--vlan",
                "12",
                "--disable-bootloader-install",
                "--disable-disk-partitioning",
                "--reboot-classical-timeout",
                "100+n*2",
                "--reboot-kexec-timeout",
                "60",
                "--hook",
                "--dry-run",
                "-d",
                "--force",
                "-V",
                "4",
                "--breakpoint",
                "BroadcastEnv",
                "--no-kexec",
                "-r",
                "ext4",
            ],
        );
        let p = cli
            .params(nodes(), json!({"kind": "database", "name": "e"}))
            .unwrap();
        assert_eq!(p["boot_partition"], json!(0), "an integer");
        assert_eq!(
            p["deploy_partition"],
            json!(""),
            "-b without -p: the whole device"
        );
        assert_eq!(p["vlan"], json!("12"));
        assert_eq!(
            p["timeout_reboot_classical"],
            json!("100+n*2"),
            "a string expression"
        );
        assert_eq!(p["timeout_reboot_kexec"], json!("60"));
        for k in [
            "disable_bootloader_install",
            "disable_disk_partitioning",
            "disable_kexec",
            "hook",
            "dry_run",
            "debug",
            "force",
        ] {
            assert_eq!(p[k], json!(true), "{k}");
        }
        assert_eq!(p["verbose_level"], json!(4));
        assert_eq!(p["breakpoint"], json!("BroadcastEnv"));
        assert_eq!(p["reformat_tmp_partition"], json!("ext4"));
        assert_eq!(p["environment"]["name"], json!("e"));
        let plain: DeployCli = parse(
            "kadeploy3",
            &[
                "-m",
                "n",
                "--hook",
                "--no-hook",
                "--dry-run",
                "--no-dry-run",
            ],
        );
        let p = plain.params(nodes(), json!({})).unwrap();
        for k in [
            "hook",
            "dry_run",
            "boot_partition",
            "vlan",
            "debug",
            "force",
        ] {
            assert!(!p.contains_key(k), "{k} not sent");
        }
    }

    #[test]
    fn kareboot_options_put_kadeploys_parameters_in_the_request() {
        let cli: RebootCli = parse(
            "kareboot3",
            &[
                "-m",
                "n",
                "-r",
                "deploy_env",
                "-k",
                "/tmp/k.pub",
                "-b",
                "/dev/sdb",
                "-p",
                "2",
                "--vlan",
                "7",
                "--reboot-classical-timeout",
                "n*10",
                "-l",
                "hard",
            ],
        );
        let p = cli.params(nodes(), None).unwrap();
        assert_eq!(p["kind"], json!("deploy_env"));
        assert_eq!(p["ssh_authorized_keys"], json!("/tmp/k.pub"));
        assert_eq!(p["block_device"], json!("/dev/sdb"));
        assert_eq!(p["deploy_partition"], json!("2"));
        assert_eq!(p["vlan"], json!("7"));
        assert_eq!(p["timeout_reboot_classical"], json!("n*10"));
        assert_eq!(p["level"], json!("hard"));
        let rec: RebootCli = parse(
            "kareboot3",
            &[
                "-m",
                "n",
                "-r",
                "recorded_env",
                "-e",
                "deb",
                "-u",
                "root",
                "--env-version",
                "3",
                "-p",
                "3",
                "-c",
            ],
        );
        let env = json!({"kind": "database", "user": "root", "name": "deb", "version": 3});
        let p = rec.params(nodes(), Some(env.clone())).unwrap();
        assert_eq!(p["environment"], env);
        assert_eq!(p["check_destructive"], json!(true));
    }

    #[test]
    fn kareboot_checks_its_kinds_as_kadeploy_does() {
        for args in [
            &["-m", "n", "-r", "set_pxe"][..],
            &["-m", "n", "-r", "recorded_env", "-e", "deb"][..],
            &["-m", "n", "-r", "simple", "-k", "/tmp/k"][..],
            &["-m", "n", "-r", "simple", "-u", "root"][..],
            &["-m", "n", "-r", "deploy_env", "--env-version", "2"][..],
        ] {
            let cli: RebootCli = parse("kareboot3", args);
            assert!(cli.params(nodes(), None).is_err(), "{args:?}");
        }
    }

    #[test]
    fn kapower_requests() {
        let on: PowerCli = parse(
            "kapower3",
            &["-m", "n", "--on", "-l", "very_hard", "--hook"],
        );
        let (m, p) = on.request(nodes()).unwrap();
        assert_eq!(m, Method::PUT);
        assert_eq!(
            (p["status"].clone(), p["level"].clone(), p["hook"].clone()),
            (json!("on"), json!("very_hard"), json!(true))
        );
        let st: PowerCli = parse("kapower3", &["-m", "n", "--status", "--dry-run"]);
        let (m, p) = st.request(nodes()).unwrap();
        assert_eq!(m, Method::GET);
        let q = poll::query(&p);
        assert!(
            q.contains(&("dry_run", "true".to_string()))
                && q.contains(&("nodes", "node-1".to_string()))
        );
        let bad: PowerCli = parse("kapower3", &["-m", "n", "--status", "-l", "soft"]);
        assert!(bad.request(nodes()).is_err());
    }

    #[test]
    fn workflow_option_checks() {
        let same: DeployCli = parse("kadeploy3", &["-m", "n", "-o", "f", "-n", "f"]);
        assert!(check_common(&same.common).is_err());
        let nowait: DeployCli = parse("kadeploy3", &["-m", "n", "-o", "f", "--no-wait"]);
        assert!(check_common(&nowait.common).is_err());
        let dir = std::env::temp_dir().join(format!("kadeploy-script-{}", std::process::id()));
        std::fs::write(&dir, "#!/bin/sh\n").unwrap();
        let path = dir.to_string_lossy().to_string();
        let script: DeployCli = parse("kadeploy3", &["-m", "n", "-s", &path]);
        assert!(check_common(&script.common).is_err(), "not executable");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        assert!(check_common(&script.common).is_ok());
        let _ = std::fs::remove_file(&dir);
        assert!(DeployCli::try_parse_from(["kadeploy3", "--breakpoint", "a:b:c"]).is_err());
    }

    #[test]
    fn status_snapshot_is_printed_as_kadeploy_does() {
        let stats = json!({"c1": {"SetDeploymentEnvUntrusted": {"wait_reboot": {"nodes": {"OK": [], "KO": [], "**": ["node-1", "node-2"]}, "time": 63}}}});
        assert_eq!(
            poll::status_text("Deployment", 70, &stats),
            "---\nDeployment status (70s):\n  [SetDeploymentEnvUntrusted-wait_reboot] ~63s (**)\n     node-1\n     node-2\n---"
        );
        assert_eq!(
            poll::status_text("Deployment", 1, &json!({})),
            "---\nDeployment did not start at the moment\n---"
        );
    }
}

//! The options of `kadeploy3`, `kareboot3` and `kapower3` (`ClientWorkflow` and each client's own), and
//! the request parameters they make.

use super::*;

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
pub(super) fn breakpoint(v: &str) -> Result<String, String> {
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
    pub(super) profile: Option<String>,
    /// `hostname,value` lines substituted for `NODE_SINGULARITY` (`pxe.singularities`).
    #[arg(long = "set-pxe-pattern")]
    pub(super) pattern: Option<String>,
    /// Files to put in the PXE repository (comma-separated); needs `-w`.
    #[arg(short = 'x', long = "upload-pxe-files", value_delimiter = ',')]
    pub(super) pxe_files: Vec<String>,
}

impl PxeArgs {
    /// Adds the `pxe` parameter to `p` when any option is given.
    pub(super) fn insert(&self, p: &mut Map<String, Value>) -> Result<(), ClientError> {
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
    pub(super) common: Common,
    /// Anonymous environment description file.
    #[arg(short = 'a', long = "env-file")]
    pub(super) env_file: Option<String>,
    /// Block device.
    #[arg(short = 'b', long = "block-device")]
    pub(super) block_device: Option<String>,
    /// The partition to boot on (0 = the MBR), sent as the integer `boot_partition`.
    #[arg(short = 'c', long = "boot-partition")]
    pub(super) boot_partition: Option<u32>,
    /// Recorded environment name.
    #[arg(short = 'e', long = "env-name")]
    pub(super) env_name: Option<String>,
    /// Authorized keys file to install.
    #[arg(short = 'k', long = "key", num_args = 0..=1, default_missing_value = "~/.ssh/authorized_keys")]
    pub(super) key: Option<String>,
    /// Deploy partition.
    #[arg(short = 'p', long = "partition-number")]
    pub(super) partition: Option<String>,
    /// Reformat the tmp partition with this file system.
    #[arg(short = 'r', long = "reformat-tmp")]
    pub(super) reformat_tmp: Option<String>,
    /// Environment owner.
    #[arg(short = 'u', long = "env-user")]
    pub(super) env_user: Option<String>,
    /// The VLAN to put the nodes in (`vlan`).
    #[arg(long = "vlan")]
    pub(super) vlan: Option<String>,
    #[command(flatten)]
    pub(super) pxe: PxeArgs,
    /// Environment version.
    #[arg(long = "env-version")]
    pub(super) env_version: Option<u32>,
    /// No kexec.
    #[arg(long = "no-kexec")]
    pub(super) no_kexec: bool,
    /// Do not install a bootloader (`disable_bootloader_install`).
    #[arg(long = "disable-bootloader-install")]
    pub(super) disable_bootloader_install: bool,
    /// Do not partition the disk (`disable_disk_partitioning`).
    #[arg(long = "disable-disk-partitioning")]
    pub(super) disable_disk_partitioning: bool,
    /// Timeout of classical reboots (an expression of `n`, the number of nodes).
    #[arg(long = "reboot-classical-timeout")]
    pub(super) reboot_classical_timeout: Option<String>,
    /// Timeout of kexec reboots (an expression of `n`).
    #[arg(long = "reboot-kexec-timeout")]
    pub(super) reboot_kexec_timeout: Option<String>,
    /// Forced automata: `SetDeploymentEnv|Impl:retries:timeout[,…]&BroadcastEnv|…&BootNewEnv|…`.
    #[arg(long = "force-steps")]
    pub(super) force_steps: Option<String>,
    #[command(flatten)]
    pub(super) secure: SecureArgs,
}

/// Inserts the `Some` string values of `pairs` into `p`.
pub(super) fn insert_strings(p: &mut Map<String, Value>, pairs: &[(&str, &Option<String>)]) {
    for (k, v) in pairs {
        if let Some(v) = v {
            p.insert((*k).into(), json!(v));
        }
    }
}

/// Inserts `key: true` into `p` for each set flag.
pub(super) fn insert_flags(p: &mut Map<String, Value>, flags: &[(bool, &str)]) {
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
pub(super) async fn export_files(
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
    pub(super) common: Common,
    /// Block device.
    #[arg(short = 'b', long = "block-device")]
    pub(super) block_device: Option<String>,
    /// Fail with error 30 when the last deployed environment was destructive.
    #[arg(short = 'c', long = "check-destructive-tag")]
    pub(super) check_destructive: bool,
    /// Recorded environment (recorded_env).
    #[arg(short = 'e', long = "env-name")]
    pub(super) env_name: Option<String>,
    /// Authorized keys file to install (deploy_env).
    #[arg(short = 'k', long = "key", num_args = 0..=1, default_missing_value = "~/.ssh/authorized_keys")]
    pub(super) key: Option<String>,
    /// `soft`, `hard` or `very_hard`.
    #[arg(short = 'l', long = "op-level", value_parser = ["soft", "hard", "very_hard"])]
    pub(super) level: Option<String>,
    /// Partition (recorded_env).
    #[arg(short = 'p', long = "partition-number")]
    pub(super) partition: Option<String>,
    /// `set_pxe`, `simple`, `deploy_env` or `recorded_env`.
    #[arg(short = 'r', long = "reboot-kind", default_value = "simple",
          value_parser = ["set_pxe", "simple", "deploy_env", "recorded_env"])]
    pub(super) kind: String,
    /// Environment owner (recorded_env).
    #[arg(short = 'u', long = "env-user")]
    pub(super) env_user: Option<String>,
    /// The VLAN to put the nodes in.
    #[arg(long = "vlan")]
    pub(super) vlan: Option<String>,
    #[command(flatten)]
    pub(super) pxe: PxeArgs,
    /// Environment version (recorded_env).
    #[arg(long = "env-version")]
    pub(super) env_version: Option<u32>,
    /// Timeout of classical reboots (an expression of `n`).
    #[arg(long = "reboot-classical-timeout")]
    pub(super) reboot_classical_timeout: Option<String>,
    #[command(flatten)]
    pub(super) secure: SecureArgs,
}

impl RebootCli {
    /// Kadeploy's client-side checks of the reboot kinds (spec §2.3).
    pub(super) fn check(&self) -> Result<(), ClientError> {
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
    pub(super) common: Common,
    /// Power on.
    #[arg(long)]
    pub(super) on: bool,
    /// Power off.
    #[arg(long)]
    pub(super) off: bool,
    /// Power status.
    #[arg(long)]
    pub(super) status: bool,
    /// `soft`, `hard` or `very_hard`.
    #[arg(short = 'l', long = "op-level", value_parser = ["soft", "hard", "very_hard"])]
    pub(super) level: Option<String>,
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

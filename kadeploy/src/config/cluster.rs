//! Cluster-specific file: validation and conversion to [`ClusterSpecific`] and [`RemoteOps`].

use super::automata;
use super::clusters::ClusterEntry;
use super::error::{ConfigError, Ctx};
use super::types::{Archive, Automata, BootConfig, ClusterConfig, Partitioning};
use super::wire;
use crate::expr::Expr;
use hal::PowerLevel;
use hal::power::ipmi::bootdev::BootDevice;
use hal::power::next_boot::{NextBootChoice, NextBootSettings};
use std::path::Path;

/// The typed `remoteops` of a cluster: the commands of each power level.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteOps {
    /// `reboot`, in escalation order (soft, hard, very_hard).
    pub reboot: Vec<RemoteOp>,
    /// `power_on`, in escalation order.
    pub power_on: Vec<RemoteOp>,
    /// `power_off`, in escalation order.
    pub power_off: Vec<RemoteOp>,
    /// `power_status` command.
    pub power_status: Option<String>,
    /// `console` command.
    pub console: Option<String>,
    /// `boot/next_boot_device`: the boot device set out of band (`backend/ipmi` or `backend/redfish`)
    /// before each reboot and power-on; `None` (the default) sets nothing.
    pub next_boot: Option<NextBootSettings>,
}

/// One command of a `remoteops` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteOp {
    /// The level (`name`: `soft`, `hard` or `very_hard`).
    pub name: PowerLevel,
    /// The command, with its placeholders (`HOSTNAME_FQDN`, `HOSTNAME_SHORT`, `GROUP_FQDN`...).
    pub cmd: String,
    /// The `group` file, resolved against the configuration directory.
    pub group: Option<String>,
    /// The groups the `group` file lists (host names; one comma-separated group per line), read at load.
    pub groups: Vec<Vec<String>>,
}

impl RemoteOps {
    /// Replaces `DEFAULT_CONNECTOR` in every command by `connector`.
    pub fn with_connector(mut self, connector: &str) -> Self {
        let lists = [&mut self.reboot, &mut self.power_on, &mut self.power_off];
        for op in lists.into_iter().flatten() {
            op.cmd = super::connector::substitute(&op.cmd, connector);
        }
        for cmd in [&mut self.power_status, &mut self.console]
            .into_iter()
            .flatten()
        {
            *cmd = super::connector::substitute(cmd, connector);
        }
        self
    }
}

/// What a cluster-specific file configures, before it is attached to a cluster of `clusters.conf`.
#[derive(Clone, Debug)]
pub struct ClusterSpecific {
    /// `partitioning/*`, with the script's contents.
    pub partitioning: Partitioning,
    /// `boot/*`, with the bootloader script's contents.
    pub boot: BootConfig,
    /// `timeouts/reboot`.
    pub timeout_reboot: Expr,
    /// `timeouts/kexec`.
    pub timeout_kexec: Expr,
    /// `kexec/repository`.
    pub kexec_repository: String,
    /// `localops/broadcastenv/decompress`.
    pub broadcast_decompress: bool,
    /// `localops/broadcastenv/cmd`: the command of `BroadcastEnvCustom`.
    pub broadcast_cmd: Option<String>,
    /// `preinstall/files`.
    pub admin_preinstalls: Vec<Archive>,
    /// `postinstall/files`.
    pub admin_postinstalls: Vec<Archive>,
    /// `automata/macrosteps`, or the default automata.
    pub automata: Automata,
    /// `hooks/use_ip_to_deploy`.
    pub use_ip_to_deploy: bool,
    /// `remoteops/*`.
    pub remoteops: RemoteOps,
    /// `pxe/headers/*`: text put at the top of the profiles written for the cluster's nodes.
    pub pxe_headers: hal::netboot::pxe::Headers,
}

impl ClusterSpecific {
    /// Attaches the file to a cluster of `clusters.conf`; gives the cluster and its remote operations.
    pub fn into_cluster(self, entry: ClusterEntry) -> (ClusterConfig, RemoteOps) {
        let ClusterEntry {
            name,
            prefix,
            nodes,
            macs,
            switches,
            ..
        } = entry;
        let reboot_levels = self.remoteops.reboot.iter().map(|op| op.name).collect();
        let cluster = ClusterConfig {
            name,
            prefix,
            nodes,
            partitioning: self.partitioning,
            boot: self.boot,
            timeout_reboot: self.timeout_reboot,
            timeout_kexec: self.timeout_kexec,
            kexec_repository: self.kexec_repository,
            broadcast_decompress: self.broadcast_decompress,
            broadcast_cmd: self.broadcast_cmd,
            admin_preinstalls: self.admin_preinstalls,
            admin_postinstalls: self.admin_postinstalls,
            automata: self.automata,
            reboot_levels,
            use_ip_to_deploy: self.use_ip_to_deploy,
            macs,
            switches,
        };
        (cluster, self.remoteops)
    }
}

pub use super::files::{ReadFile, resolve};

/// Validates a cluster file; scripts are resolved against `dir` and read with `read`.
/// The shortest `boot/probe_period` and `boot/probe_timeout` accepted (seconds).
const PROBE_SECONDS_MIN: f64 = 0.1;
/// The longest `boot/probe_period` and `boot/probe_timeout` accepted (seconds).
const PROBE_SECONDS_MAX: f64 = 600.0;

pub(crate) fn convert(
    w: &wire::ClusterFile,
    ctx: Ctx<'_>,
    dir: &Path,
    read: ReadFile<'_>,
) -> Result<ClusterSpecific, ConfigError> {
    let mut script = |value: &Option<String>, key: &str| -> Result<String, ConfigError> {
        let path = resolve(dir, ctx.required(value.as_deref(), key)?);
        read(&path).map_err(|source| ConfigError::File {
            file: ctx.file.into(),
            key: key.into(),
            path,
            source,
        })
    };
    let part = ctx.required(w.partitioning.as_ref(), "partitioning")?;
    let block_device = ctx.required(part.block_device.clone(), "partitioning/block_device")?;
    let parts = ctx.required(part.partitions.as_ref(), "partitioning/partitions")?;
    let number = |value: i64, key: &str, optional: bool| -> Result<Option<u32>, ConfigError> {
        match value {
            -1 if optional => Ok(None),
            1.. => u32::try_from(value)
                .map(Some)
                .map_err(|_| ctx.invalid(key, "partition number too large")),
            _ => Err(ctx.invalid(key, format!("invalid partition number {value}"))),
        }
    };
    let deploy_key = "partitioning/partitions/deploy";
    let deploy = number(ctx.required(parts.deploy, deploy_key)?, deploy_key, false)?.unwrap_or(0);
    let swap = if part.disable_swap {
        None
    } else {
        let key = "partitioning/partitions/swap";
        number(ctx.required(parts.swap, key)?, key, false)?
    };
    let partitioning = Partitioning {
        block_device,
        deploy,
        swap,
        prod: number(parts.prod, "partitioning/partitions/prod", true)?,
        tmp: number(parts.tmp, "partitioning/partitions/tmp", true)?,
        script: script(&part.script, "partitioning/script")?,
    };
    let boot = ctx.required(w.boot.as_ref(), "boot")?;
    let kernels = ctx.required(boot.kernels.as_ref(), "boot/kernels")?;
    let deploy_kernel = ctx.required(kernels.deploy.as_ref(), "boot/kernels/deploy")?;
    let probe_seconds = |value: f64, key: &str| {
        if (PROBE_SECONDS_MIN..=PROBE_SECONDS_MAX).contains(&value) {
            Ok(value)
        } else {
            Err(ctx.invalid(
                key,
                format!("{value} is not {PROBE_SECONDS_MIN} to {PROBE_SECONDS_MAX} seconds"),
            ))
        }
    };
    let boot = BootConfig {
        sleep_time_before_ping: boot.sleep_time_before_ping as f64,
        probe_period: probe_seconds(boot.probe_period, "boot/probe_period")?,
        probe_timeout: probe_seconds(boot.probe_timeout, "boot/probe_timeout")?,
        install_bootloader: script(&boot.install_bootloader, "boot/install_bootloader")?,
        user_params: kernels.user.params.clone(),
        deploy_vmlinuz: ctx
            .required(deploy_kernel.vmlinuz.clone(), "boot/kernels/deploy/vmlinuz")?,
        deploy_initrd: ctx.required(deploy_kernel.initrd.clone(), "boot/kernels/deploy/initrd")?,
        deploy_params: deploy_kernel.params.clone(),
        deploy_drivers: split_list(&deploy_kernel.drivers),
        supported_fs: split_list(&deploy_kernel.supported_fs),
    };
    let mut remoteops = remoteops(&w.remoteops, ctx, dir, read)?;
    remoteops.next_boot = w
        .boot
        .as_ref()
        .and_then(|b| b.next_boot_device.as_ref())
        .map(|n| next_boot(n, ctx))
        .transpose()?;
    let admin_preinstalls = archives(w.preinstall.as_ref(), "preinstall", ctx, dir)?;
    let admin_postinstalls = archives(w.postinstall.as_ref(), "postinstall", ctx, dir)?;
    let automata = automata::convert(w.automata.as_ref(), ctx, dir)?;
    let timeout =
        |text: &str, key: &str| Expr::parse(text).map_err(|e| ctx.invalid(key, e.to_string()));
    let timeout_reboot = timeout(&w.timeouts.reboot, "timeouts/reboot")?;
    let timeout_kexec = timeout(&w.timeouts.kexec, "timeouts/kexec")?;
    automata::check_timeouts(
        &automata,
        &timeout_reboot,
        &timeout_kexec,
        w.automata.is_some(),
        ctx,
    )?;
    Ok(ClusterSpecific {
        partitioning,
        boot,
        timeout_reboot,
        timeout_kexec,
        kexec_repository: w.kexec.repository.clone(),
        broadcast_decompress: w.localops.broadcastenv.decompress,
        broadcast_cmd: w
            .localops
            .broadcastenv
            .cmd
            .clone()
            .filter(|c| !c.trim().is_empty()),
        admin_preinstalls,
        admin_postinstalls,
        automata,
        use_ip_to_deploy: w.hooks.use_ip_to_deploy,
        remoteops,
        pxe_headers: super::drivers::headers(&w.pxe.headers),
    })
}

/// Splits a comma-separated list, trimming items and dropping empty ones.
fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(String::from)
        .collect()
}

/// The groups of a `group` file: one comma-separated list of host names per line (blank lines and `#`
/// comments skipped).
fn parse_groups(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|g| !g.is_empty())
        .collect()
}

/// `remoteops/*`: levels known and unique per list, commands present, group files read with `read`.
fn remoteops(
    w: &wire::RemoteOpsSection,
    ctx: Ctx<'_>,
    dir: &Path,
    read: ReadFile<'_>,
) -> Result<RemoteOps, ConfigError> {
    let mut levels = |ops: &[wire::Operation], list: &str| -> Result<Vec<RemoteOp>, ConfigError> {
        let mut out: Vec<RemoteOp> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let key = format!("remoteops/{list}[{i}]/name");
            let name = ctx.required(op.name.as_deref(), &key)?;
            let level = PowerLevel::ALL
                .into_iter()
                .find(|level| level.as_str() == name)
                .filter(|_| w.level_name.iter().any(|known| known == name))
                .ok_or_else(|| {
                    ctx.invalid(
                        &key,
                        format!(
                            "invalid level `{name}` (expected one of {})",
                            w.level_name.join(", ")
                        ),
                    )
                })?;
            if out.iter().any(|op| op.name == level) {
                return Err(ctx.invalid(key, format!("level `{name}` is given twice")));
            }
            let group = op.group.as_deref().map(|group| resolve(dir, group));
            let groups = match &group {
                None => Vec::new(),
                Some(path) => parse_groups(&read(path).map_err(|source| ConfigError::File {
                    file: ctx.file.into(),
                    key: format!("remoteops/{list}[{i}]/group"),
                    path: path.clone(),
                    source,
                })?),
            };
            out.push(RemoteOp {
                name: level,
                cmd: ctx.required(op.cmd.clone(), &format!("remoteops/{list}[{i}]/cmd"))?,
                group: group.map(|path| path.display().to_string()),
                groups,
            });
        }
        out.sort_by_key(|op| op.name);
        Ok(out)
    };
    let single = |ops: &[wire::Operation], list: &str| -> Result<Option<String>, ConfigError> {
        match ops {
            [] => Ok(None),
            [op] => ctx
                .required(op.cmd.clone(), &format!("remoteops/{list}[0]/cmd"))
                .map(Some),
            _ => Err(ctx.invalid(
                format!("remoteops/{list}"),
                "at most one command is allowed",
            )),
        }
    };
    Ok(RemoteOps {
        reboot: levels(&w.reboot, "reboot")?,
        power_on: levels(&w.power_on, "power_on")?,
        power_off: levels(&w.power_off, "power_off")?,
        power_status: single(&w.power_status, "power_status")?,
        console: single(&w.console, "console")?,
        next_boot: None,
    })
}

/// `boot/next_boot_device`: `device` is `pxe`, `disk` or `auto` (PXE before the deploy kernel, the disk
/// before the deployed system).
fn next_boot(w: &wire::NextBootDevice, ctx: Ctx<'_>) -> Result<NextBootSettings, ConfigError> {
    let key = "boot/next_boot_device/device";
    let name = ctx.required(w.device.as_deref(), key)?;
    let choice = if name == "auto" {
        NextBootChoice::FollowProfile
    } else {
        BootDevice::parse(name)
            .filter(|d| matches!(d, BootDevice::Pxe | BootDevice::Disk))
            .map(NextBootChoice::Fixed)
            .ok_or_else(|| {
                ctx.invalid(
                    key,
                    format!("`{name}` is not a boot device (pxe, disk or auto)"),
                )
            })?
    };
    Ok(NextBootSettings {
        choice,
        persistent: w.persistent,
        efi: w.efiboot,
    })
}

/// `preinstall/files` or `postinstall/files`.
fn archives(
    section: Option<&wire::InstallSection>,
    name: &str,
    ctx: Ctx<'_>,
    dir: &Path,
) -> Result<Vec<Archive>, ConfigError> {
    let Some(section) = section else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, entry) in section.files.iter().enumerate() {
        let key = |field: &str| format!("{name}/files[{i}]/{field}");
        let file = ctx.required(entry.file.as_deref(), &key("file"))?;
        let format = ctx.required(entry.format.clone(), &key("format"))?;
        ctx.one_of(&format, &["tgz", "tbz2", "txz"], &key("format"))?;
        let script = ctx.required(entry.script.clone(), &key("script"))?;
        out.push(Archive {
            file: resolve(dir, file).display().to_string(),
            format,
            script: (script != "none").then_some(script),
        });
    }
    Ok(out)
}

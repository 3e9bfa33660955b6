//! `automata/macrosteps` of a cluster file: validation, the default automata, and the load-time timeout check.

use super::error::{ConfigError, Ctx};
use super::types::{
    Automata, BootNewEnvKind, BroadcastEnvKind, MacroInstance, MacroKind, MicroSettings,
    SetDeploymentEnvKind, Slot,
};
use super::wire;
use crate::engine::custom::{CustomMicro, parse_op_list};
use crate::expr::Expr;
use std::collections::BTreeMap;
use std::path::Path;

/// Valid `type` values of `SetDeploymentEnv` instances.
pub const SET_DEPLOYMENT_ENV_TYPES: [&str; SetDeploymentEnvKind::COUNT] =
    SetDeploymentEnvKind::NAMES;
/// Valid `type` values of `BroadcastEnv` instances.
pub const BROADCAST_ENV_TYPES: [&str; BroadcastEnvKind::COUNT] = BroadcastEnvKind::NAMES;
/// Valid `type` values of `BootNewEnv` instances.
pub const BOOT_NEW_ENV_TYPES: [&str; BootNewEnvKind::COUNT] = BootNewEnvKind::NAMES;

/// The automata Kadeploy uses when a cluster file has no `automata` key (`config.rb`).
pub fn default_automata() -> Automata {
    let instance = |kind: MacroKind, timeout: f64, retries: u32| MacroInstance {
        kind,
        retries,
        timeout,
        raisable: true,
        breakpoint: false,
        microsteps: BTreeMap::new(),
    };
    Automata {
        set_deployment_env: vec![instance(SetDeploymentEnvKind::Untrusted.into(), 200.0, 2)],
        broadcast_env: vec![instance(BroadcastEnvKind::Kascade.into(), 300.0, 2)],
        boot_new_env: vec![
            instance(BootNewEnvKind::Classical.into(), 150.0, 0),
            instance(BootNewEnvKind::HardReboot.into(), 120.0, 1),
        ],
    }
}

/// Converts `automata`, or gives the default automata when it is absent. Files of the micro-steps'
/// custom operations are relative to `dir` unless absolute.
pub(crate) fn convert(
    section: Option<&wire::AutomataSection>,
    ctx: Ctx<'_>,
    dir: &Path,
) -> Result<Automata, ConfigError> {
    let Some(section) = section else {
        return Ok(default_automata());
    };
    let steps = ctx.required(section.macrosteps.as_ref(), "automata/macrosteps")?;
    let convert_slot = |slot: Slot| {
        let instances = match slot {
            Slot::SetDeploymentEnv => &steps.set_deployment_env,
            Slot::BroadcastEnv => &steps.broadcast_env,
            Slot::BootNewEnv => &steps.boot_new_env,
        };
        convert_instances(instances, slot, ctx, dir)
    };
    Ok(Automata {
        set_deployment_env: convert_slot(Slot::SetDeploymentEnv)?,
        broadcast_env: convert_slot(Slot::BroadcastEnv)?,
        boot_new_env: convert_slot(Slot::BootNewEnv)?,
    })
}

/// One macro-step slot: a non-empty list of instances of valid types.
fn convert_instances(
    instances: &Option<Vec<wire::Instance>>,
    slot: Slot,
    ctx: Ctx<'_>,
    dir: &Path,
) -> Result<Vec<MacroInstance>, ConfigError> {
    let macro_name = slot.name();
    let path = format!("automata/macrosteps/{macro_name}");
    let instances = ctx.required(instances.as_ref(), &path)?;
    if instances.is_empty() {
        return Err(ctx.invalid(path, "at least one instance is needed"));
    }
    let mut out = Vec::with_capacity(instances.len());
    for (i, inst) in instances.iter().enumerate() {
        let path = format!("{path}[{i}]");
        let name = ctx.required(inst.kind.clone(), &format!("{path}/type"))?;
        let Some(kind) = slot.parse_kind(&name) else {
            return Err(ctx.invalid(
                format!("{path}/type"),
                format!(
                    "invalid {macro_name} type `{name}` (expected one of {})",
                    slot.kind_names().join(", ")
                ),
            ));
        };
        out.push(MacroInstance {
            kind,
            retries: inst.retries,
            timeout: inst.timeout as f64,
            raisable: inst.raisable,
            breakpoint: inst.breakpoint,
            microsteps: microsteps(inst, &path, ctx, dir)?,
        });
    }
    Ok(out)
}

/// The per-micro-step settings of the instance at `path`, by micro-step name.
fn microsteps(
    inst: &wire::Instance,
    path: &str,
    ctx: Ctx<'_>,
    dir: &Path,
) -> Result<BTreeMap<String, MicroSettings>, ConfigError> {
    let micro_names = crate::engine::plan::micro_step_names();
    let mut microsteps = BTreeMap::new();
    for (j, micro) in inst.microsteps.iter().enumerate() {
        let key = format!("{path}/microsteps[{j}]/name");
        let name = ctx.required(micro.name.clone(), &key)?;
        if !micro_names.contains(name.as_str()) {
            return Err(ctx.invalid(key, format!("unknown micro-step `{name}`")));
        }
        let at = format!("{path}/microsteps[{j}]");
        let err = |message: String| ctx.invalid(&at, message);
        let mut file = |f: &str| Ok(super::files::resolve(dir, f).display().to_string());
        let mut list = |ops: &Option<serde_json::Value>, key: &str| {
            parse_op_list(ops.as_ref(), key, &name, &err, &mut file)
        };
        let custom = CustomMicro {
            substitute: list(&micro.substitute, "substitute")?,
            pre: list(&micro.pre_ops, "pre-ops")?.unwrap_or_default(),
            post: list(&micro.post_ops, "post-ops")?.unwrap_or_default(),
            replaces_admin: false,
        };
        let settings = MicroSettings {
            timeout: micro.timeout as f64,
            retries: micro.retries,
            raisable: micro.raisable,
            breakpoint: micro.breakpoint,
            custom,
        };
        if microsteps.insert(name.clone(), settings).is_some() {
            return Err(ctx.invalid(key, format!("micro-step `{name}` is configured twice")));
        }
    }
    Ok(microsteps)
}

/// The load-time check: the reboot timeout at `n = 1` must not exceed the timeout of any instance that waits for
/// a classical reboot (`SetDeploymentEnvUntrusted`/`Nfsroot`, `BootNewEnvClassical`/`HardReboot`), and the kexec
/// timeout must not exceed that of the `*Kexec` instances. An instance timeout of 0 means no limit.
///
/// `configured` tells whether the automata comes from the file (errors name the instance's key) or is the default
/// one (errors name the timeout's key).
pub(crate) fn check_timeouts(
    automata: &Automata,
    reboot: &Expr,
    kexec: &Expr,
    configured: bool,
    ctx: Ctx<'_>,
) -> Result<(), ConfigError> {
    let at_one =
        |expr: &Expr, key: &str| expr.eval(1.0).map_err(|e| ctx.invalid(key, e.to_string()));
    let reboot_at_one = at_one(reboot, "timeouts/reboot")?;
    let kexec_at_one = at_one(kexec, "timeouts/kexec")?;
    for slot in [Slot::SetDeploymentEnv, Slot::BootNewEnv] {
        for (i, inst) in automata.slot(slot).iter().enumerate() {
            let (limit_key, limit) = match awaited_boot(inst.kind) {
                Some(AwaitedBoot::Reboot) => ("timeouts/reboot", reboot_at_one),
                Some(AwaitedBoot::Kexec) => ("timeouts/kexec", kexec_at_one),
                None => continue,
            };
            if inst.timeout == 0.0 || limit <= inst.timeout {
                continue;
            }
            let name = inst.kind.instance_name();
            return Err(if configured {
                ctx.invalid(
                    format!("automata/macrosteps/{slot}[{i}]/timeout"),
                    format!(
                        "the timeout of {name} ({} s) is lower than {limit_key} ({limit} s at n=1)",
                        inst.timeout
                    ),
                )
            } else {
                ctx.invalid(
                    limit_key,
                    format!("{limit} s at n=1 exceeds the timeout of {name} in the default automata ({} s)", inst.timeout),
                )
            });
        }
    }
    Ok(())
}

/// The boot an instance waits for, whose timeout must fit in the instance's.
enum AwaitedBoot {
    /// A classical reboot (`timeouts/reboot`).
    Reboot,
    /// A kexec (`timeouts/kexec`).
    Kexec,
}

/// Which boot `kind` waits for, as the load-time check counts them.
fn awaited_boot(kind: MacroKind) -> Option<AwaitedBoot> {
    use SetDeploymentEnvKind as SetEnv;
    match kind {
        MacroKind::SetDeploymentEnv(SetEnv::Untrusted | SetEnv::Nfsroot)
        | MacroKind::BootNewEnv(BootNewEnvKind::Classical | BootNewEnvKind::HardReboot) => {
            Some(AwaitedBoot::Reboot)
        }
        MacroKind::SetDeploymentEnv(SetEnv::Kexec)
        | MacroKind::BootNewEnv(BootNewEnvKind::Kexec) => Some(AwaitedBoot::Kexec),
        MacroKind::SetDeploymentEnv(
            SetEnv::UntrustedCustomPreInstall | SetEnv::Prod | SetEnv::Dummy,
        )
        | MacroKind::BroadcastEnv(_)
        | MacroKind::BootNewEnv(BootNewEnvKind::PivotRoot | BootNewEnvKind::Dummy) => None,
    }
}

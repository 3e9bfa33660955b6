//! Building the tasks of one macro-step instance: its micro-steps with their settings, the custom operations
//! inserted around or instead of them, and the requested breakpoint.

use crate::config::{MacroInstance, MicroSettings};
use crate::engine::custom::{self, CustomOp, CustomOps};
use crate::engine::manager::{Task, TaskSpec};
use crate::engine::slot::Slot;
use crate::engine::step::{Job, Step};
use crate::engine::task::{MacroTask, MicroTask};
use crate::error::{ApiError, RequestError};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The settings of a macro-step instance its tasks are built with.
#[derive(Clone, Copy)]
pub struct InstanceSettings<'a> {
    /// Extra tries after the first.
    pub retries: u32,
    /// Seconds; 0 = none.
    pub timeout: f64,
    /// Nodes leave as soon as they are done.
    pub raisable: bool,
    /// Stop the nodes before the instance.
    pub breakpoint: bool,
    /// Per-micro-step settings, by micro-step name.
    pub microsteps: &'a BTreeMap<String, MicroSettings>,
}

/// No micro-step settings.
static NO_MICROSTEPS: BTreeMap<String, MicroSettings> = BTreeMap::new();

impl InstanceSettings<'static> {
    /// The settings of reboot and power operations: one try, no timeout, raisable.
    pub fn plain() -> Self {
        InstanceSettings {
            retries: 0,
            timeout: 0.0,
            raisable: true,
            breakpoint: false,
            microsteps: &NO_MICROSTEPS,
        }
    }
}

impl<'a> From<&'a MacroInstance> for InstanceSettings<'a> {
    fn from(inst: &'a MacroInstance) -> Self {
        InstanceSettings {
            retries: inst.retries,
            timeout: inst.timeout,
            raisable: inst.raisable,
            breakpoint: inst.breakpoint,
            microsteps: &inst.microsteps,
        }
    }
}

/// A micro-step with its custom operations, or a custom operation: the task name and the step.
pub struct Planned {
    name: String,
    step: Step,
    custom: Option<(u32, f64)>,
}

/// The micro-steps of an instance with their custom operations: the admin's (the instance's `microsteps` in the
/// cluster file) and the user's (`ops`, by `instance` name or by `group`, the slot or `Reboot`/`Power`), merged
/// by [`CustomMicro::with_user`], inserted around or instead of each micro-step.
///
/// [`CustomMicro::with_user`]: crate::engine::custom::CustomMicro::with_user
pub fn with_custom_ops(
    ops: &CustomOps,
    inst: InstanceSettings<'_>,
    group: &str,
    instance: &str,
    steps: Vec<Step>,
) -> Vec<Planned> {
    let mut out = Vec::new();
    for step in steps {
        let micro = step.name();
        let user = custom::for_micro(ops, group, instance, micro);
        let merged = match inst.microsteps.get(micro).map(|m| &m.custom) {
            Some(admin) => Some(admin.with_user(user)),
            None => user.cloned(),
        }
        .filter(|c| !c.is_empty());
        let custom = |op: &CustomOp| Planned {
            name: format!("{micro}-{}", op.name),
            custom: Some((op.retries, op.timeout)),
            step: Step::Custom(Box::new(op.clone())),
        };
        let plain = |step| Planned {
            name: micro.to_string(),
            step,
            custom: None,
        };
        match &merged {
            None => out.push(plain(step)),
            Some(c) => {
                out.extend(c.pre.iter().map(custom));
                match &c.substitute {
                    Some(sub) => out.extend(sub.iter().map(custom)),
                    None => out.push(plain(step)),
                }
                out.extend(c.post.iter().map(custom));
            }
        }
    }
    out
}

/// Where the macro-step being built sits in a workflow.
pub struct MacroPlace<'a> {
    /// `Deploy`, `Reboot` or `Power`: the operation prefix of output lines.
    pub operation: &'static str,
    /// The statistics slot the instance counts in.
    pub slot: Slot,
    /// The instance name (`SetDeploymentEnvUntrusted`, `RebootSimple`).
    pub name: &'a str,
}

/// The task of one macro-step instance over its planned micro-steps; `breakpoint` is the requested
/// `Macro[:micro]`, if any.
pub fn macro_task(
    place: MacroPlace<'_>,
    inst: InstanceSettings<'_>,
    steps: Vec<Planned>,
    job: &Arc<Job>,
    breakpoint: Option<&str>,
) -> Arc<dyn Task> {
    let macro_name: Arc<str> = Arc::from(place.name);
    let (bp_macro, bp_micro) = match breakpoint.map(|b| b.split_once(':').unwrap_or((b, ""))) {
        Some((m, u)) => (m, u),
        None => ("", ""),
    };
    let on_this_macro = bp_macro == place.name;
    let micro = steps
        .into_iter()
        .map(|Planned { name, step, custom }| {
            let settings = match custom {
                Some((retries, timeout)) => MicroSettings {
                    retries,
                    timeout,
                    raisable: true,
                    ..MicroSettings::default()
                },
                None => inst
                    .microsteps
                    .get(step.name())
                    .cloned()
                    .unwrap_or(MicroSettings {
                        raisable: true,
                        ..MicroSettings::default()
                    }),
            };
            let spec = TaskSpec {
                breakpoint: settings.breakpoint
                    || (custom.is_none() && on_this_macro && bp_micro == step.name()),
                name: Arc::from(name),
                retries: settings.retries,
                timeout: settings.timeout,
                raisable: settings.raisable,
            };
            let task: Arc<dyn Task> = Arc::new(MicroTask {
                spec,
                macro_name: macro_name.clone(),
                step,
                job: job.clone(),
            });
            vec![task]
        })
        .collect();
    let spec = TaskSpec {
        name: macro_name,
        retries: inst.retries,
        timeout: inst.timeout,
        raisable: inst.raisable,
        breakpoint: inst.breakpoint || (on_this_macro && bp_micro.is_empty()),
    };
    Arc::new(MacroTask {
        spec,
        operation: place.operation,
        slot: place.slot,
        micro,
    })
}

/// A requested breakpoint must name a macro-step (and micro-step) the plan uses (error 4).
pub fn check_breakpoint(
    used: &[(String, Vec<&'static str>)],
    breakpoint: Option<&str>,
) -> Result<(), RequestError> {
    let Some(bp) = breakpoint else { return Ok(()) };
    let (m, u) = bp.split_once(':').unwrap_or((bp, ""));
    let found = used
        .iter()
        .any(|(name, micros)| name == m && (u.is_empty() || micros.contains(&u)));
    if found {
        Ok(())
    } else {
        Err(RequestError::new(
            ApiError::InvalidOption,
            format!("The breakpoint {bp} names a step that is not used"),
        ))
    }
}

//! Failure injection rules (the `failures` section of `simulation.conf`) and their validation.
//!
//! Each rule picks the nodes it lists, plus each node with its `probability`, plus exactly `count`
//! distinct nodes; [`crate::cluster::FailurePlan`] resolves them against the node list.

use crate::range::{Check, in_range};
use hal::PowerLevel;
use serde::Deserialize;

/// `failures`: failure injection. Each rule picks the nodes it lists (FQDN or short name), plus each
/// node with `probability`, plus exactly `count` distinct nodes, all drawn from the seed.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailureParams {
    /// The node never comes back from its first reboot (or kexec).
    pub never_boot: Rule,
    /// The node dies once `at_fraction` of its (failure-free) broadcast time has elapsed.
    pub die_during_broadcast: DieRule,
    /// The power commands of `levels` exit non-zero on the node.
    pub power_command_fails: PowerRule,
    /// The node hangs forever in operations named `step` (`hal::Operation::name()`, or `broadcast`).
    pub hang: HangRule,
    /// Partitioning, format, swap and image writes fail with a disk error on the node.
    pub disk_write_error: Rule,
}

/// Which nodes a rule applies to.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rule {
    /// Each node is picked with this probability.
    pub probability: f64,
    /// Exactly this many distinct nodes are picked.
    pub count: usize,
    /// These nodes are picked.
    pub nodes: Vec<String>,
}

/// `failures.die_during_broadcast`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DieRule {
    /// See [`Rule::probability`].
    pub probability: f64,
    /// See [`Rule::count`].
    pub count: usize,
    /// See [`Rule::nodes`].
    pub nodes: Vec<String>,
    /// Fraction of the node's failure-free broadcast time at which it dies.
    pub at_fraction: f64,
}

/// `failures.power_command_fails`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PowerRule {
    /// See [`Rule::probability`].
    pub probability: f64,
    /// See [`Rule::count`].
    pub count: usize,
    /// See [`Rule::nodes`].
    pub nodes: Vec<String>,
    /// Levels whose commands fail (`soft`, `hard`, `very_hard`).
    pub levels: Vec<PowerLevel>,
}

/// `failures.hang`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HangRule {
    /// Operation name the nodes hang in; `null` disables the rule.
    pub step: Option<String>,
    /// See [`Rule::probability`].
    pub probability: f64,
    /// See [`Rule::count`].
    pub count: usize,
    /// See [`Rule::nodes`].
    pub nodes: Vec<String>,
}

/// Step names a hang can name: every `hal::Operation::name()` and `broadcast`.
pub const HANG_STEPS: [&str; 17] = [
    "send_key",
    "run_script",
    "format",
    "make_swap",
    "mount",
    "umount",
    "send_file",
    "install_archive",
    "write_image",
    "check_kernel_files",
    "kexec",
    "reboot_from_deploy_env",
    "sync",
    "check_root_device",
    "exec",
    "dummy",
    "broadcast",
];

impl Default for DieRule {
    fn default() -> Self {
        DieRule {
            probability: 0.0,
            count: 0,
            nodes: Vec::new(),
            at_fraction: 0.5,
        }
    }
}

impl Default for PowerRule {
    fn default() -> Self {
        PowerRule {
            probability: 0.0,
            count: 0,
            nodes: Vec::new(),
            levels: vec![PowerLevel::Soft],
        }
    }
}

/// The three ways a rule selects nodes, borrowed from any rule.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pick<'a> {
    /// Dotted key of the rule, e.g. `failures.never_boot`.
    pub key: &'static str,
    /// Each node with this probability.
    pub probability: f64,
    /// Exactly this many distinct nodes.
    pub count: usize,
    /// These nodes by name.
    pub nodes: &'a [String],
}

impl FailureParams {
    /// Every rule's selection, in a fixed order.
    pub(crate) fn picks(&self) -> [Pick<'_>; 5] {
        let (n, d, p, h, w) = (
            &self.never_boot,
            &self.die_during_broadcast,
            &self.power_command_fails,
            &self.hang,
            &self.disk_write_error,
        );
        [
            Pick {
                key: "failures.never_boot",
                probability: n.probability,
                count: n.count,
                nodes: &n.nodes,
            },
            Pick {
                key: "failures.die_during_broadcast",
                probability: d.probability,
                count: d.count,
                nodes: &d.nodes,
            },
            Pick {
                key: "failures.power_command_fails",
                probability: p.probability,
                count: p.count,
                nodes: &p.nodes,
            },
            Pick {
                key: "failures.hang",
                probability: h.probability,
                count: h.count,
                nodes: &h.nodes,
            },
            Pick {
                key: "failures.disk_write_error",
                probability: w.probability,
                count: w.count,
                nodes: &w.nodes,
            },
        ]
    }

    /// Checks probabilities, the death fraction and the hang step's name.
    pub(crate) fn validate(&self) -> Check {
        for pick in self.picks() {
            in_range(
                &format!("{}.probability", pick.key),
                pick.probability,
                0.0,
                false,
                1.0,
            )?;
        }
        in_range(
            "failures.die_during_broadcast.at_fraction",
            self.die_during_broadcast.at_fraction,
            0.0,
            false,
            1.0,
        )?;
        if let Some(step) = &self.hang.step
            && !HANG_STEPS.contains(&step.as_str())
        {
            return Err((
                "failures.hang.step".to_string(),
                format!(
                    "unknown step `{step}` (expected one of {})",
                    HANG_STEPS.join(", ")
                ),
            ));
        }
        Ok(())
    }
}

//! What Kadeploy's default automata must make of each injected fault, worked out from the workflow
//! (spec §5.3) independently of the engine: the first micro-step the fault breaks, and the reason the
//! node must carry, or OK when the workflow never meets the fault or routes around it.
//!
//! The automata is the shipped one: `SetDeploymentEnvUntrusted` (reboot with soft → hard → very_hard
//! escalation, then partitioning and formats), `BroadcastEnvKascade`, then `BootNewEnvKexec` with
//! `BootNewEnvClassical` as its fallback.

use crate::cluster::{FailurePlan, NodeFaults};
use hal::PowerLevel;
use kadeploy::config::Automata;
use kadeploy::engine::NodeStatus;

/// The end a node must reach.
#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    /// Any of these ends (when the timing of other nodes decides between them).
    Either(Vec<Expected>),
    /// The node ends OK (no fault, or one the workflow does not meet or survives).
    Ok,
    /// The node ends KO at this macro- and micro-step, with an error containing one of `reasons`.
    Ko {
        /// Macro-step instance.
        macro_step: &'static str,
        /// Micro-step.
        micro_step: &'static str,
        /// Accepted error texts (substrings).
        reasons: Vec<String>,
    },
}

const SET_DEPLOYMENT: &str = "SetDeploymentEnvUntrusted";
const BROADCAST: &str = "BroadcastEnvKascade";
const BOOT_CLASSICAL: &str = "BootNewEnvClassical";

/// Where a node hung in `step` fails: `(order in the workflow, macro-step, micro-step)`, or `None`
/// when the default workflow never runs the operation or survives it.
///
/// - `send_key`: no key is sent (kasim's requests carry none).
/// - `send_file`, `install_archive`, `exec`, `dummy`, `check_root_device`: no micro-step of these
///   instances runs them (no kexec into the deploy kernel, no archives, no custom operations).
/// - `write_image`: the broadcast decompresses (`localops/broadcastenv/decompress`), so
///   `decompress_environment` is left out.
/// - `kexec`: `BootNewEnvKexec` fails and `BootNewEnvClassical` reboots the node instead.
/// - `reboot_from_deploy_env`: only the fallback runs it, and it never runs for these nodes.
/// - `umount`: both `BootNewEnv` instances unmount first, so the node fails in the fallback.
fn hang_site(step: &str) -> Option<(u32, &'static str, &'static str)> {
    Some(match step {
        "run_script" => (4, SET_DEPLOYMENT, "create_partition_table"),
        "format" => (5, SET_DEPLOYMENT, "format_deploy_part"),
        "mount" => (6, SET_DEPLOYMENT, "mount_deploy_part"),
        "make_swap" => (8, SET_DEPLOYMENT, "format_swap_part"),
        "broadcast" => (9, BROADCAST, "send_environment"),
        "check_kernel_files" => (10, BROADCAST, "check_kernel_files"),
        "sync" => (11, BROADCAST, "sync"),
        "umount" => (12, BOOT_CLASSICAL, "umount_deploy_part"),
        _ => return None,
    })
}

/// The settings the expectations depend on.
#[derive(Clone, Copy, Debug)]
pub struct Model {
    /// Seconds after which a hung command fails.
    pub command_timeout: f64,
    /// Seconds after which the fault-tolerant chain drops a stalled receiver.
    pub detect_timeout: f64,
    /// Retries of `SetDeploymentEnvUntrusted`.
    pub set_deployment_retries: u32,
    /// The first `SetDeploymentEnvUntrusted` try may reach its timeout (other nodes never boot, so its
    /// `wait_reboot` lasts the whole reboot timeout, and others hang in a later micro-step): then
    /// every node of that try is retried, with a hard reboot.
    pub first_try_may_time_out: bool,
}

impl Expected {
    /// True when a node ending with `status` meets the expectation.
    pub fn accepts(&self, status: &NodeStatus) -> bool {
        match (self, status) {
            (Expected::Either(list), _) => list.iter().any(|e| e.accepts(status)),
            (Expected::Ok, NodeStatus::Ok) => true,
            (
                Expected::Ko {
                    macro_step,
                    micro_step,
                    reasons,
                },
                NodeStatus::Ko(f),
            ) => {
                *f.macro_step == **macro_step
                    && *f.micro_step == **micro_step
                    && reasons.iter().any(|r| f.error.contains(r.as_str()))
            }
            _ => false,
        }
    }
}

/// What must become of a node carrying `faults` under `model`.
pub fn expect(faults: &NodeFaults, model: &Model) -> Expected {
    let (command_timeout, detect_timeout) = (model.command_timeout, model.detect_timeout);
    let mut first: Option<(u32, &'static str, &'static str, Vec<String>)> = None;
    // The earliest fault decides; faults meeting the node in the same micro-step may each give the reason.
    let mut consider =
        |order: u32, m: &'static str, u: &'static str, reasons: Vec<String>| match &mut first {
            Some(f) if f.0 == order => f.3.extend(reasons),
            Some(f) if f.0 < order => {}
            _ => first = Some((order, m, u, reasons)),
        };
    let all_levels = [PowerLevel::Soft, PowerLevel::Hard, PowerLevel::VeryHard];
    if all_levels.iter().all(|l| faults.power_fails.contains(l)) {
        // Escalation tries every level; the last one's failure is reported.
        consider(
            1,
            SET_DEPLOYMENT,
            "reboot",
            vec!["very_hard_reboot command failed".into()],
        );
    }
    if faults.never_boot {
        consider(
            2,
            SET_DEPLOYMENT,
            "wait_reboot",
            vec!["Unreachable after the reboot".into()],
        );
    }
    if faults.disk_write_error {
        // The partitioning script is the first write to the disk.
        consider(
            4,
            SET_DEPLOYMENT,
            "create_partition_table",
            vec!["write error on /dev/sda: Input/output error".into()],
        );
    }
    if let Some(step) = &faults.hang_step
        && let Some((order, m, u)) = hang_site(step)
    {
        let reason = if step == "broadcast" {
            format!("No progress for {detect_timeout} s")
        } else {
            format!("command timed out after {command_timeout} s")
        };
        consider(order, m, u, vec![reason]);
    }
    if faults.die_at_fraction.is_some() {
        // The first try sees the death; the retries find the node down.
        consider(
            9,
            BROADCAST,
            "send_environment",
            vec![
                "Node died during the broadcast".into(),
                "Connection refused".into(),
            ],
        );
    }
    // A retried SetDeploymentEnv reboots with `hard` instead of `soft` (spec §5.5): a node that failed
    // after its first reboot and whose hard and very_hard commands fail ends KO in that reboot.
    let retried = matches!(&first, Some((order, m, ..)) if *order > 1 && *m == SET_DEPLOYMENT);
    let upper_levels_fail = [PowerLevel::Hard, PowerLevel::VeryHard]
        .iter()
        .all(|l| faults.power_fails.contains(l));
    let reboot_ko = Expected::Ko {
        macro_step: SET_DEPLOYMENT,
        micro_step: "reboot",
        reasons: vec!["very_hard_reboot command failed".into()],
    };
    if upper_levels_fail && model.set_deployment_retries > 0 && retried {
        return reboot_ko;
    }
    let expected = match first {
        None => Expected::Ok,
        Some((_, macro_step, micro_step, reasons)) => Expected::Ko {
            macro_step,
            micro_step,
            reasons,
        },
    };
    let may_be_retried = model.first_try_may_time_out && model.set_deployment_retries > 0;
    if upper_levels_fail && may_be_retried {
        Expected::Either(vec![expected, reboot_ko])
    } else {
        expected
    }
}

/// Whether the first `SetDeploymentEnvUntrusted` try of a scenario may time out: some node never boots
/// (the try's `wait_reboot` lasts `reboot_timeout`), and some node hangs in one of its micro-steps
/// (`command_timeout` more), which with the other micro-steps' minute may pass `instance_timeout`.
pub fn first_try_may_time_out(
    plan: &FailurePlan,
    nodes: usize,
    reboot_timeout: f64,
    command_timeout: f64,
    instance_timeout: f64,
) -> bool {
    let faults: Vec<&NodeFaults> = (0..nodes).map(|i| plan.node(i)).collect();
    let never_boot = faults.iter().any(|f| f.never_boot);
    let hangs_early = faults.iter().any(|f| {
        f.hang_step
            .as_deref()
            .and_then(hang_site)
            .is_some_and(|(_, m, _)| m == SET_DEPLOYMENT)
    });
    // Power commands, boots of the healthy nodes and the other micro-steps take under a minute.
    const OTHER_STEPS: f64 = 60.0;
    never_boot && hangs_early && reboot_timeout + command_timeout + OTHER_STEPS > instance_timeout
}

/// Checks that `automata` is the one this oracle models; the message says what differs.
pub fn check_automata(automata: &Automata) -> Result<(), String> {
    fn kinds(list: &[kadeploy::config::MacroInstance]) -> Vec<&str> {
        list.iter().map(|i| i.kind.name()).collect()
    }
    let got = (
        kinds(&automata.set_deployment_env),
        kinds(&automata.broadcast_env),
        kinds(&automata.boot_new_env),
    );
    let want = (
        vec!["Untrusted"],
        vec!["Kascade"],
        vec!["Kexec", "Classical"],
    );
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "the campaign models the automata Untrusted / Kascade / Kexec+Classical, not {got:?}"
        ))
    }
}

/// The longest a deployment may last under `automata`: every instance's tries at their timeout.
/// `None` when an instance has no timeout.
pub fn time_bound(automata: &Automata) -> Option<f64> {
    let mut total = 0.0;
    for inst in automata
        .set_deployment_env
        .iter()
        .chain(&automata.broadcast_env)
        .chain(&automata.boot_new_env)
    {
        if inst.timeout <= 0.0 {
            return None;
        }
        total += f64::from(inst.retries + 1) * inst.timeout;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: Model = Model {
        command_timeout: 120.0,
        detect_timeout: 3.0,
        set_deployment_retries: 2,
        first_try_may_time_out: false,
    };

    fn at(e: &Expected) -> (&str, &str) {
        match e {
            Expected::Ko {
                macro_step,
                micro_step,
                ..
            } => (macro_step, micro_step),
            Expected::Ok => ("OK", ""),
            Expected::Either(_) => ("either", ""),
        }
    }

    #[test]
    fn the_earliest_fault_decides_and_tolerated_ones_end_ok() {
        let mut f = NodeFaults {
            die_at_fraction: Some(0.5),
            ..Default::default()
        };
        assert_eq!(at(&expect(&f, &MODEL)), (BROADCAST, "send_environment"));
        f.never_boot = true;
        assert_eq!(at(&expect(&f, &MODEL)), (SET_DEPLOYMENT, "wait_reboot"));
        f.power_fails = vec![PowerLevel::Soft, PowerLevel::Hard, PowerLevel::VeryHard];
        assert_eq!(at(&expect(&f, &MODEL)), (SET_DEPLOYMENT, "reboot"));
        let soft_only = NodeFaults {
            power_fails: vec![PowerLevel::Soft],
            hang_step: Some("kexec".into()),
            ..Default::default()
        };
        assert_eq!(expect(&soft_only, &MODEL), Expected::Ok);
    }

    #[test]
    fn a_retry_reboots_hard_so_failing_upper_levels_fail_the_retried_node_in_its_reboot() {
        let mut f = NodeFaults {
            never_boot: true,
            power_fails: vec![PowerLevel::Hard, PowerLevel::VeryHard],
            ..Default::default()
        };
        assert_eq!(at(&expect(&f, &MODEL)), (SET_DEPLOYMENT, "reboot"));
        f.power_fails = vec![PowerLevel::Hard];
        assert_eq!(at(&expect(&f, &MODEL)), (SET_DEPLOYMENT, "wait_reboot"));
        let once = Model {
            set_deployment_retries: 0,
            ..MODEL
        };
        f.power_fails = vec![PowerLevel::Hard, PowerLevel::VeryHard];
        assert_eq!(at(&expect(&f, &once)), (SET_DEPLOYMENT, "wait_reboot"));
    }

    #[test]
    fn faults_in_the_same_micro_step_accept_either_reason() {
        let f = NodeFaults {
            disk_write_error: true,
            hang_step: Some("run_script".into()),
            ..Default::default()
        };
        let Expected::Ko { reasons, .. } = expect(&f, &MODEL) else {
            panic!("a disk error is fatal")
        };
        assert_eq!(reasons.len(), 2, "{reasons:?}");
    }
}

//! The campaign's invariants, checked on one scenario's report: every healthy node ends OK, every
//! faulty node where the oracle says with its reason, and no macro-step nor the workflow outlives its
//! timeouts.

use super::oracle::{Model, expect};
use crate::cluster::FailurePlan;
use kadeploy::config::{Automata, MacroInstance};
use kadeploy::engine::{NodeStatus, Report};

/// Node counts of one scenario, and what broke an invariant.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    /// Nodes without fault.
    pub healthy: usize,
    /// Healthy nodes that ended OK.
    pub healthy_ok: usize,
    /// Nodes with at least one fault.
    pub faulty: usize,
    /// Faulty nodes that ended KO at the expected step with an expected reason.
    pub faulty_ko_as_expected: usize,
    /// Faulty nodes whose faults the workflow never meets or survives, and that ended OK.
    pub faulty_ok_as_expected: usize,
    /// One line per broken invariant.
    pub violations: Vec<String>,
    /// Virtual seconds the workflow ran.
    pub seconds: f64,
}

impl Verdict {
    /// The verdict with the workflow's duration.
    pub fn with_seconds(mut self, seconds: f64) -> Self {
        self.seconds = seconds;
        self
    }
}

/// Timing slack for floating-point sums of virtual time.
const EPSILON: f64 = 1e-6;

/// Checks `report` against what `plan` injected.
pub fn check(
    report: &Report,
    plan: &FailurePlan,
    names: &[String],
    automata: &Automata,
    model: &Model,
) -> Verdict {
    let mut v = Verdict::default();
    if report.nodes.len() != names.len() {
        v.violations.push(format!(
            "{} nodes deployed, {} in the report",
            names.len(),
            report.nodes.len()
        ));
    }
    for (node, status) in &report.nodes {
        let i = node.0 as usize;
        let name = names.get(i).map_or("?", String::as_str);
        let faults = plan.node(i);
        let expected = expect(faults, model);
        if faults.is_healthy() {
            v.healthy += 1;
        } else {
            v.faulty += 1;
        }
        if !expected.accepts(status) {
            v.violations.push(format!(
                "{name} ({faults:?}): expected {expected:?}, got {status:?}"
            ));
        } else if !matches!(status, NodeStatus::Ok) {
            v.faulty_ko_as_expected += 1;
        } else if faults.is_healthy() {
            v.healthy_ok += 1;
        } else {
            v.faulty_ok_as_expected += 1;
        }
    }
    let slots: [(&str, &[MacroInstance]); 3] = [
        ("SetDeploymentEnv", &automata.set_deployment_env),
        ("BroadcastEnv", &automata.broadcast_env),
        ("BootNewEnv", &automata.boot_new_env),
    ];
    for (name, seconds) in &report.macro_durations {
        let inst = slots.iter().find_map(|(slot, list)| {
            let kind = name.strip_prefix(slot)?;
            list.iter().find(|i| i.kind.name() == kind)
        });
        let Some(inst) = inst else {
            v.violations
                .push(format!("macro-step {name} is not in the automata"));
            continue;
        };
        let bound = f64::from(inst.retries + 1) * inst.timeout;
        if inst.timeout > 0.0 && *seconds > bound + EPSILON {
            v.violations.push(format!(
                "{name} ran {seconds:.3} s, more than its {} tries of {} s",
                inst.retries + 1,
                inst.timeout
            ));
        }
    }
    if let Some(bound) = super::oracle::time_bound(automata)
        && report.seconds > bound + EPSILON
    {
        v.violations.push(format!(
            "the workflow ran {:.3} s, more than its timeouts allow ({bound} s)",
            report.seconds
        ));
    }
    if report.aborted {
        v.violations.push("the workflow was aborted".into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kasim::setup;
    use crate::params::FailureParams;
    use hal::{ErrorKind, NodeId};
    use kadeploy::engine::Failure;

    fn ko(macro_step: &str, micro_step: &str, error: &str) -> NodeStatus {
        NodeStatus::Ko(Failure {
            macro_step: macro_step.into(),
            micro_step: micro_step.into(),
            error: error.into(),
            kind: ErrorKind::Unreachable,
        })
    }

    /// Checks `statuses` on the first nodes of the sample, node 1 never booting.
    fn verdict(statuses: Vec<NodeStatus>, seconds: f64) -> Verdict {
        let args = crate::kasim::Cli::from_args(&["kasim", "deploy", "--nodes", "3"]);
        let crate::kasim::Command::Deploy(args) = args.command else {
            unreachable!("deploy arguments")
        };
        let s = setup::load(&args).expect("the sample loads");
        let failures = FailureParams {
            never_boot: crate::params::Rule {
                nodes: vec![s.cluster.nodes[1].name.clone()],
                ..Default::default()
            },
            ..Default::default()
        };
        let plan = FailurePlan::resolve(&failures, 1, &s.cluster.nodes).expect("plan");
        let names: Vec<String> = s.cluster.nodes.iter().map(|n| n.name.clone()).collect();
        let report = Report {
            nodes: statuses
                .into_iter()
                .enumerate()
                .map(|(i, st)| (NodeId(i as u32), st))
                .collect(),
            logs: Vec::new(),
            seconds,
            macro_durations: vec![("SetDeploymentEnvUntrusted".into(), seconds.min(1200.0))],
            aborted: false,
        };
        let model = Model {
            command_timeout: 120.0,
            detect_timeout: 3.0,
            set_deployment_retries: 2,
            first_try_may_time_out: false,
        };
        check(&report, &plan, &names, &s.cluster.automata, &model)
    }

    const UNREACHABLE: (&str, &str, &str) = (
        "SetDeploymentEnvUntrusted",
        "wait_reboot",
        "Unreachable after the reboot",
    );

    #[test]
    fn the_expected_outcomes_pass() {
        let (m, u, e) = UNREACHABLE;
        let v = verdict(vec![NodeStatus::Ok, ko(m, u, e), NodeStatus::Ok], 900.0);
        assert!(v.violations.is_empty(), "{:?}", v.violations);
        assert_eq!((v.healthy_ok, v.faulty_ko_as_expected), (2, 1));
    }

    #[test]
    fn a_healthy_node_ko_a_faulty_node_ok_or_ko_elsewhere_and_an_overlong_workflow_are_caught() {
        let (m, u, e) = UNREACHABLE;
        let v = verdict(vec![ko(m, u, e), NodeStatus::Ok, NodeStatus::Ok], 900.0);
        assert_eq!(v.violations.len(), 2, "{:?}", v.violations);
        let v = verdict(
            vec![NodeStatus::Ok, ko(m, "reboot", e), NodeStatus::Ok],
            900.0,
        );
        assert_eq!(
            v.violations.len(),
            1,
            "wrong micro-step: {:?}",
            v.violations
        );
        let v = verdict(
            vec![
                NodeStatus::Ok,
                ko(m, u, "Connection refused"),
                NodeStatus::Ok,
            ],
            900.0,
        );
        assert_eq!(v.violations.len(), 1, "wrong reason: {:?}", v.violations);
        let v = verdict(vec![NodeStatus::Ok, ko(m, u, e), NodeStatus::Ok], 5000.0);
        assert_eq!(v.violations.len(), 1, "too long: {:?}", v.violations);
    }
}

//! Property tests over random automata (1–3 alternatives per slot, retries 0–2, timeouts, raisable, some
//! micro-step retries and timeouts) and random per-node faults (failures in random operations, hangs, nodes that
//! never boot, slow boots): every node ends once in ok/ko/brk, no HAL call reaches a node after it is done, no
//! instance is tried more than retries+1 times on a node, deployed nodes run their environment, and a run whose
//! instances all have timeouts ends within their sum.

use super::fake::{Env, Event, Op};
use super::run::{Done, Run, performed};
use super::scenario::{Boot, Broadcast, InstanceExt, Scenario, SetEnv, id, inst};
use hal::{BootProfile, NodeId, Operation};
use kadeploy::config::{MacroInstance, MacroKind};
use kadeploy::engine::NodeStatus;
use proptest::prelude::*;
use proptest::sample::subsequence;
use std::collections::BTreeMap;

const SLOTS: [&str; 3] = ["SetDeploymentEnv", "BroadcastEnv", "BootNewEnv"];
const KINDS: [&[MacroKind]; 3] = [
    &[
        MacroKind::SetDeploymentEnv(SetEnv::Untrusted),
        MacroKind::SetDeploymentEnv(SetEnv::Kexec),
        MacroKind::SetDeploymentEnv(SetEnv::Prod),
    ],
    &[
        MacroKind::BroadcastEnv(Broadcast::Chain),
        MacroKind::BroadcastEnv(Broadcast::Tree),
        MacroKind::BroadcastEnv(Broadcast::Kascade),
    ],
    &[
        MacroKind::BootNewEnv(Boot::Kexec),
        MacroKind::BootNewEnv(Boot::Classical),
        MacroKind::BootNewEnv(Boot::HardReboot),
    ],
];
/// Operations of a deployment a fault can hit.
const OPS: &[&str] = &[
    "set_profile",
    "reboot",
    "send_file",
    "sync",
    "kexec",
    "check_root_device",
    "run_script",
    "format",
    "mount",
    "make_swap",
    "broadcast",
    "check_kernel_files",
    "umount",
    "reboot_from_deploy_env",
    "probe",
];

#[derive(Clone, Debug)]
enum Fault {
    Fail(&'static str, Option<u32>),
    Hang(&'static str),
    NeverBoots,
    SlowBoot(f64),
}

#[derive(Clone, Debug)]
struct Case {
    nodes: usize,
    slots: [Vec<MacroInstance>; 3],
    faults: Vec<(u32, Fault)>,
    breakpoint: Option<String>,
    all_timeouts: bool,
}

impl Case {
    fn instance_name(&self, slot: usize, alt: usize) -> String {
        format!("{}{}", SLOTS[slot], self.slots[slot][alt].kind)
    }

    fn scenario(&self) -> Scenario {
        let [set_env, broadcast, boot] = self.slots.clone();
        let breakpoint = self.breakpoint.clone();
        let limit = if self.all_timeouts {
            self.time_bound() + 1.0
        } else {
            86_400.0
        };
        let mut scenario = Scenario::new(self.nodes)
            .automata(set_env, broadcast, boot)
            .time_limit(limit)
            .request(|r| {
                r.ssh_key = Some("ssh-ed25519 AAAA".into());
                r.breakpoint = breakpoint;
            });
        for (n, fault) in &self.faults {
            scenario = match *fault {
                Fault::Fail(op, Some(times)) => scenario.fail(*n, op, times),
                Fault::Fail(op, None) => scenario.fail_always(*n, op),
                Fault::Hang(op) => scenario.hang(*n, op),
                Fault::NeverBoots => scenario.never_boots(*n),
                Fault::SlowBoot(secs) => scenario.boot_secs(*n, secs),
            };
        }
        scenario
    }

    /// The longest a node can take: every try of every alternative up to its timeout.
    fn time_bound(&self) -> f64 {
        self.slots
            .iter()
            .flatten()
            .map(|i| f64::from(i.retries + 1) * i.timeout)
            .sum()
    }
}

/// Micro-steps that may get their own retries and timeout: not the first of any implementation, whose calls
/// `tries` counts as one per run.
const TUNABLE: &[&str] = &[
    "reboot",
    "wait_reboot",
    "format_deploy_part",
    "mount_deploy_part",
    "sync",
    "kexec",
    "check_kernel_files",
    "send_key",
];

fn instance(kind: MacroKind, all_timeouts: bool) -> impl Strategy<Value = MacroInstance> {
    let timeout = if all_timeouts {
        (5u32..150).prop_map(Some).boxed()
    } else {
        prop::option::weighted(0.3, 5u32..150).boxed()
    };
    let micro =
        prop::option::weighted(0.3, (proptest::sample::select(TUNABLE), 0u32..=2, 0u32..30));
    (0u32..=2, timeout, any::<bool>(), micro).prop_map(
        move |(retries, timeout, raisable, micro)| {
            let instance = inst(kind)
                .retries(retries)
                .timeout(timeout.map_or(0.0, |t| f64::from(t) * 10.0))
                .raisable(raisable);
            match micro {
                Some((name, retries, timeout)) => {
                    instance.micro(name, retries, f64::from(timeout) * 10.0)
                }
                None => instance,
            }
        },
    )
}

fn slot(
    kinds: &'static [MacroKind],
    all_timeouts: bool,
) -> impl Strategy<Value = Vec<MacroInstance>> {
    subsequence(kinds.to_vec(), 1..=kinds.len())
        .prop_shuffle()
        .prop_flat_map(move |kinds| {
            kinds
                .into_iter()
                .map(|k| instance(k, all_timeouts))
                .collect::<Vec<_>>()
        })
}

fn fault(all_timeouts: bool) -> impl Strategy<Value = Fault> {
    let op = proptest::sample::select(OPS);
    prop_oneof![
        3 => (op.clone(), 1u32..=3).prop_map(|(op, k)| Fault::Fail(op, Some(k))),
        1 => op.clone().prop_map(|op| Fault::Fail(op, None)),
        1 => op.prop_map(move |op| if all_timeouts { Fault::Hang(op) } else { Fault::Fail(op, None) }),
        1 => Just(Fault::NeverBoots),
        1 => (4u32..20).prop_map(|s| Fault::SlowBoot(f64::from(s) * 10.0)),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..=6, any::<bool>()).prop_flat_map(|(nodes, all_timeouts)| {
        let slots = (
            slot(KINDS[0], all_timeouts),
            slot(KINDS[1], all_timeouts),
            slot(KINDS[2], all_timeouts),
        );
        let faults = prop::collection::vec((1..=nodes as u32, fault(all_timeouts)), 0..=6);
        let breakpoint = prop::option::weighted(0.2, (0usize..3, 0usize..3));
        (slots, faults, breakpoint).prop_map(move |((a, b, c), faults, breakpoint)| {
            let mut case = Case {
                nodes,
                slots: [a, b, c],
                faults,
                breakpoint: None,
                all_timeouts,
            };
            case.breakpoint =
                breakpoint.map(|(s, alt)| case.instance_name(s, alt % case.slots[s].len()));
            case
        })
    })
}

/// The slot whose first micro-step made `call`, and the implementation kind it reveals (`None`: any of the slot).
fn first_call_of(call: &Op) -> Option<(usize, Option<&'static str>)> {
    match call {
        Op::Profile(BootProfile::DeployKernel { .. }) => Some((0, Some("Untrusted"))),
        Op::Node(Operation::SendFile { destination, .. })
            if destination.ends_with("deploy-vmlinuz") =>
        {
            Some((0, Some("Kexec")))
        }
        Op::Node(Operation::CheckRootDevice { .. }) => Some((0, Some("Prod"))),
        Op::Broadcast(hal::Strategy::Chain, _) => Some((1, Some("Chain"))),
        Op::Broadcast(hal::Strategy::Tree { .. }, _) => Some((1, Some("Tree"))),
        Op::Broadcast(hal::Strategy::FaultTolerantChain, _) => Some((1, Some("Kascade"))),
        Op::Profile(BootProfile::LocalDisk { .. }) => Some((2, None)),
        _ => None,
    }
}

/// Tries of each instance on each node: the runs announced by `Performing a Deploy[X] step`, matched in order with
/// the first calls of their slot.
fn tries(run: &Run) -> BTreeMap<(NodeId, String), u32> {
    let mut announced: [Vec<String>; 3] = Default::default();
    let mut first_calls: [Vec<(Option<&str>, Vec<NodeId>)>; 3] = Default::default();
    for event in &run.events {
        match event {
            Event::Line(line) => {
                if let Some(instance) = performed(&line.text) {
                    let slot = SLOTS
                        .iter()
                        .position(|s| instance.starts_with(s))
                        .expect("a deploy slot");
                    announced[slot].push(instance.to_string());
                }
            }
            Event::Call(call) => {
                if let Some((slot, kind)) = first_call_of(&call.op) {
                    first_calls[slot].push((kind, call.nodes.clone()));
                }
            }
            Event::Cancel => {}
        }
    }
    let mut tries = BTreeMap::new();
    for slot in 0..3 {
        assert_eq!(
            announced[slot].len(),
            first_calls[slot].len(),
            "each run of {} makes one first call",
            SLOTS[slot]
        );
        for (instance, (kind, nodes)) in announced[slot].iter().zip(&first_calls[slot]) {
            if let Some(kind) = kind {
                assert_eq!(
                    instance,
                    &format!("{}{kind}", SLOTS[slot]),
                    "runs and first calls out of step"
                );
            }
            for &node in nodes {
                *tries.entry((node, instance.clone())).or_insert(0) += 1;
            }
        }
    }
    tries
}

fn check(case: &Case, run: &Run) {
    let report = run.report();
    let done = run.done_events();

    for n in 1..=case.nodes as u32 {
        // Exactly one way out, and it is the reported one.
        let exits: Vec<_> = done.iter().filter(|(_, node, _)| *node == id(n)).collect();
        assert_eq!(
            exits.len(),
            1,
            "node-{n} left the workflow {} times",
            exits.len()
        );
        let (at, _, how) = *exits[0];
        let expected = match run.status(n) {
            NodeStatus::Ok => Done::Ok,
            NodeStatus::Ko(_) => Done::Ko,
            NodeStatus::Brk { .. } => Done::Brk,
        };
        assert_eq!(how, expected, "node-{n}");
        // Nothing touches a node once it is done.
        let late = run.events[at..]
            .iter()
            .find(|e| matches!(e, Event::Call(c) if c.nodes.contains(&id(n))));
        assert!(
            late.is_none(),
            "call on node-{n} after it was done: {late:?}"
        );
        // A deployed node runs its environment.
        if how == Done::Ok {
            assert_eq!(
                run.fake.env(id(n)),
                Some(Env::User),
                "node-{n} is OK but not in its environment"
            );
        }
    }

    for ((node, instance), count) in tries(run) {
        let (slot, alt) = (0..3)
            .flat_map(|s| (0..case.slots[s].len()).map(move |a| (s, a)))
            .find(|&(s, a)| case.instance_name(s, a) == instance)
            .expect("a configured instance");
        let retries = case.slots[slot][alt].retries;
        assert!(
            count <= retries + 1,
            "{instance} tried {count} times on node-{} with {retries} retries",
            node.0 + 1
        );
        let logged = report.logs[node.index()].retries[slot];
        assert!(
            logged + 1 >= count,
            "node-{}: {count} tries of {instance} but {logged} retries logged",
            node.0 + 1
        );
    }

    if case.all_timeouts {
        let bound = case.time_bound();
        assert!(
            report.seconds <= bound + 0.01,
            "ran {} s, bound {bound} s",
            report.seconds
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_automata_and_faults_keep_the_engines_invariants(case in case()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime");
        // Checked inside the runtime: the fake reads its nodes' state at the current virtual time.
        runtime.block_on(async {
            let run = case.scenario().run_deploy().await;
            check(&case, &run);
        });
    }
}

//! One scenario of the fault campaign: a cluster size, failure rules, a broadcast strategy and an image
//! size, all drawn from the campaign's seed and the scenario's index.

use crate::kasim::BroadcastArg;
use crate::params::{DieRule, FailureParams, HANG_STEPS, HangRule, PowerRule, Rule};
use crate::rng::Rng;
use hal::{NodeInfo, PowerLevel};
use serde::Serialize;

/// A kind of injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// `failures.never_boot`.
    NeverBoot,
    /// `failures.hang`.
    Hang,
    /// `failures.die_during_broadcast`.
    Die,
    /// `failures.power_command_fails`.
    Power,
    /// `failures.disk_write_error`.
    Disk,
}

/// Every fault kind, in a fixed order.
pub const FAULT_KINDS: [FaultKind; 5] = [
    FaultKind::NeverBoot,
    FaultKind::Hang,
    FaultKind::Die,
    FaultKind::Power,
    FaultKind::Disk,
];

impl FaultKind {
    /// The `failures` key of the kind.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::NeverBoot => "never_boot",
            FaultKind::Hang => "hang",
            FaultKind::Die => "die_during_broadcast",
            FaultKind::Power => "power_command_fails",
            FaultKind::Disk => "disk_write_error",
        }
    }
}

/// Largest scenario deployed by unicast: 8 copies of a 3 GB image take 204 s on a 1 GbE server link,
/// within the sample's 600 s broadcast timeout.
const UNICAST_MAX_NODES: usize = 8;

/// What one scenario deploys and injects.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Position in the campaign.
    pub index: usize,
    /// Seed of the simulated cluster (boot times, disk rates, probabilistic picks).
    pub seed: u64,
    /// Number of nodes deployed.
    pub nodes: usize,
    /// The fault kinds the scenario injects (empty: a healthy cluster).
    pub kinds: Vec<FaultKind>,
    /// The failure rules.
    pub failures: FailureParams,
    /// Broadcast strategy forced on the deployment (`None`: the automata's Kascade).
    pub broadcast: Option<BroadcastArg>,
    /// Arity when `broadcast` is a tree.
    pub tree_arity: u32,
    /// Compressed image size in bytes.
    pub image_size: f64,
}

/// Draws scenario `index` of the campaign seeded `seed`, on the first `n` of `nodes` (1 to all).
pub fn generate(seed: u64, index: usize, nodes: &[NodeInfo]) -> Scenario {
    let mut rng = Rng::for_entity(seed, "campaign", index as u64);
    let max = nodes.len().max(1);
    // Sizes are log-uniform (most scenarios are small, every size up to `max` occurs); one in 25 is full.
    let n = if index % 25 == 24 {
        max
    } else {
        let x = rng.uniform(0.0, (max as f64).ln()).exp().round() as usize;
        x.clamp(1, max)
    };
    let names: Vec<&str> = nodes[..n].iter().map(|x| x.name.as_str()).collect();
    let kinds = draw_kinds(&mut rng);
    let mut failures = FailureParams::default();
    let mut previous: Option<Rule> = None;
    for &kind in &kinds {
        // In combined scenarios, half of the rules reuse the previous rule's nodes: faults stack up.
        let rule = match &previous {
            Some(p) if rng.chance(0.5) => p.clone(),
            _ => draw_rule(&mut rng, &names),
        };
        previous = Some(rule.clone());
        match kind {
            FaultKind::NeverBoot => failures.never_boot = rule,
            FaultKind::Disk => failures.disk_write_error = rule,
            FaultKind::Hang => {
                failures.hang = HangRule {
                    step: Some(HANG_STEPS[rng.below(HANG_STEPS.len() as u64) as usize].into()),
                    probability: rule.probability,
                    count: rule.count,
                    nodes: rule.nodes,
                }
            }
            FaultKind::Die => {
                failures.die_during_broadcast = DieRule {
                    probability: rule.probability,
                    count: rule.count,
                    nodes: rule.nodes,
                    at_fraction: rng.uniform(0.05, 0.95),
                }
            }
            FaultKind::Power => {
                failures.power_command_fails = PowerRule {
                    probability: rule.probability,
                    count: rule.count,
                    nodes: rule.nodes,
                    levels: draw_levels(&mut rng),
                }
            }
        }
    }
    let stalls_broadcast =
        kinds.contains(&FaultKind::Die) || failures.hang.step.as_deref() == Some("broadcast");
    // Only the fault-tolerant chain keeps the other receivers of a broadcast with a dead or stalled node:
    // those scenarios keep the automata's Kascade, the others try every strategy.
    let broadcast = if stalls_broadcast {
        None
    } else {
        match rng.below(5) {
            0 => None,
            1 => Some(BroadcastArg::FtChain),
            2 => Some(BroadcastArg::Chain),
            3 => Some(BroadcastArg::Tree),
            // The server sends one copy per node: beyond a few nodes, the image no longer reaches them
            // within the broadcast's timeout, fault or no fault.
            _ if n <= UNICAST_MAX_NODES => Some(BroadcastArg::Unicast),
            _ => Some(BroadcastArg::Chain),
        }
    };
    Scenario {
        index,
        seed: rng.next_u64(),
        nodes: n,
        kinds,
        failures,
        broadcast,
        tree_arity: 2 + rng.below(3) as u32,
        image_size: rng.uniform(2e8, 3e9).round(),
    }
}

/// No fault (1 in 7), one kind (5 in 7), or 2 to 5 kinds combined (1 in 7).
fn draw_kinds(rng: &mut Rng) -> Vec<FaultKind> {
    match rng.below(7) {
        0 => Vec::new(),
        k @ 1..=5 => vec![FAULT_KINDS[k as usize - 1]],
        _ => {
            let mut kinds: Vec<FaultKind> = FAULT_KINDS.to_vec();
            let keep = 2 + rng.below(4) as usize;
            while kinds.len() > keep {
                kinds.remove(rng.below(kinds.len() as u64) as usize);
            }
            kinds
        }
    }
}

/// A rule picking nodes by count, by probability or by name.
fn draw_rule(rng: &mut Rng, names: &[&str]) -> Rule {
    let n = names.len();
    match rng.below(3) {
        0 => Rule {
            count: 1 + rng.below((n / 8).max(1) as u64) as usize,
            ..Rule::default()
        },
        1 => Rule {
            probability: rng.uniform(0.01, 0.2),
            ..Rule::default()
        },
        _ => {
            let k = 1 + rng.below(n.min(5) as u64) as usize;
            let mut picked: Vec<String> = Vec::with_capacity(k);
            while picked.len() < k {
                let name = names[rng.below(n as u64) as usize];
                // Short names half of the time: rules accept both.
                let name = if rng.chance(0.5) {
                    name.split('.').next().unwrap_or(name)
                } else {
                    name
                };
                if !picked
                    .iter()
                    .any(|p| p.split('.').next() == name.split('.').next())
                {
                    picked.push(name.to_string());
                }
            }
            Rule {
                nodes: picked,
                ..Rule::default()
            }
        }
    }
}

/// Power levels whose commands fail: all three in a third of the draws, else a random non-empty subset.
fn draw_levels(rng: &mut Rng) -> Vec<PowerLevel> {
    let all = [PowerLevel::Soft, PowerLevel::Hard, PowerLevel::VeryHard];
    if rng.chance(1.0 / 3.0) {
        return all.to_vec();
    }
    let mut levels: Vec<PowerLevel> = all.into_iter().filter(|_| rng.chance(0.5)).collect();
    if levels.is_empty() {
        levels.push(all[rng.below(3) as usize]);
    }
    levels
}

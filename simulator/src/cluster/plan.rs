//! The failure plan: the `failures` rules resolved against the node list, so that each node knows which
//! faults apply to it. The pick depends only on the seed, the number of nodes and the rule.

use super::faults::Pick;
use crate::params::{FailureParams, ParamsError};
use crate::rng::Rng;
use hal::{NodeInfo, PowerLevel};
use std::collections::BTreeMap;

/// The faults injected into one node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeFaults {
    /// The node never comes back from its first reboot.
    pub never_boot: bool,
    /// The node dies at this fraction of its failure-free broadcast time.
    pub die_at_fraction: Option<f64>,
    /// Power commands of these levels exit non-zero.
    pub power_fails: Vec<PowerLevel>,
    /// The node hangs forever in operations of this step.
    pub hang_step: Option<String>,
    /// Disk writes fail.
    pub disk_write_error: bool,
}

impl NodeFaults {
    /// True when nothing is injected into the node.
    pub fn is_healthy(&self) -> bool {
        *self == NodeFaults::default()
    }
}

/// Per node (indexed by `NodeId::index()`), the faults that apply. Only faulty nodes are stored, so a
/// million healthy nodes cost nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FailurePlan {
    nodes: BTreeMap<usize, NodeFaults>,
    len: usize,
}

impl FailurePlan {
    /// Resolves `failures` against `nodes` with `seed`. Names are FQDNs or unambiguous short names.
    pub fn resolve(
        failures: &FailureParams,
        seed: u64,
        nodes: &[NodeInfo],
    ) -> Result<Self, ParamsError> {
        let [never, die, power, hang, disk] = failures.picks();
        // Names are indexed only when a rule names nodes.
        let names = if [&never, &die, &power, &hang, &disk]
            .iter()
            .any(|p| !p.nodes.is_empty())
        {
            NameIndex::new(nodes)
        } else {
            NameIndex::unnamed(nodes.len())
        };
        let mut plan = FailurePlan {
            nodes: BTreeMap::new(),
            len: nodes.len(),
        };
        for i in select(never, seed, &names)? {
            plan.nodes.entry(i).or_default().never_boot = true;
        }
        for i in select(die, seed, &names)? {
            plan.nodes.entry(i).or_default().die_at_fraction =
                Some(failures.die_during_broadcast.at_fraction);
        }
        if !failures.power_command_fails.levels.is_empty() {
            for i in select(power, seed, &names)? {
                plan.nodes.entry(i).or_default().power_fails =
                    failures.power_command_fails.levels.clone();
            }
        }
        if let Some(step) = &failures.hang.step {
            for i in select(hang, seed, &names)? {
                plan.nodes.entry(i).or_default().hang_step = Some(step.clone());
            }
        }
        for i in select(disk, seed, &names)? {
            plan.nodes.entry(i).or_default().disk_write_error = true;
        }
        Ok(plan)
    }

    /// The faults of the node at `index` (none for an unknown index).
    pub fn node(&self, index: usize) -> &NodeFaults {
        static HEALTHY: NodeFaults = NodeFaults {
            never_boot: false,
            die_at_fraction: None,
            power_fails: Vec::new(),
            hang_step: None,
            disk_write_error: false,
        };
        self.nodes.get(&index).unwrap_or(&HEALTHY)
    }

    /// Indices of the nodes for which `f` holds, in order.
    pub fn nodes_where(&self, f: impl Fn(&NodeFaults) -> bool) -> Vec<usize> {
        (0..self.len).filter(|&i| f(self.node(i))).collect()
    }
}

/// Node names to indices: FQDNs, and short names mapped to every node that has them.
struct NameIndex<'a> {
    fqdn: BTreeMap<&'a str, usize>,
    short: BTreeMap<&'a str, Vec<usize>>,
    len: usize,
}

impl<'a> NameIndex<'a> {
    /// An index of `len` nodes that knows no names (no rule names nodes).
    fn unnamed(len: usize) -> Self {
        NameIndex {
            fqdn: BTreeMap::new(),
            short: BTreeMap::new(),
            len,
        }
    }

    fn new(nodes: &'a [NodeInfo]) -> Self {
        let mut fqdn = BTreeMap::new();
        let mut short: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, n) in nodes.iter().enumerate() {
            fqdn.entry(n.name.as_str()).or_insert(i);
            short.entry(n.short_name()).or_default().push(i);
        }
        NameIndex {
            fqdn,
            short,
            len: nodes.len(),
        }
    }

    fn lookup(&self, key: &str, name: &str) -> Result<usize, ParamsError> {
        if let Some(&i) = self.fqdn.get(name) {
            return Ok(i);
        }
        match self.short.get(name).map(Vec::as_slice) {
            Some([i]) => Ok(*i),
            Some(_) => Err(invalid(
                key,
                format!("`{name}` is the short name of several nodes; use the FQDN"),
            )),
            None => Err(invalid(key, format!("unknown node `{name}`"))),
        }
    }
}

fn invalid(key: &str, message: String) -> ParamsError {
    ParamsError::Invalid {
        origin: "failure plan".to_string(),
        key: format!("{key}.nodes"),
        message,
    }
}

/// The nodes a rule picks: its named nodes, then each node with the probability, then `count` distinct
/// nodes by a seeded partial Fisher-Yates shuffle. Sorted, without duplicates.
fn select(pick: Pick<'_>, seed: u64, names: &NameIndex<'_>) -> Result<Vec<usize>, ParamsError> {
    let n = names.len;
    if pick.nodes.is_empty() && pick.probability <= 0.0 && pick.count == 0 {
        return Ok(Vec::new());
    }
    let mut chosen = vec![false; n];
    for name in pick.nodes {
        chosen[names.lookup(pick.key, name)?] = true;
    }
    if pick.probability > 0.0 {
        for (i, c) in chosen.iter_mut().enumerate() {
            *c |= Rng::for_entity(seed, pick.key, i as u64).chance(pick.probability);
        }
    }
    if pick.count > n {
        return Err(ParamsError::Invalid {
            origin: "failure plan".to_string(),
            key: format!("{}.count", pick.key),
            message: format!("{} nodes requested but the cluster has {n}", pick.count),
        });
    }
    if pick.count > 0 {
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = Rng::for_entity(seed, &format!("{}.count", pick.key), 0);
        for k in 0..pick.count {
            let j = k + rng.below((n - k) as u64) as usize;
            order.swap(k, j);
            chosen[order[k]] = true;
        }
    }
    Ok(chosen
        .iter()
        .enumerate()
        .filter(|(_, c)| **c)
        .map(|(i, _)| i)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::SimParams;
    use std::net::{IpAddr, Ipv4Addr};

    fn nodes(n: usize) -> Vec<NodeInfo> {
        (0..n)
            .map(|i| NodeInfo {
                name: format!("node-{i}.site.example"),
                address: IpAddr::V4(Ipv4Addr::new(10, 0, (i / 256) as u8, (i % 256) as u8)),
            })
            .collect()
    }

    fn plan(yaml: &str, seed: u64, n: usize) -> Result<FailurePlan, ParamsError> {
        let p = SimParams::from_yaml_str(yaml).expect("valid yaml");
        FailurePlan::resolve(&p.failures, seed, &nodes(n))
    }

    #[test]
    fn named_nodes_by_fqdn_or_short_name() {
        let p = plan(
            "failures: {never_boot: {nodes: [node-2, node-5.site.example]}}",
            1,
            8,
        )
        .unwrap();
        assert_eq!(p.nodes_where(|f| f.never_boot), vec![2, 5]);
        assert!(p.node(0).is_healthy());
        assert!(p.node(99).is_healthy());
        let e = plan("failures: {never_boot: {nodes: [node-9]}}", 1, 8)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("failures.never_boot.nodes") && e.contains("node-9"),
            "{e}"
        );
    }

    #[test]
    fn count_picks_exactly_that_many_and_depends_only_on_seed() {
        let yaml = "failures: {die_during_broadcast: {count: 7, at_fraction: 0.25}}";
        let a = plan(yaml, 3, 100)
            .unwrap()
            .nodes_where(|f| f.die_at_fraction.is_some());
        assert_eq!(a.len(), 7);
        assert_eq!(
            a,
            plan(yaml, 3, 100)
                .unwrap()
                .nodes_where(|f| f.die_at_fraction == Some(0.25))
        );
        assert_ne!(
            a,
            plan(yaml, 4, 100)
                .unwrap()
                .nodes_where(|f| f.die_at_fraction.is_some())
        );
        let e = plan("failures: {disk_write_error: {count: 9}}", 3, 8)
            .unwrap_err()
            .to_string();
        assert!(e.contains("failures.disk_write_error.count"), "{e}");
    }

    #[test]
    fn probability_picks_about_that_share() {
        let p = plan(
            "failures: {power_command_fails: {probability: 0.1, levels: [soft, hard]}}",
            5,
            2000,
        )
        .unwrap();
        let hit = p.nodes_where(|f| f.power_fails == vec![PowerLevel::Soft, PowerLevel::Hard]);
        assert!((150..250).contains(&hit.len()), "{}", hit.len());
        let none = plan("failures: {hang: {probability: 1.0}}", 5, 10).unwrap();
        assert!(
            none.nodes_where(|f| f.hang_step.is_some()).is_empty(),
            "no step, no hang"
        );
    }
}

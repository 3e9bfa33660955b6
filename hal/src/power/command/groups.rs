//! Kadeploy's grouped power commands (`remoteops/<list>[i]/group`): nodes listed together in the group
//! file (several nodes behind one PDU outlet or chassis) get one command with `GROUP_FQDN`/`GROUP_SHORT`
//! replaced by the comma-joined members, and each member gets that command's result. A group runs only
//! when all its members are in the operation; otherwise its members in the operation fail the level with
//! Kadeploy's message (and escalate).

use super::{Inner, run_shell};
use crate::node::NodeId;
use crate::outcome::{ErrorKind, NodeError, Outcome, Outcomes, for_each_node};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What runs for the nodes of one command.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Unit {
    /// A node in no group: its own command.
    Alone(NodeId),
    /// A whole group in the operation: one command, named after its first member.
    Group(Vec<NodeId>),
    /// A member of a group that is not whole in the operation: the group's names.
    Incomplete(NodeId, Vec<String>),
}

impl Unit {
    /// The node whose command runs for the unit.
    fn leader(&self) -> NodeId {
        match self {
            Unit::Alone(n) | Unit::Incomplete(n, _) => *n,
            Unit::Group(members) => members.first().copied().unwrap_or(NodeId(u32::MAX)),
        }
    }

    /// The nodes that get the unit's outcome.
    fn members(&self) -> Vec<NodeId> {
        match self {
            Unit::Alone(n) | Unit::Incomplete(n, _) => vec![*n],
            Unit::Group(members) => members.clone(),
        }
    }
}

/// Cuts `nodes` into units by `groups` (host names, one list per group).
fn units(inner: &Inner, groups: &[Vec<String>], nodes: &[NodeId]) -> Vec<Unit> {
    let name = |n: NodeId| inner.nodes.get(n.index()).map(|i| i.name.as_str());
    let by_name: BTreeMap<&str, NodeId> =
        nodes.iter().filter_map(|&n| Some((name(n)?, n))).collect();
    let mut taken = BTreeSet::new();
    let mut out = Vec::new();
    for &n in nodes {
        if !taken.insert(n) {
            continue;
        }
        let group = name(n).and_then(|host| groups.iter().find(|g| g.iter().any(|m| m == host)));
        let Some(group) = group else {
            out.push(Unit::Alone(n));
            continue;
        };
        let members: Option<Vec<NodeId>> = group
            .iter()
            .map(|m| by_name.get(m.as_str()).copied())
            .collect();
        match members {
            Some(members) => {
                taken.extend(members.iter().copied());
                out.push(Unit::Group(members));
            }
            None => out.push(Unit::Incomplete(n, group.clone())),
        }
    }
    out
}

/// `template` with `GROUP_FQDN` and `GROUP_SHORT` replaced by the names of `members`.
fn substitute_group(inner: &Inner, template: &str, members: &[NodeId]) -> String {
    let infos: Vec<_> = members
        .iter()
        .filter_map(|n| inner.nodes.get(n.index()))
        .collect();
    let fqdn: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
    let short: Vec<&str> = infos.iter().map(|i| i.short_name()).collect();
    template
        .replace("GROUP_FQDN", &fqdn.join(","))
        .replace("GROUP_SHORT", &short.join(","))
}

/// Runs the command of `key` (`what` in messages) over `nodes`, grouped by `groups`.
pub(super) async fn run_grouped(
    inner: &Arc<Inner>,
    groups: &[Vec<String>],
    nodes: &[NodeId],
    key: &str,
    what: &str,
) -> Outcomes {
    let units = units(inner, groups, nodes);
    let by_leader: Arc<BTreeMap<NodeId, Unit>> =
        Arc::new(units.iter().map(|u| (u.leader(), u.clone())).collect());
    let leaders: Vec<NodeId> = units.iter().map(Unit::leader).collect();
    let outcomes = for_each_node(&leaders, inner.concurrency, |leader| {
        let (inner, by_leader) = (inner.clone(), by_leader.clone());
        let (key, what) = (key.to_string(), what.to_string());
        async move {
            match by_leader.get(&leader) {
                Some(Unit::Incomplete(_, group)) => {
                    let host = inner.nodes.get(leader.index()).map_or("?", |i| i.name.as_str());
                    Err(NodeError::new(
                        ErrorKind::NotSupported,
                        format!(
                            "The {what} command cannot be performed since the node {host} belongs to the \
                             following group of nodes [{}] and all the nodes of the group are not involved \
                             in the command",
                            group.join(",")
                        ),
                    ))
                }
                Some(unit) => {
                    let mut command = inner.command(leader, &key, &what)?;
                    if let Unit::Group(members) = unit {
                        command = substitute_group(&inner, &command, members);
                    }
                    tracing::debug!(%leader, command, "grouped power command");
                    run_shell(&command, inner.timeout).await.map(|_| ())
                }
                None => Err(NodeError::new(ErrorKind::Config, "node not in the group plan")),
            }
        }
    })
    .await;
    let mut results: BTreeMap<NodeId, Outcome<()>> = BTreeMap::new();
    for (leader, outcome) in outcomes {
        if let Some(unit) = by_leader.get(&leader) {
            for member in unit.members() {
                results.insert(member, outcome.clone());
            }
        }
    }
    Outcomes::from_fn(nodes, |n| {
        results.remove(&n).unwrap_or_else(|| {
            Err(NodeError::new(
                ErrorKind::Config,
                "node not in the group plan",
            ))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeInfo;
    use crate::power::command::{CommandPower, PowerCommands};
    use crate::power::{Power, PowerAction, PowerLevel};
    use std::time::Duration;

    fn nodes(n: u32) -> Vec<NodeInfo> {
        (1..=n)
            .map(|i| NodeInfo {
                name: format!("n-{i}.site"),
                address: format!("10.0.0.{i}")
                    .parse()
                    .unwrap_or_else(|e| panic!("{e}")),
            })
            .collect()
    }

    /// One command per whole group, with `GROUP_FQDN`/`GROUP_SHORT` replaced, its result copied to every
    /// member; a member whose group is not whole fails the level (before, `group` was read and ignored:
    /// each node ran the template with the words left in it).
    #[tokio::test]
    async fn whole_groups_run_one_command_and_share_its_result() {
        let dir = std::env::temp_dir().join(format!("hal-power-groups-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let log = dir.join("calls");
        let template = format!(
            "echo \"HOSTNAME_SHORT GROUP_FQDN GROUP_SHORT\" >> {}",
            log.display()
        );
        let table = PowerCommands::new().with(PowerAction::Reboot, PowerLevel::Hard, template);
        let groups: BTreeMap<String, Vec<Vec<String>>> = [(
            "reboot_hard".to_string(),
            vec![
                vec!["n-1.site".to_string(), "n-2.site".to_string()],
                vec!["n-3.site".to_string(), "n-4.site".to_string()],
            ],
        )]
        .into();
        let power = CommandPower::new(nodes(5), table, Duration::from_secs(10)).with_groups(groups);
        let ids = [NodeId(0), NodeId(1), NodeId(2), NodeId(4)];
        let out = power
            .power(PowerAction::Reboot, PowerLevel::Hard, &ids)
            .await;
        assert_eq!(out.ok_nodes(), vec![NodeId(0), NodeId(1), NodeId(4)]);
        let failures = out.failures();
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].0, NodeId(2));
        assert!(
            failures[0]
                .1
                .message
                .contains("group of nodes [n-3.site,n-4.site]"),
            "{}",
            failures[0].1.message
        );
        let mut calls: Vec<String> = std::fs::read_to_string(&log)
            .unwrap_or_else(|e| panic!("{e}"))
            .lines()
            .map(String::from)
            .collect();
        calls.sort();
        assert_eq!(
            calls,
            [
                "n-1 n-1.site,n-2.site n-1,n-2",
                "n-5 GROUP_FQDN GROUP_SHORT"
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Who feeds whom: the node order (topology first: nodes under one switch adjacent) and, per strategy,
//! the links of the server and of every node.

use super::wire::ForwardPlan;
use crate::broadcast::Strategy;
use std::net::SocketAddr;

/// The links of a broadcast over nodes in a given order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Links the server feeds.
    pub source: Vec<ForwardPlan>,
    /// Links each node feeds, in node order.
    pub nodes: Vec<Vec<ForwardPlan>>,
    /// Nodes wait for a new upstream when theirs is lost.
    pub fault_tolerant: bool,
}

fn single(addr: SocketAddr) -> ForwardPlan {
    ForwardPlan {
        candidates: vec![addr],
        failover: false,
    }
}

/// The plan of `strategy` over `addrs` (agents in chain order). A tree of arity 0 is a chain.
pub fn plan(strategy: Strategy, addrs: &[SocketAddr]) -> Plan {
    let n = addrs.len();
    match strategy {
        Strategy::Chain | Strategy::Tree { arity: 0 } => Plan {
            source: addrs.first().map(|&a| single(a)).into_iter().collect(),
            nodes: (0..n)
                .map(|i| addrs.get(i + 1).map(|&a| single(a)).into_iter().collect())
                .collect(),
            fault_tolerant: false,
        },
        Strategy::FaultTolerantChain => {
            let tail = |from: usize| ForwardPlan {
                candidates: addrs[from.min(n)..].to_vec(),
                failover: true,
            };
            Plan {
                source: if n > 0 { vec![tail(0)] } else { Vec::new() },
                nodes: (0..n)
                    .map(|i| {
                        if i + 1 < n {
                            vec![tail(i + 1)]
                        } else {
                            Vec::new()
                        }
                    })
                    .collect(),
                fault_tolerant: true,
            }
        }
        Strategy::Tree { arity } => {
            // Heap order, as the simulator: receivers 0..k−1 hang off the server, receiver j feeds
            // (j+1)·k … (j+1)·k + k − 1.
            let k = arity as usize;
            let children = |first: usize| {
                (first..(first + k).min(n))
                    .map(|c| single(addrs[c]))
                    .collect::<Vec<_>>()
            };
            Plan {
                source: children(0),
                nodes: (0..n)
                    .map(|j| {
                        if (j + 1) * k < n {
                            children((j + 1) * k)
                        } else {
                            Vec::new()
                        }
                    })
                    .collect(),
                fault_tolerant: false,
            }
        }
        Strategy::Unicast => Plan {
            source: addrs.iter().map(|&a| single(a)).collect(),
            nodes: vec![Vec::new(); n],
            fault_tolerant: false,
        },
        // No links: the server sends to a group (multicast), or the nodes find their peers (swarm).
        Strategy::Multicast | Strategy::Swarm => Plan {
            source: Vec::new(),
            nodes: vec![Vec::new(); n],
            fault_tolerant: false,
        },
    }
}

/// Peers a swarm node connects to: the next few nodes in order, round the ring (the nodes before it
/// connect to it), so that each node has up to twice [`SWARM_FANOUT`] peers.
pub fn swarm_peers(addrs: &[SocketAddr], index: usize) -> Vec<SocketAddr> {
    let n = addrs.len();
    let mut peers: Vec<SocketAddr> = (1..=SWARM_FANOUT.min(n.saturating_sub(1)))
        .filter_map(|k| addrs.get((index + k) % n).copied())
        .collect();
    peers.dedup();
    peers
}

/// Peers each swarm node connects to.
pub const SWARM_FANOUT: usize = 2;

/// Chain order following the topology: nodes grouped by switch (groups in order of first
/// appearance), the given order kept inside a group; nodes of unknown switch keep their place at the end.
/// Returns indices into `switches`.
pub fn topology_order(switches: &[Option<u32>]) -> Vec<usize> {
    let mut groups: Vec<(u32, Vec<usize>)> = Vec::new();
    let mut unknown = Vec::new();
    for (i, s) in switches.iter().enumerate() {
        match s {
            Some(s) => match groups.iter_mut().find(|(g, _)| g == s) {
                Some((_, members)) => members.push(i),
                None => groups.push((*s, vec![i])),
            },
            None => unknown.push(i),
        }
    }
    groups
        .into_iter()
        .flat_map(|(_, m)| m)
        .chain(unknown)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u16) -> Vec<SocketAddr> {
        (0..n)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 1000 + i)))
            .collect()
    }

    #[test]
    fn chain_and_ft_chain() {
        let a = addrs(3);
        let p = plan(Strategy::Chain, &a);
        assert_eq!(p.source, vec![single(a[0])]);
        assert_eq!(p.nodes[0], vec![single(a[1])]);
        assert!(p.nodes[2].is_empty());
        let p = plan(Strategy::FaultTolerantChain, &a);
        assert!(p.fault_tolerant);
        assert_eq!(p.source[0].candidates, a);
        assert_eq!(p.nodes[0][0].candidates, a[1..].to_vec());
        assert!(p.nodes[2].is_empty());
    }

    #[test]
    fn tree_is_heap_ordered_and_unicast_is_a_star() {
        let a = addrs(7);
        let p = plan(Strategy::Tree { arity: 2 }, &a);
        assert_eq!(p.source, vec![single(a[0]), single(a[1])]);
        assert_eq!(p.nodes[0], vec![single(a[2]), single(a[3])]);
        assert_eq!(p.nodes[1], vec![single(a[4]), single(a[5])]);
        assert_eq!(p.nodes[2], vec![single(a[6])]);
        assert!(p.nodes[3].is_empty());
        let p = plan(Strategy::Unicast, &a);
        assert_eq!(p.source.len(), 7);
        assert!(p.nodes.iter().all(Vec::is_empty));
        assert!(plan(Strategy::Chain, &[]).source.is_empty());
    }

    #[test]
    fn topology_groups_nodes_by_switch() {
        let order = topology_order(&[Some(1), Some(2), None, Some(1), Some(2)]);
        assert_eq!(order, vec![0, 3, 1, 4, 2]);
    }
}

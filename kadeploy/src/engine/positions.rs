//! Where each node of a node list is, found in constant time: the engine's per-node bookkeeping over a
//! million nodes without a tree lookup per node.

use hal::NodeId;
use std::collections::BTreeMap;

/// Largest table kept per listed node: node indices this sparse fall back to a tree.
const DENSITY: usize = 8;

/// Slack on the table's size, so that short lists of high node indices still get a table.
const SLACK: usize = 4096;

/// The position of each node of a list (its first occurrence), by node index.
#[derive(Debug)]
pub struct Positions {
    /// Position + 1 per node index (0: not listed), when the indices are dense enough.
    dense: Vec<u32>,
    /// The positions when the indices are too sparse for a table (or too many for `u32`).
    sparse: BTreeMap<NodeId, usize>,
}

impl Positions {
    /// The positions of `nodes`; a table no larger than `8 × nodes.len() + 4096` entries, else a tree.
    pub fn new(nodes: &[NodeId]) -> Self {
        let size = nodes.iter().map(|n| n.index() + 1).max().unwrap_or(0);
        let fits = u32::try_from(nodes.len()).is_ok_and(|n| n < u32::MAX);
        if fits && size <= DENSITY.saturating_mul(nodes.len()).saturating_add(SLACK) {
            let mut dense = vec![0u32; size];
            for (i, n) in nodes.iter().enumerate().rev() {
                // In reverse, so that the first occurrence is the one kept; `i + 1` fits (checked above).
                dense[n.index()] = i as u32 + 1;
            }
            Positions {
                dense,
                sparse: BTreeMap::new(),
            }
        } else {
            let mut sparse = BTreeMap::new();
            for (i, &n) in nodes.iter().enumerate() {
                sparse.entry(n).or_insert(i);
            }
            Positions {
                dense: Vec::new(),
                sparse,
            }
        }
    }

    /// The position of `node` in the list, if listed.
    pub fn get(&self, node: NodeId) -> Option<usize> {
        if self.dense.is_empty() {
            return self.sparse.get(&node).copied();
        }
        match self.dense.get(node.index()) {
            Some(&p) if p > 0 => Some(p as usize - 1),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u32]) -> Vec<NodeId> {
        v.iter().map(|&i| NodeId(i)).collect()
    }

    #[test]
    fn dense_lists_find_the_first_occurrence_and_nothing_else() {
        let p = Positions::new(&ids(&[5, 2, 9, 2]));
        assert!(!p.dense.is_empty());
        assert_eq!(p.get(NodeId(5)), Some(0));
        assert_eq!(p.get(NodeId(2)), Some(1));
        assert_eq!(p.get(NodeId(9)), Some(2));
        assert_eq!(p.get(NodeId(3)), None);
        assert_eq!(p.get(NodeId(1_000_000)), None);
    }

    #[test]
    fn sparse_lists_use_a_tree_instead_of_a_huge_table() {
        let p = Positions::new(&ids(&[u32::MAX - 1, 7, u32::MAX - 1]));
        assert!(p.dense.is_empty());
        assert_eq!(p.get(NodeId(u32::MAX - 1)), Some(0));
        assert_eq!(p.get(NodeId(7)), Some(1));
        assert_eq!(p.get(NodeId(8)), None);
        assert_eq!(Positions::new(&[]).get(NodeId(0)), None);
    }
}

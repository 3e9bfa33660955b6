//! A request's node list against the configured nodes (spec §3.7): names, ranges (`node-[1-3]`) and
//! short names (`node-7` for `node-7.sim.kadeploy`) resolved to node names, sorted and deduplicated, and
//! grouped by the cluster each node belongs to.

use hal::NodeId;
use kadeploy::error::{ApiError, RequestError};
use std::collections::BTreeMap;

/// Configured node name → (cluster index, node id in its cluster): [`crate::App::nodes`].
pub type NodeIndex = BTreeMap<String, (usize, NodeId)>;

fn err(kind: ApiError, msg: impl Into<String>) -> RequestError {
    RequestError::new(kind, msg)
}

/// How many names a request may list beyond the server's nodes (repeats, a name given both short and
/// long): the expansion of its node lists stops there, so its cost is bounded by the cluster, not by the
/// ranges a client writes.
pub const NODELIST_MARGIN: usize = 64;

/// Resolves node names, ranges and short names to the configured nodes, sorted and deduplicated.
///
/// Identical items are read once; all items together may expand to at most the number of configured
/// nodes plus [`NODELIST_MARGIN`] names, counted before any name is built (error 2 beyond), and each
/// name is looked up in O(log nodes).
pub fn resolve(nodes: &NodeIndex, requested: &[String]) -> Result<Vec<String>, RequestError> {
    if requested.is_empty() {
        return Err(err(
            ApiError::MissingOption,
            "Parameter 'nodes': is mandatory",
        ));
    }
    let budget = nodes.len().saturating_add(NODELIST_MARGIN);
    let mut left = budget;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = std::collections::BTreeSet::new();
    for item in requested {
        if !seen.insert(item.trim()) {
            continue;
        }
        let names = kadeploy::nodelist::expand_at_most(item, left).map_err(|e| match e {
            kadeploy::nodelist::NodeListError::TooLarge { .. } => err(
                ApiError::InvalidNodelist,
                format!(
                    "The node list names more than {budget} nodes (this server has {})",
                    nodes.len()
                ),
            ),
            e => err(ApiError::InvalidNodelist, e.to_string()),
        })?;
        left = left.saturating_sub(names.len());
        for name in names {
            out.insert(known_node(nodes, &name)?.clone());
        }
    }
    Ok(out.into_iter().collect())
}

/// The configured node `name` designates: itself, or the one node it is a short name of (the node's
/// name continues with something other than a digit, `node-7` for `node-7.sim.kadeploy`).
fn known_node<'a, V>(
    nodes: &'a BTreeMap<String, V>,
    name: &str,
) -> Result<&'a String, RequestError> {
    use std::ops::Bound::{Excluded, Included, Unbounded};
    if let Some((node, _)) = nodes.get_key_value(name) {
        return Ok(node);
    }
    // Names continuing with a digit sort from `name0` to `name9…`, before `name:`: the candidates are
    // the names between `name` and `name0`, and those from `name:` on that start with `name`.
    let (digit, after_digits) = (format!("{name}0"), format!("{name}:"));
    let before = nodes.range::<str, _>((Excluded(name), Excluded(digit.as_str())));
    let after = nodes
        .range::<str, _>((Included(after_digits.as_str()), Unbounded))
        .take_while(|(node, _)| node.starts_with(name));
    let hits: Vec<&String> = before.chain(after).map(|(node, _)| node).take(2).collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(err(
            ApiError::InvalidNodelist,
            format!(
                "The node '{}' does not exist",
                kadeploy::nodelist::shown(name)
            ),
        )),
        _ => Err(err(
            ApiError::InvalidNodelist,
            format!("Ambiguous node name '{}'", kadeploy::nodelist::shown(name)),
        )),
    }
}

/// The nodes of `names` by cluster index, in cluster order, each with its id in the cluster (names that
/// are not configured nodes are left out).
pub fn by_cluster(nodes: &NodeIndex, names: &[String]) -> BTreeMap<usize, Vec<(NodeId, String)>> {
    let mut groups: BTreeMap<usize, Vec<(NodeId, String)>> = BTreeMap::new();
    for n in names {
        if let Some((cluster, id)) = nodes.get(n) {
            groups.entry(*cluster).or_default().push((*id, n.clone()));
        }
    }
    groups
}

/// Like [`resolve`], but an empty list stays empty.
pub fn resolve_or_empty(
    nodes: &NodeIndex,
    requested: &[String],
) -> Result<Vec<String>, RequestError> {
    if requested.is_empty() {
        Ok(Vec::new())
    } else {
        resolve(nodes, requested)
    }
}

#[cfg(test)]
mod tests {
    use super::{NodeIndex, by_cluster, known_node, resolve, resolve_or_empty};
    use hal::NodeId;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// The lookup before the range search: every node scanned for each name.
    fn scan<'a>(nodes: &'a BTreeMap<String, ()>, name: &str) -> Result<&'a String, usize> {
        if let Some((node, _)) = nodes.get_key_value(name) {
            return Ok(node);
        }
        let hits: Vec<&String> = nodes
            .keys()
            .filter(|n| {
                n.strip_prefix(name)
                    .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
            })
            .collect();
        match hits.as_slice() {
            [one] => Ok(one),
            other => Err(other.len().min(2)),
        }
    }

    #[test]
    fn short_names_resolve_by_range() {
        let nodes: BTreeMap<String, ()> = [
            "node-1.dom",
            "node-10.dom",
            "node-2.dom",
            "node-2-eth1.dom",
            "x",
        ]
        .iter()
        .map(|n| (n.to_string(), ()))
        .collect();
        let found = |n: &str| {
            known_node(&nodes, n)
                .map(String::as_str)
                .map_err(|e| e.kind.code())
        };
        assert_eq!(found("node-1"), Ok("node-1.dom"));
        assert_eq!(found("node-10"), Ok("node-10.dom"));
        assert_eq!(found("node-1.dom"), Ok("node-1.dom"));
        assert_eq!(found("x"), Ok("x"));
        assert_eq!(
            found("node-2"),
            Err(2),
            "node-2.dom and node-2-eth1.dom: ambiguous"
        );
        assert_eq!(found("node-3"), Err(2));
        assert_eq!(found("node-"), Err(2));
        assert_eq!(found("%"), Err(2));
    }

    fn index(names: &[(&str, usize)]) -> NodeIndex {
        names
            .iter()
            .enumerate()
            .map(|(i, (n, c))| (n.to_string(), (*c, NodeId(i as u32))))
            .collect()
    }

    #[test]
    fn lists_resolve_sorted_and_deduplicated_and_group_by_cluster() {
        let nodes = index(&[("a-1.x", 0), ("a-2.x", 0), ("b-1.y", 1), ("b-2.y", 1)]);
        let got = resolve(&nodes, &["b-[1-2]".into(), "a-2".into(), "b-1.y".into()]).unwrap();
        assert_eq!(got, ["a-2.x", "b-1.y", "b-2.y"]);
        let e = resolve(&nodes, &[]).unwrap_err();
        assert_eq!(
            (e.kind.code(), e.detail.as_str()),
            (12, "Parameter 'nodes': is mandatory")
        );
        assert!(resolve_or_empty(&nodes, &[]).unwrap().is_empty());
        let e = resolve(&nodes, &["c-1".into()]).unwrap_err();
        assert_eq!(
            (e.kind.code(), e.detail.as_str()),
            (2, "The node 'c-1' does not exist")
        );
        let e = resolve(&nodes, &["n-[1-100]".into()]).unwrap_err();
        assert!(
            e.detail
                .starts_with("The node list names more than 68 nodes"),
            "{}",
            e.detail
        );
        let groups = by_cluster(&nodes, &got);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[&0], [(NodeId(1), "a-2.x".to_string())]);
        assert_eq!(
            groups[&1],
            [
                (NodeId(2), "b-1.y".to_string()),
                (NodeId(3), "b-2.y".to_string())
            ]
        );
    }

    proptest! {
        /// The range search finds what scanning every node finds.
        #[test]
        fn range_lookup_matches_a_full_scan(
            names in prop::collection::btree_set("[a-c0-9.:/é-]{1,6}", 0..40),
            name in "[a-c0-9.:/é-]{1,4}",
        ) {
            let nodes: BTreeMap<String, ()> = names.into_iter().map(|n| (n, ())).collect();
            let fast = known_node(&nodes, &name)
                .map_err(|e| if e.detail.starts_with("Ambiguous") { 2 } else { 0 });
            let slow = scan(&nodes, &name);
            prop_assert_eq!(fast, slow);
        }
    }
}

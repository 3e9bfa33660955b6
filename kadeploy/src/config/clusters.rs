//! `clusters.conf` (node ranges, unique names, addresses) and `command.conf` (per-node overrides).

use super::error::{ConfigError, Ctx};
use super::wire;

/// Per-node command overrides of `command.conf`, by host name then command key (`reboot_soft`...).
pub type Commands = BTreeMap<String, BTreeMap<String, String>>;
use crate::nodelist;
use hal::NodeInfo;
use hal::netboot::Mac;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// A cluster of `clusters.conf`, its nodes expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterEntry {
    /// `name`.
    pub name: String,
    /// `prefix`, when given.
    pub prefix: Option<String>,
    /// `conf_file`, as written (relative to the configuration directory unless absolute).
    pub conf_file: String,
    /// The nodes, in file order (ranges expanded).
    pub nodes: Vec<NodeInfo>,
    /// `mac` of the nodes that have one, by node name.
    pub macs: BTreeMap<String, Mac>,
    /// `switch` of the nodes that have one, by node name.
    pub switches: BTreeMap<String, String>,
}

/// Validates `clusters.conf`: clusters named uniquely, node ranges well formed and matching their address ranges,
/// node names unique across clusters, node lists not empty.
pub(crate) fn convert(
    w: &wire::ClustersFile,
    ctx: Ctx<'_>,
) -> Result<Vec<ClusterEntry>, ConfigError> {
    let clusters = ctx.required(w.clusters.as_ref(), "clusters")?;
    if clusters.is_empty() {
        return Err(ctx.invalid("clusters", "no cluster is defined"));
    }
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    let mut out: Vec<ClusterEntry> = Vec::with_capacity(clusters.len());
    for (i, cluster) in clusters.iter().enumerate() {
        let path = format!("clusters[{i}]");
        let name = ctx.required(cluster.name.clone(), &format!("{path}/name"))?;
        if out.iter().any(|c| c.name == name) {
            return Err(ctx.invalid(
                format!("{path}/name"),
                format!("duplicate cluster name `{name}`"),
            ));
        }
        let conf_file = ctx.required(cluster.conf_file.clone(), &format!("{path}/conf_file"))?;
        let entries = ctx.required(cluster.nodes.as_ref(), &format!("{path}/nodes"))?;
        let mut nodes = Vec::new();
        let mut macs = BTreeMap::new();
        let mut switches = BTreeMap::new();
        for (j, entry) in entries.iter().enumerate() {
            let path = format!("{path}/nodes[{j}]");
            let expanded = expand_entry(entry, &path, ctx)?;
            if let Some(mac) = &entry.mac {
                let key = format!("{path}/mac");
                let [node] = expanded.as_slice() else {
                    return Err(
                        ctx.invalid(key, "a mac address is given for a single node, not a range")
                    );
                };
                let mac: Mac = mac.parse().map_err(|e: String| ctx.invalid(&key, e))?;
                if let Some((other, _)) = macs.iter().find(|(_, m)| **m == mac) {
                    return Err(
                        ctx.invalid(key, format!("mac {mac} is already the mac of {other}"))
                    );
                }
                macs.insert(node.name.clone(), mac);
            }
            if let Some(switch) = &entry.switch {
                if switch.trim().is_empty() {
                    return Err(ctx.invalid(format!("{path}/switch"), "empty switch name"));
                }
                for node in &expanded {
                    switches.insert(node.name.clone(), switch.trim().to_string());
                }
            }
            for node in expanded {
                if let Some(owner) = owners.insert(node.name.clone(), name.clone()) {
                    return Err(ctx.invalid(
                        format!("{path}/name"),
                        format!(
                            "duplicate node name `{}` (already in cluster {owner})",
                            node.name
                        ),
                    ));
                }
                nodes.push(node);
            }
        }
        if nodes.is_empty() {
            return Err(ctx.invalid(format!("{path}/nodes"), "empty node list"));
        }
        out.push(ClusterEntry {
            name,
            prefix: cluster.prefix.clone(),
            conf_file,
            nodes,
            macs,
            switches,
        });
    }
    Ok(out)
}

/// Expands one `{name, address}` item; both ranges must give the same number of items.
fn expand_entry(
    entry: &wire::NodeEntry,
    path: &str,
    ctx: Ctx<'_>,
) -> Result<Vec<NodeInfo>, ConfigError> {
    let name_key = format!("{path}/name");
    let address_key = format!("{path}/address");
    let name = ctx.required(entry.name.as_deref(), &name_key)?;
    let address = ctx.required(entry.address.as_deref(), &address_key)?;
    let names = nodelist::expand(name).map_err(|e| ctx.invalid(&name_key, e.to_string()))?;
    let addresses =
        nodelist::expand(address).map_err(|e| ctx.invalid(&address_key, e.to_string()))?;
    if names.len() != addresses.len() {
        return Err(ctx.invalid(
            path,
            format!(
                "`{name}` gives {} names but `{address}` gives {} addresses",
                names.len(),
                addresses.len()
            ),
        ));
    }
    names
        .into_iter()
        .zip(addresses)
        .map(|(name, address)| {
            let address: IpAddr = address.parse().map_err(|_| {
                ctx.invalid(&address_key, format!("invalid IP address `{address}`"))
            })?;
            Ok(NodeInfo { name, address })
        })
        .collect()
}

/// Validates `command.conf`: every node exists, every key is one of [`wire::COMMAND_KEYS`].
pub(crate) fn convert_commands(
    w: &wire::CommandsFile,
    ctx: Ctx<'_>,
    nodes: &BTreeSet<String>,
) -> Result<Commands, ConfigError> {
    for (node, commands) in w {
        if !nodes.contains(node) {
            return Err(ctx.invalid(
                node,
                "unknown node (the exact host name of a node is expected)",
            ));
        }
        if let Some(key) = commands
            .keys()
            .find(|key| !wire::COMMAND_KEYS.contains(&key.as_str()))
        {
            return Err(ctx.invalid(
                format!("{node}/{key}"),
                format!(
                    "unknown command (expected one of {})",
                    wire::COMMAND_KEYS.join(", ")
                ),
            ));
        }
    }
    Ok(w.clone())
}

//! The `site` backend: the real drivers of a cluster, built from Kadeploy's configuration directory.
//!
//! - network boot: PXE profiles written per `server.conf`'s `pxe/*` and the cluster's `pxe/headers`;
//! - node operations and soft power: SSH as root with `ssh_private_key` on `network/ports/ssh`;
//! - power: the cluster's `remoteops` command templates with `command.conf`'s per-node overrides, or, with
//!   the new key `backend/ipmi`, a native IPMI-over-LAN client for the hard level and the status;
//! - reachability: TCP probes; console: the `remoteops/console` template;
//! - broadcast: `kaagent` node agents on `backend/agent_port` (25301). For each broadcast the deployer
//!   makes a fresh random token and writes it over SSH to `backend/agent_token_file` on every node
//!   (root-only; the agents read it at each connection and refuse peers that do not prove they know
//!   it), removing it afterwards; with `backend/agent_binary`, it first sends the agent over SSH to
//!   the nodes where none answers, and starts it.
//!
//! Every value comes typed from the configuration as loaded once ([`Loaded`]); the backend reads no
//! configuration file.
//!
//! ```yaml
//! backend:
//!   kind: site
//!   agent_port: 25301
//!   agent_token_file: /run/kaagent.token       # where the nodes' agents read the broadcast token
//!   agent_binary: /usr/lib/kadeploy3/kaagent   # optional: a static kaagent sent over SSH when needed
//!   command_timeout: 600           # seconds, per node command over SSH; keep it below the macro-step
//!                                  # timeouts (warned at start), or a hung node fails its whole group
//!   power_timeout: 60              # seconds, per power command template
//!   ipmi: {host: HOSTNAME_SHORT-bmc, port: 623, user: ADMIN, password_file: ipmi.pass}
//! ```

mod oob;
mod power;

use anyhow::Context as _;
use hal::broadcast::deployer::{Agent, KaagentBroadcast, Options};
use hal::broadcast::over_ssh::AgentsOverSsh;
use hal::console::command::CommandConsole;
use hal::netboot::NetBoot;
use hal::netboot::pxe::{PxeConfig, PxeWriter};
use hal::power::next_boot::{BootIntents, RecordingNetBoot};
use hal::reachability::tcp::TcpProbe;
use hal::ssh::{SshConfig, SshNodeOps};
use hal::{Broadcast, Drivers, NodeId};
use kadeploy::config::{ClusterConfig, Loaded, SiteKeys};
use kadeploy_server::BackendSpec;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The name of this backend in `backend/kind`.
pub const KIND: &str = kadeploy::config::SITE_BACKEND;

/// The macro-step instance of `cluster` with the shortest timeout, and that timeout (none: no timeout).
fn shortest_macro_timeout(cluster: &ClusterConfig) -> Option<(String, f64)> {
    let a = &cluster.automata;
    [
        ("SetDeploymentEnv", &a.set_deployment_env),
        ("BroadcastEnv", &a.broadcast_env),
        ("BootNewEnv", &a.boot_new_env),
    ]
    .into_iter()
    .flat_map(|(slot, list)| {
        list.iter()
            .map(move |i| (format!("{slot}{}", i.kind), i.timeout))
    })
    .filter(|(_, t)| *t > 0.0)
    .min_by(|x, y| x.1.total_cmp(&y.1))
}

/// The configuration warnings of this backend, one per cluster: `backend/command_timeout` not below the
/// shortest macro-step timeout (shown with the loader's warnings, once per load).
pub fn warnings(loaded: &Loaded) -> Vec<String> {
    let Some(keys) = &loaded.server_conf.backend.site else {
        return Vec::new();
    };
    let command = keys.command_timeout.as_secs();
    loaded
        .config
        .clusters
        .iter()
        .filter_map(|cluster| {
            let (instance, timeout) = shortest_macro_timeout(cluster)?;
            (command as f64 >= timeout).then(|| {
                format!(
                    "cluster {}: backend/command_timeout ({command} s) is not below the {instance} timeout \
                     ({timeout} s): a node hung in a command makes its whole group end with a macro-step \
                     timeout; lower it",
                    cluster.name
                )
            })
        })
        .collect()
}

/// How long a probe waits for a node's port: the cluster's `boot/probe_timeout`.
fn probe_timeout(cluster: &ClusterConfig) -> Duration {
    Duration::from_secs_f64(cluster.boot.probe_timeout)
}

/// Builds the real drivers of `cluster` from the configuration as loaded.
pub fn backend(cluster: &ClusterConfig, loaded: &Loaded) -> anyhow::Result<BackendSpec> {
    let keys = loaded.server_conf.backend.site.as_ref().with_context(|| {
        format!(
            "server.conf: backend/kind is not {KIND}: the {KIND} backend's keys were not loaded"
        )
    })?;
    let nodes = cluster.nodes.clone();
    let remoteops = loaded
        .remoteops
        .get(&cluster.name)
        .cloned()
        .unwrap_or_default();
    let mut ssh = SshConfig::new(loaded.ssh.private_key.clone());
    ssh.port = loaded.config.server.ssh_port;
    ssh.user = loaded.ssh.user.clone();
    ssh.command_timeout = keys.command_timeout;
    let ops = Arc::new(SshNodeOps::new(nodes.clone(), ssh).context("SSH node operations")?);

    let commands = loaded.commands_of(cluster);
    let intents = BootIntents::default();
    let (power, setter) = power::power(cluster, &remoteops, &commands, keys, &ops, &intents)?;
    let writer = PxeWriter::new(pxe_config(cluster, loaded), nodes.clone());
    writer.validate().context("pxe")?;
    // The next-boot step reads the profiles written (`boot/next_boot_device: {device: auto}`).
    let netboot: Arc<dyn NetBoot> = if remoteops.next_boot.is_some() {
        Arc::new(RecordingNetBoot::new(Arc::new(writer), intents, setter))
    } else {
        Arc::new(writer)
    };
    let broadcast = broadcast(cluster, keys, &ops)?;
    let console = CommandConsole::new(nodes.clone(), remoteops.console.clone());
    Ok(BackendSpec {
        drivers: Drivers {
            power,
            netboot,
            ops,
            reachability: Arc::new(TcpProbe::new(nodes, probe_timeout(cluster))),
            broadcast,
            console: Arc::new(console),
        },
        virtual_time: false,
        image_size: 0,
        image_ratio: 1.0,
        planner: Some(super::planner::planner(super::planner::params(loaded)?)),
    })
}

/// The broadcast: `kaagent` on `backend/agent_port`, its token handed over SSH, the agent itself sent
/// where none answers when `backend/agent_binary` is set ([`AgentsOverSsh`]).
fn broadcast(
    cluster: &ClusterConfig,
    keys: &SiteKeys,
    ops: &Arc<SshNodeOps>,
) -> anyhow::Result<Arc<dyn Broadcast>> {
    let nodes = &cluster.nodes;
    let switch_index = switch_indices(&cluster.switches);
    let agents = nodes.iter().enumerate().map(|(i, n)| {
        (
            NodeId(i as u32),
            Agent {
                name: n.name.clone(),
                addr: SocketAddr::new(n.address, keys.agent_port),
                switch: cluster
                    .switches
                    .get(&n.name)
                    .and_then(|s| switch_index.get(s.as_str()).copied()),
            },
        )
    });
    let kaagent = KaagentBroadcast::new(agents, Options::default());
    kaagent.validate()?;
    let mut over_ssh = AgentsOverSsh::new(
        kaagent,
        ops.clone(),
        &keys.agent_token_file,
        keys.agent_port,
    )
    .map_err(|e| anyhow::anyhow!("backend/agent_token_file: {e}"))?;
    if let Some(binary) = &keys.agent_binary {
        let probe = TcpProbe::new(nodes.clone(), probe_timeout(cluster));
        over_ssh = over_ssh
            .with_delivery(probe, binary.clone())
            .map_err(|e| anyhow::anyhow!("backend/agent_binary: {e}"))?;
    }
    Ok(Arc::new(over_ssh))
}

/// A number per switch name (in name order): the broadcast keeps nodes with the same number adjacent.
fn switch_indices(switches: &BTreeMap<String, String>) -> BTreeMap<&str, u32> {
    let mut names: Vec<&str> = switches.values().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    names.into_iter().zip(0u32..).collect()
}

/// The PXE writer's configuration: `server.conf`'s `pxe/{dhcp,localboot,networkboot}` and the cluster's
/// `pxe/headers` as loaded; `LOCAL_IP` in export servers becomes the address this server uses to reach the
/// nodes.
fn pxe_config(cluster: &ClusterConfig, loaded: &Loaded) -> PxeConfig {
    let pxe = loaded.pxe_of(cluster);
    match local_ip(cluster) {
        Some(ip) => pxe.with_local_ip(ip),
        None => pxe,
    }
}

/// The local address that routes to the cluster's first node (no packet is sent).
fn local_ip(cluster: &ClusterConfig) -> Option<IpAddr> {
    let node = cluster.nodes.first()?;
    let socket = std::net::UdpSocket::bind(match node.address {
        IpAddr::V4(_) => "0.0.0.0:0",
        IpAddr::V6(_) => "[::]:0",
    })
    .ok()?;
    socket.connect((node.address, 9)).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_are_numbered_by_name() {
        let switches: BTreeMap<String, String> = [("n1", "sw-b"), ("n2", "sw-a"), ("n3", "sw-b")]
            .into_iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect();
        let index = switch_indices(&switches);
        assert_eq!(index.len(), 2);
        assert_eq!((index["sw-a"], index["sw-b"]), (0, 1));
    }
}

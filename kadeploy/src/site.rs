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

use crate::config::{self, ClusterConfig, RemoteOps};
use crate::server::BackendSpec;
use anyhow::Context as _;
use hal::broadcast::deployer::{Agent, KaagentBroadcast, Options};
use hal::broadcast::over_ssh::AgentsOverSsh;
use hal::broadcast::token::DEFAULT_TOKEN_FILE;
use hal::console::command::CommandConsole;
use hal::netboot::pxe::{Headers, PxeConfig, PxeMethod, PxeWriter};
use hal::power::command::{CommandPower, PowerCommands};
use hal::power::ipmi::{IpmiPower, IpmiTarget};
use hal::power::levels::PowerByLevel;
use hal::reachability::tcp::TcpProbe;
use hal::ssh::{SshConfig, SshNodeOps, SshPower};
use hal::{Broadcast, Drivers, NodeId, NodeInfo, Power, PowerAction, PowerLevel};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The name of this backend in `backend/kind`.
pub const KIND: &str = "site";

/// `backend/*` keys of the site backend.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
struct SiteKeys {
    agent_port: u16,
    agent_token_file: String,
    agent_binary: Option<String>,
    command_timeout: u64,
    power_timeout: u64,
    ipmi: Option<IpmiKeys>,
}

impl Default for SiteKeys {
    fn default() -> Self {
        SiteKeys {
            agent_port: 25301,
            agent_token_file: DEFAULT_TOKEN_FILE.into(),
            agent_binary: None,
            command_timeout: 600,
            power_timeout: 60,
            ipmi: None,
        }
    }
}

/// `backend/ipmi`: each node's BMC, by template.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IpmiKeys {
    /// BMC host name template (`HOSTNAME_SHORT-bmc`).
    host: String,
    #[serde(default = "ipmi_port")]
    port: u16,
    user: String,
    /// File holding the password (first line), relative to the configuration directory.
    password_file: String,
}

fn ipmi_port() -> u16 {
    623
}

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

/// Builds the real drivers of `cluster` from the configuration directory `dir`.
pub fn backend(cluster: &ClusterConfig, dir: &Path) -> anyhow::Result<BackendSpec> {
    let loaded = config::load_dir(dir).context("loading the configuration")?;
    let server_text = std::fs::read_to_string(dir.join("server.conf"))
        .with_context(|| format!("reading {}", dir.join("server.conf").display()))?;
    let server: config::wire::ServerFile =
        serde_saphyr::from_str(&server_text).context("server.conf")?;
    let keys: SiteKeys = match &server.backend {
        Some(v) => {
            let mut v = v.clone();
            if let Some(map) = v.as_object_mut() {
                map.remove("kind");
                map.remove("time_scale");
            }
            serde_json::from_value(v).context("server.conf: backend")?
        }
        None => SiteKeys::default(),
    };
    let nodes = cluster.nodes.clone();
    let remoteops = loaded
        .remoteops
        .get(&cluster.name)
        .cloned()
        .unwrap_or_default();

    let key = server
        .ssh_private_key
        .as_deref()
        .map_or_else(|| dir.join("keys/id_deploy"), |k| dir.join(k));
    let mut ssh = SshConfig::new(key);
    ssh.port = loaded.config.server.ssh_port;
    ssh.user = connector_user(&server.external.default_connector).unwrap_or_else(|| "root".into());
    ssh.command_timeout = Duration::from_secs(keys.command_timeout);
    if let Some((instance, timeout)) = shortest_macro_timeout(cluster)
        && keys.command_timeout as f64 >= timeout
    {
        tracing::warn!(
            cluster = %cluster.name,
            "backend/command_timeout ({} s) is not below the {instance} timeout ({timeout} s): a node \
             hung in a command makes its whole group end with a macro-step timeout; lower it",
            keys.command_timeout
        );
    }
    let ops = Arc::new(SshNodeOps::new(nodes.clone(), ssh).context("SSH node operations")?);

    let power = power(cluster, &remoteops, &loaded.commands, &keys, dir, &ops)?;
    let netboot = PxeWriter::new(pxe_config(cluster, &server, dir)?, nodes.clone());
    netboot.validate().context("pxe")?;
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
        let probe = TcpProbe::new(nodes.clone(), Duration::from_secs(2));
        over_ssh = over_ssh
            .with_delivery(probe, dir.join(binary))
            .map_err(|e| anyhow::anyhow!("backend/agent_binary: {e}"))?;
    }
    let broadcast: Arc<dyn Broadcast> = Arc::new(over_ssh);
    let console = CommandConsole::new(nodes.clone(), remoteops.console.clone());
    Ok(BackendSpec {
        drivers: Drivers {
            power,
            netboot: Arc::new(netboot),
            ops,
            reachability: Arc::new(TcpProbe::new(nodes, Duration::from_secs(2))),
            broadcast,
            console: Arc::new(console),
        },
        virtual_time: false,
        image_size: 0,
        image_ratio: 1.0,
    })
}

/// The user of an ssh connector command line (`-l root`, or `user@` is not used by Kadeploy).
/// A number per switch name (in name order): the broadcast keeps nodes with the same number adjacent.
fn switch_indices(switches: &BTreeMap<String, String>) -> BTreeMap<&str, u32> {
    let mut names: Vec<&str> = switches.values().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    names.into_iter().zip(0u32..).collect()
}

fn connector_user(connector: &str) -> Option<String> {
    let mut words = connector.split_whitespace();
    while let Some(w) = words.next() {
        if w == "-l" {
            return words.next().map(str::to_string);
        }
    }
    None
}

/// Power: the `remoteops` templates per level (with `command.conf` overrides); soft reboots over SSH
/// when the cluster has no soft command; the hard level and status through native IPMI when configured.
fn power(
    cluster: &ClusterConfig,
    remoteops: &RemoteOps,
    commands: &config::Commands,
    keys: &SiteKeys,
    dir: &Path,
    ops: &SshNodeOps,
) -> anyhow::Result<Arc<dyn Power>> {
    let mut table = PowerCommands::new();
    for (action, list) in [
        (PowerAction::Reboot, &remoteops.reboot),
        (PowerAction::On, &remoteops.power_on),
        (PowerAction::Off, &remoteops.power_off),
    ] {
        for op in list {
            table = table.with(action, op.name, op.cmd.clone());
        }
    }
    if let Some(status) = &remoteops.power_status {
        table = table.with_status(status.clone());
    }
    let mut overrides = BTreeMap::new();
    for (node, entries) in commands {
        if cluster.nodes.iter().any(|n| &n.name == node) {
            overrides.insert(
                node.clone(),
                PowerCommands::from_command_conf(node, entries.clone())?,
            );
        }
    }
    let commands: Arc<dyn Power> = Arc::new(
        CommandPower::new(
            cluster.nodes.clone(),
            table.clone(),
            Duration::from_secs(keys.power_timeout),
        )
        .with_overrides(overrides)?,
    );
    let has = |level: PowerLevel| {
        [PowerAction::Reboot, PowerAction::On, PowerAction::Off]
            .iter()
            .any(|a| table.get(*a, level).is_some())
    };
    let mut by_level = PowerByLevel::new().status_from(commands.clone());
    by_level = if has(PowerLevel::Soft) {
        by_level.level(PowerLevel::Soft, commands.clone())
    } else {
        by_level.level(PowerLevel::Soft, Arc::new(SshPower::from_node_ops(ops)))
    };
    by_level = by_level
        .level(PowerLevel::Hard, commands.clone())
        .level(PowerLevel::VeryHard, commands);
    if let Some(ipmi) = &keys.ipmi {
        let native: Arc<dyn Power> = Arc::new(ipmi_power(&cluster.nodes, ipmi, dir)?);
        by_level = by_level
            .level(PowerLevel::Hard, native.clone())
            .status_from(native);
    }
    Ok(Arc::new(by_level))
}

/// The native IPMI backend of `backend/ipmi`.
fn ipmi_power(nodes: &[NodeInfo], keys: &IpmiKeys, dir: &Path) -> anyhow::Result<IpmiPower> {
    let file = dir.join(&keys.password_file);
    let password = std::fs::read_to_string(&file)
        .with_context(|| format!("reading {}", file.display()))?
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let targets = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                NodeId(i as u32),
                IpmiTarget {
                    host: hal::power::command::substitute(&keys.host, n),
                    port: keys.port,
                    user: keys.user.clone(),
                    password: password.clone(),
                },
            )
        })
        .collect();
    let power = IpmiPower::new(targets, Duration::from_secs(1), 3);
    power.validate().map_err(anyhow::Error::msg)?;
    Ok(power)
}

/// The PXE writer's configuration: `server.conf`'s `pxe/{dhcp,localboot,networkboot}` and the cluster's
/// `pxe/headers`; `LOCAL_IP` in export servers becomes the address this server uses to reach the nodes.
fn pxe_config(
    cluster: &ClusterConfig,
    server: &config::wire::ServerFile,
    dir: &Path,
) -> anyhow::Result<PxeConfig> {
    let method = |m: &config::wire::PxeMethod| -> anyhow::Result<PxeMethod> {
        let repository = m
            .repository
            .as_deref()
            .context("pxe: repository is missing")?;
        Ok(PxeMethod::new(
            &m.method,
            dir.join(repository),
            m.binary.clone(),
            &m.export.kind,
            &m.export.server,
            &m.profiles.directory,
            &m.profiles.filename,
        )?)
    };
    let dhcp = server.pxe.dhcp.as_ref().context("pxe/dhcp is missing")?;
    let userfiles = dhcp
        .userfiles
        .as_ref()
        .and_then(|u| u.directory.clone())
        .unwrap_or_else(|| "userfiles".into());
    let dhcp_method = method(dhcp)?;
    let mut pxe = PxeConfig::single(dhcp_method, userfiles);
    if let Some(m) = &server.pxe.localboot {
        pxe.localboot = method(m)?;
    }
    if let Some(m) = &server.pxe.networkboot {
        pxe.networkboot = method(m)?;
    }
    pxe.headers = cluster_headers(cluster, dir)?;
    if let Some(ip) = local_ip(cluster) {
        pxe = pxe.with_local_ip(ip);
    }
    Ok(pxe)
}

/// The cluster file's `pxe/headers`.
fn cluster_headers(cluster: &ClusterConfig, dir: &Path) -> anyhow::Result<Headers> {
    let text = std::fs::read_to_string(dir.join("clusters.conf")).context("clusters.conf")?;
    let entries = config::parse_clusters(&text, "clusters.conf")?;
    let Some(entry) = entries.value.iter().find(|e| e.name == cluster.name) else {
        return Ok(Headers::default());
    };
    let path = dir.join(&entry.conf_file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let file: config::wire::ClusterFile =
        serde_saphyr::from_str(&text).with_context(|| entry.conf_file.clone())?;
    let h = file.pxe.headers;
    Ok(Headers {
        dhcp: h.dhcp,
        localboot: h.localboot,
        networkboot: h.networkboot,
    })
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

    #[test]
    fn the_connector_gives_the_ssh_user() {
        assert_eq!(
            connector_user(config::wire::DEFAULT_CONNECTOR).as_deref(),
            Some("root")
        );
        assert_eq!(connector_user("ssh -q -o BatchMode=yes"), None);
    }
}

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

use anyhow::Context as _;
use futures_util::StreamExt as _;
use hal::broadcast::kaagent::{Agent, KaagentBroadcast, Options};
use hal::broadcast::token::{AgentToken, DEFAULT_TOKEN_FILE};
use hal::console::command::CommandConsole;
use hal::netboot::pxe::{Headers, PxeConfig, PxeMethod, PxeWriter};
use hal::power::command::{CommandPower, PowerCommands};
use hal::power::ipmi::{IpmiPower, IpmiTarget};
use hal::power::levels::PowerByLevel;
use hal::reachability::tcp::TcpProbe;
use hal::ssh::{SshConfig, SshNodeOps, SshPower};
use hal::{
    Broadcast, Drivers, ImageSpec, NodeId, NodeInfo, Outcomes, PortCheck, Power, PowerAction,
    PowerLevel, Reachability, Strategy, WriteTarget,
};
use kadeploy::config::{self, ClusterConfig, RemoteOps};
use kadeploy_server::BackendSpec;
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
    check_token_file(&keys.agent_token_file)?;
    let delivery = match &keys.agent_binary {
        None => None,
        Some(binary) => {
            let binary = dir.join(binary);
            anyhow::ensure!(
                binary.is_file(),
                "backend/agent_binary: {} is not a file",
                binary.display()
            );
            Some(AgentDelivery {
                probe: TcpProbe::new(nodes.clone(), Duration::from_secs(2)),
                binary,
            })
        }
    };
    let broadcast: Arc<dyn Broadcast> = Arc::new(AgentsOverSsh {
        inner: kaagent,
        ops: ops.clone(),
        token_file: keys.agent_token_file.clone(),
        port: keys.agent_port,
        delivery,
    });
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

/// `backend/agent_token_file` must be an absolute path of plain characters: it goes into shell
/// command lines on the nodes.
fn check_token_file(path: &str) -> anyhow::Result<()> {
    let plain = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    anyhow::ensure!(
        path.starts_with('/')
            && plain
            && !path.ends_with('/')
            && !path.split('/').any(|p| p == ".."),
        "backend/agent_token_file: {path:?} is not an absolute path of letters, digits, '/', '.', '_' and '-'"
    );
    Ok(())
}

/// The broadcast through `kaagent` with a fresh token per broadcast, handed over SSH (the channel the
/// deployer already trusts, as Ironic hands its agents their tokens): the token is written to each
/// node's token file (root-only); with [`AgentDelivery`], the agent is sent and started where none
/// answers; then the image is broadcast, and the token files are removed. A node where a step fails
/// is not sent the image and fails with that step's error.
struct AgentsOverSsh {
    inner: KaagentBroadcast,
    ops: Arc<SshNodeOps>,
    token_file: String,
    port: u16,
    delivery: Option<AgentDelivery>,
}

/// Sending a static `kaagent` to `/tmp/kaagent` over SSH where no agent answers, and starting it.
struct AgentDelivery {
    probe: TcpProbe,
    binary: std::path::PathBuf,
}

impl AgentsOverSsh {
    /// Runs `command` with `stdin` on every node of `nodes` over SSH; the nodes where it failed.
    async fn on_nodes(
        &self,
        nodes: &[NodeId],
        command: &str,
        stdin: &[u8],
    ) -> BTreeMap<NodeId, hal::NodeError> {
        futures_util::stream::iter(nodes.iter().copied())
            .map(|n| async move {
                let r = self
                    .ops
                    .exec(n, command, stdin)
                    .await
                    .and_then(|out| out.into_outcome());
                (n, r)
            })
            .buffer_unordered(hal::ssh::DEFAULT_CONCURRENCY)
            .filter_map(|(n, r)| async move { r.err().map(|e| (n, e)) })
            .collect()
            .await
    }

    /// Starts the agent where none answers; the nodes where that failed.
    async fn deliver(
        &self,
        delivery: &AgentDelivery,
        nodes: &[NodeId],
    ) -> BTreeMap<NodeId, hal::NodeError> {
        let check = PortCheck {
            up: vec![self.port],
            down: Vec::new(),
        };
        let missing: Vec<NodeId> = delivery
            .probe
            .probe(nodes, &check)
            .await
            .failures()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        if missing.is_empty() {
            return BTreeMap::new();
        }
        tracing::info!(nodes = missing.len(), "sending kaagent over SSH");
        let args = format!(
            "--listen 0.0.0.0:{} --token-file {}",
            self.port, self.token_file
        );
        let started = self
            .ops
            .start_agent(&missing, &delivery.binary, "/tmp/kaagent", &args)
            .await;
        // Give the started agents a moment to listen.
        for _ in 0..20 {
            let ready = delivery.probe.probe(&missing, &check).await;
            if ready.failures().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        started.failures().into_iter().collect()
    }
}

#[async_trait::async_trait]
impl Broadcast for AgentsOverSsh {
    async fn broadcast(
        &self,
        image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        nodes: &[NodeId],
    ) -> Outcomes {
        let token = match AgentToken::generate() {
            Ok(t) => t,
            Err(e) => {
                return Outcomes::all(
                    nodes,
                    Err(hal::NodeError::new(hal::ErrorKind::Config, e.to_string())),
                );
            }
        };
        let file = &self.token_file;
        let write = format!("umask 077 && cat > {file}.new && mv -f {file}.new {file}");
        let mut failed = self
            .on_nodes(nodes, &write, format!("{}\n", token.secret()).as_bytes())
            .await;
        let holding: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|n| !failed.contains_key(n))
            .collect();
        if let Some(delivery) = &self.delivery {
            failed.extend(self.deliver(delivery, &holding).await);
        }
        let ready: Vec<NodeId> = holding
            .iter()
            .copied()
            .filter(|n| !failed.contains_key(n))
            .collect();
        let sent = self
            .inner
            .clone()
            .with_token(token)
            .broadcast(image, target, strategy, &ready)
            .await;
        // The token is of no use after the broadcast: withdraw it (best effort).
        let kept = self.on_nodes(&holding, &format!("rm -f {file}"), b"").await;
        if !kept.is_empty() {
            tracing::warn!(
                nodes = kept.len(),
                "agent token not removed from some nodes"
            );
        }
        let mut sent: BTreeMap<NodeId, _> = sent.0.into_iter().collect();
        Outcomes(
            nodes
                .iter()
                .map(|n| match failed.remove(n) {
                    Some(e) => (*n, Err(e)),
                    None => (
                        *n,
                        sent.remove(n).unwrap_or_else(|| {
                            Err(hal::NodeError::new(
                                hal::ErrorKind::Transfer,
                                "no outcome from the broadcast",
                            ))
                        }),
                    ),
                })
                .collect(),
        )
    }
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
    fn token_files_must_be_plain_absolute_paths() {
        for ok in ["/run/kaagent.token", "/var/lib/kadeploy-agent/token_1"] {
            assert!(check_token_file(ok).is_ok(), "{ok}");
        }
        for bad in [
            "run/kaagent.token",
            "/run/$(reboot)",
            "/run/a b",
            "/run/../etc/shadow",
            "/run/",
            "",
        ] {
            assert!(check_token_file(bad).is_err(), "{bad}");
        }
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

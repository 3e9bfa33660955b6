//! `kacast`'s logic: one broadcast of an image or file to a list of hosts running `kaagent`, outside any
//! deployment, through [`KaagentBroadcast`] (same plans, same token authentication), and each node's
//! timeline (connected, first byte, last byte, verified, written) as JSON and CSV.

use super::deployer::{
    Agent, BroadcastReport, DEFAULT_PORT, KaagentBroadcast, NodeTimeline, Options,
};
use super::token::AgentToken;
use crate::broadcast::{ImageKind, ImageSpec, Strategy, WriteTarget};
use crate::image::MAX_CHUNK_SIZE;
use crate::node::NodeId;
use crate::outcome::{ErrorKind, NodeError, Outcome};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// At most this many hosts in one cast.
pub const MAX_HOSTS: usize = 65_536;

/// Why a cast could not start.
#[derive(Debug, thiserror::Error)]
pub enum CastError {
    /// A strategy name kacast does not know.
    #[error("unknown strategy {0:?} (chain, tree[:ARITY], ft-chain, unicast, multicast, swarm)")]
    Strategy(String),
    /// A host that does not resolve, or a bad host list.
    #[error("host {0:?}: {1}")]
    Host(String, String),
    /// No hosts, or too many.
    #[error("{0} hosts given, 1..={MAX_HOSTS} accepted")]
    HostCount(usize),
    /// A chunk size out of range.
    #[error("chunk size {0} out of 1..={MAX_CHUNK_SIZE}")]
    ChunkSize(u64),
    /// An image kind kacast does not know.
    #[error("unknown image kind {0:?} (dd, tar, fsa)")]
    Kind(String),
    /// The SSH set-up (key, token file path, agent binary) was refused.
    #[error("ssh: {0}")]
    Ssh(String),
    /// The image file cannot be read.
    #[error("image {0}: {1}")]
    Image(String, std::io::Error),
}

/// Parses a strategy: `chain`, `tree` or `tree:K`, `ft-chain`, `unicast`, `multicast`, `swarm`.
pub fn parse_strategy(name: &str) -> Result<Strategy, CastError> {
    let bad = || CastError::Strategy(name.to_string());
    Ok(match name {
        "chain" => Strategy::Chain,
        "tree" => Strategy::Tree { arity: 2 },
        "ft-chain" | "fault-tolerant-chain" => Strategy::FaultTolerantChain,
        "unicast" => Strategy::Unicast,
        "multicast" => Strategy::Multicast,
        "swarm" => Strategy::Swarm,
        other => {
            let arity = other.strip_prefix("tree:").ok_or_else(bad)?;
            let arity: u32 = arity.parse().map_err(|_| bad())?;
            if arity == 0 {
                return Err(bad());
            }
            Strategy::Tree { arity }
        }
    })
}

/// Parses an image kind: `dd`, `tar` or `fsa`.
pub fn parse_kind(name: &str) -> Result<ImageKind, CastError> {
    match name {
        "dd" => Ok(ImageKind::Dd),
        "tar" | "tgz" => Ok(ImageKind::Tar),
        "fsa" => Ok(ImageKind::Fsa),
        other => Err(CastError::Kind(other.to_string())),
    }
}

/// Resolves hosts given as `host` or `host:port` (the agent's default port when none): the agents,
/// named as given, in order.
pub fn resolve_hosts(hosts: &[String]) -> Result<Vec<Agent>, CastError> {
    if hosts.is_empty() || hosts.len() > MAX_HOSTS {
        return Err(CastError::HostCount(hosts.len()));
    }
    hosts
        .iter()
        .map(|h| {
            let with_port = if h.parse::<SocketAddr>().is_ok() || has_port(h) {
                h.clone()
            } else {
                format!("{h}:{DEFAULT_PORT}")
            };
            let addr = with_port
                .to_socket_addrs()
                .map_err(|e| CastError::Host(h.clone(), e.to_string()))?
                .next()
                .ok_or_else(|| CastError::Host(h.clone(), "no address".into()))?;
            Ok(Agent {
                name: h.clone(),
                addr,
                switch: None,
            })
        })
        .collect()
}

/// Whether `host` ends with `:PORT` (and is not a bare IPv6 address).
fn has_port(host: &str) -> bool {
    match host.rsplit_once(':') {
        Some((name, port)) => !name.contains(':') && port.parse::<u16>().is_ok(),
        None => false,
    }
}

/// Hosts from a host file: one a line, blank lines and `#` comments skipped.
pub fn hosts_from_text(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// One cast: the image, where the nodes write it, how, and to whom.
pub struct Cast {
    /// The image or file to send.
    pub image: ImageSpec,
    /// Where every node writes it.
    pub target: WriteTarget,
    /// The broadcast strategy.
    pub strategy: Strategy,
    /// The agents, in order.
    pub agents: Vec<Agent>,
    /// Chunk size, timeouts and the rest.
    pub options: Options,
}

impl Cast {
    /// The image at `path` (its size read from the file).
    pub fn image(path: &str, kind: ImageKind, compression: &str) -> Result<ImageSpec, CastError> {
        let size = std::fs::metadata(path)
            .map_err(|e| CastError::Image(path.to_string(), e))?
            .len();
        Ok(ImageSpec {
            path: path.to_string(),
            kind,
            compression: compression.to_string(),
            size,
            uncompressed_size: None,
        })
    }

    /// Checks a chunk size given on the command line.
    pub fn check_chunk(chunk: u64) -> Result<u32, CastError> {
        u32::try_from(chunk)
            .ok()
            .filter(|c| *c > 0 && *c <= MAX_CHUNK_SIZE)
            .ok_or(CastError::ChunkSize(chunk))
    }

    /// The cast's node ids, `NodeId(i)` for `agents[i]`.
    fn node_ids(&self) -> Vec<NodeId> {
        (0..self.agents.len())
            .map(|i| NodeId(u32::try_from(i).unwrap_or(u32::MAX)))
            .collect()
    }

    /// The deployer's backend over the cast's agents.
    fn backend(&self) -> KaagentBroadcast {
        KaagentBroadcast::new(
            self.node_ids().into_iter().zip(self.agents.iter().cloned()),
            self.options.clone(),
        )
    }

    /// Runs the broadcast to its end (blocking), authenticating to the agents with `token`.
    pub fn run(&self, token: AgentToken) -> Timeline {
        let nodes = self.node_ids();
        let backend = self.backend().with_token(token);
        let report = backend.run(&self.image, &self.target, self.strategy, &nodes);
        Timeline::new(self, &BTreeMap::new(), Some(&report))
    }

    /// Runs the broadcast as the site backend does: a fresh token written over SSH (as `ssh.user`,
    /// with `ssh.key`) to `token_file` on every host, the agent sent and started first where none
    /// answers when `agent_binary` is given, the token removed afterwards. Every agent must listen on
    /// the same port.
    #[cfg(feature = "ssh")]
    pub async fn run_over_ssh(
        &self,
        ssh: crate::ssh::SshConfig,
        token_file: &str,
        agent_binary: Option<std::path::PathBuf>,
    ) -> Result<Timeline, CastError> {
        use super::over_ssh::AgentsOverSsh;
        use crate::node::NodeInfo;
        use crate::reachability::tcp::TcpProbe;
        use std::sync::Arc;
        let port = self
            .agents
            .first()
            .map(|a| a.addr.port())
            .unwrap_or(DEFAULT_PORT);
        if let Some(a) = self.agents.iter().find(|a| a.addr.port() != port) {
            return Err(CastError::Host(
                a.name.clone(),
                format!("over SSH, every agent listens on one port ({port})"),
            ));
        }
        let infos: Vec<NodeInfo> = self
            .agents
            .iter()
            .map(|a| NodeInfo {
                name: a.name.clone(),
                address: a.addr.ip(),
            })
            .collect();
        let timeout = ssh.connect_timeout;
        let ops = crate::ssh::SshNodeOps::new(infos.clone(), ssh)
            .map_err(|e| CastError::Ssh(e.to_string()))?;
        let mut over = AgentsOverSsh::new(self.backend(), Arc::new(ops), token_file, port)
            .map_err(|e| CastError::Ssh(e.to_string()))?;
        if let Some(binary) = agent_binary {
            over = over
                .with_delivery(TcpProbe::new(infos, timeout), binary)
                .map_err(|e| CastError::Ssh(e.to_string()))?;
        }
        let nodes = self.node_ids();
        let (failed, report) = over
            .run(&self.image, &self.target, self.strategy, &nodes)
            .await;
        Ok(Timeline::new(self, &failed, report.as_ref()))
    }
}

/// One node's line of the timeline: seconds since the cast began, absent when the step was not reached.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeLine {
    /// The host as given.
    pub node: String,
    /// Its agent's address.
    pub addr: String,
    /// Whether the node wrote the image.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
    /// The job connection authenticated.
    pub connected: Option<f64>,
    /// The first verified chunk kept.
    pub first_byte: Option<f64>,
    /// The last verified chunk kept.
    pub last_byte: Option<f64>,
    /// The whole image checked.
    pub verified: Option<f64>,
    /// The image written.
    pub written: Option<f64>,
}

/// The outcome of a cast: totals and one line per node.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timeline {
    /// The strategy, as kadeploy names it.
    pub strategy: String,
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// Image size in bytes.
    pub image_bytes: u64,
    /// Whole cast in seconds, set-up included.
    pub elapsed: f64,
    /// Chunks the nodes found corrupted and fetched again.
    pub refetched: u64,
    /// `(from, successor, why)` for each successor dropped.
    pub lost: Vec<(String, String, String)>,
    /// One line per node, in the order given.
    pub nodes: Vec<NodeLine>,
}

impl Timeline {
    /// The timeline of `cast`: the nodes of `failed` failed before the broadcast, the others are in
    /// `report` (when it ran).
    fn new(
        cast: &Cast,
        failed: &BTreeMap<NodeId, NodeError>,
        report: Option<&BroadcastReport>,
    ) -> Self {
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
        let timelines: BTreeMap<NodeId, NodeTimeline> = report
            .map(|r| r.timeline.iter().copied().collect())
            .unwrap_or_default();
        let outcomes: BTreeMap<NodeId, Outcome> = report
            .map(|r| r.outcomes.0.iter().cloned().collect())
            .unwrap_or_default();
        let nodes =
            cast.node_ids()
                .into_iter()
                .zip(&cast.agents)
                .map(|(id, agent)| {
                    let t = timelines.get(&id).copied().unwrap_or_default();
                    let outcome = match failed.get(&id) {
                        Some(e) => Err(e.clone()),
                        None => outcomes.get(&id).cloned().unwrap_or_else(|| {
                            Err(NodeError::new(ErrorKind::Transfer, "no outcome"))
                        }),
                    };
                    NodeLine {
                        node: agent.name.clone(),
                        addr: agent.addr.to_string(),
                        ok: outcome.is_ok(),
                        error: outcome.err().map(|e| e.to_string()),
                        connected: secs(t.connected),
                        first_byte: secs(t.first_byte),
                        last_byte: secs(t.last_byte),
                        verified: secs(t.verified),
                        written: secs(t.written),
                    }
                })
                .collect();
        Timeline {
            strategy: cast.strategy.to_string(),
            chunk_size: cast.options.chunk_size,
            image_bytes: cast.image.size,
            elapsed: report.map_or(0.0, |r| r.elapsed.as_secs_f64()),
            refetched: report.map_or(0, |r| r.refetched),
            lost: report.map(|r| r.lost.clone()).unwrap_or_default(),
            nodes,
        }
    }

    /// Whether every node wrote the image.
    pub fn all_ok(&self) -> bool {
        self.nodes.iter().all(|n| n.ok)
    }

    /// The timeline as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The node lines as CSV: `node,addr,ok,connected,first_byte,last_byte,verified,written,error`,
    /// seconds with microsecond precision, empty when a step was not reached.
    pub fn to_csv(&self) -> String {
        let mut out =
            String::from("node,addr,ok,connected,first_byte,last_byte,verified,written,error\n");
        let secs = |t: Option<f64>| t.map(|t| format!("{t:.6}")).unwrap_or_default();
        for n in &self.nodes {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{}",
                csv_field(&n.node),
                csv_field(&n.addr),
                n.ok,
                secs(n.connected),
                secs(n.first_byte),
                secs(n.last_byte),
                secs(n.verified),
                secs(n.written),
                csv_field(n.error.as_deref().unwrap_or("")),
            );
        }
        out
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_parse_by_their_command_line_names() {
        assert_eq!(parse_strategy("chain").unwrap(), Strategy::Chain);
        assert_eq!(
            parse_strategy("tree:4").unwrap(),
            Strategy::Tree { arity: 4 }
        );
        assert_eq!(
            parse_strategy("ft-chain").unwrap(),
            Strategy::FaultTolerantChain
        );
        assert_eq!(parse_strategy("swarm").unwrap(), Strategy::Swarm);
        for bad in ["tree:0", "tree:x", "ring", ""] {
            assert!(parse_strategy(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_get_the_default_port_and_keep_theirs() {
        let a = resolve_hosts(&["127.0.0.1".into(), "127.0.0.2:99".into()]).unwrap();
        assert_eq!(a[0].addr, SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)));
        assert_eq!(a[1].addr, SocketAddr::from(([127, 0, 0, 2], 99)));
        assert!(matches!(resolve_hosts(&[]), Err(CastError::HostCount(0))));
        assert_eq!(
            hosts_from_text("a\n# c\n\n b # x\n"),
            vec!["a".to_string(), "b".to_string()]
        );
    }

    #[test]
    fn csv_fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}

//! [`AgentsOverSsh`]: the `kaagent` broadcast with a fresh token per broadcast, handed to the nodes over
//! SSH (the channel the deployer already trusts, as Ironic hands its agents their tokens), and, with
//! [`AgentsOverSsh::with_delivery`], the agent itself sent and started where none answers.

use super::deployer::{BroadcastReport, KaagentBroadcast};
use super::token::AgentToken;
use crate::broadcast::{Broadcast, ImageSpec, Strategy, WriteTarget};
use crate::node::NodeId;
use crate::outcome::{ErrorKind, NodeError, Outcomes, for_each_node};
use crate::reachability::tcp::TcpProbe;
use crate::reachability::{PortCheck, Reachability};
use crate::ssh::{DEFAULT_CONCURRENCY, SshNodeOps};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where a delivered agent is written on the nodes (its log goes beside it, `<path>.log`).
pub const DELIVERED_AGENT_PATH: &str = "/tmp/kaagent";

/// A set-up the decorator refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OverSshError {
    /// The token file's path goes into shell command lines on the nodes: it must be plain.
    #[error("{0:?} is not an absolute path of letters, digits, '/', '.', '_' and '-'")]
    TokenFile(String),
    /// The agent binary to deliver is missing.
    #[error("{} is not a file", .0.display())]
    AgentBinary(PathBuf),
}

/// The broadcast through `kaagent` with a fresh token per broadcast: the token is written over SSH to
/// each node's token file (root-only); with a delivery, the agent is sent and started where none
/// answers; then the image is broadcast, and the token files are removed. A node where a step fails
/// is not sent the image and fails with that step's error.
pub struct AgentsOverSsh {
    inner: KaagentBroadcast,
    ops: Arc<SshNodeOps>,
    token_file: String,
    port: u16,
    delivery: Option<AgentDelivery>,
}

/// Sending a static `kaagent` to [`DELIVERED_AGENT_PATH`] over SSH where no agent answers, and
/// starting it.
struct AgentDelivery {
    probe: TcpProbe,
    binary: PathBuf,
}

impl AgentsOverSsh {
    /// Broadcasts through `inner` to agents listening on `port`, handing them each broadcast's token
    /// over `ops` in `token_file` on the nodes (an absolute path of plain characters).
    pub fn new(
        inner: KaagentBroadcast,
        ops: Arc<SshNodeOps>,
        token_file: &str,
        port: u16,
    ) -> Result<Self, OverSshError> {
        check_token_file(token_file)?;
        Ok(AgentsOverSsh {
            inner,
            ops,
            token_file: token_file.to_string(),
            port,
            delivery: None,
        })
    }

    /// The same broadcast sending `binary` (a static `kaagent`) to the nodes where `probe` finds no
    /// agent listening, and starting it there.
    pub fn with_delivery(mut self, probe: TcpProbe, binary: PathBuf) -> Result<Self, OverSshError> {
        if !binary.is_file() {
            return Err(OverSshError::AgentBinary(binary));
        }
        self.delivery = Some(AgentDelivery { probe, binary });
        Ok(self)
    }

    /// Runs `command` with `stdin` on every node of `nodes` over SSH; the nodes where it failed.
    async fn on_nodes(
        &self,
        nodes: &[NodeId],
        command: &str,
        stdin: &[u8],
    ) -> BTreeMap<NodeId, NodeError> {
        let (command, stdin): (Arc<str>, Arc<[u8]>) = (command.into(), stdin.into());
        for_each_node(nodes, DEFAULT_CONCURRENCY, |node| {
            let (ops, command, stdin) = (self.ops.clone(), command.clone(), stdin.clone());
            async move {
                ops.exec(node, &command, &stdin)
                    .await
                    .and_then(|out| out.into_outcome())
            }
        })
        .await
        .failures()
        .into_iter()
        .collect()
    }

    /// Starts the agent where none answers; the nodes where that failed.
    async fn deliver(
        &self,
        delivery: &AgentDelivery,
        nodes: &[NodeId],
    ) -> BTreeMap<NodeId, NodeError> {
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
        let failed: BTreeMap<NodeId, NodeError> = self
            .ops
            .start_agent(&missing, &delivery.binary, DELIVERED_AGENT_PATH, &args)
            .await
            .failures()
            .into_iter()
            .collect();
        // Give the started agents a moment to listen (not the nodes it could not start on: an
        // unreachable one made this wait its 20 rounds, 50 s more in the lab's faults run).
        let started: Vec<NodeId> = missing
            .into_iter()
            .filter(|n| !failed.contains_key(n))
            .collect();
        for _ in 0..20 {
            if started.is_empty() {
                break;
            }
            let ready = delivery.probe.probe(&started, &check).await;
            if ready.failures().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        failed
    }
}

impl AgentsOverSsh {
    /// Runs one broadcast with a fresh token: the nodes where the token or agent step failed (not
    /// sent the image), and the report of the broadcast to the others.
    pub async fn run(
        &self,
        image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        nodes: &[NodeId],
    ) -> (BTreeMap<NodeId, NodeError>, Option<BroadcastReport>) {
        self.run_on(self.inner.clone(), image, target, strategy, nodes)
            .await
    }

    /// [`AgentsOverSsh::run`] through `inner` (this backend's own, or a copy with another chunk size).
    async fn run_on(
        &self,
        inner: KaagentBroadcast,
        image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        nodes: &[NodeId],
    ) -> (BTreeMap<NodeId, NodeError>, Option<BroadcastReport>) {
        let token = match AgentToken::generate() {
            Ok(t) => t,
            Err(e) => {
                let e = NodeError::new(ErrorKind::Config, e.to_string());
                return (nodes.iter().map(|n| (*n, e.clone())).collect(), None);
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
        let inner = inner.with_token(token);
        let (image, target) = (image.clone(), target.clone());
        let sent =
            tokio::task::spawn_blocking(move || inner.run(&image, &target, strategy, &ready)).await;
        // The token is of no use after the broadcast: withdraw it (best effort).
        let kept = self.on_nodes(&holding, &format!("rm -f {file}"), b"").await;
        if !kept.is_empty() {
            tracing::warn!(
                nodes = kept.len(),
                "agent token not removed from some nodes"
            );
        }
        match sent {
            Ok(report) => (failed, Some(report)),
            Err(e) => {
                let e = NodeError::new(ErrorKind::Transfer, format!("broadcast task: {e}"));
                failed.extend(holding.iter().map(|n| (*n, e.clone())));
                (failed, None)
            }
        }
    }
}

#[async_trait]
impl Broadcast for AgentsOverSsh {
    async fn broadcast(
        &self,
        image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        nodes: &[NodeId],
    ) -> Outcomes {
        self.outcomes(self.inner.clone(), image, target, strategy, nodes)
            .await
    }

    async fn broadcast_chunked(
        &self,
        image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        chunk: u32,
        nodes: &[NodeId],
    ) -> Outcomes {
        match self.inner.chunked(chunk, nodes) {
            Ok(inner) => self.outcomes(inner, image, target, strategy, nodes).await,
            Err(refused) => refused,
        }
    }
}

impl AgentsOverSsh {
    /// One outcome per node of a broadcast through `inner`: the token or agent step's failure, else
    /// the broadcast's.
    async fn outcomes(
        &self,
        inner: KaagentBroadcast,
        image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        nodes: &[NodeId],
    ) -> Outcomes {
        let (mut failed, report) = self.run_on(inner, image, target, strategy, nodes).await;
        let mut sent: BTreeMap<NodeId, _> = report
            .map(|r| r.outcomes.0.into_iter().collect())
            .unwrap_or_default();
        Outcomes(
            nodes
                .iter()
                .map(|n| match failed.remove(n) {
                    Some(e) => (*n, Err(e)),
                    None => (
                        *n,
                        sent.remove(n).unwrap_or_else(|| {
                            Err(NodeError::new(
                                ErrorKind::Transfer,
                                "no outcome from the broadcast",
                            ))
                        }),
                    ),
                })
                .collect(),
        )
    }
}

/// The token file's path goes into shell command lines on the nodes: it must be an absolute path of
/// plain characters.
fn check_token_file(path: &str) -> Result<(), OverSshError> {
    let plain = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    let ok = path.starts_with('/')
        && plain
        && !path.ends_with('/')
        && !path.split('/').any(|p| p == "..");
    if ok {
        Ok(())
    } else {
        Err(OverSshError::TokenFile(path.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_token_file_error_names_the_path_and_the_rule() {
        let e = check_token_file("/run/a b").unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"/run/a b\" is not an absolute path of letters, digits, '/', '.', '_' and '-'"
        );
    }
}

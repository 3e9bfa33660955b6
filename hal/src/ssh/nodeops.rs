//! [`SshNodeOps`]: every [`Operation`] as a shell command over SSH, plus the deployer's helpers
//! (arbitrary commands and starting the node agent).

use super::archive;
use super::client::{ExecOutput, Input, SshClient};
use super::config::{SshConfig, SshError};
use super::script::{self, quote};
use crate::node::{NodeId, NodeInfo};
use crate::nodeops::{NodeOps, Operation};
use crate::outcome::{ErrorKind, NodeError, Outcome, Outcomes, for_each_node};
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Default number of nodes contacted at the same time.
pub const DEFAULT_CONCURRENCY: usize = 64;

/// Runs node operations over SSH on a fixed node table (indexed by [`NodeId`]).
#[derive(Clone)]
pub struct SshNodeOps {
    pub(super) client: Arc<SshClient>,
    pub(super) concurrency: usize,
}

impl SshNodeOps {
    /// A backend for `nodes` (`NodeId(i)` is `nodes[i]`), loading the key of `config`.
    pub fn new(nodes: Vec<NodeInfo>, config: SshConfig) -> Result<SshNodeOps, SshError> {
        Ok(SshNodeOps {
            client: Arc::new(SshClient::new(nodes, config)?),
            concurrency: DEFAULT_CONCURRENCY,
        })
    }

    /// The same backend contacting at most `limit` nodes at a time.
    pub fn with_concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit.max(1);
        self
    }

    /// Runs `command` on `node` with `stdin` as its input and returns its status and output.
    /// Errors are connection failures ([`ErrorKind::Unreachable`]) and timeouts, not exit statuses.
    pub async fn exec(&self, node: NodeId, command: &str, stdin: &[u8]) -> Outcome<ExecOutput> {
        let input = if stdin.is_empty() {
            Input::Empty
        } else {
            Input::Bytes(Arc::new(stdin.to_vec()))
        };
        self.client.exec(node, command, input).await
    }

    /// Uploads `local_binary` to `remote_path` on every node, makes it executable and starts it
    /// detached with `args` (a shell-interpreted argument string), its output going to
    /// `<remote_path>.log`. A running copy is replaced without "text file busy".
    pub async fn start_agent(
        &self,
        nodes: &[NodeId],
        local_binary: &Path,
        remote_path: &str,
        args: &str,
    ) -> Outcomes {
        let tmp = format!("{remote_path}.new");
        let parent = match remote_path.rsplit_once('/') {
            Some((p, _)) if !p.is_empty() => format!("mkdir -p {} && ", quote(p)),
            _ => String::new(),
        };
        let command = format!(
            "{parent}cat > {t} && chmod 755 {t} && mv -f {t} {p} && {{ (trap '' HUP; exec {p} {args}) </dev/null >{log} 2>&1 & }}",
            t = quote(&tmp),
            p = quote(remote_path),
            log = quote(&format!("{remote_path}.log")),
        );
        self.run_command(nodes, command, Input::File(local_binary.to_path_buf()))
            .await
    }

    async fn run_command(&self, nodes: &[NodeId], command: String, input: Input) -> Outcomes {
        let command: Arc<str> = command.into();
        for_each_node(nodes, self.concurrency, |node| {
            let client = self.client.clone();
            let command = command.clone();
            let input = input.clone();
            async move { client.check(node, &command, input).await }
        })
        .await
    }

    /// The standard input `op` needs, read on the server.
    async fn input(op: &Operation) -> Outcome<Input> {
        Ok(match op {
            Operation::SendKey { keys, .. } => {
                let mut keys = keys.clone();
                if !keys.ends_with('\n') {
                    keys.push('\n');
                }
                Input::Bytes(Arc::new(keys.into_bytes()))
            }
            Operation::RunScript { script, .. } => {
                Input::Bytes(Arc::new(script.clone().into_bytes()))
            }
            Operation::SendFile { source, .. } => Input::File(PathBuf::from(source)),
            Operation::InstallArchive { archive, .. } => {
                Input::Bytes(Arc::new(archive::load_tar(archive).await?))
            }
            _ => Input::Empty,
        })
    }
}

#[async_trait]
impl NodeOps for SshNodeOps {
    async fn run(&self, op: &Operation, nodes: &[NodeId]) -> Outcomes {
        let input = match Self::input(op).await {
            Ok(input) => input,
            Err(e) => return Outcomes::all(nodes, Err(e)),
        };
        let command = script::command(op);
        tracing::debug!(op = op.name(), nodes = nodes.len(), "ssh operation");
        self.run_command(nodes, command, input).await
    }
}

/// Fails with [`ErrorKind::NotSupported`] and Kadeploy's message for a missing command.
pub(crate) fn not_provided(what: &str) -> NodeError {
    NodeError::new(
        ErrorKind::NotSupported,
        format!("{what} command is not provided"),
    )
}

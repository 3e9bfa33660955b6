//! One SSH connection per node and command: connect, authenticate, run, collect the exit status and output.

use super::config::{SshConfig, SshError};
use crate::node::{NodeId, NodeInfo};
use crate::outcome::{ErrorKind, NodeError, Outcome};
use russh::client::{self, Handle};
use russh::keys::{Algorithm, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::timeout;

/// At most this many bytes of stdout and of stderr are kept per command.
const OUTPUT_LIMIT: usize = 1 << 20;

/// What a command run over SSH produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit status (255 when the command was killed by a signal).
    pub status: u32,
    /// Standard output (at most 1 MiB).
    pub stdout: Vec<u8>,
    /// Standard error (at most 1 MiB).
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// Standard output as text, trimmed.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_string()
    }

    /// Standard error as text, trimmed.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }

    /// OK when the status is 0, else [`ErrorKind::CommandFailed`] with the trimmed stderr.
    pub fn into_outcome(self) -> Outcome {
        if self.status == 0 {
            return Ok(());
        }
        let stderr = self.stderr_text();
        let message = if stderr.is_empty() {
            format!("command exited with status {}", self.status)
        } else {
            stderr
        };
        Err(NodeError::new(ErrorKind::CommandFailed, message))
    }
}

/// Standard input of a remote command.
#[derive(Clone, Debug)]
pub(crate) enum Input {
    /// Nothing (end of file at once).
    Empty,
    /// Bytes held in memory, shared by the nodes.
    Bytes(Arc<Vec<u8>>),
    /// A file of the server, streamed.
    File(PathBuf),
}

/// Accepts any host key: nodes are reinstalled, so their keys change (`StrictHostKeyChecking=no`).
struct AnyHostKey;

impl client::Handler for AnyHostKey {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// The node table, the key and the settings shared by the SSH backends.
pub(crate) struct SshClient {
    nodes: Vec<NodeInfo>,
    config: SshConfig,
    key: Arc<PrivateKey>,
    russh: Arc<client::Config>,
}

impl SshClient {
    /// Loads the key of `config`.
    pub(crate) fn new(nodes: Vec<NodeInfo>, config: SshConfig) -> Result<Self, SshError> {
        let key = russh::keys::load_secret_key(&config.key, None).map_err(|e| SshError::Key {
            path: config.key.clone(),
            message: e.to_string(),
        })?;
        let russh = client::Config {
            nodelay: true,
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 3,
            ..Default::default()
        };
        Ok(SshClient {
            nodes,
            config,
            key: Arc::new(key),
            russh: Arc::new(russh),
        })
    }

    /// The facts of `node`, or a configuration error when it is not in the table.
    pub(crate) fn node(&self, node: NodeId) -> Outcome<&NodeInfo> {
        crate::outcome::lookup(&self.nodes, node)
    }

    /// Runs `command` on `node` with `input` on its stdin, and returns what it produced.
    pub(crate) async fn exec(
        &self,
        node: NodeId,
        command: &str,
        input: Input,
    ) -> Outcome<ExecOutput> {
        let info = self.node(node)?;
        let input = open_input(input).await?;
        let addr = SocketAddr::new(info.address, self.config.port);
        tracing::debug!(node = %info.name, %addr, command, "ssh exec");
        let session = match timeout(self.config.connect_timeout, self.connect(addr)).await {
            Ok(session) => session?,
            Err(_) => {
                return Err(NodeError::new(
                    ErrorKind::Unreachable,
                    format!(
                        "cannot connect to {addr}: timed out after {:?}",
                        self.config.connect_timeout
                    ),
                ));
            }
        };
        let result = timeout(self.config.command_timeout, run(&session, command, input)).await;
        let _ = session
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
        match result {
            Ok(output) => output,
            Err(_) => Err(NodeError::new(
                ErrorKind::Timeout,
                format!("command timed out after {:?}", self.config.command_timeout),
            )),
        }
    }

    /// Runs `command` on `node`: OK on exit status 0, else the failure with its stderr.
    pub(crate) async fn check(&self, node: NodeId, command: &str, input: Input) -> Outcome {
        self.exec(node, command, input).await?.into_outcome()
    }

    async fn connect(&self, addr: SocketAddr) -> Outcome<Handle<AnyHostKey>> {
        let unreachable = |e: russh::Error| {
            NodeError::new(
                ErrorKind::Unreachable,
                format!("cannot connect to {addr}: {e}"),
            )
        };
        let mut session = client::connect(self.russh.clone(), addr, AnyHostKey)
            .await
            .map_err(unreachable)?;
        let hash = if matches!(self.key.algorithm(), Algorithm::Rsa { .. }) {
            session
                .best_supported_rsa_hash()
                .await
                .map_err(unreachable)?
                .flatten()
        } else {
            None
        };
        let auth = session
            .authenticate_publickey(
                self.config.user.clone(),
                PrivateKeyWithHashAlg::new(self.key.clone(), hash),
            )
            .await
            .map_err(unreachable)?;
        if !auth.success() {
            return Err(NodeError::new(
                ErrorKind::Unreachable,
                format!("authentication as {} refused by {addr}", self.config.user),
            ));
        }
        Ok(session)
    }
}

/// Standard input ready to stream: a file is opened before connecting, so a missing file fails early.
enum OpenInput {
    Empty,
    Bytes(Arc<Vec<u8>>),
    File(tokio::fs::File),
}

async fn open_input(input: Input) -> Outcome<OpenInput> {
    Ok(match input {
        Input::Empty => OpenInput::Empty,
        Input::Bytes(b) => OpenInput::Bytes(b),
        Input::File(path) => OpenInput::File(tokio::fs::File::open(&path).await.map_err(|e| {
            NodeError::new(
                ErrorKind::Transfer,
                format!("cannot read {}: {e}", path.display()),
            )
        })?),
    })
}

/// Runs `command` on a new channel of `session`, feeding `input` while reading the output.
async fn run(session: &Handle<AnyHostKey>, command: &str, input: OpenInput) -> Outcome<ExecOutput> {
    let lost = |e: russh::Error| {
        NodeError::new(ErrorKind::Unreachable, format!("SSH channel failed: {e}"))
    };
    let channel = session.channel_open_session().await.map_err(lost)?;
    channel.exec(true, command).await.map_err(lost)?;
    let (mut rx, tx) = channel.split();
    let writer = tokio::spawn(async move {
        let sent = match input {
            OpenInput::Empty => Ok(()),
            OpenInput::Bytes(b) => tx.data(&b[..]).await,
            OpenInput::File(f) => tx.data(f).await,
        };
        let _ = tx.eof().await;
        sent.map(|()| tx)
    });
    let mut out = ExecOutput::default();
    let mut status = None;
    while let Some(msg) = rx.wait().await {
        match msg {
            ChannelMsg::Data { data } => push_limited(&mut out.stdout, &data),
            ChannelMsg::ExtendedData { data, ext: 1 } => push_limited(&mut out.stderr, &data),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                push_limited(
                    &mut out.stderr,
                    format!("\nkilled by signal {signal_name:?}").as_bytes(),
                );
                status = Some(255);
            }
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    if writer.is_finished() {
        if let Ok(Ok(tx)) = writer.await {
            let _ = tx.close().await;
        }
    } else {
        writer.abort();
    }
    match status {
        Some(s) => {
            out.status = s;
            Ok(out)
        }
        None => Err(NodeError::new(
            ErrorKind::Unreachable,
            "connection lost before the command finished",
        )),
    }
}

fn push_limited(buf: &mut Vec<u8>, data: &[u8]) {
    let room = OUTPUT_LIMIT.saturating_sub(buf.len());
    buf.extend_from_slice(&data[..data.len().min(room)]);
}

//! Console through a command template whose standard input and output are the console.

use crate::console::{Console, ConsoleStream};
use crate::node::{NodeId, NodeInfo};
use crate::outcome::{ErrorKind, NodeError, Outcome};
use crate::power::command::{kill_process_group, substitute};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Opens consoles by running a command template per node (`HOSTNAME_FQDN`/`HOSTNAME_SHORT`
/// substituted), e.g. `socat - UNIX-CONNECT:/lab/HOSTNAME_SHORT/console.sock` or
/// `ipmitool -H HOSTNAME_SHORT-bmc sol activate`.
pub struct CommandConsole {
    nodes: Vec<NodeInfo>,
    template: Option<String>,
    overrides: BTreeMap<String, String>,
}

impl CommandConsole {
    /// Consoles of `nodes` (`NodeId(i)` is `nodes[i]`) through `template` (`None`: no console).
    pub fn new(nodes: Vec<NodeInfo>, template: Option<String>) -> Self {
        CommandConsole {
            nodes,
            template,
            overrides: BTreeMap::new(),
        }
    }

    /// Adds per-node templates (node name → template), which win over the cluster's.
    pub fn with_overrides(mut self, overrides: BTreeMap<String, String>) -> Self {
        self.overrides = overrides;
        self
    }
}

#[async_trait]
impl Console for CommandConsole {
    async fn attach(&self, node: NodeId) -> Outcome<Box<dyn ConsoleStream>> {
        let info = crate::outcome::lookup(&self.nodes, node)?;
        let template = self
            .overrides
            .get(&info.name)
            .or(self.template.as_ref())
            .ok_or_else(|| {
                NodeError::new(ErrorKind::NotSupported, "console command is not provided")
            })?;
        let command = substitute(template, info);
        tracing::debug!(node = %info.name, command, "attaching console");
        let process = ConsoleProcess::spawn(&command).map_err(|e| {
            NodeError::new(
                ErrorKind::CommandFailed,
                format!("cannot run {command:?}: {e}"),
            )
        })?;
        Ok(Box::new(process))
    }
}

/// A console command's pipes as one byte stream; the command's process group is killed on drop.
pub struct ConsoleProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl ConsoleProcess {
    /// Runs `command` through `sh -c` in its own process group with piped stdin and stdout.
    pub fn spawn(command: &str) -> io::Result<Self> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(io::Error::other("console pipes missing"));
        };
        Ok(ConsoleProcess {
            child,
            stdin,
            stdout,
        })
    }
}

impl Drop for ConsoleProcess {
    fn drop(&mut self) {
        if let (Ok(None), Some(pid)) = (self.child.try_wait(), self.child.id()) {
            kill_process_group(pid);
        }
        let _ = self.child.start_kill();
    }
}

impl AsyncRead for ConsoleProcess {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConsoleProcess {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

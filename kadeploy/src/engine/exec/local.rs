//! Commands the engine runs on the server itself (Kadeploy's `Microstep#command`): `set_vlan`'s
//! `network/vlan/set_cmd` and the custom broadcast's `localops/broadcastenv/cmd`.
//!
//! A command runs through `sh -c` in its own process group on a blocking thread (a paused virtual clock
//! does not jump while it runs). It is killed, with everything it started, when the workflow is cancelled
//! or the step is abandoned (a macro-step timeout), and when it ends (so that a background child holding
//! its output open cannot hang the step). At most [`OUTPUT_LIMIT`] bytes of each output are kept.

use crate::engine::context::Context;
use crate::output::secs;
use hal::{ErrorKind, NodeError, NodeId, Outcomes};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Bytes of each output of a command that are kept.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// How a server-side command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// Its exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// The start of its standard output.
    pub stdout: String,
    /// The start of its standard error.
    pub stderr: String,
}

/// Why a server-side command did not finish.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// `sh` could not be started, or waiting for it failed.
    #[error("cannot run the command: {0}")]
    Io(#[from] std::io::Error),
    /// The workflow was cancelled or the step abandoned: the command was killed.
    #[error("the command was killed")]
    Killed,
}

impl LocalError {
    /// The kind the engine decides on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LocalError::Io(_) => ErrorKind::CommandFailed,
            LocalError::Killed => ErrorKind::Cancelled,
        }
    }
}

/// Sets its flag when dropped: the future running a command was abandoned.
struct Abandon(Arc<AtomicBool>);

impl Drop for Abandon {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Runs `command` on the server; `cancel` kills it.
pub async fn run(command: String, cancel: CancellationToken) -> Result<Finished, LocalError> {
    let abandoned = Arc::new(AtomicBool::new(false));
    let guard = Abandon(abandoned.clone());
    let job = tokio::task::spawn_blocking(move || run_blocking(&command, &abandoned, &cancel));
    let result = job
        .await
        .map_err(|e| LocalError::Io(std::io::Error::other(e.to_string())))?;
    drop(guard);
    result
}

/// Kills the process group `pgid` (the shell's `kill` builtin: no dependency on procps).
fn kill_group(pgid: u32) {
    let _ = Command::new("sh")
        .args(["-c", &format!("kill -KILL -{pgid} 2>/dev/null")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Reads `r` to its end, keeping the first [`OUTPUT_LIMIT`] bytes.
fn read_bounded(mut r: impl Read) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

fn run_blocking(
    command: &str,
    abandoned: &AtomicBool,
    cancel: &CancellationToken,
) -> Result<Finished, LocalError> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let pgid = child.id();
    let readers = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    ]
    .map(|pipe| pipe.map(|p| std::thread::spawn(move || read_bounded(p))));
    let status = loop {
        if abandoned.load(Ordering::Acquire) || cancel.is_cancelled() {
            kill_group(pgid);
            let _ = child.wait();
            return Err(LocalError::Killed);
        }
        match child.try_wait()? {
            Some(status) => break status,
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    kill_group(pgid);
    let [stdout, stderr] = readers.map(|r| r.and_then(|h| h.join().ok()).unwrap_or_default());
    Ok(Finished {
        code: status.code(),
        stdout,
        stderr,
    })
}

/// `set_vlan`: runs `set_cmd` for `nodes` (`NODES` = ` -m h1 -m h2…`, `VLAN_ID` = `id`, `USER` = `user`);
/// every node fails with `Cannot set the VLAN` when it fails.
pub async fn set_vlan(ctx: &Context, id: &str, user: &str, nodes: &[NodeId]) -> Outcomes {
    let Some(vlan) = &ctx.server.vlan else {
        return fail(nodes, ErrorKind::Config, "VLAN management is disabled");
    };
    let hosts: Vec<&str> = nodes.iter().map(|&n| ctx.name(n)).collect();
    let command = vlan.command(&hosts, id, user);
    tracing::debug!(command, "set_vlan");
    match run(command, ctx.cancel.clone()).await {
        Ok(f) if f.code == Some(0) => Outcomes::all(nodes, Ok(())),
        Ok(_) => fail(nodes, ErrorKind::CommandFailed, "Cannot set the VLAN"),
        Err(e) => fail(nodes, e.kind(), format!("Cannot set the VLAN: {e}")),
    }
}

/// What the custom broadcast substitutes in `localops/broadcastenv/cmd` (Kadeploy's
/// `send_tarball_and_uncompress_with_custom`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomBroadcast {
    /// The command, with its placeholders.
    pub template: String,
    /// `ENVFILE`: the image on the server.
    pub envfile: String,
    /// `DECOMPRESS`: what each node runs on the image it receives.
    pub decompress: String,
    /// `TAKTUK_CONNECTOR`: `external/taktuk/connector`.
    pub connector: String,
}

/// A fresh file name for a node list (`NODEFILE`).
fn nodefile_path() -> std::path::PathBuf {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!(
        "kadeploy-nodefile-{}-{}-{nanos}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Writes `lines` to a new file readable by its owner only.
fn write_nodefile(lines: &[String]) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = nodefile_path();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    for line in lines {
        writeln!(file, "{line}")?;
    }
    Ok(path)
}

/// `send_environment(:custom)`: runs the cluster's command on the server with `NODEFILE` listing the
/// nodes (host names, or addresses with `use_ip_to_deploy`); its exit status decides for every node.
pub async fn custom_broadcast(ctx: &Context, b: &CustomBroadcast, nodes: &[NodeId]) -> Outcomes {
    let ids: Vec<String> = nodes
        .iter()
        .map(|&n| match ctx.cluster.nodes.get(n.index()) {
            Some(info) if ctx.cluster.use_ip_to_deploy => info.address.to_string(),
            _ => ctx.name(n).to_string(),
        })
        .collect();
    let nodefile = match write_nodefile(&ids) {
        Ok(path) => path,
        Err(e) => {
            let message = format!("Cannot write the node file of the broadcast: {e}");
            return fail(nodes, ErrorKind::CommandFailed, message);
        }
    };
    let command = b
        .template
        .replace("ENVFILE", &b.envfile)
        .replace("NODEFILE", &nodefile.display().to_string())
        .replace("DECOMPRESS", &b.decompress)
        .replace("TAKTUK_CONNECTOR", &b.connector);
    let program = command
        .split_whitespace()
        .next()
        .and_then(|w| w.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    tracing::debug!(command, "custom broadcast");
    let start = ctx.now();
    let result = run(command, ctx.cancel.clone()).await;
    let _ = std::fs::remove_file(&nodefile);
    match result {
        Ok(f) if f.code == Some(0) => {
            ctx.output.push(
                3,
                format!("   * Broadcast time: {}", secs(ctx.now() - start)),
            );
            Outcomes::all(nodes, Ok(()))
        }
        Ok(f) => {
            let status = f
                .code
                .map_or_else(|| "a signal".to_string(), |c| c.to_string());
            let message = format!(
                "Error while processing to the file broadcast with {program} (exited with status {status})"
            );
            fail(nodes, ErrorKind::CommandFailed, message)
        }
        Err(e) => fail(
            nodes,
            e.kind(),
            format!("Error while processing to the file broadcast with {program}: {e}"),
        ),
    }
}

/// Every node of `nodes` fails with `message`.
fn fail(nodes: &[NodeId], kind: ErrorKind, message: impl Into<String>) -> Outcomes {
    Outcomes::all(nodes, Err(NodeError::new(kind, message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outputs_are_bounded_and_the_exit_code_kept() {
        let f = run(
            "head -c 200000 /dev/zero | tr '\\0' x; echo oops >&2; exit 3".into(),
            CancellationToken::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.code, Some(3));
        assert_eq!(f.stdout.len(), OUTPUT_LIMIT);
        assert_eq!(f.stderr, "oops\n");
    }

    /// A cancelled workflow kills its command and everything it started.
    #[tokio::test]
    async fn cancelling_kills_the_command() {
        let cancel = CancellationToken::new();
        let (c, start) = (cancel.clone(), std::time::Instant::now());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            c.cancel();
        });
        let r = run("sleep 60 & sleep 60".into(), cancel).await;
        assert!(matches!(r, Err(LocalError::Killed)), "{r:?}");
        assert!(start.elapsed() < Duration::from_secs(30));
    }
}

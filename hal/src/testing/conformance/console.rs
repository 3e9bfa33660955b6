//! Contracts of [`Console`]: a known node's console opens, carries bytes both ways when its far end
//! echoes, closes (shutdown, then drop) and opens again; an unknown node fails as a config error.

use super::{Checked, Contract, Nodes, Violation, check_unknown};
use crate::{Console, ConsoleStream, NodeId};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Most bytes read while waiting for an echoed line.
const MAX_ECHO_READ: usize = 64 * 1024;

/// The consoles of a console backend under test.
#[derive(Clone, Debug)]
pub struct ConsoleSubject {
    /// The nodes to check on (their consoles open).
    pub nodes: Nodes,
    /// Whether each console's far end echoes the lines written to it (a shell, a login prompt, `cat`).
    pub echoes: bool,
    /// Longest wait for an echo or a close.
    pub timeout: Duration,
}

/// Runs every console contract on `console`.
pub async fn check_console<C: Console + ?Sized>(console: &C, subject: &ConsoleSubject) -> Checked {
    subject.nodes.validate("console subject")?;
    for &node in &subject.nodes.known {
        let call = format!("attach({node})");
        let stream = attach(console, node, &call).await?;
        let stream = match subject.echoes {
            true => echo(stream, node, &call, subject.timeout).await?,
            false => stream,
        };
        close(stream, &call, subject.timeout).await?;
        let call = format!("attach({node}) after a close");
        let again = attach(console, node, &call).await?;
        drop(again);
    }
    let unknown = subject.nodes.unknown;
    let call = format!("attach({unknown})");
    let got = console.attach(unknown).await.map(drop);
    check_unknown(&call, unknown, &got)
}

/// Attaches to `node`'s console, which must open.
async fn attach<C: Console + ?Sized>(
    console: &C,
    node: NodeId,
    call: &str,
) -> Result<Box<dyn ConsoleStream>, Violation> {
    console.attach(node).await.map_err(|e| {
        Violation::new(
            Contract::Success,
            call,
            format!("{node} gave {e:?}, expected a console"),
        )
    })
}

/// Writes a line and reads until it comes back.
async fn echo(
    mut stream: Box<dyn ConsoleStream>,
    node: NodeId,
    call: &str,
    timeout: Duration,
) -> Result<Box<dyn ConsoleStream>, Violation> {
    let line = format!("kadeploy-conformance-{}", node.0);
    let exchange = async {
        stream.write_all(format!("{line}\n").as_bytes()).await?;
        stream.flush().await?;
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&seen).contains(&line) {
            if seen.len() > MAX_ECHO_READ {
                return Err(std::io::Error::other("no echo in the first 64 KiB"));
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::Error::other("the console closed before the echo"));
            }
            seen.extend_from_slice(&buf[..n]);
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(())) => Ok(stream),
        Ok(Err(e)) => Err(Violation::new(
            Contract::Console,
            call,
            format!("echo: {e}"),
        )),
        Err(_) => Err(Violation::new(
            Contract::Console,
            call,
            format!("no echo of {line:?} within {timeout:?}"),
        )),
    }
}

/// Shuts the stream down (it must not fail nor hang), then drops it.
async fn close(mut stream: Box<dyn ConsoleStream>, call: &str, timeout: Duration) -> Checked {
    match tokio::time::timeout(timeout, stream.shutdown()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Violation::new(
            Contract::Console,
            call,
            format!("shutdown: {e}"),
        )),
        Err(_) => Err(Violation::new(
            Contract::Console,
            call,
            format!("shutdown hangs for {timeout:?}"),
        )),
    }
}

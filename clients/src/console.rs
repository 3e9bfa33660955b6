//! `kaconsole3` (spec §2.8): opens a node's console with `POST /console`, sends the console's secret (the
//! reply's `secret`, when the server gives one) as the first line on its TCP address, then relays the
//! terminal until EOF, the server closing, Ctrl-] or the kill sequence (four ESC), then closes it.

use super::{Api, ClientEnv, ClientError, nodes};
use clap::Parser;
use reqwest::Method;
use serde_json::json;
use std::io::IsTerminal as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Ctrl-].
const CTRL_RBRACKET: u8 = 0x1d;
/// ESC; four in a row end the session.
const ESC: u8 = 0x1b;

/// `kaconsole3` options.
#[derive(Parser, Debug)]
#[command(
    name = "kaconsole3",
    about = "Node console",
    disable_version_flag = true
)]
pub struct ConsoleCli {
    #[command(flatten)]
    global: crate::global::GlobalArgs,
    /// The node.
    #[arg(short = 'm', long = "machine")]
    machines: Vec<String>,
}

/// Runs `kaconsole3` on the process's terminal.
pub fn kaconsole(args: &[String], env: &ClientEnv) -> i32 {
    let cli: ConsoleCli = match super::parse_args("kaconsole3", args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    crate::trace::capture_fd4();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let tty = std::io::stdin().is_terminal();
    if cli.global.version || cli.global.server_info {
        return crate::block_on(async { cli.global.answer_info(env).await.map(|_| ()) });
    }
    let saved = if tty { raw_mode() } else { None };
    let result = rt.block_on(async {
        let list = nodes(&cli.machines, &[])?;
        let [node] = list.as_slice() else {
            return Err(ClientError::Usage(
                "exactly one node must be given with -m".into(),
            ));
        };
        if tty {
            eprint!("[Kaconsole] kill sequence: ^[^[^[^[\r\n");
        }
        let api = (cli.global.connect(env).await?.into_iter().next())
            .ok_or_else(|| ClientError::Usage("No server is reachable".into()))?;
        session_on(api, node, tokio::io::stdin(), tokio::io::stdout()).await
    });
    if let Some(s) = saved {
        let _ = std::process::Command::new("stty")
            .arg(s)
            .stdin(std::process::Stdio::inherit())
            .status();
    }
    // The stdin reader is a blocking thread that may never return: do not wait for it.
    rt.shutdown_background();
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            e.code()
        }
    }
}

/// Puts the terminal in raw mode with `stty`; returns the settings to restore.
fn raw_mode() -> Option<String> {
    let out = std::process::Command::new("stty")
        .arg("-g")
        .stdin(std::process::Stdio::inherit())
        .output()
        .ok()?;
    let saved = String::from_utf8_lossy(&out.stdout).trim().to_string();
    std::process::Command::new("stty")
        .args(["raw", "-echo"])
        .stdin(std::process::Stdio::inherit())
        .status()
        .ok()?;
    Some(saved)
}

/// Opens the console of `node`, relays `input` to it and its output to `output` until the server closes
/// the connection (after `input` ends or the kill sequence), then deletes the console if it still exists.
pub async fn session(
    env: &ClientEnv,
    server: Option<&str>,
    node: &str,
    input: impl AsyncRead + Unpin,
    output: impl AsyncWrite + Unpin,
) -> Result<(), ClientError> {
    session_on(Api::connect(env, server).await?, node, input, output).await
}

/// As [`session`], on a connected server.
pub async fn session_on(
    api: Api,
    node: &str,
    input: impl AsyncRead + Unpin,
    mut output: impl AsyncWrite + Unpin,
) -> Result<(), ClientError> {
    let created = api
        .json(Method::POST, "/console", &[], Some(&json!({"node": node})))
        .await?;
    let id = created["wid"].as_str().unwrap_or_default().to_string();
    let resource = created["resources"]["resource"]
        .as_str()
        .map(|r| r.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("/console/{id}"));
    let uri = created["resources"]["console"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let secret = created["secret"].as_str().map(|s| format!("{s}\n"));
    let relay = async {
        let mut tcp = connect(&api, &uri).await?;
        if let Some(secret) = &secret {
            tcp.write_all(secret.as_bytes())
                .await
                .map_err(|e| ClientError::Usage(format!("connecting to {uri}: {e}")))?;
        }
        let (mut from, mut to) = tcp.split();
        let upstream = async {
            let _ = forward(input, &mut to).await;
            let _ = to.shutdown().await;
        };
        let downstream = async {
            let _ = tokio::io::copy(&mut from, &mut output).await;
            let _ = output.flush().await;
        };
        // The relay ends when the server closes; an ended input only half-closes the connection.
        tokio::select! {
            _ = async { tokio::join!(upstream, std::future::pending::<()>()) } => {}
            _ = downstream => {}
        }
        Ok::<(), ClientError>(())
    };
    let relayed = relay.await;
    let list = api.json(Method::GET, "/console", &[], None).await?;
    let open = list
        .as_array()
        .is_some_and(|l| l.iter().any(|c| c["id"] == id.as_str()));
    if open {
        api.json(Method::DELETE, &resource, &[], None).await?;
    }
    relayed
}

/// Connects to `tcp://host:port`; when `host` does not answer, tries the HTTP server's host.
async fn connect(api: &Api, uri: &str) -> Result<tokio::net::TcpStream, ClientError> {
    let addr = uri
        .strip_prefix("tcp://")
        .ok_or_else(|| ClientError::Usage(format!("invalid console address '{uri}'")))?;
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| ClientError::Usage(format!("invalid console address '{uri}'")))?;
    let stream = match tokio::net::TcpStream::connect((host, port.parse().unwrap_or(0))).await {
        Ok(s) => s,
        Err(e) => {
            let server = api
                .base
                .split("://")
                .nth(1)
                .and_then(|h| h.rsplit_once(':'))
                .map(|(h, _)| h.to_string());
            match server {
                Some(h) if h != host => {
                    tokio::net::TcpStream::connect((h.as_str(), port.parse().unwrap_or(0)))
                        .await
                        .map_err(|e| ClientError::Usage(format!("connecting to {uri}: {e}")))?
                }
                _ => return Err(ClientError::Usage(format!("connecting to {uri}: {e}"))),
            }
        }
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Copies `input` to `to` until EOF, Ctrl-] or four ESC in a row (not forwarded).
async fn forward(
    mut input: impl AsyncRead + Unpin,
    to: &mut (impl AsyncWrite + Unpin),
) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    let mut escapes = 0usize;
    loop {
        let n = input.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            escapes = if b == ESC { escapes + 1 } else { 0 };
            if b == CTRL_RBRACKET || escapes == 4 {
                let end = if b == ESC { i.saturating_sub(3) } else { i };
                to.write_all(&buf[..end]).await?;
                return Ok(());
            }
        }
        to.write_all(&buf[..n]).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn forward_stops_at_the_kill_sequences() {
        let mut out = Vec::new();
        forward(&b"ls\nexit\x1dmore"[..], &mut out).await.unwrap();
        assert_eq!(out, b"ls\nexit");
        let mut out = Vec::new();
        forward(&b"a\x1bb\x1b\x1b\x1b\x1bc"[..], &mut out)
            .await
            .unwrap();
        assert_eq!(out, b"a\x1bb");
        let mut out = Vec::new();
        forward(&b"plain\n"[..], &mut out).await.unwrap();
        assert_eq!(out, b"plain\n");
    }
}

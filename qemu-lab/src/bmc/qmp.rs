//! A minimal QMP client: connect to QEMU's monitor socket, negotiate capabilities, run one command.

use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Why a QMP command failed.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// The socket could not be used.
    #[error("QMP socket {path}: {source}")]
    Io {
        /// The socket path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// QEMU did not answer in time.
    #[error("QMP socket {0}: no answer in time")]
    Timeout(String),
    /// QEMU answered with an error or closed the connection.
    #[error("QMP socket {path}: {reason}")]
    Protocol {
        /// The socket path.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// Runs `command` (e.g. `quit`, `system_reset`) on the QMP socket at `path` and returns its `return` value.
pub async fn execute(path: &Path, command: &str, timeout: Duration) -> Result<Value, QmpError> {
    let p = path.display().to_string();
    tokio::time::timeout(timeout, run(path, command))
        .await
        .map_err(|_| QmpError::Timeout(p.clone()))?
}

async fn run(path: &Path, command: &str) -> Result<Value, QmpError> {
    let p = path.display().to_string();
    let io = |source| QmpError::Io {
        path: p.clone(),
        source,
    };
    let stream = UnixStream::connect(path).await.map_err(io)?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let greeting = next_message(&mut lines, &p).await?;
    if greeting.get("QMP").is_none() {
        return Err(QmpError::Protocol {
            path: p,
            reason: "no QMP greeting".into(),
        });
    }
    for cmd in ["qmp_capabilities", command] {
        let line = format!("{}\n", json!({ "execute": cmd }));
        write.write_all(line.as_bytes()).await.map_err(io)?;
        loop {
            let msg = next_message(&mut lines, &p).await?;
            if let Some(err) = msg.get("error") {
                return Err(QmpError::Protocol {
                    path: p,
                    reason: format!("{cmd}: {err}"),
                });
            }
            if let Some(ret) = msg.get("return") {
                if cmd == command {
                    return Ok(ret.clone());
                }
                break;
            }
            // Events (e.g. SHUTDOWN) arrive between replies: skip them.
        }
    }
    Ok(Value::Null)
}

async fn next_message(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    path: &str,
) -> Result<Value, QmpError> {
    loop {
        let line = lines
            .next_line()
            .await
            .map_err(|source| QmpError::Io {
                path: path.into(),
                source,
            })?
            .ok_or_else(|| QmpError::Protocol {
                path: path.into(),
                reason: "connection closed".into(),
            })?;
        if line.trim().is_empty() {
            continue;
        }
        return serde_json::from_str(&line).map_err(|e| QmpError::Protocol {
            path: path.into(),
            reason: format!("bad JSON: {e}"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    #[tokio::test]
    async fn negotiates_then_runs_the_command_skipping_events() {
        let dir = std::env::temp_dir().join(format!("kalab-bmc-qmp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("qmp.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            let mut lines = BufReader::new(r).lines();
            w.write_all(b"{\"QMP\": {\"version\": {}}}\n")
                .await
                .unwrap();
            let mut seen = Vec::new();
            while let Ok(Some(l)) = lines.next_line().await {
                seen.push(l);
                w.write_all(b"{\"event\": \"SHUTDOWN\"}\n{\"return\": {}}\n")
                    .await
                    .unwrap();
            }
            seen
        });
        let ret = execute(&path, "system_reset", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(ret, json!({}));
        let seen = server.await.unwrap();
        assert!(
            seen[0].contains("qmp_capabilities") && seen[1].contains("system_reset"),
            "{seen:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

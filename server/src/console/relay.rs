//! The listener of a console: accepting and admitting clients runs on the API's runtime (real time);
//! only the attached relay runs on the cluster's executor, where the console driver lives.

use super::{ALREADY_ATTACHED, Attached, Console, REFUSED};
use crate::App;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections of one console waiting to present the secret; more are closed at once.
const MAX_PENDING: usize = 8;
/// The longest line a client may send before the secret is checked.
const MAX_SECRET_LINE: usize = 128;

/// Where a console's clients are relayed, and its waits.
#[derive(Clone)]
pub struct Place {
    /// The application that opened the console.
    pub app: Weak<App>,
    /// The node's cluster.
    pub cluster: usize,
    /// The node.
    pub node: hal::NodeId,
    /// How long a client has to send the secret.
    pub wait: Duration,
    /// How long the console lives with no client attached.
    pub expire: Duration,
}

/// The accept loop, on the API's runtime: connections from the requester's address may present the
/// secret; the console expires once nobody has been attached for `place.expire`.
pub async fn listen(console: Arc<Console>, listener: std::net::TcpListener, place: Place) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(id = %console.id, "console listener: {e}");
            console.fail();
            return;
        }
    };
    let pending = Arc::new(Semaphore::new(MAX_PENDING));
    loop {
        let expiry = console.expiry(place.expire);
        let deadline = tokio::time::Instant::from_std(expiry.unwrap_or_else(Instant::now));
        let accepted = tokio::select! {
            _ = console.cancel.cancelled() => return,
            _ = console.detached() => continue,
            _ = tokio::time::sleep_until(deadline), if expiry.is_some() => {
                if console.expiry(place.expire).is_some_and(|t| t <= Instant::now()) {
                    tracing::info!(id = %console.id, "no client attached to the console: closed");
                    close(&place.app, &console);
                    return;
                }
                continue;
            }
            a = listener.accept() => a,
        };
        let (tcp, from) = match accepted {
            Ok(a) => a,
            Err(e) if is_transient(&e) => {
                tracing::warn!(id = %console.id, "console listener: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => {
                tracing::warn!(id = %console.id, "console listener: {e}");
                console.fail();
                return;
            }
        };
        if !console.accepts_from(from.ip()) {
            tracing::warn!(id = %console.id, %from, "console connection from another address than its requester's: closed");
            continue;
        }
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            continue;
        };
        tokio::spawn(admit(console.clone(), tcp, place.clone(), permit));
    }
}

/// An accept error after which the listener still works (no file descriptor or memory left, a
/// connection aborted before it was accepted).
fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::OutOfMemory
    ) || e.raw_os_error().is_some_and(|c| c == 24 || c == 23)
}

/// Closes `console` and forgets it.
fn close(app: &Weak<App>, console: &Console) {
    console.cancel.cancel();
    if let Some(app) = app.upgrade() {
        app.consoles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&console.id);
    }
}

/// Reads the first line a client sends (at most [`MAX_SECRET_LINE`] bytes, one at a time so that nothing
/// after the newline is consumed), without its newline.
async fn first_line(tcp: &mut tokio::net::TcpStream) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    while line.len() < MAX_SECRET_LINE {
        let byte = tcp.read_u8().await?;
        if byte == b'\n' {
            break;
        }
        line.push(byte);
    }
    Ok(line)
}

/// Checks the secret a client sends first; the client that presents it is attached: its connection
/// moves to the cluster's executor, which attaches the node's console and relays it both ways.
async fn admit(
    console: Arc<Console>,
    mut tcp: tokio::net::TcpStream,
    place: Place,
    _pending: OwnedSemaphorePermit,
) {
    let line = tokio::time::timeout(place.wait, first_line(&mut tcp)).await;
    let presented = line.ok().and_then(Result::ok).unwrap_or_default();
    if !console.take_secret(&presented) {
        tracing::warn!(id = %console.id, "console connection without its secret: refused");
        let _ =
            tokio::time::timeout(Duration::from_secs(1), tcp.write_all(REFUSED.as_bytes())).await;
        return;
    }
    let Some(guard) = console.attach() else {
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            tcp.write_all(ALREADY_ATTACHED.as_bytes()),
        )
        .await;
        return;
    };
    let Some(app) = place.app.upgrade() else {
        return;
    };
    let Some(cluster) = app.clusters.get(place.cluster) else {
        return;
    };
    let tcp = match tcp.into_std() {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(id = %console.id, "console connection: {e}");
            return;
        }
    };
    let driver = cluster.backend.drivers.console.clone();
    let node = place.node;
    let job = Box::new(
        move || -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
            Box::pin(relay(guard, tcp, driver, node))
        },
    );
    if !cluster.executor.spawn(job) {
        tracing::error!("the executor of cluster {} is gone", cluster.config.name);
        console.fail();
    }
}

/// On the cluster's executor: attaches the node's console and relays it to `tcp` both ways until either
/// side closes or the console is closed.
async fn relay(
    guard: Attached,
    tcp: std::net::TcpStream,
    driver: Arc<dyn hal::Console>,
    node: hal::NodeId,
) {
    let console = guard.console();
    let mut tcp = match tokio::net::TcpStream::from_std(tcp) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(id = %console.id, "console connection: {e}");
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let cancel = console.cancel.clone();
    let mut stream = match driver.attach(node).await {
        Ok(s) => s,
        Err(e) => {
            let _ = tcp.write_all(format!("[Kaconsole] {e}\n").as_bytes()).await;
            return;
        }
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::io::copy_bidirectional(&mut tcp, &mut stream) => {}
    }
    let _ = tcp.shutdown().await;
    drop(guard);
}

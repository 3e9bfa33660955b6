//! Node consoles (spec §3.8): `POST /console {node}` opens a TCP listener relaying the node's console
//! (the cluster's `hal::Console` driver, attached on the cluster's executor); `GET /console[/<id>]`,
//! `GET /console/<id>/error` and `DELETE /console/<id>`.
//!
//! Unlike Kadeploy, whose listener relays whoever connects first, a console accepts only the client that
//! opened it: the connection must come from the requester's address and first send the console's one-time
//! secret (the `secret` key of the `POST` reply, never shown again) and a newline; anything else gets
//! [`REFUSED`] and is closed. A console no client is attached to closes after `limits/console_timeout`,
//! and at most `limits/max_consoles` are open. Listening and admission run on the API's runtime (real
//! time); only the attached relay runs on the cluster's executor, where the driver lives.

use super::App;
use super::reply::{HttpError, Key, Reply, Ruby, forbidden, not_found};
use super::route::{Req, method_not_allowed};
use super::submit::resolve;
use axum::http::{Method, StatusCode};
use kadeploy::error::{ApiError, RequestError};
use serde_json::json;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// What a second client reads while a console is attached.
const ALREADY_ATTACHED: &str = "[Kaconsole] console already attached\n";
/// What a client reads when it is not the one that opened the console (wrong address or secret).
pub const REFUSED: &str =
    "[Kaconsole] refused: this console accepts only the client that opened it (and its secret)\n";
/// Connections of one console waiting to present the secret; more are closed at once.
const MAX_PENDING: usize = 8;
/// The longest line a client may send before the secret is checked.
const MAX_SECRET_LINE: usize = 128;

/// One open console.
pub struct Console {
    /// `C-<uuid>`.
    pub id: String,
    /// Owner.
    pub user: String,
    /// Node name.
    pub node: String,
    /// `tcp://host:port`.
    pub uri: String,
    started: Instant,
    /// Closes the listener and the relay.
    pub cancel: CancellationToken,
    attached: AtomicBool,
    error: AtomicBool,
    /// The requester's address: the only one allowed to connect.
    peer: IpAddr,
    /// The one-time secret, until a client presents it.
    secret: Mutex<Option<String>>,
    /// Since when no client is attached.
    idle_since: Mutex<Instant>,
    /// Signalled when the attached client leaves.
    detached: Notify,
}

impl Console {
    /// The console object (`console_get`, Symbol keys in Kadeploy's order); `attached` and
    /// `console_uri` only for the owner or an almighty user.
    pub fn view(&self, full: bool) -> Ruby {
        let time = (self.started.elapsed().as_secs_f64() * 100.0).round() / 100.0;
        let mut v = Ruby::symbols([
            ("id", Ruby::from(&self.id)),
            ("user", Ruby::from(&self.user)),
            ("node", Ruby::from(&self.node)),
            ("error", self.error.load(Ordering::SeqCst).into()),
        ]);
        if full {
            v.set(sym("attached"), self.attached.load(Ordering::SeqCst));
            v.set(sym("console_uri"), &self.uri);
        }
        v.set(sym("time"), time);
        v
    }
}

fn sym(name: &str) -> Key {
    Key::Sym(name.to_string())
}

/// Releases the "attached" flag when a relay ends, however it ends.
struct Attached(Arc<Console>);

impl Drop for Attached {
    fn drop(&mut self) {
        *self.0.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.attached.store(false, Ordering::SeqCst);
        self.0.detached.notify_one();
    }
}

impl Console {
    /// Consumes the secret when `presented` is it (compared in constant time).
    fn take_secret(&self, presented: &[u8]) -> bool {
        let mut secret = self.secret.lock().unwrap_or_else(|e| e.into_inner());
        let matches = secret.as_ref().is_some_and(|s| {
            s.len() == presented.len()
                && s.bytes()
                    .zip(presented)
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if matches {
            *secret = None;
        }
        matches
    }

    /// When the console expires if nobody attaches; `None` while a client is attached.
    fn expiry(&self, timeout: Duration) -> Option<Instant> {
        if self.attached.load(Ordering::SeqCst) {
            return None;
        }
        Some(*self.idle_since.lock().unwrap_or_else(|e| e.into_inner()) + timeout)
    }
}

/// A fresh console secret: 64 hex digits (244 bits from the system's random source).
fn new_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn invalid_id(id: &str) -> HttpError {
    RequestError::new(
        ApiError::InvalidWorkflowId,
        format!("Invalid console ID '{id}'"),
    )
    .into()
}

/// The server's host name, as Kadeploy's `Socket.gethostname`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Dispatches `/console` routes.
pub fn route(app: &Arc<App>, r: Req) -> Result<Reply, HttpError> {
    if r.segs.len() == 1 {
        return match r.method {
            Method::POST => create(app, &r),
            Method::GET => {
                let all = app.consoles.lock().unwrap_or_else(|e| e.into_inner());
                let items: Vec<Ruby> = all
                    .values()
                    .map(|c| c.view(r.almighty || c.user == r.user))
                    .collect();
                Ok(Reply::Ruby(Ruby::Array(items)))
            }
            _ => Err(method_not_allowed("GET, POST")),
        };
    }
    if r.segs.len() > 3 {
        return Err(not_found(String::new()));
    }
    let id = r.segs[1].as_str();
    let console = app
        .consoles
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id)
        .cloned()
        .ok_or_else(|| invalid_id(id))?;
    let owner = r.almighty || console.user == r.user;
    let sub = r.segs.get(2).map(String::as_str);
    match (&r.method, sub) {
        (&Method::DELETE, None) => {
            if !owner {
                return Err(forbidden("You do not the rights to perform this operation"));
            }
            console.cancel.cancel();
            app.consoles
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&console.id);
            Ok(Reply::Ruby(Ruby::symbols([(
                "wid",
                Ruby::from(&console.id),
            )])))
        }
        (&Method::DELETE, _) => Err(method_not_allowed("GET")),
        (&Method::GET, None) => Ok(Reply::Ruby(console.view(owner))),
        (&Method::GET, Some("error")) => {
            if !owner {
                return Err(forbidden("You do not the rights to perform this operation"));
            }
            if console.error.load(Ordering::SeqCst) {
                Err(HttpError::Status(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the console listener died".into(),
                ))
            } else {
                Ok(Reply::Text(String::new()))
            }
        }
        (&Method::GET, Some(_)) => Err(not_found(String::new())),
        _ => Err(method_not_allowed("GET, DELETE")),
    }
}

/// `POST /console {node}`.
fn create(app: &Arc<App>, r: &Req) -> Result<Reply, HttpError> {
    let node = r.params.string("node")?.ok_or_else(|| {
        RequestError::new(ApiError::MissingOption, "Parameter 'node': is mandatory")
    })?;
    let names = resolve(app, &[node])?;
    let [name] = names.as_slice() else {
        return Err(RequestError::new(
            ApiError::InvalidNodelist,
            "Parameter 'node': exactly one node is expected",
        )
        .into());
    };
    if !app.settings.rights_dummy && !app.store.granted(&r.user, names.as_slice(), "")? {
        return Err(RequestError::new(ApiError::InvalidRights, "").into());
    }
    let Some(&(ci, id)) = app.nodes.get(name) else {
        return Err(invalid_id(name));
    };
    let cluster_name = &app.clusters[ci].config.name;
    if app
        .settings
        .console_clusters
        .as_ref()
        .is_some_and(|c| !c.contains(cluster_name))
    {
        return Err(forbidden(
            "This feature is disabled: no console command is given in configuration file.",
        ));
    }
    let limits = &app.settings.limits;
    let too_many = || {
        HttpError::Status(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "Too many open consoles (limits/max_consoles is {}): close one with DELETE /console/<id> \
                 or wait for unattached ones to expire",
                limits.max_consoles
            ),
        )
    };
    if app.consoles.lock().unwrap_or_else(|e| e.into_inner()).len() >= limits.max_consoles {
        return Err(too_many());
    }
    let internal = |e: std::io::Error| {
        HttpError::Status(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the console listener cannot be opened: {e}"),
        )
    };
    let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
        HttpError::Status(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("no runtime for the console listener: {e}"),
        )
    })?;
    let ip = if app.settings.local_only {
        "127.0.0.1"
    } else {
        "0.0.0.0"
    };
    let listener = std::net::TcpListener::bind((ip, 0)).map_err(internal)?;
    listener.set_nonblocking(true).map_err(internal)?;
    let port = listener.local_addr().map_err(internal)?.port();
    let secret = new_secret();
    let console = Arc::new(Console {
        id: format!("C-{}", uuid::Uuid::new_v4()),
        user: r.user.clone(),
        node: name.clone(),
        uri: format!("tcp://{}:{port}", hostname()),
        started: Instant::now(),
        cancel: CancellationToken::new(),
        attached: AtomicBool::new(false),
        error: AtomicBool::new(false),
        peer: r.peer.ip().to_canonical(),
        secret: Mutex::new(Some(secret.clone())),
        idle_since: Mutex::new(Instant::now()),
        detached: Notify::new(),
    });
    {
        let mut table = app.consoles.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= limits.max_consoles {
            return Err(too_many());
        }
        table.insert(console.id.clone(), console.clone());
    }
    let place = Place {
        app: Arc::downgrade(app),
        cluster: ci,
        node: id,
        wait: limits.header_timeout,
        expire: limits.console_timeout,
    };
    runtime.spawn(listen(console.clone(), listener, place));
    let base = format!("/console/{}", console.id);
    Ok(Reply::Data(json!({
        "wid": console.id,
        "resources": {"resource": format!("{base}/"), "error": format!("{base}/error"), "console": console.uri},
        "secret": secret,
    })))
}

/// Where a console's clients are relayed, and its waits.
#[derive(Clone)]
struct Place {
    app: Weak<App>,
    cluster: usize,
    node: hal::NodeId,
    /// How long a client has to send the secret.
    wait: Duration,
    /// How long the console lives with no client attached.
    expire: Duration,
}

/// The accept loop, on the API's runtime: connections from the requester's address may present the
/// secret; the console expires once nobody has been attached for `place.expire`.
async fn listen(console: Arc<Console>, listener: std::net::TcpListener, place: Place) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(id = %console.id, "console listener: {e}");
            console.error.store(true, Ordering::SeqCst);
            return;
        }
    };
    let pending = Arc::new(Semaphore::new(MAX_PENDING));
    loop {
        let expiry = console.expiry(place.expire);
        let deadline = tokio::time::Instant::from_std(expiry.unwrap_or_else(Instant::now));
        let accepted = tokio::select! {
            _ = console.cancel.cancelled() => return,
            _ = console.detached.notified() => continue,
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
                console.error.store(true, Ordering::SeqCst);
                return;
            }
        };
        if from.ip().to_canonical() != console.peer {
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
    if console.attached.swap(true, Ordering::SeqCst) {
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            tcp.write_all(ALREADY_ATTACHED.as_bytes()),
        )
        .await;
        return;
    }
    let guard = Attached(console.clone());
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
        console.error.store(true, Ordering::SeqCst);
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
    let mut tcp = match tokio::net::TcpStream::from_std(tcp) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(id = %guard.0.id, "console connection: {e}");
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let cancel = guard.0.cancel.clone();
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

/// Closes `user`'s consoles on nodes where they no longer hold any right.
pub fn kill_unauthorized(app: &App, user: &str) -> Result<(), RequestError> {
    if app.settings.rights_dummy {
        return Ok(());
    }
    let mine: Vec<Arc<Console>> = app
        .consoles
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .filter(|c| c.user == user)
        .cloned()
        .collect();
    for c in mine {
        if !app.store.granted(user, std::slice::from_ref(&c.node), "")? {
            c.cancel.cancel();
            app.consoles
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&c.id);
        }
    }
    Ok(())
}

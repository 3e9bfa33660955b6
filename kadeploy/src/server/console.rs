//! Node consoles (spec §3.8): `POST /console {node}` opens a TCP listener relaying the node's console
//! (the cluster's `hal::Console` driver, attached on the cluster's executor); `GET /console[/<id>]`,
//! `GET /console/<id>/error` and `DELETE /console/<id>`.

use super::App;
use super::reply::{HttpError, Key, Reply, Ruby, forbidden, not_found};
use super::route::{Req, method_not_allowed};
use super::submit::resolve;
use crate::error::{ApiError, RequestError};
use axum::http::{Method, StatusCode};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

/// What a second client reads while a console is attached.
const ALREADY_ATTACHED: &str = "[Kaconsole] console already attached\n";

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
    started: std::time::Instant,
    /// Closes the listener and the relay.
    pub cancel: CancellationToken,
    attached: AtomicBool,
    error: AtomicBool,
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
        self.0.attached.store(false, Ordering::SeqCst);
    }
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
    let internal = |e: std::io::Error| {
        HttpError::Status(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the console listener cannot be opened: {e}"),
        )
    };
    let ip = if app.settings.local_only {
        "127.0.0.1"
    } else {
        "0.0.0.0"
    };
    let listener = std::net::TcpListener::bind((ip, 0)).map_err(internal)?;
    listener.set_nonblocking(true).map_err(internal)?;
    let port = listener.local_addr().map_err(internal)?.port();
    let console = Arc::new(Console {
        id: format!("C-{}", uuid::Uuid::new_v4()),
        user: r.user.clone(),
        node: name.clone(),
        uri: format!("tcp://{}:{port}", hostname()),
        started: std::time::Instant::now(),
        cancel: CancellationToken::new(),
        attached: AtomicBool::new(false),
        error: AtomicBool::new(false),
    });
    let cluster = &app.clusters[ci];
    let driver = cluster.backend.drivers.console.clone();
    let c = console.clone();
    let job = Box::new(
        move || -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
            Box::pin(accept(c, listener, driver, id))
        },
    );
    if !cluster.executor.spawn(job) {
        return Err(HttpError::Status(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the executor of cluster {} is gone", cluster.config.name),
        ));
    }
    app.consoles
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(console.id.clone(), console.clone());
    let base = format!("/console/{}", console.id);
    Ok(Reply::Data(json!({
        "wid": console.id,
        "resources": {"resource": format!("{base}/"), "error": format!("{base}/error"), "console": console.uri},
    })))
}

/// The accept loop, on the cluster's executor: each connection attaches the node's console and relays
/// it both ways; only one connection at a time.
async fn accept(
    console: Arc<Console>,
    listener: std::net::TcpListener,
    driver: Arc<dyn hal::Console>,
    node: hal::NodeId,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(id = %console.id, "console listener: {e}");
            console.error.store(true, Ordering::SeqCst);
            return;
        }
    };
    loop {
        let accepted = tokio::select! {
            _ = console.cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let mut tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                tracing::warn!(id = %console.id, "console listener: {e}");
                console.error.store(true, Ordering::SeqCst);
                return;
            }
        };
        if console.attached.swap(true, Ordering::SeqCst) {
            let _ = tcp.write_all(ALREADY_ATTACHED.as_bytes()).await;
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let guard = Attached(console.clone());
        let driver = driver.clone();
        tokio::task::spawn_local(async move {
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
        });
    }
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

//! The endpoints of every simulated node: a supervisor that follows the simulated cluster (in its virtual
//! time, read through a [`Clock`]) and opens a node's sshd port while the node runs a system, and its
//! deploy-environment port 25300 only while it runs the deploy kernel; connections refused otherwise,
//! like a node that is down. Connections are counted against one bound and closed when their node goes
//! down.

use crate::archive::ArchiveCache;
use crate::error::SshError;
use crate::node_fs::NodeFs;
use crate::session::NodeHandler;
use crate::shared::{Shared, SimNode};
use hal::NodeId;
use russh::keys::{PrivateKey, PublicKey};
use russh::server::Config;
use russh::{MethodKind, MethodSet};
use simulator::cluster::{DEPLOY_ENV_PORT, Env, SimCluster};
use simulator::params::SshParams;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// The cluster's current virtual time, read on the cluster's own runtime; `None` once it is gone.
pub type Clock = Arc<dyn Fn() -> ClockFuture + Send + Sync>;

/// What a [`Clock`] returns.
pub type ClockFuture = Pin<Box<dyn Future<Output = Option<f64>> + Send>>;

/// How often the supervisor looks at the cluster.
const TICK: Duration = Duration::from_millis(100);
/// Time a client has from its TCP connection to its authentication.
pub const LOGIN_GRACE: Duration = Duration::from_secs(30);

/// Aborts its task when dropped.
struct Listening(JoinHandle<()>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The running endpoints; dropping it closes every listener.
pub struct Endpoints {
    supervisor: JoinHandle<()>,
    addrs: Vec<SocketAddr>,
    host_key: PublicKey,
}

impl Drop for Endpoints {
    fn drop(&mut self) {
        self.supervisor.abort();
    }
}

impl Endpoints {
    /// Node `i`'s sshd address.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The host key every node presents.
    pub fn host_key(&self) -> &PublicKey {
        &self.host_key
    }

    /// Waits until the endpoints stop (the cluster's clock is gone).
    pub async fn finished(mut self) {
        let _ = (&mut self.supervisor).await;
    }
}

/// A fresh Ed25519 host key.
fn host_key() -> Result<PrivateKey, SshError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| SshError::HostKey(e.to_string()))?;
    Ok(PrivateKey::from(
        russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed),
    ))
}

/// Starts the endpoints of every node of `sim` on the current (real-time) runtime; `offset` is the
/// index of its first node among every cluster's (for the `loopback` layout). `extra_keys` are accepted
/// on every node besides the keys a deployment installs.
pub fn start(
    sim: Arc<SimCluster>,
    params: &SshParams,
    offset: usize,
    extra_keys: Vec<PublicKey>,
    clock: Clock,
) -> Result<Endpoints, SshError> {
    let key = host_key()?;
    let public = key.public_key().clone();
    let mut nodes = Vec::with_capacity(sim.nodes().len());
    for (i, n) in sim.nodes().iter().enumerate() {
        let ip = params
            .address_of(offset.saturating_add(i), n.address)
            .ok_or_else(|| SshError::NoAddress {
                name: n.name.clone(),
            })?;
        nodes.push(SimNode {
            name: n.name.clone(),
            addr: SocketAddr::new(ip, params.port),
            fs: Mutex::new(NodeFs::new(&n.name)),
            down: watch::channel(0).0,
        });
    }
    sim.enable_journal();
    let idle = Duration::from_secs_f64(params.idle_timeout);
    let config = Config {
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_millis(100),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key],
        inactivity_timeout: Some(idle),
        max_auth_attempts: 6,
        channel_buffer_size: 64,
        ..Config::default()
    };
    let addrs = nodes.iter().map(|n| n.addr).collect();
    let shared = Arc::new(Shared {
        sim,
        nodes,
        cache: ArchiveCache::default(),
        extra_keys,
        config: Arc::new(config),
        permits: Arc::new(Semaphore::new(params.max_connections)),
        idle,
    });
    info!(
        nodes = shared.nodes.len(),
        port = params.port,
        "simulated nodes answer SSH"
    );
    let supervisor = tokio::spawn(supervise(shared, clock));
    Ok(Endpoints {
        supervisor,
        addrs,
        host_key: public,
    })
}

/// The OpenSSH client configuration naming every node of `endpoints` (`ssh -F FILE root@NODE`).
pub fn ssh_config(sim: &SimCluster, endpoints: &Endpoints) -> String {
    let mut out = String::from("# Written by kadeploy3d: the simulated nodes' SSH endpoints.\n");
    for (node, addr) in sim.nodes().iter().zip(endpoints.addrs()) {
        out.push_str(&format!(
            "Host {} {}\n  HostName {}\n  Port {}\n  User root\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n",
            node.name,
            node.short_name(),
            addr.ip(),
            addr.port()
        ));
    }
    out
}

/// Follows the cluster: opens and closes each node's ports as it boots and goes down.
async fn supervise(shared: Arc<Shared>, clock: Clock) {
    let count = shared.nodes.len();
    let mut ssh: Vec<Option<Listening>> = (0..count).map(|_| None).collect();
    let mut deploy: Vec<Option<Listening>> = (0..count).map(|_| None).collect();
    let mut warned = vec![false; count];
    loop {
        let Some(t) = clock().await else {
            debug!("the simulated cluster is gone: the SSH endpoints stop");
            return;
        };
        // Replay what happened on every node, so that no journal overflows between connections.
        let replay = shared.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for i in 0..count {
                drop(replay.node_fs(i));
            }
        })
        .await;
        for i in 0..count {
            let env = shared.sim.view_at(NodeId(i as u32), t).and_then(|v| v.env);
            let node = &shared.nodes[i];
            if env.is_none() && ssh[i].is_some() {
                node.down.send_modify(|g| *g += 1);
            }
            let want_deploy = env == Some(Env::Deploy);
            let deploy_addr = SocketAddr::new(node.addr.ip(), DEPLOY_ENV_PORT);
            reconcile(
                &mut deploy[i],
                want_deploy,
                deploy_addr,
                &mut warned[i],
                |l| tokio::spawn(serve_deploy_port(l)),
            );
            let s = shared.clone();
            reconcile(
                &mut ssh[i],
                env.is_some(),
                node.addr,
                &mut warned[i],
                move |l| tokio::spawn(serve_ssh(l, s, i)),
            );
        }
        tokio::time::sleep(TICK).await;
    }
}

/// Opens or closes one listener to match `want`.
fn reconcile(
    slot: &mut Option<Listening>,
    want: bool,
    addr: SocketAddr,
    warned: &mut bool,
    serve: impl FnOnce(TcpListener) -> JoinHandle<()>,
) {
    if !want {
        *slot = None;
        return;
    }
    if slot.is_some() {
        return;
    }
    match bind(addr) {
        Ok(l) => {
            *warned = false;
            *slot = Some(Listening(serve(l)));
        }
        Err(e) if !*warned => {
            *warned = true;
            warn!(%addr, error = %e, "cannot listen for a simulated node");
        }
        Err(_) => {}
    }
}

/// A listener on `addr` (address reuse, so that a node coming back up gets its port at once).
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

/// Port 25300 of the deploy environment: accepts and closes (Kadeploy only checks that it is open).
async fn serve_deploy_port(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => drop(stream),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A node's sshd: each connection within the global bound runs as its own task.
async fn serve_ssh(listener: TcpListener, shared: Arc<Shared>, index: usize) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = shared.permits.clone().try_acquire_owned() else {
            debug!(node = index, "too many SSH connections: one refused");
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            connection(stream, shared, index).await;
        });
    }
}

/// One SSH connection: closed at the end of the login grace time without authentication, or when its
/// node goes down.
async fn connection(stream: tokio::net::TcpStream, shared: Arc<Shared>, index: usize) {
    let Some(node) = shared.nodes.get(index) else {
        return;
    };
    let mut down = node.down.subscribe();
    let handler = NodeHandler::new(shared.clone(), index);
    let authed = handler.authenticated();
    let started = tokio::time::timeout(
        LOGIN_GRACE,
        russh::server::run_stream(shared.config.clone(), stream, handler),
    )
    .await;
    let Ok(Ok(mut session)) = started else { return };
    let handle = session.handle();
    let grace = tokio::time::sleep(LOGIN_GRACE);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            _ = &mut session => return,
            _ = &mut grace, if !authed.load(Ordering::Acquire) => if !authed.load(Ordering::Acquire) { break },
            _ = down.changed() => break,
        }
    }
    let _ = handle
        .disconnect(
            russh::Disconnect::ByApplication,
            "connection closed".into(),
            String::new(),
        )
        .await;
}

//! The node agent (`kaagent`): listens for jobs and data connections, and for each job receives the
//! image stream, forwards it to the node's successors while writing it, decompresses, extracts or
//! writes it, verifies it, and reports progress and the node's outcome to the server.
//!
//! Only peers that know the deployment's token get anything done (see [`super::handshake`]): the
//! handshake has a deadline, at most [`MAX_HANDSHAKES`] run at once ([`MAX_HANDSHAKES_PER_PEER`]
//! per address), and a job's targets are confined (see [`super::confine`]).
//!
//! Memory is bounded by the window (`Tuning::window` chunks) plus socket and decompressor buffers,
//! whatever the image size.

use super::confine;
use super::forward::Forwarder;
use super::handshake::{Deadline, HandshakeError, Opener};
use super::mcast_recv::{self, McastReceiver};
use super::receive;
use super::store::{ChunkSource, ChunkStore};
use super::swarm_node::SwarmNode;
use super::token::{AgentToken, DEFAULT_TOKEN_FILE};
use super::wire::{self, AgentTimes, Hello, NodePlan, Reply, Report};
use super::write::write_image;
use crate::ImageKind;
use crate::image::{ImageError, Manifest};
use crate::outcome::NodeError;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::net::{IpAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod registry;
use registry::{JobLink, Registry};

/// Handshakes (connections not yet authenticated) in progress at once; more are closed at once.
pub const MAX_HANDSHAKES: usize = 64;
/// Handshakes in progress at once from one address.
pub const MAX_HANDSHAKES_PER_PEER: usize = 8;
/// Default deadline of a handshake (the nonce out, the sealed hello in).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an authenticated job connection may take to send each set-up frame (plan, manifest).
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Successors listed at most in a node's final report (the report must fit a control frame).
const MAX_LOST_REPORTED: usize = 128;

/// How an agent runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    /// Take job targets relative to this directory and keep them inside it (several agents on one
    /// machine: tests, benchmarks).
    pub root: Option<PathBuf>,
    /// The file holding the deployment's token, read at each handshake (the deployer rewrites it
    /// for each broadcast).
    pub token_file: PathBuf,
    /// Deadline of a handshake.
    pub handshake_timeout: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            root: None,
            token_file: PathBuf::from(DEFAULT_TOKEN_FILE),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

/// Counts the handshakes in progress, in total and per peer address.
#[derive(Default)]
struct Handshakes {
    counts: Mutex<(usize, BTreeMap<IpAddr, usize>)>,
}

/// One handshake in progress; released on drop.
struct HandshakeSlot {
    owner: Arc<Handshakes>,
    peer: IpAddr,
}

impl Handshakes {
    fn try_acquire(self: &Arc<Self>, peer: IpAddr) -> Option<HandshakeSlot> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_peer) = &mut *c;
        let mine = per_peer.entry(peer).or_insert(0);
        if *total >= MAX_HANDSHAKES || *mine >= MAX_HANDSHAKES_PER_PEER {
            if *mine == 0 {
                per_peer.remove(&peer);
            }
            return None;
        }
        *mine += 1;
        *total += 1;
        Some(HandshakeSlot {
            owner: Arc::clone(self),
            peer,
        })
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut c = self.owner.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_peer) = &mut *c;
        *total = total.saturating_sub(1);
        if let Some(n) = per_peer.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_peer.remove(&self.peer);
            }
        }
    }
}

/// What every connection handler shares.
struct Shared {
    registry: Registry,
    config: AgentConfig,
    warned: RateLimit,
}

/// Lets something happen at most once per interval.
struct RateLimit {
    last: Mutex<Option<Instant>>,
    every: Duration,
}

impl RateLimit {
    /// Whether it may happen now (and then it counts as happened).
    fn due(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < self.every) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

/// Serves jobs on `listener` until the process ends (or accepting fails). The root, when given,
/// must exist.
pub fn run(listener: TcpListener, mut config: AgentConfig) -> io::Result<()> {
    if let Some(root) = &config.root {
        config.root = Some(root.canonicalize().map_err(|e| {
            io::Error::new(e.kind(), format!("agent root {}: {e}", root.display()))
        })?);
    }
    tracing::info!(addr = ?listener.local_addr().ok(), token_file = %config.token_file.display(), "kaagent listening");
    let shared = Arc::new(Shared {
        registry: Registry::default(),
        config,
        warned: RateLimit {
            last: Mutex::new(None),
            every: Duration::from_secs(10),
        },
    });
    let handshakes: Arc<Handshakes> = Arc::default();
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e)
                if e.kind() == io::ErrorKind::ConnectionAborted
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        let Some(slot) = conn
            .peer_addr()
            .ok()
            .and_then(|a| handshakes.try_acquire(a.ip()))
        else {
            tracing::debug!(peer = ?conn.peer_addr().ok(), "too many handshakes: connection closed");
            continue;
        };
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || handle(conn, &shared, slot));
    }
    Ok(())
}

fn handle(mut conn: TcpStream, shared: &Shared, slot: HandshakeSlot) {
    // Small frames (the nonce, `Ready`, the reports) go out at once: with Nagle's algorithm a
    // report written while the previous one waits for a delayed acknowledgement is held up to 40 ms.
    let _ = conn.set_nodelay(true);
    let peer = conn.peer_addr().ok();
    let deadline = Instant::now() + shared.config.handshake_timeout;
    let mut io = Deadline::new(&conn, deadline);
    let opened = (|| {
        let mut opener = Opener::challenge(&mut io)?;
        let token = AgentToken::from_file(&shared.config.token_file)?;
        let hello: Hello = opener.recv(&mut io, wire::MAX_CONTROL_FRAME, &token)?;
        Ok::<_, HandshakeError>((opener, token, hello))
    })();
    let (opener, token, hello) = match opened {
        Ok(o) => o,
        Err(e) => {
            let refused = matches!(e, HandshakeError::Token(_) | HandshakeError::Forged { .. });
            if refused && shared.warned.due() {
                // Rate-limited: a flood of bad connections must not fill the log.
                tracing::warn!(?peer, error = %e, "connection refused");
            } else {
                tracing::debug!(?peer, error = %e, "handshake failed");
            }
            if refused {
                refuse(&conn, "authentication failed".into());
            }
            return;
        }
    };
    drop(slot);
    let _ = conn.set_write_timeout(None);
    match hello {
        Hello::Data { job, from } => attach_upstream(conn, &shared.registry, &job, &from, false),
        Hello::Peer { job, from } => attach_upstream(conn, &shared.registry, &job, &from, true),
        Hello::Job { job } => {
            let _ = conn.set_read_timeout(Some(SETUP_TIMEOUT));
            let set_up = set_up_job(
                &mut conn,
                opener,
                &token,
                &job,
                shared.config.root.as_deref(),
            );
            let set_up = set_up.and_then(|(plan, manifest)| {
                let group = join_group(&conn, &plan)?;
                Ok((plan, manifest, group))
            });
            let (plan, manifest, group) = match set_up {
                Ok(s) => s,
                Err(reason) => {
                    tracing::warn!(%job, ?peer, %reason, "job refused");
                    refuse(&conn, reason);
                    return;
                }
            };
            let (tx, rx) = mpsc::channel();
            let (peers_tx, peers_rx) = mpsc::channel();
            let link = Arc::new(JobLink {
                peers: Mutex::new(peers_tx),
                incoming: Mutex::new(tx),
                current: Arc::default(),
            });
            shared.registry.insert(job.clone(), Arc::clone(&link));
            let _ = conn.set_read_timeout(None);
            if wire::send(&mut conn, &Reply::Ready).is_ok() {
                let from = match group {
                    Some(socket) => Upstream::Multicast(socket),
                    None if plan.swarm.is_some() => Upstream::Swarm(peers_rx),
                    None => Upstream::Link(rx),
                };
                run_job(plan, manifest, token, conn, from, &link);
            }
            shared.registry.remove(&job);
        }
    }
}

/// Says why a connection is refused, then closes it gracefully: what the peer is still sending is
/// read and dropped (at most 1 MiB, for at most a second) so that a reset does not lose the reply.
fn refuse(conn: &TcpStream, reason: String) {
    let mut io = Deadline::new(conn, Instant::now() + Duration::from_secs(1));
    if wire::send(&mut io, &Reply::Refused { reason }).is_err() {
        return;
    }
    let _ = conn.shutdown(std::net::Shutdown::Write);
    let _ = io::copy(&mut (&mut io).take(1 << 20), &mut io::sink());
}

/// Hands an authenticated data connection (or, `peer`, a swarm connection) to its job.
fn attach_upstream(conn: TcpStream, registry: &Registry, job: &str, from: &str, peer: bool) {
    // The server sets every node up before the data flows; wait a little for a late set-up (woken
    // as soon as it is registered).
    let Some(link) = registry.wait_for(job, Instant::now() + Duration::from_secs(5)) else {
        refuse(&conn, format!("unknown job {job}"));
        return;
    };
    let _ = conn.set_read_timeout(None);
    if peer {
        tracing::debug!(%job, %from, "peer connected");
        let _ = link
            .peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(conn);
        return;
    }
    tracing::info!(%job, %from, "upstream connected");
    if let Some(old) = link
        .current
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        let _ = old.shutdown(std::net::Shutdown::Both);
    }
    let _ = link
        .incoming
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(conn);
}

/// Starts the thread that fills the node's window: from upstream links, a multicast group or a swarm.
fn start_receiving(
    from: Upstream,
    plan: &NodePlan,
    (manifest, store, token): (&Arc<Manifest>, &Arc<ChunkStore>, &AgentToken),
    successors: Vec<Arc<AtomicU64>>,
    (current, refetched): (&Arc<Mutex<Option<TcpStream>>>, &Arc<AtomicU64>),
) {
    match from {
        Upstream::Link(rx) => {
            let up = receive::Upstream {
                incoming: rx,
                current: Arc::clone(current),
                successors,
                fault_tolerant: plan.fault_tolerant,
                refetched: Arc::clone(refetched),
            };
            let (store, manifest, tuning) =
                (Arc::clone(store), Arc::clone(manifest), plan.tuning.clone());
            std::thread::spawn(move || {
                if let Err(e) = receive::receive(&manifest, &store, &up, &tuning) {
                    tracing::warn!(error = %e, "receiving failed");
                    store.fail(e);
                }
            });
        }
        Upstream::Swarm(peers) => {
            let node = SwarmNode {
                plan: plan.clone(),
                manifest: Arc::clone(manifest),
                store: Arc::clone(store),
                token: token.clone(),
                refetched: Arc::clone(refetched),
            };
            std::thread::spawn(move || node.run(peers));
        }
        Upstream::Multicast(socket) => {
            let (store, manifest, plan, token, refetched) = (
                Arc::clone(store),
                Arc::clone(manifest),
                plan.clone(),
                token.clone(),
                Arc::clone(refetched),
            );
            std::thread::spawn(move || {
                let Some(m) = &plan.multicast else {
                    return;
                };
                let receiver = McastReceiver {
                    plan: m,
                    socket,
                    job: &plan.job,
                    manifest: &manifest,
                    store: &store,
                    tuning: &plan.tuning,
                    token: &token,
                    refetched,
                };
                if let Err(e) = receiver.run() {
                    tracing::warn!(error = %e, "receiving failed");
                    store.fail(e);
                }
            });
        }
    }
}

/// A multicast job's group socket, joined on the interface the job came in on (before the node says
/// it is ready); `None` for other jobs.
fn join_group(conn: &TcpStream, plan: &NodePlan) -> Result<Option<UdpSocket>, String> {
    let Some(m) = &plan.multicast else {
        return Ok(None);
    };
    let local = match conn.local_addr().map(|a| a.ip()) {
        Ok(IpAddr::V4(ip)) => ip,
        Ok(ip) => return Err(format!("multicast over {ip}: IPv4 only")),
        Err(e) => return Err(format!("local address: {e}")),
    };
    mcast_recv::join(m, local)
        .map(Some)
        .map_err(|e| format!("joining {}: {e}", m.group))
}

/// Where a job's image comes from.
enum Upstream {
    /// Upstream data connections, handed over by the connection handler.
    Link(mpsc::Receiver<TcpStream>),
    /// A multicast group.
    Multicast(UdpSocket),
    /// Swarm connections of peers, handed over by the connection handler.
    Swarm(mpsc::Receiver<TcpStream>),
}

/// Reads the sealed plan and manifest of job `job` and confines its targets; the reason of a refusal.
fn set_up_job(
    conn: &mut TcpStream,
    mut opener: Opener,
    token: &AgentToken,
    job: &str,
    root: Option<&Path>,
) -> Result<(NodePlan, Arc<Manifest>), String> {
    let mut plan: NodePlan = opener
        .recv(conn, wire::MAX_PLAN_FRAME, token)
        .map_err(|e| format!("reading the plan: {e}"))?;
    if plan.job != job {
        return Err(format!(
            "plan of job {} on the connection of job {job}",
            plan.job
        ));
    }
    let manifest = opener
        .recv_raw(conn, wire::MAX_MANIFEST_FRAME, token)
        .map_err(|e| format!("reading the manifest: {e}"))?;
    let manifest = Manifest::decode(&manifest).map_err(|e| e.to_string())?;
    // Only the target of the image's kind is used; the other one is left empty.
    match plan.kind {
        ImageKind::Tar => {
            let dir =
                confine::extraction_dir(&plan.extraction_dir, root).map_err(|e| e.to_string())?;
            plan.extraction_dir = dir.display().to_string();
            plan.device = String::new();
        }
        ImageKind::Dd | ImageKind::Fsa => {
            let device = confine::dd_target(&plan.device, root).map_err(|e| e.to_string())?;
            plan.device = device.display().to_string();
            plan.extraction_dir = String::new();
        }
    }
    Ok((plan, Arc::new(manifest)))
}

enum Event {
    Written(Result<u64, ImageError>),
    Forwarded(super::forward::ForwardResult),
}

fn run_job(
    plan: NodePlan,
    manifest: Arc<Manifest>,
    token: AgentToken,
    mut control: TcpStream,
    from: Upstream,
    link: &JobLink,
) {
    let start = Instant::now();
    let _span = tracing::info_span!("job", job = %plan.job, node = %plan.node).entered();
    let store = Arc::new(ChunkStore::new(
        plan.tuning.window as usize,
        1 + plan.forwards.len(),
    ));
    let (events, event_rx) = mpsc::channel();
    let refetched = Arc::new(AtomicU64::new(0));
    let successors: Vec<Arc<AtomicU64>> = plan
        .forwards
        .iter()
        .map(|f| {
            Arc::new(AtomicU64::new(if f.candidates.is_empty() {
                u64::MAX
            } else {
                0
            }))
        })
        .collect();
    {
        let (store, manifest, plan, events) = (
            Arc::clone(&store),
            Arc::clone(&manifest),
            plan.clone(),
            events.clone(),
        );
        std::thread::spawn(move || {
            let r = write_image(&plan, &manifest, &store);
            store.drop_consumer(0);
            let _ = events.send(Event::Written(r));
        });
    }
    for (i, f) in plan.forwards.iter().enumerate() {
        let fw = Forwarder {
            job: plan.job.clone(),
            from: plan.node.clone(),
            plan: f.clone(),
            source: Arc::clone(&store) as Arc<dyn ChunkSource>,
            consumer: 1 + i,
            total: manifest.chunk_count(),
            tuning: plan.tuning.clone(),
            successor_have: Arc::clone(&successors[i]),
            token: token.clone(),
        };
        let events = events.clone();
        std::thread::spawn(move || {
            let _ = events.send(Event::Forwarded(fw.run()));
        });
    }
    start_receiving(
        from,
        &plan,
        (&manifest, &store, &token),
        successors,
        (&link.current, &refetched),
    );
    drop(events);
    let mut written = false;
    let mut forwarders = plan.forwards.len();
    let mut lost = Vec::new();
    while !(written && forwarders == 0) {
        match event_rx.recv_timeout(wire::HEARTBEAT) {
            Ok(Event::Written(r)) => {
                written = true;
                match &r {
                    Ok(bytes) => tracing::info!(
                        bytes,
                        ms = start.elapsed().as_millis() as u64,
                        "image written and verified"
                    ),
                    Err(e) => tracing::warn!(error = %e, "image not written"),
                }
                let result = r.map_err(NodeError::from);
                let since = |t: Instant| {
                    u64::try_from(t.saturating_duration_since(start).as_micros())
                        .unwrap_or(u64::MAX)
                };
                let times = store.times();
                let _ = wire::send(
                    &mut control,
                    &Report::Written {
                        result,
                        elapsed_ms: start.elapsed().as_millis() as u64,
                        times: Some(AgentTimes {
                            report_us: since(Instant::now()),
                            first_byte_us: times.first.map(since),
                            last_byte_us: times.last.map(since),
                            verified_us: times.verified.map(since),
                        }),
                    },
                );
            }
            Ok(Event::Forwarded(f)) => {
                forwarders -= 1;
                lost.extend(f.lost.into_iter().map(|(a, why)| (a.to_string(), why)));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = wire::send(&mut control, &Report::Progress { have: store.have() });
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let refetched = refetched.load(Ordering::SeqCst);
    let _ = wire::send(&mut control, &done_report(lost, refetched));
}

/// The final report, short enough for a control frame whatever was lost.
fn done_report(mut lost: Vec<(String, String)>, refetched: u64) -> Report {
    let dropped = lost.len().saturating_sub(MAX_LOST_REPORTED);
    lost.truncate(MAX_LOST_REPORTED);
    for (_, why) in &mut lost {
        if why.len() > 200 {
            let cut = (0..=200)
                .rev()
                .find(|i| why.is_char_boundary(*i))
                .unwrap_or(0);
            why.truncate(cut);
        }
    }
    if dropped > 0 {
        lost.push(("…".into(), format!("{dropped} more successors lost")));
    }
    Report::Done { lost, refetched }
}

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
use super::receive::{self, Upstream};
use super::store::{ChunkSource, ChunkStore};
use super::token::{AgentToken, DEFAULT_TOKEN_FILE};
use super::wire::{self, Hello, NodePlan, Reply, Report};
use crate::ImageKind;
use crate::image::{Compression, ImageError, ImageVerifier, Manifest, Sink};
use crate::outcome::NodeError;
use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// A job's entry point for data connections.
struct JobLink {
    incoming: Mutex<Sender<TcpStream>>,
    current: Arc<Mutex<Option<TcpStream>>>,
}

type Registry = Arc<Mutex<BTreeMap<String, Arc<JobLink>>>>;

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
        registry: Arc::default(),
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
        Hello::Data { job, from } => attach_upstream(conn, &shared.registry, &job, &from),
        Hello::Job { job } => {
            let _ = conn.set_read_timeout(Some(SETUP_TIMEOUT));
            let set_up = set_up_job(
                &mut conn,
                opener,
                &token,
                &job,
                shared.config.root.as_deref(),
            );
            let (plan, manifest) = match set_up {
                Ok(s) => s,
                Err(reason) => {
                    tracing::warn!(%job, ?peer, %reason, "job refused");
                    refuse(&conn, reason);
                    return;
                }
            };
            let (tx, rx) = mpsc::channel();
            let link = Arc::new(JobLink {
                incoming: Mutex::new(tx),
                current: Arc::default(),
            });
            shared
                .registry
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(job.clone(), Arc::clone(&link));
            let _ = conn.set_read_timeout(None);
            if wire::send(&mut conn, &Reply::Ready).is_ok() {
                run_job(plan, manifest, token, conn, rx, &link);
            }
            shared
                .registry
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&job);
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

/// Hands an authenticated data connection to its job.
fn attach_upstream(conn: TcpStream, registry: &Registry, job: &str, from: &str) {
    // The server sets every node up before the data flows; wait a little for a late set-up.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let link = registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(job)
            .cloned();
        if let Some(link) = link {
            tracing::info!(%job, %from, "upstream connected");
            let _ = conn.set_read_timeout(None);
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
            return;
        }
        if Instant::now() > deadline {
            refuse(&conn, format!("unknown job {job}"));
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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
    rx: mpsc::Receiver<TcpStream>,
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
    {
        let up = Upstream {
            incoming: rx,
            current: Arc::clone(&link.current),
            successors,
            fault_tolerant: plan.fault_tolerant,
            refetched: Arc::clone(&refetched),
        };
        let (store, manifest, tuning) = (
            Arc::clone(&store),
            Arc::clone(&manifest),
            plan.tuning.clone(),
        );
        std::thread::spawn(move || {
            if let Err(e) = receive::receive(&manifest, &store, &up, &tuning) {
                tracing::warn!(error = %e, "receiving failed");
                store.fail(e);
            }
        });
    }
    drop(events);
    let mut written = false;
    let mut forwarders = plan.forwards.len();
    let mut lost = Vec::new();
    while !(written && forwarders == 0) {
        match event_rx.recv_timeout(Duration::from_millis(500)) {
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
                let _ = wire::send(
                    &mut control,
                    &Report::Written {
                        result,
                        elapsed_ms: start.elapsed().as_millis() as u64,
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

/// Reads the verified chunks of `store` in order, as one byte stream, checking the whole image at the end.
struct StoreReader<'a> {
    store: &'a ChunkStore,
    manifest: &'a Manifest,
    verifier: ImageVerifier,
    next: u64,
    chunk: Option<super::store::Chunk>,
    pos: usize,
}

impl BufRead for StoreReader<'_> {
    /// The rest of the current chunk, straight from the window (no copy).
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        loop {
            if self.chunk.as_ref().is_some_and(|c| self.pos < c.len()) {
                break;
            }
            if self.chunk.take().is_some() {
                self.store.release(0, self.next);
            }
            if self.next >= self.manifest.chunk_count() {
                self.verifier
                    .finish(self.manifest)
                    .map_err(io::Error::other)?;
                return Ok(&[]);
            }
            let c = loop {
                match self.store.get(self.next, Duration::from_secs(1)) {
                    Ok(Some(c)) => break c,
                    Ok(None) => continue,
                    Err(e) => return Err(io::Error::other(e)),
                }
            };
            let digest = self.manifest.chunks[self.next as usize];
            self.verifier
                .push(self.next, c.len(), &digest)
                .map_err(io::Error::other)?;
            self.next += 1;
            self.chunk = Some(c);
            self.pos = 0;
        }
        Ok(self.chunk.as_ref().map_or(&[][..], |c| &c[self.pos..]))
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
    }
}

impl Read for StoreReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = buf.len().min(avail.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

fn write_image(
    plan: &NodePlan,
    manifest: &Manifest,
    store: &ChunkStore,
) -> Result<u64, ImageError> {
    let compression: Compression = plan.compression.parse()?;
    let sink = Sink::for_kind(
        plan.kind,
        Path::new(&plan.device),
        Path::new(&plan.extraction_dir),
    )?;
    let reader = StoreReader {
        store,
        manifest,
        verifier: ImageVerifier::new(manifest),
        next: 0,
        chunk: None,
        pos: 0,
    };
    sink.write(compression.decoder(reader)?)
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

//! The two ends of a swarm broadcast around [`super::swarm::Swarm`]: a node (connect to its planned
//! peers, accept the others' and the seed's connections, stay until it and its peers hold every
//! chunk) and the server's seed (connect to every node and serve what they ask for).

use super::forward;
use super::handshake::Sealer;
use super::store::{ChunkSource, ChunkStore};
use super::swarm::Swarm;
use super::token::AgentToken;
use super::wire::{self, Hello, NodePlan, Reply, Tuning};
use crate::image::{ImageError, ImageErrorKind, Manifest};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// Opens a swarm connection to the agent at `addr` for `job`, authenticated with `token`.
pub fn open_peer(
    addr: SocketAddr,
    job: &str,
    from: &str,
    token: &AgentToken,
    tuning: &Tuning,
) -> std::io::Result<TcpStream> {
    let mut stream = forward::connect(addr, tuning)?;
    let handshake = Duration::from_millis(tuning.connect_timeout_ms.max(1));
    stream.set_read_timeout(Some(handshake))?;
    stream.set_write_timeout(Some(handshake))?;
    let hello = Hello::Peer {
        job: job.to_string(),
        from: from.to_string(),
    };
    Sealer::start(&mut stream, token.clone())?.send(&mut stream, &hello)?;
    match wire::recv::<Reply>(&mut stream)? {
        Reply::Data { .. } => {}
        other => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                format!("refused: {other:?}"),
            ));
        }
    }
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(Some(Duration::from_millis(tuning.stall_timeout_ms.max(1))))?;
    Ok(stream)
}

/// A node's side of a swarm job.
pub struct SwarmNode {
    /// The node's plan (with its swarm part).
    pub plan: NodePlan,
    /// The image's manifest.
    pub manifest: Arc<Manifest>,
    /// Where verified chunks go, in order, for the writer.
    pub store: Arc<ChunkStore>,
    /// The broadcast's token.
    pub token: AgentToken,
    /// Corrupted chunks received and asked for again.
    pub refetched: Arc<AtomicU64>,
}

impl SwarmNode {
    /// Runs the node's swarm until it and its peers hold everything (the store is failed if the
    /// node gets nothing for the upstream timeout).
    pub fn run(self, peers: mpsc::Receiver<TcpStream>) {
        let Some(sp) = &self.plan.swarm else {
            return;
        };
        let tuning = &self.plan.tuning;
        let stall = Duration::from_millis(tuning.stall_timeout_ms.max(1));
        let idle = Duration::from_millis(tuning.upstream_timeout_ms.max(1));
        let window = u64::from(tuning.window.max(1));
        let swarm = Swarm::node(
            Arc::clone(&self.manifest),
            Arc::clone(&self.store),
            (window, window, u64::from(sp.node), u64::from(sp.nodes)),
            stall,
            Arc::clone(&self.refetched),
        );
        let stop = AtomicBool::new(false);
        let job = &self.plan.job;
        let from = &self.plan.node;
        std::thread::scope(|s| {
            for &addr in &sp.peers {
                let (swarm, stop, token) = (&swarm, &stop, &self.token);
                s.spawn(move || match open_peer(addr, job, from, token, tuning) {
                    Ok(stream) => {
                        swarm.run_link(stream, stop);
                    }
                    Err(e) => tracing::warn!(peer = %addr, error = %e, "peer unreachable"),
                });
            }
            let (swarm_ref, stop_ref) = (&swarm, &stop);
            s.spawn(move || {
                while !stop_ref.load(Ordering::SeqCst) {
                    match peers.recv_timeout(Duration::from_millis(100)) {
                        Ok(mut conn) => {
                            forward::tune(&conn, tuning);
                            if wire::send(&mut conn, &Reply::Data { have: 0 }).is_ok() {
                                s.spawn(move || {
                                    swarm_ref.run_link(conn, stop_ref);
                                });
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            });
            self.supervise(&swarm, idle);
            stop.store(true, Ordering::SeqCst);
        });
    }

    /// Waits until this node and its peers hold everything (or, complete, for at most `idle` more);
    /// fails the store when nothing arrives for `idle`.
    fn supervise(&self, swarm: &Swarm, idle: Duration) {
        let (mut have, mut moved) = (self.store.have(), Instant::now());
        let mut complete_at: Option<Instant> = None;
        loop {
            if swarm.complete() {
                let at = *complete_at.get_or_insert_with(Instant::now);
                if swarm.peers_complete() || at.elapsed() > idle {
                    return;
                }
            } else if self.store.have() != have {
                (have, moved) = (self.store.have(), Instant::now());
            } else if moved.elapsed() > idle {
                self.store.fail(ImageError::new(
                    ImageErrorKind::Io,
                    format!(
                        "swarm: nothing received for {} ms with {have} of {} chunks",
                        idle.as_millis(),
                        self.manifest.chunk_count()
                    ),
                ));
                return;
            }
            swarm.wait_change(Duration::from_millis(100));
        }
    }
}

/// Times the seed opens its link to one node again after it ended (the node dropped it for a
/// stall, or could not be reached) while the node still lacked chunks.
pub const SEED_REOPENS: u32 = 8;
/// The seed's wait before reopening a node's link the first time; doubled at each next time, up
/// to [`SEED_REOPEN_WAIT_MAX`].
pub const SEED_REOPEN_WAIT: Duration = Duration::from_millis(100);
/// The seed's longest wait before reopening a node's link.
pub const SEED_REOPEN_WAIT_MAX: Duration = Duration::from_secs(2);

/// The server's seed: connects to every node of `nodes` and serves chunks of `source` until `stop`
/// (or until every node holds every chunk); a link that ends while its node still lacks chunks is
/// opened again (see [`SEED_REOPENS`]).
pub fn seed(
    job: &str,
    token: &AgentToken,
    manifest: Arc<Manifest>,
    source: Arc<dyn ChunkSource>,
    nodes: &[SocketAddr],
    tuning: &Tuning,
    stop: &AtomicBool,
) {
    let stall = Duration::from_millis(tuning.stall_timeout_ms.max(1));
    let swarm = Swarm::seed(manifest, source, stall);
    std::thread::scope(|s| {
        for &addr in nodes {
            let swarm = &swarm;
            s.spawn(move || {
                serve_node(swarm, stop, addr, || {
                    open_peer(addr, job, "server", token, tuning)
                })
            });
        }
    });
}

/// Serves node `addr` from the seed: opens a link with `open`, and opens it again (at most
/// [`SEED_REOPENS`] times, after waits growing from [`SEED_REOPEN_WAIT`]) while a link ends before
/// the node announced holding every chunk, until `stop`.
fn serve_node(
    swarm: &Swarm,
    stop: &AtomicBool,
    addr: SocketAddr,
    open: impl Fn() -> std::io::Result<TcpStream>,
) {
    let mut wait = SEED_REOPEN_WAIT;
    for attempt in 0..=SEED_REOPENS {
        if attempt > 0 {
            if !pause(wait, stop) {
                return;
            }
            wait = (wait * 2).min(SEED_REOPEN_WAIT_MAX);
            tracing::info!(node = %addr, attempt, "seed: reopening the link of a node that lacks chunks");
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match open() {
            Ok(stream) => {
                if swarm.run_link(stream, stop) {
                    return;
                }
            }
            Err(e) => tracing::warn!(node = %addr, error = %e, "seed: node unreachable"),
        }
    }
    tracing::warn!(node = %addr, "seed: link ended {SEED_REOPENS} times more with chunks missing: given up");
}

/// Sleeps for `wait` unless `stop` is set first; whether to go on.
fn pause(wait: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + wait;
    while !stop.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
    false
}

//! The swarm broadcast: every node exchanges verified chunks with a few peers and with the server's
//! seed, BitTorrent-like (see [`super::swarm_wire`] for the messages).
//!
//! Timing, for models of it: each node works on a sliding span of `span` chunks from the first one
//! it has not written yet, and keeps the last `keep` chunks it wrote to serve slower peers (memory:
//! `span + keep` chunks plus the writer's window). On each connection it keeps at most
//! [`REQUESTS_PER_PEER`] requests outstanding, each for the chunk of its span that the fewest of its
//! peers hold (rarest first; ties broken by a per-node hash, so that nodes start on different
//! chunks), among those the peer holds, and at most [`REQUESTS_PER_NODE`] on all its connections;
//! the chunk that holds up its writing, asked for more than [`DUPLICATE_AFTER`] ago, may be asked of
//! another peer too once a chunk asked after it has arrived (a slow peer never holds the others up
//! for long; a node whose own link is the slowest, its chunks all arriving late together, does not
//! spend that link on duplicates). Of the seed it asks only for its own stripe, the chunks whose
//! index modulo the job's node count is its own index (in order), and for another's chunk only once
//! that chunk has held up its writing for [`DUPLICATE_AFTER`] longer than twice the seed's answer
//! time (its latest answer, or its oldest request still unanswered; counted from the seed's
//! arrival), even if it was asked of a peer that has not answered: its owner or that peer is slow or
//! gone, and the node asks the seed for the rest of that owner's stripe too, as for its own; and for
//! any chunk no peer will hold again (a node fallen behind). Each chunk
//! leaves the server's link about once and the peers spread it (without stripes, nodes out of each
//! other's sight asked the seed for the same chunks: 2.4 to 3.6 images from the seed at 16 nodes,
//! by the threads' race). Each chunk is verified against
//! the manifest before it is kept, served or written; a corrupted one is asked for again. A peer
//! that sends nothing for the stall timeout while requests to it are outstanding is dropped.

use super::store::{Chunk, ChunkSource, ChunkStore};
use super::swarm_wire::{self, PeerMsg};
use crate::image::Manifest;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Requests outstanding on one connection at most.
pub const REQUESTS_PER_PEER: usize = 2;
/// Requests outstanding on all of a node's connections at most (a node on a slow link does not ask
/// for more than it can take in a stall timeout).
pub const REQUESTS_PER_NODE: usize = 4;
/// The chunk that holds up the node's writing, asked for this long ago, may be asked of another
/// peer too.
pub const DUPLICATE_AFTER: Duration = Duration::from_millis(400);
/// How often a connection looks again for requests to make when nothing woke it (the clock of
/// the seed rules, which wait on time; public for the simulator's model).
pub const POLL: Duration = Duration::from_millis(50);
/// Node `node`'s tie-break among equally rare chunks: a hash of node and chunk, so that nodes start
/// on different chunks (public for the simulator's model of the swarm).
pub fn spread(node: u64, index: u64) -> u8 {
    blake3::hash(&[node.to_be_bytes(), index.to_be_bytes()].concat()).as_bytes()[0]
}

/// Requests a peer may queue on a connection; more is a protocol violation.
const MAX_QUEUED: usize = 16;

/// What a peer said it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum View {
    Map { low: u64, bits: Vec<u8> },
    All,
}

impl View {
    fn holds(&self, index: u64) -> bool {
        match self {
            View::Map { low, bits } => swarm_wire::holds(*low, bits, index),
            View::All => true,
        }
    }

    /// Whether the peer needs nothing more of `total` chunks: it holds every chunk from its map's
    /// first to the end (a map starting at or past the end included, as nodes before this rule
    /// announced completion).
    fn complete(&self, total: u64) -> bool {
        match self {
            View::All => true,
            View::Map { low, bits } => {
                let Some(need) = total.checked_sub(*low) else {
                    return true;
                };
                // A map shorter than the rest of the image cannot hold all of it: no scan.
                need <= bits.len() as u64 * 8
                    && (*low..total).all(|i| swarm_wire::holds(*low, bits, i))
            }
        }
    }
}

/// One connection's part of the state.
#[derive(Default)]
struct Link {
    view: Option<View>,
    /// Chunks the peer asked for.
    queued: VecDeque<u64>,
    /// Chunks asked of the peer, with when.
    asked: BTreeMap<u64, Instant>,
    /// The version of our holdings last announced on this link.
    announced: Option<u64>,
    /// When the peer last sent anything, or we started waiting for it.
    heard: Option<Instant>,
    closed: bool,
}

impl Link {
    /// Whether the peer is the server's seed (it announced holding everything).
    fn is_seed(&self) -> bool {
        self.view == Some(View::All)
    }
}

struct State {
    held: BTreeMap<u64, Chunk>,
    /// Last request of each chunk not held yet.
    requested: BTreeMap<u64, Instant>,
    /// When the latest-asked chunk that arrived was asked (of the link it came on).
    answered: Option<Instant>,
    links: BTreeMap<u64, Link>,
    next_link: u64,
    /// Chunks pushed to the writer's store.
    base: u64,
    /// Since when `base` has been the first chunk not written (or the seed connected).
    base_since: Instant,
    /// Whether the seed has announced itself.
    seed_seen: bool,
    /// Nodes whose stripe we ask the seed for too: one of their chunks held up our writing.
    slow: BTreeSet<u64>,
    /// How long the seed took to answer our latest request it answered.
    seed_took: Duration,
    version: u64,
}

/// A node's (or the seed's) swarm.
pub struct Swarm {
    state: Mutex<State>,
    changed: Condvar,
    manifest: Arc<Manifest>,
    /// The writer's store (a node), or `None` (the seed).
    store: Option<Arc<ChunkStore>>,
    /// Every chunk (the seed).
    seed: Option<Arc<dyn ChunkSource>>,
    span: u64,
    keep: u64,
    node: u64,
    /// Nodes in the job (0: unknown, no stripes).
    nodes: u64,
    stall: Duration,
    /// Corrupted chunks received and asked for again.
    pub refetched: Arc<AtomicU64>,
}

impl Swarm {
    /// A node's swarm: chunks go to `store`; `node` of `nodes` (0: unknown) sets its stripe and
    /// decorrelates its requests from others'.
    pub fn node(
        manifest: Arc<Manifest>,
        store: Arc<ChunkStore>,
        (span, keep, node, nodes): (u64, u64, u64, u64),
        stall: Duration,
        refetched: Arc<AtomicU64>,
    ) -> Swarm {
        Swarm::new(
            manifest,
            Some(store),
            None,
            (span, keep, node, nodes),
            stall,
            refetched,
        )
    }

    /// The server's seed: holds every chunk of `source`, asks for none.
    pub fn seed(manifest: Arc<Manifest>, source: Arc<dyn ChunkSource>, stall: Duration) -> Swarm {
        Swarm::new(
            manifest,
            None,
            Some(source),
            (1, 0, 0, 0),
            stall,
            Arc::default(),
        )
    }

    fn new(
        manifest: Arc<Manifest>,
        store: Option<Arc<ChunkStore>>,
        seed: Option<Arc<dyn ChunkSource>>,
        (span, keep, node, nodes): (u64, u64, u64, u64),
        stall: Duration,
        refetched: Arc<AtomicU64>,
    ) -> Swarm {
        let span = span.clamp(1, swarm_wire::MAX_SPAN / 2);
        Swarm {
            state: Mutex::new(State {
                held: BTreeMap::new(),
                requested: BTreeMap::new(),
                answered: None,
                links: BTreeMap::new(),
                next_link: 0,
                base: 0,
                base_since: Instant::now(),
                seed_seen: false,
                slow: BTreeSet::new(),
                seed_took: Duration::ZERO,
                version: 0,
            }),
            changed: Condvar::new(),
            manifest,
            store,
            seed,
            span,
            keep: keep.min(swarm_wire::MAX_SPAN / 2),
            node,
            nodes,
            stall,
            refetched,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this node holds (has written) every chunk.
    pub fn complete(&self) -> bool {
        self.seed.is_some() || self.lock().base >= self.manifest.chunk_count()
    }

    /// Whether every peer still connected holds every chunk (a seed counts as holding all).
    pub fn peers_complete(&self) -> bool {
        self.lock().links.values().all(|l| l.closed || self.done(l))
    }

    /// Waits up to `wait` for a change.
    pub fn wait_change(&self, wait: Duration) {
        let s = self.lock();
        let _unused = self.changed.wait_timeout(s, wait);
    }

    /// Moves the chunks that are next in order to the writer's store (while it has room) and
    /// forgets the ones too old to keep.
    fn advance(&self, s: &mut State) {
        let Some(store) = &self.store else {
            return;
        };
        let before = s.base;
        while let Some(c) = s.held.get(&s.base) {
            if !store.has_room() || !store.push(Arc::clone(c), Duration::ZERO) {
                break;
            }
            s.requested.remove(&s.base);
            s.base += 1;
        }
        if s.base != before {
            s.base_since = Instant::now();
            let floor = s.base.saturating_sub(self.keep);
            s.held = s.held.split_off(&floor);
            s.version += 1;
        }
    }

    /// What we hold, as announced to peers: a map from `base − keep` to the end of the span. Once
    /// complete, the map of the last `keep` chunks, which we keep serving; peers read a map that
    /// holds every chunk from its first to the image's end as complete.
    fn announcement(&self, s: &State) -> PeerMsg {
        if self.seed.is_some() {
            return PeerMsg::All;
        }
        let total = self.manifest.chunk_count();
        let low = s.base.saturating_sub(self.keep);
        let high = (s.base + self.span).min(total);
        let mut bits = vec![0u8; (high - low).div_ceil(8) as usize];
        for &i in s.held.range(low..high).map(|(i, _)| i) {
            let at = i - low;
            bits[(at / 8) as usize] |= 1 << (at % 8);
        }
        PeerMsg::Holding { low, bits }
    }

    /// The chunk to ask of link `id`: in our span, not held, held by the peer, not asked recently,
    /// of the seed our stripe only (see [`Swarm::seed_may_serve`]); of a peer the rarest among our
    /// peers first, of the seed in order.
    fn pick(&self, s: &State, id: u64) -> Option<u64> {
        if self.seed.is_some() {
            return None;
        }
        let link = s.links.get(&id)?;
        let view = link.view.as_ref()?;
        let total = self.manifest.chunk_count();
        let end = (s.base + self.span).min(total);
        let asked: usize = s.links.values().map(|l| l.asked.len()).sum();
        if asked >= REQUESTS_PER_NODE {
            return None;
        }
        let striped = link.is_seed() && self.nodes > 0;
        let unanswered = link.asked.values().min().map(Instant::elapsed);
        (s.base..end)
            .filter(|i| !s.held.contains_key(i) && view.holds(*i) && !link.asked.contains_key(i))
            .filter(|i| !striped || self.seed_may_serve(s, *i, unanswered))
            .filter(|i| {
                // Asked of a peer already: again (of the seed too) when that peer is slow.
                s.requested.get(i).is_none_or(|t| {
                    self.may_duplicate(s, *i, *t) || (striped && self.held_up(s, *i, unanswered))
                })
            })
            .min_by_key(|&i| {
                if striped {
                    // Of the seed, in order: the chunk holding up the writing first.
                    return (0, 0, i);
                }
                let rarity = s
                    .links
                    .values()
                    .filter(|l| l.view.as_ref().is_some_and(|v| v.holds(i)))
                    .count();
                (rarity, spread(self.node, i), i)
            })
    }

    /// Whether the seed may be asked for chunk `index`: our stripe (`index % nodes == node`), a
    /// slow owner's, one no peer will hold again (every peer's map starts past it), or one
    /// [`Swarm::held_up`] says holds up our writing.
    fn seed_may_serve(&self, s: &State, index: u64, unanswered: Option<Duration>) -> bool {
        // No peer will hold it again: each announces chunks from its map's `low` up (the scan of
        // the links last, where the cheaper rules have not answered).
        let orphan = || {
            s.links.values().all(|l| match &l.view {
                Some(View::Map { low, .. }) => l.closed || *low > index,
                Some(View::All) => true,
                None => l.closed,
            })
        };
        self.owner(index) == self.owner(self.node)
            || s.slow.contains(&self.owner(index))
            || self.held_up(s, index, unanswered)
            || orphan()
            // Asked of a peer that other chunks overtook (the duplicate rule in `pick`).
            || s.requested.contains_key(&index)
    }

    /// The node whose stripe chunk `index` is (`index % nodes`; 0 when the node count is unknown).
    fn owner(&self, index: u64) -> u64 {
        index % self.nodes.max(1)
    }

    /// Whether chunk `index` has held up our writing for [`DUPLICATE_AFTER`] longer than twice
    /// what the seed takes to answer (its latest answer, or `unanswered`, our oldest request to it):
    /// its owner, or the peer it was asked of, is slow or gone.
    fn held_up(&self, s: &State, index: u64, unanswered: Option<Duration>) -> bool {
        let takes = s.seed_took.max(unanswered.unwrap_or_default());
        index == s.base && s.base_since.elapsed() > DUPLICATE_AFTER + takes * 2
    }

    /// Whether chunk `index`, last asked at `asked`, may be asked of another peer too: it holds up
    /// the writing, was asked more than [`DUPLICATE_AFTER`] ago, and a chunk asked after it arrived
    /// first (its peer is slower than others, not our own link).
    fn may_duplicate(&self, s: &State, index: u64, asked: Instant) -> bool {
        index == s.base
            && asked.elapsed() > DUPLICATE_AFTER
            && s.answered.is_some_and(|a| a > asked)
    }

    /// Takes one message from link `id`; an error closes the link.
    fn take(&self, id: u64, msg: PeerMsg) -> Result<(), String> {
        let mut s = self.lock();
        let Some(link) = s.links.get_mut(&id) else {
            return Err("link gone".into());
        };
        link.heard = Some(Instant::now());
        match msg {
            PeerMsg::Holding { low, bits } => link.view = Some(View::Map { low, bits }),
            PeerMsg::All => {
                link.view = Some(View::All);
                if !s.seed_seen {
                    // The writing waits for the seed from now, not from our start.
                    s.seed_seen = true;
                    s.base_since = Instant::now();
                }
            }
            PeerMsg::Request(i) => {
                if link.queued.len() >= MAX_QUEUED {
                    return Err(format!("more than {MAX_QUEUED} requests queued"));
                }
                link.queued.push_back(i);
            }
            PeerMsg::Missing(i) => {
                link.asked.remove(&i);
                s.requested.remove(&i);
            }
            PeerMsg::Chunk(i, data) => {
                let Some(asked) = link.asked.remove(&i) else {
                    return Ok(()); // not asked of this peer (or answered already): dropped unread
                };
                drop(s);
                let good = self.manifest.verify_chunk(i, &data).is_ok();
                s = self.lock();
                if good {
                    tracing::trace!(
                        node = self.node,
                        link = id,
                        index = i,
                        base = s.base,
                        "arrived"
                    );
                    if s.links.get(&id).is_some_and(Link::is_seed) {
                        s.seed_took = asked.elapsed();
                    }
                    s.answered = s.answered.max(Some(asked));
                    s.held.entry(i).or_insert_with(|| Arc::new(data));
                    s.version += 1;
                    self.advance(&mut s);
                } else {
                    tracing::warn!(index = i, "corrupted chunk from a peer: asking again");
                    self.refetched.fetch_add(1, Ordering::SeqCst);
                    s.requested.remove(&i);
                }
            }
        }
        drop(s);
        self.changed.notify_all();
        Ok(())
    }

    /// Runs one connection with a peer until it closes, `stop` is set, or the peer stalls; returns
    /// whether the peer had announced holding every chunk it needs (then it needs no new link).
    pub fn run_link(&self, stream: TcpStream, stop: &AtomicBool) -> bool {
        let id = {
            let mut s = self.lock();
            let id = s.next_link;
            s.next_link += 1;
            s.links.insert(id, Link::default());
            id
        };
        let Ok(mut reader) = stream.try_clone() else {
            self.close(id);
            return self.lock().links.remove(&id).is_some_and(|l| self.done(&l));
        };
        let max_chunk = self.manifest.chunk_size;
        std::thread::scope(|sc| {
            sc.spawn(|| {
                loop {
                    let r = swarm_wire::read(&mut reader, max_chunk)
                        .map_err(|e| e.to_string())
                        .and_then(|m| self.take(id, m));
                    if let Err(why) = r {
                        tracing::debug!(link = id, %why, "peer link closed");
                        self.close(id);
                        return;
                    }
                }
            });
            let why = self.write_loop(id, &stream, stop);
            tracing::debug!(link = id, %why, "peer link ends");
            let _ = stream.shutdown(std::net::Shutdown::Both);
            self.close(id);
        });
        let peer_complete = self.lock().links.remove(&id).is_some_and(|l| self.done(&l));
        self.changed.notify_all();
        peer_complete
    }

    /// Whether the peer of `link` announced holding every chunk.
    fn done(&self, link: &Link) -> bool {
        let total = self.manifest.chunk_count();
        link.view.as_ref().is_some_and(|v| v.complete(total))
    }

    fn close(&self, id: u64) {
        let mut s = self.lock();
        if let Some(link) = s.links.get_mut(&id) {
            link.closed = true;
            let asked: Vec<u64> = std::mem::take(&mut link.asked).into_keys().collect();
            for i in asked {
                s.requested.remove(&i);
            }
        }
        drop(s);
        self.changed.notify_all();
    }

    /// Sends announcements, served chunks and requests on link `id`; why it ended.
    fn write_loop(&self, id: u64, stream: &TcpStream, stop: &AtomicBool) -> String {
        let mut out = stream;
        loop {
            if stop.load(Ordering::SeqCst) {
                return "stopped".into();
            }
            let (mut msgs, serve) = {
                let mut s = self.lock();
                self.advance(&mut s);
                let version = s.version;
                let announce = self.announcement(&s);
                let Some(link) = s.links.get_mut(&id) else {
                    return "gone".into();
                };
                if link.closed {
                    return "closed".into();
                }
                let waited = link.heard.map(|t| t.elapsed());
                if !link.asked.is_empty() && waited.is_some_and(|w| w > self.stall) {
                    return format!(
                        "stalled: nothing from the peer for {} ms with requests outstanding",
                        self.stall.as_millis()
                    );
                }
                let mut msgs = Vec::new();
                if link.announced != Some(version) {
                    link.announced = Some(version);
                    msgs.push(announce);
                }
                let serve = link.queued.pop_front();
                while s
                    .links
                    .get(&id)
                    .is_some_and(|l| l.asked.len() < REQUESTS_PER_PEER)
                {
                    let Some(i) = self.pick(&s, id) else { break };
                    let seed = s.links.get(&id).is_some_and(Link::is_seed);
                    if seed && self.nodes > 0 && self.owner(i) != self.owner(self.node) {
                        s.slow.insert(self.owner(i));
                    }
                    let now = Instant::now();
                    s.requested.insert(i, now);
                    if let Some(l) = s.links.get_mut(&id) {
                        if l.asked.is_empty() {
                            l.heard = Some(now);
                        }
                        l.asked.insert(i, now);
                    }
                    tracing::trace!(
                        node = self.node,
                        link = id,
                        index = i,
                        seed,
                        base = s.base,
                        "asking"
                    );
                    msgs.push(PeerMsg::Request(i));
                }
                (msgs, serve)
            };
            let served = serve.map(|i| (i, self.chunk(i)));
            if let Some(i) = serve {
                tracing::trace!(
                    link = id,
                    index = i,
                    seed = self.seed.is_some(),
                    "serving a chunk"
                );
            }
            if let Some((i, None)) = served {
                msgs.push(PeerMsg::Missing(i));
            }
            if msgs.is_empty() && served.is_none() {
                self.wait_change(POLL);
                continue;
            }
            for m in &msgs {
                if let Err(e) = swarm_wire::write(&mut out, m) {
                    return format!("send: {e}");
                }
            }
            if let Some((i, Some(c))) = &served
                && let Err(e) = swarm_wire::write_chunk(&mut out, *i, c)
            {
                return format!("send: {e}");
            }
        }
    }

    /// Chunk `index` if we can serve it.
    fn chunk(&self, index: u64) -> Option<Chunk> {
        if let Some(seed) = &self.seed {
            return seed.get(index, Duration::ZERO).ok().flatten();
        }
        self.lock().held.get(&index).cloned()
    }
}

#[cfg(test)]
#[path = "swarm_tests.rs"]
mod tests;

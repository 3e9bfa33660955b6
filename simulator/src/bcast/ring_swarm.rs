//! kaagent's swarm exchange (`hal::broadcast::swarm`, `swarm_node`, `plan::swarm_peers`) as a fluid
//! simulation, for the testbed's predictions.
//!
//! What kaagent does, and so what this models (the seed's bytes are what its server link carries):
//! * **Peers**: the nodes in topology order form a ring; node `i` opens a connection to each of the next
//!   [`RingSwarm::fanout`] nodes (and accepts the previous ones'), so a pair may share two connections when N
//!   ≤ 2·fanout. The server's seed opens one connection to every node and holds every chunk.
//! * **Requests**: a node keeps at most [`RingSwarm::per_peer`] requests outstanding on each connection and
//!   [`RingSwarm::per_node`] on all of them (the seed's included). On a connection it asks for the chunk of
//!   its span (the [`RingSwarm::span`] chunks from the first it lacks) that the peer holds, it lacks and has
//!   not asked anybody for, the rarest among its connections first (the seed's counts: a chunk no peer holds
//!   has rarity 1), ties broken by kaagent's own per-node hash ([`swarm::spread`]). The chunk that holds up
//!   its writing, asked more than [`RingSwarm::duplicate_after`] ago, may be asked again on another
//!   connection once a chunk asked after it has arrived (kaagent since stop 15; before, whenever it was that
//!   old, which spent a slow node's own link on duplicates). Which connection asks first when a slot frees is
//!   the threads' race: here a pseudo-random rotation per node.
//! * **Holdings**: a node announces what it holds from `base − keep` to `base + span` (`base`: the first
//!   chunk it lacks); a complete node announces the last `keep` chunks, which it keeps and goes on serving
//!   (before stop 15 kaagent's complete nodes announced nothing and served no more).
//! * **Serving**: each end of a connection serves the requests queued on it one chunk at a time, in order.
//!
//! Bandwidth: every chunk in flight is a flow; flows share the senders' up links, the receivers' down links
//! and the uplinks they cross max-min fairly (as TCP does), recomputed when a flow starts or ends. A request
//! and a chunk's last byte each pay one hop latency.

mod flows;

use super::resources::non_negative;
use super::{BroadcastJob, Topology};
use crate::net::Key;
use crate::rng::Rng;
use hal::broadcast::{plan, swarm};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

/// kaagent's swarm settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RingSwarm {
    /// Connections each node opens to the next nodes of the ring (`plan::SWARM_FANOUT`).
    pub fanout: usize,
    /// Requests outstanding on one connection (`swarm::REQUESTS_PER_PEER`).
    pub per_peer: usize,
    /// Requests outstanding on all of a node's connections (`swarm::REQUESTS_PER_NODE`).
    pub per_node: usize,
    /// Chunks a node works on from the first it lacks (the tuning's window).
    pub span: usize,
    /// Chunks a node keeps (and announces) below the first it lacks (the window again).
    pub keep: usize,
    /// Seconds after which the chunk holding up the writing may be asked again elsewhere (`swarm::DUPLICATE_AFTER`).
    pub duplicate_after: f64,
    /// Seed of the connections' race for a node's free request slots.
    pub race: u64,
    /// Whether a node asks the seed only for its own stripe of chunks (`index % n == node`), and
    /// for another's only once that chunk has held up its writing for `duplicate_after` longer than
    /// the seed takes (then for that owner's whole stripe; kaagent since stop 18); without, for
    /// any chunk no peer holds.
    pub striped: bool,
}

impl Default for RingSwarm {
    /// kaagent's settings (fanout 2, 2 per peer, 4 per node, the default window of 32 chunks, 400 ms), race seed 1.
    fn default() -> Self {
        RingSwarm {
            fanout: plan::SWARM_FANOUT,
            per_peer: swarm::REQUESTS_PER_PEER,
            per_node: swarm::REQUESTS_PER_NODE,
            span: 32,
            keep: 32,
            duplicate_after: swarm::DUPLICATE_AFTER.as_secs_f64(),
            race: 1,
            striped: true,
        }
    }
}

/// The simulated swarm.
#[derive(Clone, Debug, PartialEq)]
pub struct RingOutcome {
    /// When each receiver held every chunk (`f64::INFINITY`: never).
    pub done_at: Vec<f64>,
    /// Bytes moved between hosts, duplicates included.
    pub bytes: f64,
    /// Uplink traversals times bytes (a transfer between two leaves counts twice).
    pub uplink_bytes: f64,
    /// Bytes asked of nodes already complete (the chunks they keep).
    pub asked_of_complete: f64,
    /// Bytes the server's seed sent (up link `n`: the server's link carries them all).
    pub seed_bytes: f64,
}

/// At most this many events (a guard; a 16-node swarm of 256 chunks takes about 10^5).
const MAX_EVENTS: usize = 20_000_000;

/// Event kinds.
const REQUEST: u8 = 0;
const BYTES_DONE: u8 = 1;
const ARRIVE: u8 = 2;
const MISSING: u8 = 3;
const WAKE: u8 = 4;
/// A node's connections look again for requests (kaagent's `swarm::POLL`), until it is complete.
const POLL: u8 = 5;

/// An event: time, sequence (ties in order of scheduling), kind, two operands and a version.
type Event = (Key, u64, u8, usize, usize, u32);

#[derive(Clone, Copy, Debug)]
struct Flow {
    /// Connection direction (`link * 2 + sender's side`).
    dir: usize,
    chunk: usize,
    remaining: f64,
    rate: f64,
    version: u32,
    /// Resources crossed: sender's up link, receiver's down link, uplinks.
    uses: [Option<usize>; 4],
}

struct Sim<'a> {
    knobs: RingSwarm,
    /// Receivers; index `n` is the seed.
    n: usize,
    switches: Vec<usize>,
    piece: Vec<f64>,
    latency: f64,
    /// Connections: `ends[0]` opened it to `ends[1]`.
    links: Vec<[usize; 2]>,
    /// Each host's connections, with its side.
    node_links: Vec<Vec<(usize, usize)>>,
    have: Vec<Vec<bool>>,
    /// Each node's tie-break among equally rare chunks (kaagent: a hash of node and chunk).
    spread: Vec<Vec<u8>>,
    base: Vec<usize>,
    /// Since when each node's first missing chunk has been the same.
    base_since: Vec<f64>,
    /// Owners whose stripe each node asks the seed for too (one of their chunks held it up).
    slow: Vec<Vec<bool>>,
    /// How long the seed took to answer each node's latest request it answered.
    seed_took: Vec<f64>,
    done_at: Vec<f64>,
    requested: Vec<BTreeMap<usize, f64>>,
    /// Requests outstanding, per `link * 2 + requester's side`.
    asked: Vec<BTreeMap<usize, f64>>,
    /// When each node asked for the latest-asked chunk that arrived.
    answered: Vec<f64>,
    asked_total: Vec<usize>,
    /// Requests queued, per direction `link * 2 + sender's side`.
    queue: Vec<VecDeque<usize>>,
    serving: Vec<bool>,
    flows: BTreeMap<usize, Flow>,
    next_flow: usize,
    /// Resource capacities: up links `0..=n` (`n`: the seed's), down links `n+1..2n+1`, then each leaf's up and down uplink.
    capacity: Vec<f64>,
    fills: Vec<u64>,
    events: BinaryHeap<Reverse<Event>>,
    seq: u64,
    now: f64,
    last: f64,
    bytes: f64,
    uplink_bytes: f64,
    asked_of_complete: f64,
    seed_bytes: f64,
    _job: &'a BroadcastJob,
}

/// Simulates kaagent's swarm of `job` (receivers in topology order, chunks of `job.chunk`) on `topo`.
pub fn simulate(job: &BroadcastJob, topo: &Topology, knobs: RingSwarm) -> RingOutcome {
    let mut s = Sim::new(job, topo, knobs);
    s.run();
    RingOutcome {
        done_at: s.done_at,
        bytes: s.bytes,
        uplink_bytes: s.uplink_bytes,
        asked_of_complete: s.asked_of_complete,
        seed_bytes: s.seed_bytes,
    }
}

impl<'a> Sim<'a> {
    fn new(job: &'a BroadcastJob, topo: &Topology, knobs: RingSwarm) -> Self {
        let n = job.receivers.len();
        let size = non_negative(job.size);
        let chunk = if job.chunk.is_finite() && job.chunk > 0.0 {
            job.chunk
        } else {
            size.max(1.0)
        };
        let count = if size.is_finite() {
            ((size / chunk).ceil() as usize).max(1)
        } else {
            1
        };
        let piece = (0..count)
            .map(|p| (size - p as f64 * chunk).clamp(0.0, chunk))
            .collect();
        let mut links = Vec::new();
        for i in 0..n {
            for k in 1..=knobs.fanout.min(n.saturating_sub(1)) {
                links.push([i, (i + k) % n]);
            }
        }
        for i in 0..n {
            links.push([n, i]);
        }
        let mut node_links = vec![Vec::new(); n + 1];
        for (l, ends) in links.iter().enumerate() {
            node_links[ends[0]].push((l, 0));
            node_links[ends[1]].push((l, 1));
        }
        let switches: Vec<usize> = job.receivers.iter().map(|r| r.switch).collect();
        let leaves = switches.iter().copied().max().unwrap_or(0);
        let mut capacity = vec![non_negative(topo.node_link.bandwidth); 2 * n + 1];
        capacity[n] = non_negative(topo.server_link.bandwidth);
        for (j, r) in job.receivers.iter().enumerate() {
            if let Some((up, down)) = r.link {
                capacity[j] = non_negative(up);
                capacity[n + 1 + j] = non_negative(down);
            }
        }
        let uplink = topo.uplink_bandwidth.map_or(f64::INFINITY, non_negative);
        capacity.extend(std::iter::repeat_n(uplink, 2 * leaves));
        let dirs = links.len() * 2;
        Sim {
            knobs,
            n,
            switches,
            piece,
            latency: non_negative(topo.node_link.latency) * 2.0,
            links,
            node_links,
            have: vec![vec![false; count]; n],
            spread: (0..n)
                .map(|x| {
                    (0..count)
                        .map(|i| swarm::spread(x as u64, i as u64))
                        .collect()
                })
                .collect(),
            base: vec![0; n],
            base_since: vec![0.0; n],
            slow: vec![vec![false; n]; n],
            seed_took: vec![0.0; n],
            done_at: vec![f64::INFINITY; n],
            requested: vec![BTreeMap::new(); n],
            asked: vec![BTreeMap::new(); dirs],
            answered: vec![f64::NEG_INFINITY; n],
            asked_total: vec![0; n],
            queue: vec![VecDeque::new(); dirs],
            serving: vec![false; dirs],
            flows: BTreeMap::new(),
            next_flow: 0,
            capacity,
            fills: vec![0; n],
            events: BinaryHeap::new(),
            seq: 0,
            now: 0.0,
            last: 0.0,
            bytes: 0.0,
            uplink_bytes: 0.0,
            asked_of_complete: 0.0,
            seed_bytes: 0.0,
            _job: job,
        }
    }

    fn push(&mut self, at: f64, kind: u8, a: usize, b: usize, v: u32) {
        self.seq += 1;
        self.events
            .push(Reverse((Key(at), self.seq, kind, a, b, v)));
    }

    fn run(&mut self) {
        if self.n == 0 {
            return;
        }
        for j in 0..self.n {
            self.fill(j);
            if self.knobs.striped {
                // The seed rules' clock (the earlier rules woke on their own events only).
                self.push(swarm::POLL.as_secs_f64(), POLL, j, 0, 0);
            }
        }
        let mut handled = 0;
        while let Some(Reverse((Key(t), _, kind, a, b, v))) = self.events.pop() {
            handled += 1;
            if handled > MAX_EVENTS || self.done_at.iter().all(|d| d.is_finite()) {
                break;
            }
            self.now = t;
            match kind {
                REQUEST => self.on_request(a, b),
                POLL => {
                    if self.done_at[a].is_infinite() {
                        self.fill(a);
                        let at = self.now + swarm::POLL.as_secs_f64();
                        self.push(at, POLL, a, 0, 0);
                    }
                }
                BYTES_DONE => self.on_bytes_done(a, v),
                ARRIVE => self.on_arrive(a, b),
                MISSING => self.on_missing(a, b),
                _ => self.fill(a),
            }
        }
    }

    fn other(&self, link: usize, side: usize) -> usize {
        self.links[link][1 - side]
    }

    /// Whether host `p`'s announcement says it holds `chunk` (a complete node: the last `keep`).
    fn holds(&self, p: usize, chunk: usize) -> bool {
        if p == self.n {
            return true;
        }
        let base = self.base[p];
        self.have[p][chunk] && chunk + self.knobs.keep >= base && chunk < base + self.knobs.span
    }

    /// Whether host `p` can serve `chunk` (it keeps `keep` chunks below its base).
    fn can_serve(&self, p: usize, chunk: usize) -> bool {
        p == self.n || (self.have[p][chunk] && chunk + self.knobs.keep >= self.base[p])
    }

    /// The chunk node `x` asks for on its connection `(link, side)`, if any.
    fn pick(&self, x: usize, link: usize, side: usize) -> Option<usize> {
        let p = self.other(link, side);
        let asked = &self.asked[link * 2 + side];
        let base = self.base[x];
        let end = (base + self.knobs.span).min(self.piece.len());
        (base..end)
            .filter(|&i| !self.have[x][i] && self.holds(p, i) && !asked.contains_key(&i))
            .filter(|&i| p != self.n || self.seed_may_serve(x, link * 2 + side, i))
            .filter(|&i| {
                // Asked of a peer already: again (of the seed too) when that peer is slow.
                self.requested[x].get(&i).is_none_or(|&t| {
                    (i == base && self.now - t > self.knobs.duplicate_after && self.answered[x] > t)
                        || (p == self.n
                            && self.knobs.striped
                            && self.held_up(x, link * 2 + side, i))
                })
            })
            .min_by_key(|&i| {
                if p == self.n && self.knobs.striped {
                    // Of the seed, in order: the chunk holding up the writing first.
                    return (0, 0, i);
                }
                let rarity = self.node_links[x]
                    .iter()
                    .filter(|&&(l, s)| self.holds(self.other(l, s), i))
                    .count();
                (rarity, self.spread[x][i], i)
            })
    }

    /// Whether node `x` may ask the seed for `chunk` (its connection to the seed `dir`): its own
    /// stripe, a slow owner's, one no peer will hold again, or one [`Sim::held_up`] holds up.
    fn seed_may_serve(&self, x: usize, dir: usize, chunk: usize) -> bool {
        // No peer will hold it again: each announces chunks from `base − keep` up (the scan of
        // its peers last, where the cheaper rules have not answered).
        let orphan = || {
            self.node_links[x]
                .iter()
                .map(|&(l, s)| self.other(l, s))
                .filter(|&p| p < self.n)
                .all(|p| chunk + self.knobs.keep < self.base[p])
        };
        !self.knobs.striped
            || chunk % self.n == x
            || self.slow[x][chunk % self.n]
            || self.held_up(x, dir, chunk)
            || orphan()
            // Asked of a peer that other chunks overtook (the duplicate rule in `pick`).
            || self.requested[x].contains_key(&chunk)
    }

    /// Whether `chunk` has held up node `x`'s writing for `duplicate_after` longer than twice what
    /// the seed (its connection `dir`) takes: its latest answer, or the oldest request it has not
    /// answered.
    fn held_up(&self, x: usize, dir: usize, chunk: usize) -> bool {
        let unanswered = self.asked[dir]
            .values()
            .map(|&t| self.now - t)
            .fold(0.0, f64::max);
        let takes = self.seed_took[x].max(unanswered);
        chunk == self.base[x]
            && self.now - self.base_since[x] > self.knobs.duplicate_after + 2.0 * takes
    }

    /// Node `x` fills its free request slots, its connections in a rotating pseudo-random order.
    fn fill(&mut self, x: usize) {
        if x >= self.n || self.done_at[x].is_finite() {
            return;
        }
        let count = self.node_links[x].len();
        if count == 0 {
            return;
        }
        self.fills[x] += 1;
        let start = Rng::for_event(self.knobs.race, "ring-swarm-race", x as u64, self.fills[x])
            .below(count as u64);
        for k in 0..count {
            let (link, side) = self.node_links[x][(start as usize + k) % count];
            while self.asked[link * 2 + side].len() < self.knobs.per_peer.max(1)
                && self.asked_total[x] < self.knobs.per_node.max(1)
            {
                let Some(i) = self.pick(x, link, side) else {
                    break;
                };
                let p = self.other(link, side);
                if p == self.n && self.knobs.striped {
                    self.slow[x][i % self.n] = true;
                }
                if p < self.n && self.done_at[p] <= self.now {
                    self.asked_of_complete += self.piece[i];
                }
                self.requested[x].insert(i, self.now);
                self.asked[link * 2 + side].insert(i, self.now);
                self.asked_total[x] += 1;
                let at = self.now + self.latency;
                self.push(at, REQUEST, link * 2 + (1 - side), i, 0);
                let wake = self.now + self.knobs.duplicate_after + 1e-6;
                self.push(wake, WAKE, x, 0, 0);
            }
        }
    }

    fn on_request(&mut self, dir: usize, chunk: usize) {
        self.queue[dir].push_back(chunk);
        if !self.serving[dir] {
            self.serve_next(dir);
        }
    }

    /// The sender of direction `dir` starts its next queued chunk (answering Missing for one it lost).
    fn serve_next(&mut self, dir: usize) {
        let (link, side) = (dir / 2, dir % 2);
        let (from, to) = (self.links[link][side], self.links[link][1 - side]);
        while let Some(chunk) = self.queue[dir].pop_front() {
            if !self.can_serve(from, chunk) {
                let at = self.now + self.latency;
                self.push(at, MISSING, link * 2 + (1 - side), chunk, 0);
                continue;
            }
            let mut uses = [Some(from), Some(self.n + 1 + to), None, None];
            let (sf, st) = (self.switch(from), self.switch(to));
            if sf != st {
                let uplink = 2 * self.n + 1;
                if sf != 0 {
                    uses[2] = Some(uplink + 2 * (sf - 1));
                }
                if st != 0 {
                    uses[3] = Some(uplink + 2 * (st - 1) + 1);
                }
            }
            self.settle();
            let id = self.next_flow;
            self.next_flow += 1;
            self.flows.insert(
                id,
                Flow {
                    dir,
                    chunk,
                    remaining: self.piece[chunk],
                    rate: 0.0,
                    version: 0,
                    uses,
                },
            );
            self.serving[dir] = true;
            self.reshare();
            return;
        }
        self.serving[dir] = false;
    }

    fn switch(&self, host: usize) -> usize {
        if host == self.n {
            0
        } else {
            self.switches[host]
        }
    }

    fn on_bytes_done(&mut self, id: usize, version: u32) {
        let Some(f) = self.flows.get(&id).copied() else {
            return;
        };
        if f.version != version {
            return;
        }
        self.settle();
        self.flows.remove(&id);
        let bytes = self.piece[f.chunk];
        self.bytes += bytes;
        self.uplink_bytes += bytes * f.uses[2..].iter().flatten().count() as f64;
        self.seed_bytes += bytes * f64::from(u8::from(f.uses[0] == Some(self.n)));
        self.reshare();
        let at = self.now + self.latency;
        // The requester's side of the connection is the other end of the flow's direction.
        self.push(at, ARRIVE, f.dir ^ 1, f.chunk, 0);
        self.serve_next(f.dir);
    }

    /// A chunk asked on `asker` (`link * 2 + requester's side`) arrives.
    fn on_arrive(&mut self, asker: usize, chunk: usize) {
        let x = self.links[asker / 2][asker % 2];
        if x >= self.n {
            return;
        }
        let Some(asked) = self.asked[asker].remove(&chunk) else {
            return;
        };
        self.asked_total[x] -= 1;
        self.answered[x] = self.answered[x].max(asked);
        let from_seed = self.other(asker / 2, asker % 2) == self.n;
        if from_seed {
            self.seed_took[x] = self.now - asked;
        }
        let before = self.base[x];
        if !self.have[x][chunk] {
            self.have[x][chunk] = true;
            self.requested[x].remove(&chunk);
            while self.base[x] < self.piece.len() && self.have[x][self.base[x]] {
                self.base[x] += 1;
            }
            if self.base[x] == self.piece.len() {
                self.done_at[x] = self.now;
            }
        }
        if self.base[x] != before {
            self.base_since[x] = self.now;
        }
        if self.knobs.striped && (from_seed || self.base[x] != before) {
            // When the chunk holding up the writing may be asked of the seed (`seed_may_serve`).
            let at =
                self.base_since[x] + self.knobs.duplicate_after + 2.0 * self.seed_took[x] + 1e-6;
            self.push(at.max(self.now), WAKE, x, 0, 0);
        }
        self.fill(x);
        let peers: Vec<usize> = self.node_links[x]
            .iter()
            .map(|&(l, s)| self.other(l, s))
            .collect();
        for p in peers {
            self.fill(p);
        }
    }

    fn on_missing(&mut self, asker: usize, chunk: usize) {
        let x = self.links[asker / 2][asker % 2];
        if x >= self.n || self.asked[asker].remove(&chunk).is_none() {
            return;
        }
        self.asked_total[x] -= 1;
        self.requested[x].remove(&chunk);
        self.fill(x);
    }
}

#[cfg(test)]
mod tests;

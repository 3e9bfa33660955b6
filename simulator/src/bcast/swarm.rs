//! A BitTorrent-like swarm: the image is cut into verified pieces that the nodes exchange among
//! themselves, the server being a seed that holds them all.
//!
//! Each node knows a few random peers (symmetric, [`SwarmParams::neighbours`]) and the server. A node
//! with a free download slot asks for the piece it lacks that is rarest among its peers (ties go to a
//! per-node rotation), from the fastest of its peers holding it with a free upload slot; when no peer
//! has anything it lacks, it asks the server for the piece with the fewest copies in the swarm (so the
//! server injects new pieces rather than duplicates). A node that receives a piece tells its peers,
//! and an idle peer lacking it fetches it at once.
//!
//! Bandwidth is shared locally, as TCP would between a node's connections: a transfer runs at
//! `min(up/u, down/d)` where `u` and `d` are the transfers flowing out of its sender and into its
//! receiver (`down` is the receiver's link, disk and decompression rate), recomputed whenever either
//! count changes; a cross-switch transfer also gets at most its share of each uplink it crosses (as
//! counted when its rate is recomputed). Each transfer then pays one hop latency (the request) before
//! the piece counts as held. A node is done when it holds every piece.
//!
//! A node that dies aborts its transfers (the peers downloading from it ask elsewhere) and leaves the
//! swarm; a node whose disk refuses its first piece fails then and leaves too. Nobody else is cut off:
//! the swarm loses capacity, never receivers.

mod pieces;

use super::resources::{death_times, non_negative};
use super::{BroadcastJob, FailureReason, ReceiverOutcome, SwarmParams, Topology};
use crate::net::Key;
use pieces::{Bits, peer_graph};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

/// Event kinds, in processing order at equal times.
const BYTES_DONE: u8 = 0;
const ARRIVE: u8 = 1;
const DEATH: u8 = 2;

#[derive(Clone, Copy, Debug)]
struct Transfer {
    from: usize,
    to: usize,
    piece: usize,
    remaining: f64,
    rate: f64,
    last: f64,
    version: u32,
    /// Uplinks crossed (sender's switch up, receiver's switch down).
    uplinks: [Option<usize>; 2],
    /// Bytes still flowing (else in its latency tail).
    flowing: bool,
}

struct Swarm<'a> {
    job: &'a BroadcastJob,
    topo: &'a Topology,
    knobs: SwarmParams,
    /// Receivers; index `n` is the server.
    n: usize,
    pieces: usize,
    piece_bytes: Vec<f64>,
    latency: f64,
    have: Vec<Bits>,
    held: Vec<usize>,
    inflight: Vec<Bits>,
    /// avail[j][p]: live peers of `j` holding `p`.
    avail: Vec<Vec<u32>>,
    /// Copies of each piece among live receivers, held or in flight.
    copies: Vec<u32>,
    peers: Vec<Vec<usize>>,
    up_busy: Vec<u32>,
    down_busy: Vec<u32>,
    flowing_up: Vec<Vec<usize>>,
    flowing_down: Vec<Vec<usize>>,
    uplink_flows: BTreeMap<usize, (u32, u32)>,
    alive: Vec<bool>,
    fail_at: Vec<f64>,
    out: Vec<Option<ReceiverOutcome>>,
    transfers: Vec<Transfer>,
    live: BTreeSet<usize>,
    events: BinaryHeap<Reverse<(Key, u8, usize, u32)>>,
    waiting: BTreeSet<usize>,
    /// Receivers fetching from the server now (at most one piece each: the server spreads new pieces).
    from_seed: Vec<bool>,
    /// The server serves waiting nodes round-robin, starting after this one.
    seed_cursor: usize,
    now: f64,
}

/// Simulates a swarm broadcast; one outcome per receiver.
pub(crate) fn simulate(job: &BroadcastJob, topo: &Topology) -> Vec<ReceiverOutcome> {
    let mut s = Swarm::new(job, topo);
    s.run();
    s.out
        .into_iter()
        .map(|o| o.unwrap_or(ReceiverOutcome::Done { at: f64::INFINITY }))
        .collect()
}

/// The piece size and count for an image of `size` bytes cut in chunks of `chunk`.
fn cut(size: f64, chunk: f64, max_pieces: u32) -> Vec<f64> {
    let size = non_negative(size);
    if !size.is_finite() {
        return vec![f64::INFINITY];
    }
    if size == 0.0 {
        return vec![0.0];
    }
    let chunk = if chunk.is_finite() && chunk > 0.0 {
        chunk
    } else {
        size
    };
    let piece = chunk.max(size / f64::from(max_pieces.max(1))).min(size);
    let count = ((size / piece).ceil() as usize).max(1);
    (0..count)
        .map(|p| (size - p as f64 * piece).clamp(0.0, piece))
        .collect()
}

impl<'a> Swarm<'a> {
    fn new(job: &'a BroadcastJob, topo: &'a Topology) -> Self {
        let n = job.receivers.len();
        let knobs = job.swarm;
        let piece_bytes = cut(job.size, job.chunk, knobs.max_pieces);
        let pieces = piece_bytes.len();
        let mut have = vec![Bits::new(pieces); n];
        have.push(Bits::full(pieces));
        let mut alive = vec![true; n];
        alive.push(true);
        Swarm {
            job,
            topo,
            knobs,
            n,
            pieces,
            piece_bytes,
            latency: non_negative(topo.node_link.latency) * 2.0,
            have,
            held: vec![0; n],
            inflight: vec![Bits::new(pieces); n],
            avail: vec![vec![0; pieces]; n],
            copies: vec![0; pieces],
            peers: peer_graph(n, knobs.neighbours as usize, knobs.seed),
            up_busy: vec![0; n + 1],
            down_busy: vec![0; n],
            flowing_up: vec![Vec::new(); n + 1],
            flowing_down: vec![Vec::new(); n],
            uplink_flows: BTreeMap::new(),
            alive,
            fail_at: death_times(job),
            out: vec![None; n],
            transfers: Vec::new(),
            live: BTreeSet::new(),
            events: BinaryHeap::new(),
            waiting: BTreeSet::new(),
            from_seed: vec![false; n],
            seed_cursor: 0,
            now: 0.0,
        }
    }

    fn ratio(&self) -> f64 {
        let r = self.job.ratio;
        if r.is_finite() && r > 0.0 { r } else { 1.0 }
    }

    /// Receiving rate of node `j` (link, disk, decompression), in compressed bytes/s.
    fn down_rate(&self, j: usize) -> f64 {
        let r = &self.job.receivers[j];
        let link = r.link.map_or(self.topo.node_link.bandwidth, |(_, d)| d);
        non_negative(link)
            .min(non_negative(r.disk_write) / self.ratio())
            .min(non_negative(r.decompress) / self.ratio())
    }

    fn up_rate(&self, i: usize) -> f64 {
        if i == self.n {
            return non_negative(self.topo.server_link.bandwidth);
        }
        let r = &self.job.receivers[i];
        non_negative(r.link.map_or(self.topo.node_link.bandwidth, |(u, _)| u))
    }

    fn switch(&self, i: usize) -> usize {
        if i == self.n {
            0
        } else {
            self.job.receivers[i].switch
        }
    }

    fn upload_free(&self, i: usize) -> bool {
        self.alive[i] && self.up_busy[i] < self.knobs.upload_slots.max(1)
    }

    /// The rate transfer `id` gets now.
    fn share(&self, id: usize) -> f64 {
        let t = &self.transfers[id];
        let ups = self.flowing_up[t.from].len().max(1) as f64;
        let downs = self.flowing_down[t.to].len().max(1) as f64;
        let mut rate = (self.up_rate(t.from) / ups).min(self.down_rate(t.to) / downs);
        if let Some(u) = self.topo.uplink_bandwidth {
            let u = non_negative(u);
            if let Some(&(up, _)) = t.uplinks[0].and_then(|s| self.uplink_flows.get(&s)) {
                rate = rate.min(u / f64::from(up.max(1)));
            }
            if let Some(&(_, down)) = t.uplinks[1].and_then(|s| self.uplink_flows.get(&s)) {
                rate = rate.min(u / f64::from(down.max(1)));
            }
        }
        rate
    }

    /// The flowing transfers whose rate depends on the counts of `from`'s uploads and `to`'s downloads.
    fn touching(&self, from: usize, to: usize) -> Vec<usize> {
        let mut ids: Vec<usize> = self.flowing_up[from].clone();
        ids.extend(&self.flowing_down[to]);
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Brings the bytes of `ids` up to now at their old rates.
    fn settle(&mut self, ids: &[usize]) {
        for &id in ids {
            let now = self.now;
            let t = &mut self.transfers[id];
            if t.rate.is_finite() {
                t.remaining = (t.remaining - t.rate * (now - t.last)).max(0.0);
            }
            t.last = now;
        }
    }

    /// Gives `ids` their current share and schedules their end.
    fn reschedule(&mut self, ids: &[usize]) {
        for &id in ids {
            let rate = self.share(id);
            let now = self.now;
            let t = &mut self.transfers[id];
            t.rate = rate;
            t.version = t.version.wrapping_add(1);
            let end = if t.remaining <= 0.0 {
                now
            } else if rate > 0.0 {
                now + t.remaining / rate
            } else {
                f64::INFINITY
            };
            if end.is_finite() {
                self.events
                    .push(Reverse((Key(end), BYTES_DONE, id, t.version)));
            }
        }
    }

    fn run(&mut self) {
        let n = self.n;
        for (i, &t) in self.fail_at.iter().enumerate() {
            if t.is_finite() {
                self.events.push(Reverse((Key(t), DEATH, i, 0)));
            }
        }
        if self.piece_bytes.iter().all(|&b| b == 0.0) {
            for j in 0..n {
                self.out[j] = Some(if self.fail_at[j] > self.latency {
                    ReceiverOutcome::Done { at: self.latency }
                } else {
                    ReceiverOutcome::Failed {
                        at: self.fail_at[j],
                        reason: FailureReason::Died,
                    }
                });
            }
            return;
        }
        for j in 0..n {
            self.try_start(j);
        }
        while let Some(Reverse((Key(t), kind, id, version))) = self.events.pop() {
            self.now = t;
            match kind {
                BYTES_DONE => self.on_bytes_done(id, version),
                ARRIVE => self.on_arrive(id),
                _ => self.on_death(id, FailureReason::Died),
            }
        }
    }

    /// Starts downloads for `j` while it has free slots and something to fetch.
    fn try_start(&mut self, j: usize) {
        let slots = self.knobs.download_slots.max(1);
        while self.alive[j] && self.out[j].is_none() && self.down_busy[j] < slots {
            match self.pick(j) {
                Some((piece, from)) => self.start(from, j, piece),
                None => {
                    self.waiting.insert(j);
                    return;
                }
            }
        }
        self.waiting.remove(&j);
    }

    /// What `j` fetches next: the rarest piece among its peers from the fastest free peer holding
    /// it, else the piece with the fewest copies from the server.
    fn pick(&self, j: usize) -> Option<(usize, usize)> {
        let m = self.pieces;
        let offset = j.wrapping_mul(2_654_435_761) % m;
        let lacks = |p: usize| !self.have[j].get(p) && !self.inflight[j].get(p);
        let mut best: Option<(u32, usize, usize)> = None;
        for k in 0..m {
            let p = (offset + k) % m;
            let a = self.avail[j][p];
            if a == 0 || !lacks(p) || best.is_some_and(|(b, _, _)| a >= b) {
                continue;
            }
            let from = self.peers[j]
                .iter()
                .copied()
                .filter(|&i| self.have[i].get(p) && self.upload_free(i))
                .min_by_key(|&i| (Reverse(Key(self.up_rate(i))), self.up_busy[i], i));
            if let Some(from) = from {
                best = Some((a, p, from));
            }
        }
        if let Some((_, p, from)) = best {
            return Some((p, from));
        }
        if !self.upload_free(self.n) || self.from_seed[j] {
            return None;
        }
        (0..m)
            .map(|k| (offset + k) % m)
            .filter(|&p| lacks(p))
            .min_by_key(|&p| self.copies[p])
            .map(|p| (p, self.n))
    }

    fn start(&mut self, from: usize, to: usize, piece: usize) {
        let (sf, st) = (self.switch(from), self.switch(to));
        let mut uplinks = [None, None];
        if self.topo.uplink_bandwidth.is_some() && sf != st {
            if sf != 0 {
                self.uplink_flows.entry(sf).or_default().0 += 1;
                uplinks[0] = Some(sf);
            }
            if st != 0 {
                self.uplink_flows.entry(st).or_default().1 += 1;
                uplinks[1] = Some(st);
            }
        }
        self.up_busy[from] += 1;
        self.down_busy[to] += 1;
        if from == self.n {
            self.from_seed[to] = true;
            self.seed_cursor = to;
        }
        self.inflight[to].set(piece, true);
        self.copies[piece] += 1;
        let id = self.transfers.len();
        self.transfers.push(Transfer {
            from,
            to,
            piece,
            remaining: self.piece_bytes[piece],
            rate: 0.0,
            last: self.now,
            version: 0,
            uplinks,
            flowing: true,
        });
        self.live.insert(id);
        let touched = self.touching(from, to);
        self.settle(&touched);
        self.flowing_up[from].push(id);
        self.flowing_down[to].push(id);
        let mut touched = touched;
        touched.push(id);
        self.reschedule(&touched);
    }

    /// Stops the bytes of transfer `id` (done or aborted) and gives the others their new share.
    fn stop_flowing(&mut self, id: usize) {
        let t = self.transfers[id];
        if !t.flowing {
            return;
        }
        let touched: Vec<usize> = self
            .touching(t.from, t.to)
            .into_iter()
            .filter(|&x| x != id)
            .collect();
        self.settle(&touched);
        self.flowing_up[t.from].retain(|&x| x != id);
        self.flowing_down[t.to].retain(|&x| x != id);
        for (k, s) in t.uplinks.iter().enumerate() {
            if let Some(c) = s.and_then(|s| self.uplink_flows.get_mut(&s)) {
                if k == 0 {
                    c.0 -= 1;
                } else {
                    c.1 -= 1;
                }
            }
        }
        self.transfers[id].flowing = false;
        self.reschedule(&touched);
    }

    /// Frees the slots of transfer `id` and forgets it.
    fn release(&mut self, id: usize) -> Transfer {
        self.stop_flowing(id);
        let t = self.transfers[id];
        self.live.remove(&id);
        self.up_busy[t.from] -= 1;
        self.down_busy[t.to] -= 1;
        if t.from == self.n {
            self.from_seed[t.to] = false;
        }
        self.inflight[t.to].set(t.piece, false);
        t
    }

    fn on_bytes_done(&mut self, id: usize, version: u32) {
        let t = self.transfers[id];
        if !self.live.contains(&id) || !t.flowing || t.version != version {
            return;
        }
        self.stop_flowing(id);
        self.events
            .push(Reverse((Key(self.now + self.latency), ARRIVE, id, 0)));
    }

    fn on_arrive(&mut self, id: usize) {
        if !self.live.contains(&id) {
            return;
        }
        let t = self.release(id);
        let j = t.to;
        if self.alive[j] {
            if self.job.receivers[j].write_error {
                self.copies[t.piece] -= 1;
                self.on_death(j, FailureReason::WriteError);
            } else {
                self.have[j].set(t.piece, true);
                self.held[j] += 1;
                let peers = self.peers[j].clone();
                for &k in &peers {
                    self.avail[k][t.piece] += 1;
                }
                if self.held[j] == self.pieces {
                    self.out[j] = Some(ReceiverOutcome::Done { at: self.now });
                    self.waiting.remove(&j);
                }
                self.try_start(j);
                // Peers waiting for something to fetch hear that `j` has the piece.
                for &k in &peers {
                    self.offer(j, k, t.piece);
                }
            }
        }
        self.after_upload_freed(t.from);
    }

    /// `k`, waiting for something to fetch, takes `piece` from `from` if both have a free slot.
    fn offer(&mut self, from: usize, k: usize, piece: usize) {
        let slots = self.knobs.download_slots.max(1);
        if !self.waiting.contains(&k)
            || self.have[k].get(piece)
            || self.inflight[k].get(piece)
            || self.down_busy[k] >= slots
            || !self.upload_free(from)
        {
            return;
        }
        self.start(from, k, piece);
        if self.down_busy[k] >= slots {
            self.waiting.remove(&k);
        }
    }

    /// An upload slot of `i` is free: the waiting nodes that may use it try again.
    fn after_upload_freed(&mut self, i: usize) {
        let candidates: Vec<usize> = if i == self.n {
            let c = self.seed_cursor;
            let after = self.waiting.range(c + 1..).copied();
            after.chain(self.waiting.range(..=c).copied()).collect()
        } else if self.alive[i] {
            self.peers[i]
                .iter()
                .copied()
                .filter(|k| self.waiting.contains(k))
                .collect()
        } else {
            return;
        };
        for k in candidates {
            if !self.upload_free(i) {
                break;
            }
            self.try_start(k);
        }
    }

    fn on_death(&mut self, i: usize, reason: FailureReason) {
        if !self.alive[i] {
            return;
        }
        // A node that already has the image keeps its outcome but stops serving its peers.
        self.alive[i] = false;
        self.waiting.remove(&i);
        if self.out[i].is_none() {
            self.out[i] = Some(ReceiverOutcome::Failed {
                at: self.now,
                reason,
            });
        }
        let peers = self.peers[i].clone();
        for p in 0..self.pieces {
            if self.have[i].get(p) {
                self.copies[p] -= 1;
                for &k in &peers {
                    self.avail[k][p] -= 1;
                }
            }
        }
        let running: Vec<usize> = self
            .live
            .iter()
            .copied()
            .filter(|&id| self.transfers[id].from == i || self.transfers[id].to == i)
            .collect();
        let (mut retry, mut freed) = (BTreeSet::new(), Vec::new());
        for id in running {
            let t = self.release(id);
            if t.to == i {
                self.copies[t.piece] -= 1;
                freed.push(t.from);
            } else {
                self.copies[t.piece] -= 1;
                retry.insert(t.to);
            }
        }
        for k in retry {
            self.try_start(k);
        }
        for f in freed {
            self.after_upload_freed(f);
        }
    }
}

#[cfg(test)]
mod tests;

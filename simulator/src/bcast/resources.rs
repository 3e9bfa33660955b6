//! Builds a broadcast's resources (server and node links, switch uplinks, disks, decompression) and
//! its timing rules (how far a stream must progress before a receiver is done, and the latency it pays).
//!
//! Network: every node has an up and a down link of `node_link.bandwidth`; the server's up link has
//! `server_link.bandwidth`. Switches are non-blocking. With `uplink_bandwidth`, every switch but 0 has
//! an up and a down uplink to the core (switch 0, the server's, is the core side), and a hop between
//! different switches crosses the sender switch's up uplink and the receiver switch's down uplink.
//! A hop's latency is the sum of its two links' latencies (SimGrid's route latency).
//! Disk write and decompression are in output bytes/s, so a stream crosses them with coefficient ρ. A
//! receiver's down link, disk and decompression are crossed only by the one stream it receives, so they
//! are one resource of capacity `min(down, W/ρ, D/ρ)` crossed with coefficient 1 (the same max-min
//! constraint, with half the resources and terms of a million-node pipeline).

use std::collections::BTreeMap;

use super::{BroadcastJob, LatencyModel, Topology};
use crate::net::{ChunkOverhead, Fluid, ResourceId};

/// Where a hop starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sender {
    /// The broadcast server.
    Server,
    /// A receiver forwarding the stream.
    Node(usize),
}

/// A non-negative finite-or-infinite value: NaN and negatives become 0.
pub(crate) fn non_negative(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 { 0.0 } else { x }
}

/// The resources of one broadcast in a [`Fluid`].
pub(crate) struct Net {
    /// The flow system holding every resource.
    pub fluid: Fluid,
    server_up: ResourceId,
    /// Each receiver's down link, disk and decompression as one resource.
    recv: Vec<ResourceId>,
    up: Vec<ResourceId>,
    /// Switch → (up uplink, down uplink), for switches other than 0 when uplinks are modelled.
    uplinks: BTreeMap<usize, (ResourceId, ResourceId)>,
    switch: Vec<usize>,
    server_latency: f64,
    node_latency: f64,
}

impl Net {
    /// Creates every resource the receivers of `job` may use on `topo`.
    pub fn new(job: &BroadcastJob, topo: &Topology) -> Self {
        let mut fluid = Fluid::new();
        let n = job.receivers.len();
        fluid.reserve_resources(2 * n + 1);
        let server_up = fluid.add_resource(topo.server_link.bandwidth);
        let ratio = sanitize_ratio(job.ratio);
        let (mut recv, mut up) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let mut uplinks = BTreeMap::new();
        for r in &job.receivers {
            let (up_rate, down_rate) = r
                .link
                .unwrap_or((topo.node_link.bandwidth, topo.node_link.bandwidth));
            let sink = non_negative(down_rate)
                .min(non_negative(r.disk_write) / ratio)
                .min(non_negative(r.decompress) / ratio);
            recv.push(fluid.add_resource(sink));
            up.push(fluid.add_resource(up_rate));
            if let Some(u) = topo.uplink_bandwidth
                && r.switch != 0
                && !uplinks.contains_key(&r.switch)
            {
                let pair = (fluid.add_resource(u), fluid.add_resource(u));
                uplinks.insert(r.switch, pair);
            }
        }
        Net {
            fluid,
            server_up,
            recv,
            up,
            uplinks,
            switch: job.receivers.iter().map(|r| r.switch).collect(),
            server_latency: non_negative(topo.server_link.latency),
            node_latency: non_negative(topo.node_link.latency),
        }
    }

    /// Latency of one hop from `from` to a receiver.
    pub fn hop_latency(&self, from: Sender) -> f64 {
        match from {
            Sender::Server => self.server_latency + self.node_latency,
            Sender::Node(_) => 2.0 * self.node_latency,
        }
    }

    /// Appends the terms of receiver `to` getting the stream from `from`: the sender's up link, the
    /// uplinks crossed and `to`'s receiving resource (down link, disk and decompression).
    pub fn push_receive_terms(&self, from: Sender, to: usize, out: &mut Vec<(ResourceId, f64)>) {
        let (from_up, from_switch) = match from {
            Sender::Server => (self.server_up, 0),
            Sender::Node(i) => (self.up[i], self.switch[i]),
        };
        out.push((from_up, 1.0));
        let to_switch = self.switch[to];
        if from_switch != to_switch {
            if let Some(&(u, _)) = self.uplinks.get(&from_switch) {
                out.push((u, 1.0));
            }
            if let Some(&(_, d)) = self.uplinks.get(&to_switch) {
                out.push((d, 1.0));
            }
        }
        out.push((self.recv[to], 1.0));
    }
}

/// ρ: NaN, non-positive or infinite ratios count as 1.
fn sanitize_ratio(r: f64) -> f64 {
    if r.is_finite() && r > 0.0 { r } else { 1.0 }
}

/// The latency rules of one broadcast, in stream-progress bytes.
///
/// With `c` the chunk size actually used (`min(chunk, S)`, or `S` when `chunk` is not a positive
/// finite number) and `K = ⌈S/c⌉`, a receiver `h` hops from the server whose hops' latencies sum to
/// `Λ`, on a stream of max-min rate `r`:
///
/// * **PerConnection**: the receiver lags the stream head by `h` chunks (each hop, the server's
///   included, stores and forwards one chunk) and pays `Λ` once: it is done when the stream has
///   progressed `S + h·c` bytes, plus `Λ`. Homogeneous: `T = S/r + h·(c/r + L)`.
/// * **PerChunk**: chunked stop-and-wait, every chunk pays the hop latency `ℓ` (the largest hop
///   latency of the stream): the stream progresses at `c/(c/r + ℓ)` and the receiver is done at
///   progress `(K + h − 1)·c`. Homogeneous: `T = (K + h − 1)·(c/r + ℓ)`.
/// * An empty image (`S = 0`) is done after `Λ` in both models.
///
/// A receiver's first chunk is written at progress `c + h·c` (PerConnection) or `h·c` (PerChunk).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Timing {
    size: f64,
    chunk: f64,
    chunks: f64,
    per_chunk: bool,
}

impl Timing {
    /// The timing rules of `job` under `model`.
    pub fn new(job: &BroadcastJob, model: LatencyModel) -> Self {
        let size = non_negative(job.size);
        let chunk = if job.chunk.is_finite() && job.chunk > 0.0 {
            job.chunk.min(size)
        } else {
            size
        };
        let chunks = if chunk > 0.0 {
            (size / chunk).ceil()
        } else {
            0.0
        };
        let per_chunk = model == LatencyModel::PerChunk && chunk > 0.0 && size.is_finite();
        Timing {
            size,
            chunk,
            chunks,
            per_chunk,
        }
    }

    /// Stream progress at which a receiver `hops` hops away is done.
    pub fn done_at(&self, hops: f64) -> f64 {
        if self.per_chunk {
            (self.chunks + hops - 1.0) * self.chunk
        } else {
            self.size + hops * self.chunk
        }
    }

    /// Stream progress at which a receiver `hops` hops away writes its first chunk.
    pub fn first_write_at(&self, hops: f64) -> f64 {
        if self.per_chunk {
            hops * self.chunk
        } else {
            (hops + 1.0) * self.chunk
        }
    }

    /// Real time added to the stream's time for a receiver whose hop latencies sum to `path_latency`.
    pub fn shift(&self, path_latency: f64) -> f64 {
        if self.per_chunk { 0.0 } else { path_latency }
    }

    /// The stop-and-wait overhead of a stream whose largest hop latency is `hop_latency`.
    pub fn overhead(&self, hop_latency: f64) -> Option<ChunkOverhead> {
        self.per_chunk.then_some(ChunkOverhead {
            chunk: self.chunk,
            latency: hop_latency,
        })
    }
}

/// When each receiver dies: `dies_at` with NaN ignored, negatives clamped to 0, `+∞` if never.
pub(crate) fn death_times(job: &BroadcastJob) -> Vec<f64> {
    job.receivers
        .iter()
        .map(|r| match r.dies_at {
            Some(t) if !t.is_nan() => t.max(0.0),
            _ => f64::INFINITY,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bcast::{FaultTolerance, LinkParams, Receiver, SwarmParams};
    use hal::Strategy;

    fn job(size: f64, chunk: f64, switches: &[usize]) -> BroadcastJob {
        BroadcastJob {
            strategy: Strategy::Chain,
            size,
            ratio: f64::NAN,
            chunk,
            receivers: switches
                .iter()
                .map(|&switch| Receiver {
                    switch,
                    disk_write: f64::INFINITY,
                    decompress: f64::INFINITY,
                    dies_at: Some(-1.0),
                    write_error: false,
                    link: None,
                })
                .collect(),
            fault_tolerance: FaultTolerance {
                detect_timeout: 3.0,
                reconnect: 1.0,
            },
            swarm: SwarmParams::default(),
            fec: None,
        }
    }

    #[test]
    fn hops_cross_uplinks_only_between_switches() {
        let link = LinkParams {
            bandwidth: 100.0,
            latency: 0.5,
        };
        let topo = Topology {
            node_link: link,
            server_link: LinkParams {
                bandwidth: 1000.0,
                latency: 0.25,
            },
            uplink_bandwidth: Some(10.0),
            latency_model: LatencyModel::PerConnection,
            loss: 0.0,
        };
        let net = Net::new(&job(1.0, 1.0, &[0, 1, 1, 2]), &topo);
        let mut t = Vec::new();
        net.push_receive_terms(Sender::Server, 1, &mut t);
        assert_eq!(
            t.len(),
            3,
            "server up, switch 1 down uplink, receiving node"
        );
        t.clear();
        net.push_receive_terms(Sender::Node(1), 2, &mut t);
        assert_eq!(t.len(), 2);
        t.clear();
        net.push_receive_terms(Sender::Node(2), 3, &mut t);
        assert_eq!(t.len(), 4);
        assert_eq!(t[3].1, 1.0);
        assert_eq!(net.hop_latency(Sender::Server), 0.75);
        assert_eq!(net.hop_latency(Sender::Node(0)), 1.0);
    }

    #[test]
    fn timing_rules() {
        let t = Timing::new(&job(10.0, 4.0, &[0]), LatencyModel::PerChunk);
        assert_eq!((t.chunk, t.chunks), (4.0, 3.0));
        assert_eq!(t.done_at(2.0), 16.0);
        assert_eq!(t.first_write_at(2.0), 8.0);
        assert_eq!(t.shift(7.0), 0.0);
        let t = Timing::new(&job(10.0, f64::NAN, &[0]), LatencyModel::PerConnection);
        assert_eq!(t.done_at(2.0), 30.0);
        assert_eq!(t.shift(7.0), 7.0);
        assert!(t.overhead(1.0).is_none());
        let t = Timing::new(&job(0.0, 4.0, &[0]), LatencyModel::PerChunk);
        assert_eq!(
            (t.done_at(3.0), t.first_write_at(3.0), t.shift(2.0)),
            (0.0, 0.0, 2.0)
        );
        assert_eq!(death_times(&job(1.0, 1.0, &[0])), vec![0.0]);
    }
}

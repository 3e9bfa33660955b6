//! What a broadcast on a simulated cluster looks like to the [`crate::bcast`] models: the topology,
//! each node's receiver (its drawn disk rate, its switch) and the job, from the simulation parameters.
//! [`crate::cluster::SimCluster`], `kasim sweep` and the strategy chooser ([`crate::auto`]) share it,
//! so a prediction sees exactly the cluster a deployment runs on.

use crate::bcast::{
    BroadcastJob, FaultTolerance, LatencyModel, LinkParams, Receiver, SwarmParams, Topology,
};
use crate::params::{LatencyModelName, SimParams};
use crate::rng::Rng;
use hal::Strategy;

/// The network of `params` as the broadcast models see it.
pub fn topology(params: &SimParams) -> Topology {
    let net = &params.network;
    Topology {
        node_link: LinkParams {
            bandwidth: net.bandwidth,
            latency: net.latency,
        },
        server_link: LinkParams {
            bandwidth: net.server_bandwidth,
            latency: net.latency,
        },
        uplink_bandwidth: if net.nodes_per_switch > 0 {
            net.uplink_bandwidth
        } else {
            None
        },
        latency_model: match net.latency_model {
            LatencyModelName::PerConnection => LatencyModel::PerConnection,
            LatencyModelName::PerChunk => LatencyModel::PerChunk,
        },
        loss: net.loss,
    }
}

/// How much longer a node's processor work takes when `nodes` virtual machines share `params.host`'s
/// cores (all busy at once): `nodes` over the cores their busy load (`host.busy_load`, else
/// `host.idle_load`) leaves (at least a tenth of them), at least 1; 1 without `host`.
pub fn host_stretch(params: &SimParams, nodes: usize) -> f64 {
    params.host.as_ref().map_or(1.0, |h| {
        let n = nodes as f64;
        let load = h.busy_load.unwrap_or(h.idle_load);
        let free = (h.cores - n * load).max(h.cores / 10.0);
        (n / free).max(1.0)
    })
}

/// [`topology`] of a cluster of `nodes`: on a shared `host`, a node's network goodput is its virtual
/// machine's processor work, so the nodes' links slow down by [`host_stretch`].
pub fn topology_of(params: &SimParams, nodes: usize) -> Topology {
    let mut topo = topology(params);
    topo.node_link.bandwidth /= host_stretch(params, nodes);
    topo
}

/// The chunk a chain's pipeline fill forwards, as the broadcast models see it on a shared host: while
/// the chain fills, the nodes that have started grow from one to all, so a hop's chunk competes on
/// average with half of them and takes `(1 + stretch) / 2` times its time alone, not the `stretch`
/// times of the nodes' links ([`topology_of`]); the chunk shrinks by that ratio. `chunk` itself
/// without `host`, below one node per core, and for strategies that are not chains.
pub fn fill_chunk(params: &SimParams, nodes: usize, strategy: Strategy, chunk: f64) -> f64 {
    let stretch = host_stretch(params, nodes);
    match strategy {
        Strategy::Chain | Strategy::FaultTolerantChain => chunk * (1.0 + stretch) / (2.0 * stretch),
        _ => chunk,
    }
}

/// The disk write rate drawn for node `index` (seeded normal, at least a tenth of the mean).
pub fn disk_rate(params: &SimParams, seed: u64, index: usize) -> f64 {
    let d = &params.disk;
    let rate = Rng::for_entity(seed, "disk", index as u64).normal(d.write_rate, d.write_rate_sd);
    rate.max(d.write_rate / 10.0)
}

/// The switch of node `index` (`index / nodes_per_switch`, or 0 on one switch).
pub fn switch_of(params: &SimParams, index: usize) -> usize {
    index
        .checked_div(params.network.nodes_per_switch)
        .unwrap_or(0)
}

/// The healthy receiver of node `index` writing to disk at `disk_write` (or to RAM when not `to_disk`).
pub fn receiver(params: &SimParams, index: usize, disk_write: f64, to_disk: bool) -> Receiver {
    Receiver {
        switch: switch_of(params, index),
        disk_write: if to_disk { disk_write } else { f64::INFINITY },
        decompress: if to_disk {
            params.disk.decompress_rate
        } else {
            f64::INFINITY
        },
        dies_at: None,
        write_error: false,
        link: None,
    }
}

/// The healthy receivers of nodes `0..n`, writing to disk, with their drawn disk rates.
pub fn receivers(params: &SimParams, seed: u64, n: usize) -> Vec<Receiver> {
    (0..n)
        .map(|i| receiver(params, i, disk_rate(params, seed, i), true))
        .collect()
}

/// The swarm knobs of `params`, with the neighbour choice drawn from `seed`.
pub fn swarm_params(params: &SimParams, seed: u64) -> SwarmParams {
    let w = &params.swarm;
    SwarmParams {
        max_pieces: w.max_pieces,
        upload_slots: w.upload_slots,
        download_slots: w.download_slots,
        neighbours: w.neighbours,
        seed,
    }
}

/// A job of `strategy` sending `size` compressed bytes (ratio `ratio`) to `receivers` with the
/// chunk, fault tolerance and swarm knobs of `params`.
pub fn job(
    params: &SimParams,
    seed: u64,
    strategy: Strategy,
    size: f64,
    ratio: f64,
    receivers: Vec<Receiver>,
) -> BroadcastJob {
    let ft = &params.fault_tolerance;
    BroadcastJob {
        strategy,
        size,
        ratio,
        chunk: params.network.chunk,
        receivers,
        fault_tolerance: FaultTolerance {
            detect_timeout: ft.detect_timeout,
            reconnect: ft.reconnect,
        },
        swarm: swarm_params(params, seed),
        fec: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::HostParams;

    #[test]
    fn nodes_sharing_a_host_slow_down_past_one_per_core() {
        let mut p = SimParams::default();
        assert_eq!(host_stretch(&p, 16), 1.0);
        p.host = Some(HostParams {
            cores: 2.0,
            idle_load: 0.0,
            busy_load: None,
        });
        assert_eq!(host_stretch(&p, 1), 1.0);
        assert_eq!(host_stretch(&p, 16), 8.0);
        let idle = SimParams {
            host: Some(HostParams {
                cores: 2.0,
                idle_load: 0.05,
                busy_load: None,
            }),
            ..SimParams::default()
        };
        // 16 idle VMs keep 0.8 of the 2 cores busy: the work gets 1.2.
        assert!((host_stretch(&idle, 16) - 16.0 / 1.2).abs() < 1e-9);
        // A busy node's load, when measured, is what the work competes with.
        let busy = SimParams {
            host: Some(HostParams {
                cores: 2.0,
                idle_load: 0.05,
                busy_load: Some(0.025),
            }),
            ..SimParams::default()
        };
        assert!((host_stretch(&busy, 16) - 16.0 / 1.6).abs() < 1e-9);
        let topo = topology_of(&p, 16);
        assert_eq!(topo.node_link.bandwidth, p.network.bandwidth / 8.0);
        assert_eq!(topo.server_link.bandwidth, p.network.server_bandwidth);
    }

    #[test]
    fn a_shared_hosts_chain_fills_at_half_the_crowding() {
        let mut p = SimParams::default();
        // Real nodes: the chunk as it is.
        assert_eq!(fill_chunk(&p, 16, Strategy::Chain, 1.0), 1.0);
        p.host = Some(HostParams {
            cores: 2.0,
            idle_load: 0.0,
            busy_load: None,
        });
        // 16 VMs on 2 cores: stretch 8, a fill hop 4.5 times its time alone: 9/16 of the chunk at
        // the stretched links' bandwidth.
        assert_eq!(
            fill_chunk(&p, 16, Strategy::FaultTolerantChain, 1.0),
            9.0 / 16.0
        );
        assert_eq!(fill_chunk(&p, 2, Strategy::Chain, 1.0), 1.0);
        // Other strategies' chunks are their pieces: untouched.
        assert_eq!(fill_chunk(&p, 16, Strategy::Swarm, 1.0), 1.0);
        assert_eq!(fill_chunk(&p, 16, Strategy::Multicast, 1.0), 1.0);
    }
}

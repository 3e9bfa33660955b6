//! The simulator picks the broadcast: before broadcasting, run the models on the cluster's topology,
//! link rates, disks, node count and image size for every strategy and a few chunk sizes, and keep
//! the fastest (the last receiver's completion). `kasim deploy --broadcast auto` uses it; a deployer
//! backend can call [`choose`] with its own parameters before its BroadcastEnv step.
//!
//! Ties keep the earlier candidate of [`STRATEGIES`] (the fault-tolerant chain first: without failures
//! it costs nothing over the chain). Candidates that cannot win are skipped: unicast when its lower
//! bound `N·S/B_server` is above the best so far, the swarm above [`SWARM_MAX_NODES`] nodes (its
//! piece-level model costs N × pieces events).

use crate::bcast::{self, Receiver, ReceiverOutcome, Topology};
use crate::model_input;
use crate::params::SimParams;
use hal::Strategy;

/// Strategies tried, in order of preference on ties.
pub const STRATEGIES: [Strategy; 6] = [
    Strategy::FaultTolerantChain,
    Strategy::Chain,
    Strategy::Multicast,
    Strategy::Swarm,
    Strategy::Tree { arity: 2 },
    Strategy::Unicast,
];

/// Chunk sizes tried (64 KiB to 4 MiB).
pub const CHUNKS: [f64; 4] = [65_536.0, 262_144.0, 1_048_576.0, 4_194_304.0];

/// The swarm is not predicted above this many nodes.
pub const SWARM_MAX_NODES: usize = 20_000;

/// One predicted configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// The strategy.
    pub strategy: Strategy,
    /// The chunk size in bytes.
    pub chunk: f64,
    /// Predicted seconds until the last receiver has the image.
    pub seconds: f64,
}

/// What [`choose`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// The fastest configuration.
    pub best: Candidate,
    /// Every configuration predicted, in the order tried.
    pub predicted: Vec<Candidate>,
    /// Strategies not predicted, with why.
    pub skipped: Vec<(Strategy, String)>,
}

/// Seconds until the last receiver is done (∞ if any fails: the prediction assumes healthy nodes).
fn last_done(outcomes: &[ReceiverOutcome]) -> f64 {
    outcomes.iter().fold(0.0, |acc, o| match o {
        ReceiverOutcome::Done { at } => acc.max(*at),
        ReceiverOutcome::Failed { .. } => f64::INFINITY,
    })
}

/// Predicts every strategy and chunk for `nodes` healthy nodes of `params` receiving `size`
/// compressed bytes (decompression ratio `ratio`, written to disk) and returns the fastest.
pub fn choose(params: &SimParams, nodes: usize, size: f64, ratio: f64) -> Choice {
    let topo = model_input::topology(params);
    let receivers = model_input::receivers(params, params.seed, nodes);
    choose_for(params, &topo, receivers, size, ratio)
}

/// [`choose`] for given `receivers` on `topo` (the deployer's planner: the nodes of one broadcast, on
/// the cluster's switches).
pub fn choose_for(
    params: &SimParams,
    topo: &Topology,
    receivers: Vec<Receiver>,
    size: f64,
    ratio: f64,
) -> Choice {
    let nodes = receivers.len();
    let mut predicted = Vec::new();
    let mut skipped = Vec::new();
    let mut best: Option<Candidate> = None;
    for strategy in STRATEGIES {
        if strategy == Strategy::Swarm && nodes > SWARM_MAX_NODES {
            skipped.push((
                strategy,
                format!("not predicted above {SWARM_MAX_NODES} nodes"),
            ));
            continue;
        }
        if strategy == Strategy::Unicast
            && let Some(b) = best
        {
            let bound = nodes as f64 * size / params.network.server_bandwidth;
            if bound >= b.seconds {
                skipped.push((
                    strategy,
                    format!("its bound N·S/B_server = {bound:.1} s is above the best"),
                ));
                continue;
            }
        }
        for chunk in CHUNKS {
            let mut job = model_input::job(
                params,
                params.seed,
                strategy,
                size,
                ratio,
                receivers.clone(),
            );
            job.chunk = chunk;
            let seconds = last_done(&bcast::simulate(&job, topo));
            let c = Candidate {
                strategy,
                chunk,
                seconds,
            };
            predicted.push(c);
            if best.is_none_or(|b| seconds < b.seconds) {
                best = Some(c);
            }
        }
    }
    let best = best.unwrap_or(Candidate {
        strategy: Strategy::FaultTolerantChain,
        chunk: params.network.chunk,
        seconds: f64::INFINITY,
    });
    Choice {
        best,
        predicted,
        skipped,
    }
}

/// A chunk size for people: `64 KiB`, `1 MiB`.
pub fn show_bytes(b: f64) -> String {
    if b >= 1_048_576.0 && (b / 1_048_576.0).fract() == 0.0 {
        format!("{} MiB", b / 1_048_576.0)
    } else if b >= 1024.0 && (b / 1024.0).fract() == 0.0 {
        format!("{} KiB", b / 1024.0)
    } else {
        format!("{b} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fast_disk_cluster_prefers_a_pipeline_over_unicast_and_tree() {
        let mut p = SimParams::default();
        p.disk.write_rate = 1e12;
        p.disk.decompress_rate = 1e12;
        let c = choose(&p, 100, 1e9, 1.0);
        assert!(
            matches!(
                c.best.strategy,
                Strategy::FaultTolerantChain | Strategy::Multicast | Strategy::Swarm
            ),
            "{c:?}"
        );
        let tree = c
            .predicted
            .iter()
            .filter(|x| x.strategy == Strategy::Tree { arity: 2 })
            .map(|x| x.seconds)
            .fold(f64::INFINITY, f64::min);
        assert!(tree > 1.8 * c.best.seconds);
        assert!(c.skipped.iter().any(|(s, _)| *s == Strategy::Unicast));
        assert!(c.predicted.iter().all(|x| x.seconds >= c.best.seconds));
    }

    #[test]
    fn lossy_multicast_is_not_chosen() {
        let mut p = SimParams::default();
        p.network.loss = 0.05;
        let c = choose(&p, 1000, 1e9, 2.5);
        assert_ne!(c.best.strategy, Strategy::Multicast, "{c:?}");
        assert_eq!(c.predicted.len() % CHUNKS.len(), 0);
    }
}

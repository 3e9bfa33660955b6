//! Pipelined k-ary tree (TakTuk tree, Kastafior-like trees) as ONE stream: a node feeding `k` children
//! crosses its up link with coefficient `k`, so the stream runs at about `B/k`. A dead node cuts its
//! whole subtree off (`CutOff { by }`).
//!
//! Numbering is heap-style in receiver order, and the server is the root with `k` children (like any
//! internal node): receiver `i` is node `i + 1`, node `m` feeds nodes `k·m + 1 … k·m + k`, so receivers
//! `0 … k−1` are fed by the server and receiver `i ≥ k` by receiver `i/k − 1`. Arity 0 counts as 1
//! (a chain). Idealised, a receiver at depth `d` (hops from the server) of a tree with at least one
//! node feeding `k` children finishes at:
//!
//! * PerConnection: `k·S/B + d·(k·c/B + L)` — the closed form of simulation.md §2.2, exactly;
//! * PerChunk: `(K + d − 1)·(k·c/B + L)` — stop-and-wait chunks pay `L` at every hop.

use super::pipeline::{self, Recovery};
use super::{BroadcastJob, ReceiverOutcome, Topology};

/// The forwarding structure of a heap-numbered k-ary tree of `n` receivers under the server.
pub(crate) fn parents(n: usize, arity: u32) -> Vec<Option<usize>> {
    let k = arity.max(1) as usize;
    (0..n)
        .map(|i| if i < k { None } else { Some(i / k - 1) })
        .collect()
}

/// Simulates a tree broadcast of the given arity; one outcome per receiver.
pub(crate) fn simulate(job: &BroadcastJob, topo: &Topology, arity: u32) -> Vec<ReceiverOutcome> {
    pipeline::run(
        job,
        topo,
        &parents(job.receivers.len(), arity),
        Recovery::CutOff,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bcast::closed_form::{pipelined_tree, stream_per_chunk, tree_depth};
    use crate::bcast::testkit::{B, L, MIB, done_at, gige, job, last, rel};
    use crate::bcast::{FailureReason, LatencyModel, simulate as run};
    use hal::Strategy;

    #[test]
    fn heap_numbering() {
        assert_eq!(
            parents(7, 2),
            vec![None, None, Some(0), Some(0), Some(1), Some(1), Some(2)]
        );
        assert_eq!(parents(3, 0), vec![None, Some(0), Some(1)]);
    }

    #[test]
    fn idealised_tree_matches_the_closed_forms() {
        let (s, c) = (64.0 * MIB, MIB);
        for (k, n) in [(2, 6), (2, 14), (3, 12), (4, 84), (2, 300), (1, 9)] {
            let j = job(Strategy::Tree { arity: k }, n, s, c);
            let d = tree_depth(n, k);
            let t = done_at(&run(&j, &gige(LatencyModel::PerConnection)));
            assert!(
                rel(t[n - 1], pipelined_tree(s, c, k, d, B, L)) < 1e-9,
                "k={k} n={n}"
            );
            let t = done_at(&run(&j, &gige(LatencyModel::PerChunk)));
            assert!(
                rel(t[n - 1], stream_per_chunk(s, c, B / f64::from(k), d, L)) < 1e-9,
                "k={k} n={n}"
            );
        }
    }

    #[test]
    fn a_binary_tree_takes_about_twice_the_chain() {
        let (s, c, n) = (1e9, MIB, 300);
        let tree = last(&run(
            &job(Strategy::Tree { arity: 2 }, n, s, c),
            &gige(LatencyModel::PerConnection),
        ));
        let chain = last(&run(
            &job(Strategy::Chain, n, s, c),
            &gige(LatencyModel::PerConnection),
        ));
        assert!(tree > chain && tree >= 2.0 * s / B);
        assert!(rel(tree, 2.0 * s / B) < 0.02, "tree={tree}");
    }

    #[test]
    fn a_dead_node_cuts_its_subtree_off() {
        let mut j = job(Strategy::Tree { arity: 2 }, 7, 10.0 * MIB, MIB);
        j.receivers[0].dies_at = Some(0.05);
        let out = run(&j, &gige(LatencyModel::PerConnection));
        assert_eq!(
            out[0],
            ReceiverOutcome::Failed {
                at: 0.05,
                reason: FailureReason::Died
            }
        );
        for i in [2, 3, 6] {
            assert_eq!(
                out[i],
                ReceiverOutcome::Failed {
                    at: 0.05,
                    reason: FailureReason::CutOff { by: 0 }
                }
            );
        }
        let rest = done_at(&[out[1].clone(), out[4].clone(), out[5].clone()]);
        assert!(rest.iter().all(|&t| t > 0.05));
    }
}

//! The simulator as the deployer's broadcast planner (BroadcastEnvAuto): the request's nodes on the
//! cluster's switches, with the link, disk and loss parameters of `simulation.conf` (or their defaults),
//! go through [`crate::auto::choose_for`], and the fastest strategy and chunk size come back.

use crate::auto;
use crate::bcast::Receiver;
use crate::model_input;
use crate::params::SimParams;
use kadeploy::engine::planner::{BroadcastPlan, BroadcastPlanner, PlanError, PlanRequest};
use std::collections::BTreeMap;

/// Broadcasts to more nodes than this are not predicted (the planner answers an error and the
/// deployer falls back): each prediction simulates every strategy and chunk size.
pub const MAX_PLAN_NODES: usize = 100_000;

/// Plans with the models of [`crate::bcast`] on fixed parameters.
#[derive(Clone, Debug)]
pub struct SimPlanner {
    params: SimParams,
}

impl SimPlanner {
    /// A planner modelling the network and disks of `params`.
    pub fn new(params: SimParams) -> Self {
        SimPlanner { params }
    }

    /// The parameters the planner models.
    pub fn params(&self) -> &SimParams {
        &self.params
    }

    /// The receivers of `request`: each node's drawn disk rate (by its index in the cluster, as the
    /// simulated cluster draws it) and its switch: the cluster's named switches numbered in name order
    /// (the server hangs off the first; a node without one is on it), else `network/nodes_per_switch`.
    fn receivers(&self, request: &PlanRequest) -> Vec<Receiver> {
        let p = &self.params;
        let mut names: Vec<&str> = request
            .nodes
            .iter()
            .filter_map(|n| n.switch.as_deref())
            .collect();
        names.sort_unstable();
        names.dedup();
        let index: BTreeMap<&str, usize> = names.into_iter().zip(0..).collect();
        request
            .nodes
            .iter()
            .map(|n| {
                let rate = model_input::disk_rate(p, p.seed, n.index);
                let mut r = model_input::receiver(p, n.index, rate, true);
                if !index.is_empty() {
                    r.switch = n
                        .switch
                        .as_deref()
                        .and_then(|s| index.get(s).copied())
                        .unwrap_or(0);
                }
                r
            })
            .collect()
    }
}

impl BroadcastPlanner for SimPlanner {
    fn plan(&self, request: &PlanRequest) -> Result<BroadcastPlan, PlanError> {
        let n = request.nodes.len();
        if n == 0 {
            return Err(PlanError::Request("no node to broadcast to".into()));
        }
        if n > MAX_PLAN_NODES {
            return Err(PlanError::Request(format!(
                "{n} nodes, more than the {MAX_PLAN_NODES} the planner predicts"
            )));
        }
        if request.image_size == 0 {
            return Err(PlanError::Request("the image is empty".into()));
        }
        let ratio = request.ratio.unwrap_or(self.params.image.ratio);
        if !ratio.is_finite() || ratio <= 0.0 {
            return Err(PlanError::Request(format!(
                "decompression ratio {ratio} is not a positive number"
            )));
        }
        let mut topo = model_input::topology(&self.params);
        let named = request.nodes.iter().any(|n| n.switch.is_some());
        if named {
            topo.uplink_bandwidth = self.params.network.uplink_bandwidth;
        }
        let receivers = self.receivers(request);
        let choice = auto::choose_for(
            &self.params,
            &topo,
            receivers,
            request.image_size as f64,
            ratio,
        );
        let best = choice.best;
        if !best.seconds.is_finite() {
            return Err(PlanError::Model(
                "no strategy delivers the image with these parameters".into(),
            ));
        }
        Ok(BroadcastPlan {
            strategy: best.strategy,
            chunk: best.chunk as u32,
            predicted: best.seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hal::Strategy;
    use kadeploy::engine::planner::{PlanErrorKind, PlanNode};

    /// `n` nodes (cluster positions 0..n), on `switches` named switches round-robin (0: none named).
    fn request(n: usize, switches: usize) -> PlanRequest {
        PlanRequest {
            cluster: "c".into(),
            nodes: (0..n)
                .map(|i| PlanNode {
                    index: i,
                    name: format!("n{i}"),
                    switch: (switches > 0).then(|| format!("sw{}", i % switches)),
                })
                .collect(),
            image_size: 1_000_000_000,
            ratio: Some(2.5),
        }
    }

    /// Disks that never limit the broadcast: the network alone decides.
    fn fast_disks() -> SimParams {
        let mut p = SimParams::default();
        p.disk.write_rate = 1e12;
        p.disk.decompress_rate = 1e12;
        p
    }

    fn plan(p: SimParams, r: &PlanRequest) -> BroadcastPlan {
        SimPlanner::new(p).plan(r).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The cluster's parameters decide: a lossless LAN gets multicast (one transmission whatever the
    /// node count); with 1 % loss and 5 ms links the repairs cost more than a pipelined chain; a
    /// deployment server ten times faster than the nodes sends 2 nodes their copies in parallel (the
    /// tree's two children of the server), not one after the other down a chain.
    #[test]
    fn the_clusters_parameters_change_the_choice() {
        let lan = plan(fast_disks(), &request(60, 0));
        assert_eq!(lan.strategy, Strategy::Multicast, "{lan:?}");
        let mut lossy = fast_disks();
        lossy.network.loss = 0.01;
        lossy.network.latency = 0.005;
        let wan = plan(lossy, &request(60, 0));
        assert_eq!(wan.strategy, Strategy::FaultTolerantChain, "{wan:?}");
        assert!(wan.predicted > lan.predicted, "{wan:?} vs {lan:?}");
        let mut server = fast_disks();
        server.network.server_bandwidth = 10.0 * server.network.bandwidth;
        let two = plan(server, &request(2, 0));
        assert_eq!(two.strategy, Strategy::Tree { arity: 2 }, "{two:?}");
        for p in [lan, wan, two] {
            assert!(crate::auto::CHUNKS.contains(&f64::from(p.chunk)), "{p:?}");
        }
    }

    /// Named switches behind slow uplinks: nodes spread over 4 switches pay the uplinks, the same nodes
    /// on one switch do not.
    #[test]
    fn named_switches_and_their_uplinks_enter_the_prediction() {
        let mut p = fast_disks();
        p.network.uplink_bandwidth = Some(20e6);
        let spread = plan(p.clone(), &request(12, 4));
        let together = plan(p, &request(12, 1));
        assert!(
            spread.predicted > 2.0 * together.predicted,
            "{spread:?} vs {together:?}"
        );
    }

    /// What cannot be planned is an error with its kind, never a panic or an infinite prediction.
    #[test]
    fn bad_requests_and_parameters_are_errors() {
        let planner = SimPlanner::new(SimParams::default());
        let none = planner.plan(&request(0, 0)).unwrap_err();
        assert_eq!(none.kind(), PlanErrorKind::Request);
        let mut empty = request(3, 0);
        empty.image_size = 0;
        assert_eq!(
            planner.plan(&empty).unwrap_err().kind(),
            PlanErrorKind::Request
        );
        for ratio in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut r = request(3, 0);
            r.ratio = Some(ratio);
            let e = planner.plan(&r).unwrap_err();
            assert!(e.to_string().contains("ratio"), "{e}");
        }
        let mut huge = request(1, 0);
        huge.nodes = (0..=MAX_PLAN_NODES)
            .map(|i| PlanNode {
                index: i,
                name: String::new(),
                switch: None,
            })
            .collect();
        assert_eq!(
            planner.plan(&huge).unwrap_err().kind(),
            PlanErrorKind::Request
        );
    }
}

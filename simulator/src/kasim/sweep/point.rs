//! Runs one grid point through the broadcast models and summarises its receivers' completion times.
//!
//! The point's parameters replace the base simulation parameters' node and server link rates, switch
//! layout and seed; every node gets its seeded disk rate as in a deployment. With failure rate `f`,
//! each node dies (seeded draw) with probability `f` at a uniform instant of the first `S/B` seconds
//! (the time one stream of the image takes on a link).

use super::grid::{Point, TopologySpec};
use crate::bcast::{self, ReceiverOutcome};
use crate::model_input;
use crate::params::SimParams;
use crate::rng::Rng;

/// Quantiles reported: 0%, 10%, …, 100% of the nodes done.
pub const DECILES: usize = 11;

/// What one point gave.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Receivers that got the image.
    pub ok: usize,
    /// Receivers that did not.
    pub failed: usize,
    /// Mean completion time of the OK receivers (`None` when none).
    pub mean: Option<f64>,
    /// Completion time by which 0%, 10%, … 100% of the OK receivers were done (nearest rank).
    pub deciles: Option<[f64; DECILES]>,
}

/// The simulation parameters of `point` from `base`.
pub fn params_of(base: &SimParams, point: &Point, chunk: Option<f64>) -> SimParams {
    let mut p = base.clone();
    p.seed = point.seed;
    p.network.bandwidth = point.link;
    p.network.server_bandwidth = point.link;
    match point.topology {
        TopologySpec::Flat => {
            p.network.nodes_per_switch = 0;
            p.network.uplink_bandwidth = None;
        }
        TopologySpec::Switches { per_switch, uplink } => {
            p.network.nodes_per_switch = per_switch;
            p.network.uplink_bandwidth = Some(uplink);
        }
    }
    if let Some(c) = chunk {
        p.network.chunk = c;
    }
    p
}

/// Runs `point` and returns its per-receiver outcomes.
pub fn outcomes(base: &SimParams, point: &Point, chunk: Option<f64>) -> Vec<ReceiverOutcome> {
    let p = params_of(base, point, chunk);
    let mut receivers = model_input::receivers(&p, point.seed, point.nodes);
    let horizon = point.size / point.link;
    for (i, r) in receivers.iter_mut().enumerate() {
        let mut rng = Rng::for_entity(point.seed, "sweep-failure", i as u64);
        if rng.chance(point.failure) {
            r.dies_at = Some(rng.uniform(0.0, horizon));
        }
    }
    let job = model_input::job(
        &p,
        point.seed,
        point.strategy,
        point.size,
        p.image.ratio,
        receivers,
    );
    bcast::simulate(&job, &model_input::topology(&p))
}

/// Summarises outcomes.
pub fn summarise(outcomes: &[ReceiverOutcome]) -> Summary {
    let mut done: Vec<f64> = outcomes
        .iter()
        .filter_map(|o| match o {
            ReceiverOutcome::Done { at } => Some(*at),
            ReceiverOutcome::Failed { .. } => None,
        })
        .collect();
    done.sort_by(f64::total_cmp);
    let ok = done.len();
    let failed = outcomes.len() - ok;
    if ok == 0 {
        return Summary {
            ok,
            failed,
            mean: None,
            deciles: None,
        };
    }
    let mut deciles = [0.0; DECILES];
    for (k, d) in deciles.iter_mut().enumerate() {
        let rank = (k * ok).div_ceil(DECILES - 1).max(1);
        *d = done[rank - 1];
    }
    Summary {
        ok,
        failed,
        mean: Some(done.iter().sum::<f64>() / ok as f64),
        deciles: Some(deciles),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deciles_by_nearest_rank() {
        let out: Vec<ReceiverOutcome> = (1..=20)
            .map(|i| ReceiverOutcome::Done { at: f64::from(i) })
            .chain([ReceiverOutcome::Failed {
                at: 0.0,
                reason: crate::bcast::FailureReason::Died,
            }])
            .collect();
        let s = summarise(&out);
        assert_eq!((s.ok, s.failed), (20, 1));
        let d = s.deciles.unwrap();
        assert_eq!(d[0], 1.0);
        assert_eq!(d[5], 10.0);
        assert_eq!(d[10], 20.0);
        assert_eq!(s.mean, Some(10.5));
        assert_eq!(summarise(&[]).deciles, None);
    }
}

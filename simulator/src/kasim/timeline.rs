//! `kasim deploy --timeline FILE`: a per-node Gantt chart of one deployment: each node's time in the
//! three macro-step slots (from the engine's per-node durations, laid end to end) and, over its
//! BroadcastEnv bar, the span during which it received the image (from the broadcast model). Above
//! [`MAX_ROWS`] nodes, every k-th node is drawn.

use super::setup::Setup;
use crate::cluster::BroadcastRun;
use crate::plot::{self, Bar, Gantt, PlotError};
use kadeploy::engine::Report;
use std::collections::BTreeMap;
use std::path::Path;

/// Most rows drawn.
pub const MAX_ROWS: usize = 300;

const PHASES: [&str; 4] = [
    "SetDeploymentEnv",
    "BroadcastEnv",
    "BootNewEnv",
    "image transfer",
];

/// The Gantt chart of `report` (with the broadcasts `runs`) for the nodes of `setup`.
pub fn gantt(setup: &Setup, report: &Report, runs: &[BroadcastRun]) -> Gantt {
    let n = report.nodes.len();
    let step = n.div_ceil(MAX_ROWS).max(1);
    let shown: Vec<usize> = (0..n).step_by(step).collect();
    let mut transfer: BTreeMap<usize, (f64, f64)> = BTreeMap::new();
    for run in runs {
        for &(node, t) in &run.receivers {
            let node = node as usize;
            if node.is_multiple_of(step) {
                transfer.insert(node, (run.start, f64::from(t)));
            }
        }
    }
    let mut bars = Vec::new();
    let mut rows = Vec::new();
    for (row, &i) in shown.iter().enumerate() {
        let id = report.nodes[i].0;
        rows.push(
            setup
                .cluster
                .nodes
                .get(id.index())
                .map_or_else(|| id.to_string(), |x| x.name.clone()),
        );
        let mut t = 0.0;
        if let Some(log) = report.logs.get(i) {
            for (phase, d) in log.durations.iter().enumerate() {
                if *d > 0.0 {
                    bars.push(Bar {
                        row,
                        start: t,
                        end: t + d,
                        phase,
                    });
                }
                t += d;
            }
        }
        if let Some(&(start, end)) = transfer.get(&id.index()) {
            bars.push(Bar {
                row,
                start,
                end,
                phase: 3,
            });
        }
    }
    let sampled = if step > 1 {
        format!(", every {step}th node")
    } else {
        String::new()
    };
    Gantt {
        title: format!("deployment of {n} nodes{sampled}"),
        rows,
        bars,
        phases: PHASES.iter().map(|p| p.to_string()).collect(),
    }
}

/// Writes the timeline to `path` (`.svg` or `.png`).
pub fn write(
    path: &Path,
    setup: &Setup,
    report: &Report,
    runs: &[BroadcastRun],
) -> Result<(), PlotError> {
    plot::gantt(path, &gantt(setup, report, runs))
}

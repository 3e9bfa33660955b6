//! The sweep's plots, drawn from its CSV rows: the last receiver's time against N per strategy (mean
//! over seeds) and the completion-time CDF across nodes at the largest N (first seed), both for the
//! first setting of the grid (image, link, topology, failure rate), as SVG and PNG.

use super::point::DECILES;
use super::table::Row;
use crate::plot::{self, LineChart, PlotError, Series};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Writes `time_vs_nodes.{svg,png}` and `cdf.{svg,png}` into `dir`; returns the files written.
pub fn write(dir: &Path, rows: &[Row]) -> Result<Vec<PathBuf>, PlotError> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let setting = &first.setting;
    let rows: Vec<&Row> = rows.iter().filter(|r| &r.setting == setting).collect();
    // strategy → N → last-receiver times over seeds, in first-appearance order of strategies.
    let mut order: Vec<String> = Vec::new();
    let mut by: BTreeMap<(usize, usize), Vec<f64>> = BTreeMap::new();
    for r in &rows {
        let s = match order.iter().position(|x| x == &r.strategy) {
            Some(s) => s,
            None => {
                order.push(r.strategy.clone());
                order.len() - 1
            }
        };
        if let Some(d) = r.deciles {
            by.entry((s, r.nodes)).or_default().push(d[DECILES - 1]);
        }
    }
    let series = order
        .iter()
        .enumerate()
        .map(|(s, name)| Series {
            name: name.clone(),
            points: by
                .range((s, 0)..=(s, usize::MAX))
                .map(|(&(_, n), t)| (n as f64, t.iter().sum::<f64>() / t.len() as f64))
                .collect(),
        })
        .collect::<Vec<_>>();
    let (lo, hi) = rows.iter().fold((usize::MAX, 0), |(a, b), r| {
        (a.min(r.nodes), b.max(r.nodes))
    });
    let title = format!("last receiver against N ({setting})");
    let (tlo, thi) = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|t| t.is_finite() && *t > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(a, b), t| (a.min(t), b.max(t)));
    let time_vs_n = LineChart {
        title,
        x_label: "nodes".into(),
        y_label: "seconds to the last receiver".into(),
        series,
        log_x: lo > 0 && hi / lo >= 100,
        log_y: tlo > 0.0 && thi / tlo >= 20.0,
    };
    let first_seed = first.seed;
    let cdf_series = order
        .iter()
        .filter_map(|name| {
            let r = rows
                .iter()
                .find(|r| &r.strategy == name && r.nodes == hi && r.seed == first_seed)?;
            let d = r.deciles?;
            Some(Series {
                name: name.clone(),
                points: (0..DECILES)
                    .map(|k| (d[k], k as f64 / (DECILES - 1) as f64))
                    .collect(),
            })
        })
        .collect();
    let cdf = LineChart {
        title: format!("completion-time CDF across {hi} nodes ({setting})"),
        x_label: "seconds".into(),
        y_label: "fraction of nodes done".into(),
        series: cdf_series,
        log_x: false,
        log_y: false,
    };
    std::fs::create_dir_all(dir).map_err(|e| PlotError::Write {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let mut written = Vec::new();
    for (stem, chart) in [("time_vs_nodes", &time_vs_n), ("cdf", &cdf)] {
        for ext in ["svg", "png"] {
            let path = dir.join(format!("{stem}.{ext}"));
            plot::line_chart(&path, chart)?;
            written.push(path);
        }
    }
    Ok(written)
}

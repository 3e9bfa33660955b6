//! The sweep's CSV: one line per grid point, in point order, and the merge of shards' CSVs, which
//! must give exactly the bytes one run of the whole grid gives.

use super::grid::Point;
use super::point::{DECILES, Summary};
use anyhow::{Context as _, bail};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The header line.
pub fn header() -> String {
    let mut h = String::from(
        "point,strategy,nodes,image_bytes,link_bps,topology,failure_rate,seed,ok,failed,mean_s",
    );
    for k in 0..DECILES {
        h.push_str(&format!(",p{}_s", k * 10));
    }
    h
}

fn time(t: Option<f64>) -> String {
    t.map(|t| format!("{t:.6}")).unwrap_or_default()
}

/// The CSV line of `point` with its `summary`.
pub fn line(point: &Point, summary: &Summary) -> String {
    let mut l = format!(
        "{},{},{},{},{},{},{},{},{},{},{}",
        point.index,
        point.strategy,
        point.nodes,
        point.size,
        point.link,
        point.topology.label(),
        point.failure,
        point.seed,
        summary.ok,
        summary.failed,
        time(summary.mean),
    );
    for k in 0..DECILES {
        l.push(',');
        l.push_str(&time(summary.deciles.map(|d| d[k])));
    }
    l
}

/// One parsed CSV row (the fields the plots use).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Point index.
    pub point: usize,
    /// Strategy as written (`chain`, `tree(2)`).
    pub strategy: String,
    /// Nodes.
    pub nodes: usize,
    /// Every column but point, strategy and nodes, as written (image, link, topology, failure rate).
    pub setting: String,
    /// Seed.
    pub seed: u64,
    /// Deciles of completion (None when no receiver got the image).
    pub deciles: Option<[f64; DECILES]>,
}

/// Parses one data line.
pub fn parse(line: &str) -> anyhow::Result<Row> {
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 11 + DECILES {
        bail!("{} fields instead of {}", f.len(), 11 + DECILES);
    }
    let deciles = if f[11].is_empty() {
        None
    } else {
        let mut d = [0.0; DECILES];
        for (k, v) in d.iter_mut().enumerate() {
            *v = f[11 + k].parse().context("a completion time")?;
        }
        Some(d)
    };
    Ok(Row {
        point: f[0].parse().context("the point index")?,
        strategy: f[1].to_string(),
        nodes: f[2].parse().context("the node count")?,
        setting: f[3..7].join(","),
        seed: f[7].parse().context("the seed")?,
        deciles,
    })
}

/// Joins the CSV texts of shards: same header, each point once, points 0..N all present; returns the
/// CSV of one run.
pub fn merge(texts: &[(PathBuf, String)]) -> anyhow::Result<String> {
    let header = header();
    let mut lines: BTreeMap<usize, &str> = BTreeMap::new();
    for (path, text) in texts {
        let mut it = text.lines();
        match it.next() {
            Some(h) if h == header => {}
            _ => bail!("{}: not a kasim sweep CSV (header differs)", path.display()),
        }
        for (n, l) in it.enumerate() {
            let row = parse(l).with_context(|| format!("{}: line {}", path.display(), n + 2))?;
            if lines.insert(row.point, l).is_some() {
                bail!("{}: point {} is in two shards", path.display(), row.point);
            }
        }
    }
    if let Some((i, _)) = lines.iter().enumerate().find(|(i, (p, _))| *i != **p) {
        bail!("point {i} is missing: a shard is missing or incomplete");
    }
    let mut out = header;
    out.push('\n');
    for l in lines.values() {
        out.push_str(l);
        out.push('\n');
    }
    Ok(out)
}

//! Metric families with labels, usable as `static`s: counters and histograms. Label values come from
//! configuration and outcomes, never from requests, and a family still holds at most [`MAX_SERIES`]
//! label sets: later new sets are counted under [`OVERFLOW`] so memory stays bounded.

use super::text::{Kind, Text, number};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// Most label sets one family keeps.
pub const MAX_SERIES: usize = 2000;
/// The label value every label of a family takes once [`MAX_SERIES`] is reached.
pub const OVERFLOW: &str = "_other";
/// Longest label value kept; longer ones are cut (on a character boundary).
const MAX_VALUE: usize = 128;
/// Most buckets of a histogram.
pub const MAX_BUCKETS: usize = 24;

type Key = Vec<String>;

/// The key of `values`, bounded in length and in count.
fn key<T>(series: &BTreeMap<Key, T>, labels: usize, values: &[&str]) -> Key {
    let k: Key = (0..labels)
        .map(|i| {
            let v = values.get(i).copied().unwrap_or("");
            let mut end = v.len().min(MAX_VALUE);
            while !v.is_char_boundary(end) {
                end -= 1;
            }
            v[..end].to_string()
        })
        .collect();
    if series.len() >= MAX_SERIES && !series.contains_key(&k) {
        vec![OVERFLOW.to_string(); labels]
    } else {
        k
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A counter family.
pub struct Counter {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    series: Mutex<BTreeMap<Key, f64>>,
}

impl Counter {
    /// A family `name` (ending in `_total`) with label names `labels`.
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Counter {
            name,
            help,
            labels,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds `by` (ignored unless finite and positive) to the series of `values`, one per label name.
    pub fn add(&self, values: &[&str], by: f64) {
        if !(by.is_finite() && by > 0.0) {
            return;
        }
        let mut series = lock(&self.series);
        let k = key(&*series, self.labels.len(), values);
        *series.entry(k).or_insert(0.0) += by;
    }

    /// Adds one.
    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1.0);
    }

    /// The value of the series of `values` (0 when absent).
    pub fn get(&self, values: &[&str]) -> f64 {
        let series = lock(&self.series);
        let k = key(&*series, self.labels.len(), values);
        series.get(&k).copied().unwrap_or(0.0)
    }

    /// Writes the family (nothing when it has no series yet).
    pub fn encode(&self, t: &mut Text) {
        let series = lock(&self.series);
        if series.is_empty() {
            return;
        }
        t.family(self.name, self.help, Kind::Counter);
        for (k, v) in series.iter() {
            let labels: Vec<(&str, &str)> = self
                .labels
                .iter()
                .copied()
                .zip(k.iter().map(String::as_str))
                .collect();
            t.sample(self.name, &labels, *v);
        }
    }
}

/// Per-series histogram state: non-cumulative bucket counts, then sum and count.
#[derive(Clone, Copy)]
struct Buckets {
    counts: [u64; MAX_BUCKETS],
    sum: f64,
    count: u64,
}

/// A histogram family.
pub struct Histogram {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    bounds: &'static [f64],
    series: Mutex<BTreeMap<Key, Buckets>>,
}

impl Histogram {
    /// A family `name` with label names `labels` and increasing upper bounds `bounds` (at most
    /// [`MAX_BUCKETS`]; `+Inf` is implied).
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        bounds: &'static [f64],
    ) -> Self {
        Histogram {
            name,
            help,
            labels,
            bounds,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records `v` (ignored unless finite) in the series of `values`.
    pub fn observe(&self, values: &[&str], v: f64) {
        if !v.is_finite() {
            return;
        }
        let mut series = lock(&self.series);
        let k = key(&*series, self.labels.len(), values);
        let b = series.entry(k).or_insert(Buckets {
            counts: [0; MAX_BUCKETS],
            sum: 0.0,
            count: 0,
        });
        let bounds = &self.bounds[..self.bounds.len().min(MAX_BUCKETS)];
        if let Some(i) = bounds.iter().position(|&le| v <= le)
            && let Some(c) = b.counts.get_mut(i)
        {
            *c += 1;
        }
        b.sum += v;
        b.count += 1;
    }

    /// The number of observations of the series of `values`.
    pub fn count(&self, values: &[&str]) -> u64 {
        let series = lock(&self.series);
        let k = key(&*series, self.labels.len(), values);
        series.get(&k).map_or(0, |b| b.count)
    }

    /// Writes the family (nothing when it has no series yet).
    pub fn encode(&self, t: &mut Text) {
        let series = lock(&self.series);
        if series.is_empty() {
            return;
        }
        t.family(self.name, self.help, Kind::Histogram);
        let (bucket, sum, count) = (
            format!("{}_bucket", self.name),
            format!("{}_sum", self.name),
            format!("{}_count", self.name),
        );
        let bounds = &self.bounds[..self.bounds.len().min(MAX_BUCKETS)];
        let les: Vec<String> = bounds.iter().map(|le| number(*le)).collect();
        for (k, b) in series.iter() {
            let mut labels: Vec<(&str, &str)> = self
                .labels
                .iter()
                .copied()
                .zip(k.iter().map(String::as_str))
                .collect();
            let mut cumulative = 0;
            for (i, le) in les.iter().enumerate() {
                cumulative += b.counts.get(i).copied().unwrap_or(0);
                labels.push(("le", le));
                t.sample(&bucket, &labels, cumulative as f64);
                labels.pop();
            }
            labels.push(("le", "+Inf"));
            t.sample(&bucket, &labels, b.count as f64);
            labels.pop();
            t.sample(&sum, &labels, b.sum);
            t.sample(&count, &labels, b.count as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_per_label_set_and_bound_their_series() {
        let c = Counter::new("t_total", "T.", &["a"]);
        c.inc(&["x"]);
        c.add(&["x"], 2.0);
        c.add(&["y"], -1.0);
        c.add(&["y"], f64::NAN);
        assert_eq!((c.get(&["x"]), c.get(&["y"])), (3.0, 0.0));
        for i in 0..MAX_SERIES + 10 {
            c.inc(&[&format!("v{i}")]);
        }
        assert_eq!(c.get(&[OVERFLOW]), 11.0, "one existing key, 11 folded");
        let mut t = Text::new();
        c.encode(&mut t);
        assert_eq!(t.finish().lines().count(), 2 + MAX_SERIES + 1);
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let h = Histogram::new("d_seconds", "D.", &["k"], &[1.0, 10.0]);
        for v in [0.5, 1.0, 5.0, 50.0, f64::INFINITY] {
            h.observe(&["a"], v);
        }
        let mut t = Text::new();
        h.encode(&mut t);
        assert_eq!(
            t.finish(),
            "# HELP d_seconds D.\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{k=\"a\",le=\"1\"} 2\nd_seconds_bucket{k=\"a\",le=\"10\"} 3\n\
             d_seconds_bucket{k=\"a\",le=\"+Inf\"} 4\nd_seconds_sum{k=\"a\"} 56.5\nd_seconds_count{k=\"a\"} 4\n"
        );
        assert_eq!(h.count(&["a"]), 4);
    }

    #[test]
    fn long_label_values_are_cut_on_a_character_boundary() {
        let c = Counter::new("l_total", "L.", &["a"]);
        let long = "é".repeat(100);
        c.inc(&[&long]);
        let mut t = Text::new();
        c.encode(&mut t);
        let text = t.finish();
        assert!(
            text.contains(&format!("a=\"{}\"", "é".repeat(64))),
            "{text}"
        );
    }
}

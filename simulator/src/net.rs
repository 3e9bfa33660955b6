//! Flow-level network model: resources of fixed capacity shared max-min fairly by flows.
//!
//! [`maxmin`] solves one sharing problem (progressive filling over multi-resource variables, SimGrid's
//! L07 "ptask" idea); [`fluid`] integrates flows through time, advancing from one flow completion or
//! external event to the next and recomputing rates only when the sharing can have changed.

pub mod fluid;
pub mod maxmin;

use std::cmp::Ordering;

pub use fluid::{ChunkOverhead, FlowId, Fluid};
pub use maxmin::{Allocation, MaxMin, ResourceId, VarId};

/// A totally ordered `f64` (by `total_cmp`, equality included), for heap and set keys.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Key(pub f64);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Sanitises a capacity or bound: NaN and negatives become 0, `+∞` stays (no constraint).
pub(crate) fn sanitize_capacity(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 { 0.0 } else { x }
}

/// Keeps the terms with a finite positive coefficient, sorted by resource, duplicates summed.
pub(crate) fn normalize_terms(terms: &[(ResourceId, f64)]) -> Vec<(usize, f64)> {
    let valid = || terms.iter().filter(|(_, a)| a.is_finite() && *a > 0.0);
    let (lo, hi) = valid().fold((usize::MAX, 0), |(lo, hi), (r, _)| {
        (lo.min(r.0), hi.max(r.0))
    });
    if lo > hi {
        return Vec::new();
    }
    let span = hi - lo + 1;
    if terms.len() >= 64 && span <= 16 * terms.len() {
        // Long lists (a whole pipeline): accumulate densely instead of sorting.
        let mut acc = vec![0.0; span];
        for (r, a) in valid() {
            acc[r.0 - lo] += a;
        }
        return acc
            .iter()
            .enumerate()
            .filter(|(_, a)| **a > 0.0)
            .map(|(i, a)| (lo + i, *a))
            .collect();
    }
    let mut out: Vec<(usize, f64)> = valid().map(|(r, a)| (r.0, *a)).collect();
    out.sort_unstable_by_key(|(r, _)| *r);
    out.dedup_by(|later, kept| {
        if later.0 == kept.0 {
            kept.1 += later.1;
            true
        } else {
            false
        }
    });
    out
}

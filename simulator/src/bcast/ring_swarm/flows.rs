//! The ring swarm's bandwidth: every chunk in flight is a flow, and the flows share the senders' up
//! links, the receivers' down links and the uplinks they cross max-min fairly (as TCP does),
//! recomputed when a flow starts or ends.

use super::{BYTES_DONE, Sim};
use std::collections::BTreeMap;

impl Sim<'_> {
    /// Brings every flow's bytes up to now.
    pub(super) fn settle(&mut self) {
        let dt = self.now - self.last;
        for f in self.flows.values_mut() {
            if f.rate.is_finite() {
                f.remaining = (f.remaining - f.rate * dt).max(0.0);
            }
        }
        self.last = self.now;
    }

    /// Max-min fair rates for every flow (progressive filling), and their ends.
    pub(super) fn reshare(&mut self) {
        let mut left = self.capacity.clone();
        let mut users = vec![0usize; left.len()];
        let mut on: Vec<Vec<usize>> = vec![Vec::new(); left.len()];
        for (&id, f) in &self.flows {
            for &r in f.uses.iter().flatten() {
                users[r] += 1;
                on[r].push(id);
            }
        }
        let mut rates: BTreeMap<usize, f64> = BTreeMap::new();
        while rates.len() < self.flows.len() {
            let Some((tight, share)) = users
                .iter()
                .enumerate()
                .filter(|&(_, &u)| u > 0)
                .map(|(r, &u)| (r, left[r].max(0.0) / u as f64))
                .min_by(|a, b| a.1.total_cmp(&b.1))
            else {
                break;
            };
            for &id in &on[tight] {
                if rates.contains_key(&id) {
                    continue;
                }
                rates.insert(id, share);
                for &r in self.flows[&id].uses.iter().flatten() {
                    left[r] -= share;
                    users[r] -= 1;
                }
            }
        }
        let now = self.now;
        let mut ends = Vec::new();
        for (id, f) in self.flows.iter_mut() {
            f.rate = rates.get(id).copied().unwrap_or(0.0);
            f.version = f.version.wrapping_add(1);
            let end = if f.remaining <= 0.0 {
                now
            } else if f.rate > 0.0 {
                now + f.remaining / f.rate
            } else {
                f64::INFINITY
            };
            if end.is_finite() {
                ends.push((end, *id, f.version));
            }
        }
        for (end, id, version) in ends {
            self.push(end, BYTES_DONE, id, 0, version);
        }
    }
}

//! Weighted max-min fair sharing by progressive filling over multi-resource variables (SimGrid L07 style).
//!
//! A [`MaxMin`] system holds resources of fixed capacity and variables. Each variable crosses any number of
//! resources with a positive coefficient: a variable at rate `x` consumes `a·x` of a resource it crosses
//! with coefficient `a`. For example a pipelined chain is one variable crossing every link of the chain
//! with coefficient 1 and every receiver's disk with coefficient ρ (capacities in output bytes/s).
//!
//! [`MaxMin::solve`] raises all unfrozen variables together, each in proportion to its weight; the first
//! resource to saturate freezes every variable crossing it, a variable also freezes at its own bound, and
//! filling goes on until every variable is frozen. A resource crossed by a single variable is folded
//! into that variable's bound, so only shared resources enter the saturation heap. Cost:
//! `O(R + Σ|terms| + (V + Σ|shared terms|)·log(V + R))`. Deterministic:
//! ties are broken by kind and index, never by a hash.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Key, normalize_terms, sanitize_capacity};

/// Index of a resource in a [`MaxMin`] system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceId(pub usize);

/// Index of a variable in a [`MaxMin`] system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VarId(pub usize);

#[derive(Clone, Debug)]
struct Var {
    terms: Vec<(usize, f64)>,
    weight: f64,
    bound: f64,
    active: bool,
}

/// A max-min sharing problem: resources with capacities and variables crossing them.
#[derive(Clone, Debug, Default)]
pub struct MaxMin {
    caps: Vec<f64>,
    vars: Vec<Var>,
}

/// The result of [`MaxMin::solve`].
#[derive(Clone, Debug, PartialEq)]
pub struct Allocation {
    /// Rate of each variable, indexed by [`VarId`]; 0 for inactive ones, `f64::INFINITY` for an active
    /// variable that crosses no finite resource and has no bound.
    pub rates: Vec<f64>,
    /// Capacity used on each resource, indexed by [`ResourceId`].
    pub loads: Vec<f64>,
}

impl MaxMin {
    /// An empty system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes room for `additional` more resources.
    pub fn reserve_resources(&mut self, additional: usize) {
        self.caps.reserve_exact(additional);
    }

    /// Adds a resource of `capacity` units/s (NaN or negative = 0, `+∞` = never a constraint).
    pub fn add_resource(&mut self, capacity: f64) -> ResourceId {
        self.caps.push(sanitize_capacity(capacity));
        ResourceId(self.caps.len() - 1)
    }

    /// Number of resources.
    pub fn resource_count(&self) -> usize {
        self.caps.len()
    }

    /// Capacity of `r` (0 for an unknown resource).
    pub fn capacity(&self, r: ResourceId) -> f64 {
        self.caps.get(r.0).copied().unwrap_or(0.0)
    }

    /// Changes the capacity of `r` (ignored for an unknown resource).
    pub fn set_capacity(&mut self, r: ResourceId, capacity: f64) {
        if let Some(c) = self.caps.get_mut(r.0) {
            *c = sanitize_capacity(capacity);
        }
    }

    /// Adds an active variable of weight 1 and no bound. Terms naming unknown resources, or with a
    /// non-positive or non-finite coefficient, are ignored; duplicate resources are summed.
    pub fn add_variable(&mut self, terms: &[(ResourceId, f64)]) -> VarId {
        let terms = self.clean_terms(terms);
        self.vars.push(Var {
            terms,
            weight: 1.0,
            bound: f64::INFINITY,
            active: true,
        });
        VarId(self.vars.len() - 1)
    }

    /// Replaces the terms of `v` (same cleaning as [`MaxMin::add_variable`]).
    pub fn set_terms(&mut self, v: VarId, terms: &[(ResourceId, f64)]) {
        let terms = self.clean_terms(terms);
        if let Some(var) = self.vars.get_mut(v.0) {
            var.terms = terms;
        }
    }

    /// The cleaned terms of `v` as `(resource index, coefficient)`, sorted by resource.
    pub fn terms(&self, v: VarId) -> &[(usize, f64)] {
        self.vars.get(v.0).map_or(&[], |var| var.terms.as_slice())
    }

    /// Sets the weight of `v`: unfrozen variables grow in proportion to their weights (NaN or
    /// non-positive weights count as 1).
    pub fn set_weight(&mut self, v: VarId, weight: f64) {
        if let Some(var) = self.vars.get_mut(v.0) {
            var.weight = if weight.is_finite() && weight > 0.0 {
                weight
            } else {
                1.0
            };
        }
    }

    /// Caps the rate of `v` at `bound` (e.g. a TCP window limit; NaN or negative = 0).
    pub fn set_bound(&mut self, v: VarId, bound: f64) {
        if let Some(var) = self.vars.get_mut(v.0) {
            var.bound = sanitize_capacity(bound);
        }
    }

    /// Includes (`true`) or excludes `v` from the sharing.
    pub fn set_active(&mut self, v: VarId, active: bool) {
        if let Some(var) = self.vars.get_mut(v.0) {
            var.active = active;
        }
    }

    /// Whether `v` takes part in the sharing.
    pub fn is_active(&self, v: VarId) -> bool {
        self.vars.get(v.0).is_some_and(|var| var.active)
    }

    /// Number of variables.
    pub fn var_count(&self) -> usize {
        self.vars.len()
    }

    fn clean_terms(&self, terms: &[(ResourceId, f64)]) -> Vec<(usize, f64)> {
        let mut t = normalize_terms(terms);
        t.retain(|(r, _)| *r < self.caps.len());
        t
    }

    /// Computes the weighted max-min fair allocation of the active variables by progressive filling.
    pub fn solve(&self) -> Allocation {
        let nr = self.caps.len();
        let mut active = self.vars.iter().enumerate().filter(|(_, v)| v.active);
        if let (Some((i, var)), None) = (active.next(), active.next()) {
            // One variable (a pipelined stream): its rate is its tightest constraint.
            let rate = var
                .terms
                .iter()
                .fold(var.bound, |b, &(r, a)| b.min(self.caps[r] / a));
            let mut rates = vec![0.0; self.vars.len()];
            rates[i] = rate;
            let mut loads = vec![0.0; nr];
            for &(r, a) in &var.terms {
                loads[r] = a * rate;
            }
            return Allocation { rates, loads };
        }
        let mut st = Fill {
            rates: vec![0.0; self.vars.len()],
            frozen: vec![true; self.vars.len()],
            remaining: self.caps.clone(),
            wsum: vec![0.0; nr],
            count: vec![0; nr],
            heap: BinaryHeap::new(),
        };
        // Resource → unfrozen variables crossing it, as compressed rows. A resource crossed by one
        // variable only is a bound on that variable and stays out of the saturation heap.
        let shared = |r: usize, count: &[usize]| self.caps[r].is_finite() && count[r] > 1;
        let mut start = vec![0usize; nr + 1];
        for var in self.vars.iter().filter(|v| v.active) {
            for &(r, a) in var.terms.iter().filter(|(r, _)| self.caps[*r].is_finite()) {
                st.wsum[r] += a * var.weight;
                st.count[r] += 1;
            }
        }
        for var in self.vars.iter().filter(|v| v.active) {
            for &(r, _) in var.terms.iter().filter(|(r, _)| shared(*r, &st.count)) {
                start[r + 1] += 1;
            }
        }
        for r in 0..nr {
            start[r + 1] += start[r];
        }
        let mut fill = start.clone();
        let mut members = vec![0usize; start[nr]];
        let mut bounds = vec![f64::INFINITY; self.vars.len()];
        for (i, var) in self.vars.iter().enumerate().filter(|(_, v)| v.active) {
            st.frozen[i] = false;
            st.rates[i] = f64::INFINITY;
            bounds[i] = var.bound;
            for &(r, a) in var.terms.iter().filter(|(r, _)| self.caps[*r].is_finite()) {
                if shared(r, &st.count) {
                    members[fill[r]] = i;
                    fill[r] += 1;
                } else {
                    bounds[i] = bounds[i].min(self.caps[r] / a);
                }
            }
            if bounds[i].is_finite() {
                st.heap.push(Reverse((Key(bounds[i] / var.weight), 1, i)));
            }
        }
        for r in (0..nr).filter(|&r| shared(r, &st.count)) {
            st.heap
                .push(Reverse((Key(st.remaining[r] / st.wsum[r]), 0, r)));
        }
        while let Some(Reverse((Key(level), kind, idx))) = st.heap.pop() {
            if kind == 1 {
                if !st.frozen[idx] {
                    st.freeze(self, idx, bounds[idx]);
                }
                continue;
            }
            if st.count[idx] == 0 {
                continue;
            }
            // Keys only grow as variables freeze; re-queue a stale entry at the current key.
            let current = (st.remaining[idx] / st.wsum[idx].max(f64::MIN_POSITIVE)).max(level);
            if current > level {
                st.heap.push(Reverse((Key(current), 0, idx)));
                continue;
            }
            for &v in &members[start[idx]..start[idx + 1]] {
                if !st.frozen[v] {
                    st.freeze(self, v, level * self.vars[v].weight);
                }
            }
        }
        let mut loads = vec![0.0; nr];
        for (i, var) in self.vars.iter().enumerate().filter(|(_, v)| v.active) {
            for &(r, a) in &var.terms {
                loads[r] += a * st.rates[i];
            }
        }
        Allocation {
            rates: st.rates,
            loads,
        }
    }
}

/// Working state of one progressive filling.
struct Fill {
    rates: Vec<f64>,
    frozen: Vec<bool>,
    /// Per resource: capacity not used by frozen variables.
    remaining: Vec<f64>,
    /// Per resource: Σ coefficient·weight of its unfrozen variables.
    wsum: Vec<f64>,
    /// Per resource: number of unfrozen variables crossing it.
    count: Vec<usize>,
    /// (level, 0 = resource | 1 = variable bound, index), smallest first.
    heap: BinaryHeap<Reverse<(Key, u8, usize)>>,
}

impl Fill {
    /// Freezes variable `v` at `rate` and updates the resources it crosses.
    fn freeze(&mut self, sys: &MaxMin, v: usize, rate: f64) {
        self.frozen[v] = true;
        self.rates[v] = rate;
        let w = sys.vars[v].weight;
        for &(r, a) in sys.vars[v]
            .terms
            .iter()
            .filter(|(r, _)| sys.caps[*r].is_finite())
        {
            self.remaining[r] = (self.remaining[r] - a * rate).max(0.0);
            self.wsum[r] -= a * w;
            self.count[r] -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn three_flows_two_links_textbook() {
        // Flow 0 crosses both links, flows 1 and 2 one each: everybody gets half.
        let mut m = MaxMin::new();
        let a = m.add_resource(1.0);
        let b = m.add_resource(1.0);
        let f0 = m.add_variable(&[(a, 1.0), (b, 1.0)]);
        let f1 = m.add_variable(&[(a, 1.0)]);
        let f2 = m.add_variable(&[(b, 1.0)]);
        let s = m.solve();
        for f in [f0, f1, f2] {
            assert!(close(s.rates[f.0], 0.5));
        }
        // With link B twice as large, flow 2 takes what flow 0 leaves.
        m.set_capacity(b, 2.0);
        let s = m.solve();
        assert!(
            close(s.rates[f0.0], 0.5) && close(s.rates[f1.0], 0.5) && close(s.rates[f2.0], 1.5)
        );
        assert!(close(s.loads[b.0], 2.0));
    }

    #[test]
    fn coefficients_weights_and_bounds() {
        let mut m = MaxMin::new();
        let up = m.add_resource(120.0);
        let disk = m.add_resource(50.0);
        // A node forwarding to 3 children: coefficient 3 on its upload; a disk in output bytes (ρ = 2.5).
        let tree = m.add_variable(&[(up, 3.0), (disk, 2.5)]);
        assert!(close(m.solve().rates[tree.0], 20.0));
        m.set_capacity(disk, f64::INFINITY);
        assert!(close(m.solve().rates[tree.0], 40.0));
        let other = m.add_variable(&[(up, 1.0)]);
        m.set_weight(other, 2.0);
        // Level t: 3t + 2t = 120 → t = 24; tree 24, other 48.
        let s = m.solve();
        assert!(close(s.rates[tree.0], 24.0) && close(s.rates[other.0], 48.0));
        m.set_bound(other, 30.0);
        let s = m.solve();
        assert!(close(s.rates[other.0], 30.0) && close(s.rates[tree.0], 30.0));
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let mut m = MaxMin::new();
        let z = m.add_resource(f64::NAN);
        let inf = m.add_resource(f64::INFINITY);
        let free = m.add_variable(&[(inf, 1.0), (ResourceId(99), 1.0)]);
        let stuck = m.add_variable(&[(z, 1.0), (inf, f64::NAN)]);
        let none = m.add_variable(&[]);
        m.set_active(none, false);
        let s = m.solve();
        assert_eq!(s.rates[free.0], f64::INFINITY);
        assert_eq!(s.rates[stuck.0], 0.0);
        assert_eq!(s.rates[none.0], 0.0);
        assert_eq!(m.terms(free), &[(inf.0, 1.0)]);
    }

    #[test]
    fn many_flows_share_one_link_fairly() {
        let mut m = MaxMin::new();
        let server = m.add_resource(1000.0);
        let vars: Vec<_> = (0..1000)
            .map(|i| {
                let own = m.add_resource(if i % 2 == 0 { 0.5 } else { 10.0 });
                m.add_variable(&[(server, 1.0), (own, 1.0)])
            })
            .collect();
        let s = m.solve();
        // 500 flows capped at 0.5 leave 750 for the other 500: 1.5 each.
        for (i, v) in vars.iter().enumerate() {
            assert!(close(s.rates[v.0], if i % 2 == 0 { 0.5 } else { 1.5 }));
        }
        assert!(close(s.loads[server.0], 1000.0));
    }
}

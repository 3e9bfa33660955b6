//! Event-driven fluid integrator: flows progress at their max-min rates, which are piecewise constant
//! between events (a flow completes, a flow is added, removed or re-routed).
//!
//! Progress is kept lazily (`progress(t) = p_ref + rate·(t − t_ref)`), so an event costs nothing for the
//! flows it does not touch. Rates are recomputed (one [`MaxMin::solve`]) only when the sharing may have
//! changed: removing a flow whose every resource is either unsaturated or used by that flow alone keeps
//! the others' allocation max-min fair, so it skips the recomputation. Completions come from a heap of
//! predicted completion times rebuilt after each recomputation. Ties are broken by flow index.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::Key;
use super::maxmin::{MaxMin, ResourceId, VarId};

/// Index of a flow in a [`Fluid`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowId(pub usize);

/// Chunked stop-and-wait transfer: every `chunk` bytes also cost `latency` seconds, so a flow whose
/// max-min rate is `r` progresses at `chunk / (chunk/r + latency)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChunkOverhead {
    /// Chunk size in work units.
    pub chunk: f64,
    /// Seconds paid per chunk on top of its transmission time.
    pub latency: f64,
}

impl ChunkOverhead {
    /// The progress rate of a flow whose max-min rate is `raw`.
    pub fn effective(&self, raw: f64) -> f64 {
        let positive = |x: f64| x > 0.0;
        if !positive(self.chunk) || !positive(self.latency) {
            return raw;
        }
        if raw <= 0.0 {
            return 0.0;
        }
        self.chunk / (self.chunk / raw + self.latency)
    }
}

#[derive(Clone, Debug)]
struct Flow {
    work: f64,
    p_ref: f64,
    t_ref: f64,
    raw: f64,
    rate: f64,
    overhead: Option<ChunkOverhead>,
    active: bool,
}

/// A set of flows sharing resources max-min fairly, integrated through virtual time.
#[derive(Clone, Debug, Default)]
pub struct Fluid {
    sys: MaxMin,
    flows: Vec<Flow>,
    now: f64,
    dirty: bool,
    generation: u64,
    heap: BinaryHeap<Reverse<(Key, usize, u64)>>,
    loads: Vec<f64>,
    users: Vec<usize>,
}

impl Fluid {
    /// An empty system at time 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Current virtual time.
    pub fn now(&self) -> f64 {
        self.now
    }

    /// Makes room for `additional` more resources (no reallocation while they are added).
    pub fn reserve_resources(&mut self, additional: usize) {
        self.loads.reserve_exact(additional);
        self.users.reserve_exact(additional);
        self.sys.reserve_resources(additional);
    }

    /// Adds a resource of `capacity` units/s (NaN or negative = 0, `+∞` = never a constraint).
    pub fn add_resource(&mut self, capacity: f64) -> ResourceId {
        self.loads.push(0.0);
        self.users.push(0);
        self.sys.add_resource(capacity)
    }

    /// Starts, now, a flow of `work` units (NaN or negative = 0, `+∞` = never completes) crossing
    /// `terms` (resource, coefficient). A flow crossing no finite resource has an infinite rate.
    pub fn add_flow(&mut self, work: f64, terms: &[(ResourceId, f64)]) -> FlowId {
        let v = self.sys.add_variable(terms);
        let work = if work.is_nan() || work < 0.0 {
            0.0
        } else {
            work
        };
        self.flows.push(Flow {
            work,
            p_ref: 0.0,
            t_ref: self.now,
            raw: 0.0,
            rate: 0.0,
            overhead: None,
            active: true,
        });
        self.attach(v.0);
        FlowId(v.0)
    }

    /// Makes `id` a chunked stop-and-wait flow (or a plain one with `None`), from now on.
    pub fn set_overhead(&mut self, id: FlowId, overhead: Option<ChunkOverhead>) {
        if id.0 < self.flows.len() {
            self.rebase(id.0);
            self.flows[id.0].overhead = overhead;
            self.dirty = true;
        }
    }

    /// Re-routes `id` over new `terms`, from now on.
    pub fn set_terms(&mut self, id: FlowId, terms: &[(ResourceId, f64)]) {
        let Some(active) = self.flows.get(id.0).map(|f| f.active) else {
            return;
        };
        if active {
            self.detach(id.0);
        }
        self.sys.set_terms(VarId(id.0), terms);
        if active {
            self.attach(id.0);
        }
    }

    /// Pauses (`false`) or resumes (`true`) `id`; a paused flow keeps its progress and uses nothing.
    pub fn set_active(&mut self, id: FlowId, active: bool) {
        match self.flows.get(id.0).map(|f| f.active) {
            Some(true) if !active => self.detach(id.0),
            Some(false) if active => self.attach(id.0),
            _ => {}
        }
    }

    /// Whether `id` exists, is not paused and has not completed.
    pub fn is_active(&self, id: FlowId) -> bool {
        self.flows.get(id.0).is_some_and(|f| f.active)
    }

    /// Progress of `id` now, in work units (never above its work).
    pub fn progress(&self, id: FlowId) -> f64 {
        self.flows
            .get(id.0)
            .map_or(0.0, |f| Self::progress_at(f, self.now))
    }

    /// Current progress rate of `id` (after any chunk overhead); 0 when paused or completed.
    pub fn rate(&mut self, id: FlowId) -> f64 {
        self.ensure_rates();
        self.flows.get(id.0).map_or(0.0, |f| f.rate)
    }

    /// When `id` reaches progress `x` if rates do not change: `now` if already there, `+∞` if stalled.
    pub fn time_to_reach(&mut self, id: FlowId, x: f64) -> f64 {
        self.ensure_rates();
        let Some(f) = self.flows.get(id.0) else {
            return f64::INFINITY;
        };
        if x <= Self::progress_at(f, self.now) {
            return self.now;
        }
        if f.rate.is_nan() || f.rate <= 0.0 {
            return f64::INFINITY;
        }
        (f.t_ref + (x - f.p_ref) / f.rate).max(self.now)
    }

    /// Moves time forward to `t` (no-op if `t` is not after now). The caller must not skip over a
    /// completion: call [`Fluid::next_completion`] first.
    pub fn advance_to(&mut self, t: f64) {
        self.ensure_rates();
        if t > self.now {
            self.now = t;
        }
    }

    /// The time of the next flow completion, if some active flow will ever complete.
    pub fn next_completion(&mut self) -> Option<f64> {
        self.ensure_rates();
        while let Some(Reverse((Key(t), i, g))) = self.heap.peek().copied() {
            if g == self.generation && self.flows[i].active {
                return t.is_finite().then_some(t);
            }
            self.heap.pop();
        }
        None
    }

    /// Advances to the next completion and returns the flows completing then, by index. Flows whose
    /// predicted completion is within 1e-12 (relative) of it complete together.
    pub fn pop_completions(&mut self) -> Vec<FlowId> {
        let Some(t) = self.next_completion() else {
            return Vec::new();
        };
        self.advance_to(t);
        let limit = t + 1e-12 * t.abs();
        let mut done = Vec::new();
        while let Some(Reverse((Key(tc), i, g))) = self.heap.peek().copied() {
            if tc > limit {
                break;
            }
            self.heap.pop();
            if g == self.generation && self.flows[i].active {
                done.push(FlowId(i));
            }
        }
        for id in &done {
            self.detach(id.0);
            let f = &mut self.flows[id.0];
            f.p_ref = f.work;
        }
        done.sort();
        done
    }

    fn progress_at(f: &Flow, t: f64) -> f64 {
        if !f.active || f.rate <= 0.0 || t <= f.t_ref {
            f.p_ref
        } else if f.rate.is_infinite() {
            f.work
        } else {
            (f.p_ref + f.rate * (t - f.t_ref)).min(f.work)
        }
    }

    /// Freezes the progress of flow `i` at now, keeping its current rate.
    fn rebase(&mut self, i: usize) {
        let p = Self::progress_at(&self.flows[i], self.now);
        let f = &mut self.flows[i];
        f.p_ref = p;
        f.t_ref = self.now;
    }

    fn attach(&mut self, i: usize) {
        self.rebase(i);
        self.flows[i].active = true;
        self.sys.set_active(VarId(i), true);
        for &(r, _) in self.sys.terms(VarId(i)) {
            self.users[r] += 1;
        }
        self.dirty = true;
    }

    /// Takes flow `i` out of the sharing; recomputes the others' rates only if they may change.
    fn detach(&mut self, i: usize) {
        self.rebase(i);
        let raw = self.flows[i].raw;
        let mut affects_others = false;
        for &(r, a) in self.sys.terms(VarId(i)) {
            let cap = self.sys.capacity(ResourceId(r));
            if self.users[r] > 1 && self.loads[r] >= cap * (1.0 - 1e-9) {
                affects_others = true;
            }
            self.users[r] -= 1;
            self.loads[r] = (self.loads[r] - a * raw).max(0.0);
        }
        self.sys.set_active(VarId(i), false);
        let f = &mut self.flows[i];
        f.active = false;
        f.raw = 0.0;
        f.rate = 0.0;
        self.dirty |= affects_others;
    }

    fn ensure_rates(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        for i in 0..self.flows.len() {
            if self.flows[i].active {
                self.rebase(i);
            }
        }
        let alloc = self.sys.solve();
        self.loads = alloc.loads;
        self.generation += 1;
        self.heap.clear();
        for (i, f) in self.flows.iter_mut().enumerate().filter(|(_, f)| f.active) {
            f.raw = alloc.rates[i];
            f.rate = f.overhead.map_or(f.raw, |o| o.effective(f.raw));
            let left = f.work - f.p_ref;
            let t = if f.work.is_infinite() {
                f64::INFINITY
            } else if left <= 0.0 || f.rate.is_infinite() {
                f.t_ref
            } else if f.rate > 0.0 {
                f.t_ref + left / f.rate
            } else {
                f64::INFINITY
            };
            if t.is_finite() {
                self.heap.push(Reverse((Key(t), i, self.generation)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn short_flow_leaves_bandwidth_to_long_one() {
        let mut f = Fluid::new();
        let link = f.add_resource(10.0);
        let long = f.add_flow(100.0, &[(link, 1.0)]);
        let short = f.add_flow(20.0, &[(link, 1.0)]);
        // Both at 5/s: short done at 4 s (long at 20), then long alone at 10/s: 80 left → 12 s.
        assert_eq!(f.pop_completions(), vec![short]);
        assert!(close(f.now(), 4.0) && close(f.progress(long), 20.0));
        assert_eq!(f.pop_completions(), vec![long]);
        assert!(close(f.now(), 12.0));
        assert_eq!(f.next_completion(), None);
    }

    #[test]
    fn unsaturated_removal_skips_recompute_and_keeps_rates() {
        let mut f = Fluid::new();
        let server = f.add_resource(100.0);
        let ids: Vec<_> = (1..=4)
            .map(|i| {
                let disk = f.add_resource(f64::from(i));
                f.add_flow(12.0, &[(server, 1.0), (disk, 1.0)])
            })
            .collect();
        let mut times = Vec::new();
        while let Some(t) = f.next_completion() {
            let done = f.pop_completions();
            times.push((t, done));
        }
        let expect = [12.0, 6.0, 4.0, 3.0];
        assert_eq!(times.len(), 4);
        for (k, (t, done)) in times.iter().enumerate() {
            assert_eq!(done, &vec![ids[3 - k]]);
            assert!(close(*t, expect[3 - k]));
        }
    }

    #[test]
    fn pause_rates_overhead_and_external_events() {
        let mut f = Fluid::new();
        let link = f.add_resource(10.0);
        let a = f.add_flow(f64::INFINITY, &[(link, 1.0)]);
        let b = f.add_flow(50.0, &[(link, 1.0)]);
        f.advance_to(2.0);
        assert!(close(f.progress(a), 10.0));
        f.set_active(a, false);
        assert!(close(f.time_to_reach(b, 50.0), 6.0));
        f.advance_to(4.0);
        f.set_active(a, true);
        f.set_overhead(
            a,
            Some(ChunkOverhead {
                chunk: 5.0,
                latency: 0.5,
            }),
        );
        // b: 30 done at t=4, 20 left at 5/s → 8; a at 5/(5/5 + 0.5) = 10/3.
        assert!(close(f.rate(a), 10.0 / 3.0));
        assert!(close(f.next_completion().unwrap_or(0.0), 8.0));
        assert!(close(f.time_to_reach(a, 20.0), 7.0));
        assert_eq!(f.pop_completions(), vec![b]);
        assert!(close(f.rate(a), 5.0));
        // No finite resource left: the per-chunk latency alone bounds it (chunk/latency).
        f.set_terms(a, &[]);
        assert!(close(f.rate(a), 10.0));
        f.set_overhead(a, None);
        assert_eq!(f.rate(a), f64::INFINITY);
        assert_eq!(f.next_completion(), None);
    }

    #[test]
    fn zero_work_and_zero_capacity() {
        let mut f = Fluid::new();
        let dead = f.add_resource(0.0);
        let stuck = f.add_flow(1.0, &[(dead, 1.0)]);
        let empty = f.add_flow(0.0, &[(dead, 1.0)]);
        assert_eq!(f.pop_completions(), vec![empty]);
        assert_eq!(f.now(), 0.0);
        assert_eq!(f.next_completion(), None);
        assert_eq!(f.time_to_reach(stuck, 0.5), f64::INFINITY);
        f.advance_to(f64::NAN);
        assert_eq!(f.now(), 0.0);
    }
}

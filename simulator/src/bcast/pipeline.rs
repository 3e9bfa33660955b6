//! The engine behind chain, tree and fault-tolerant chain: ONE pipelined stream over a forwarding tree.
//!
//! The stream is a single fluid variable crossing every participating receiver's resources (a node
//! forwarding to `k` children crosses its up link with coefficient `k`), so it runs at the max-min rate
//! of the whole structure: the slowest resource throttles everybody. Receiver `i` is done when the
//! stream's progress reaches its target (see [`Timing`]) plus the bytes it lost while paused; its
//! outcome time is then shifted by its path latency. A node keeps its place in the stream until the
//! stream ends or the node leaves it (failure, or pause in the fault-tolerant chain).
//!
//! Failures (deaths, write errors at the first chunk written) are processed in time order. A failure
//! after the node's own completion does nothing. Otherwise, with [`Recovery::CutOff`] every
//! unfinished descendant fails at the same time (`CutOff { by }`); with [`Recovery::Reroute`] every
//! unfinished successor in chain order is paused until `t + resume_after` (or, if the failed node was
//! itself paused, until its own resumption `+ resume_after`: nobody tries to feed it before) and then
//! resumes from the bytes it holds, fed by the nearest live predecessor; upstream nodes go on undelayed.

use std::collections::BTreeSet;

use super::resources::{Net, Sender, Timing, death_times};
use super::{BroadcastJob, FailureReason, ReceiverOutcome, Topology};
use crate::net::FlowId;
use crate::net::Key;

/// What happens downstream of a failed node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Recovery {
    /// Every unfinished descendant is cut off (chain, tree).
    CutOff,
    /// Successors pause for `resume_after` seconds, then the predecessor reconnects to them (Kascade).
    Reroute {
        /// Detection plus reconnection time.
        resume_after: f64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Live,
    Paused,
    /// The stream reached the node's target; its provisional outcome is `Done`.
    Finished,
    Gone,
}

const FIRST_WRITE: u8 = 0;
const DONE: u8 = 1;
const DEATH: u8 = 0;
const WRITE_ERROR: u8 = 1;
const RESUME: u8 = 2;

struct Engine<'a> {
    job: &'a BroadcastJob,
    net: Net,
    flow: FlowId,
    parent: &'a [Option<usize>],
    recovery: Recovery,
    shift: Vec<f64>,
    done_x: Vec<f64>,
    first_x: Vec<f64>,
    lag: Vec<f64>,
    paused_at: Vec<f64>,
    pause_until: Vec<f64>,
    fail_at: Vec<f64>,
    st: Vec<St>,
    out: Vec<Option<ReceiverOutcome>>,
    /// (stream progress, receiver, FIRST_WRITE | DONE).
    thresholds: BTreeSet<(Key, usize, u8)>,
    /// (time, DEATH | WRITE_ERROR | RESUME, receiver).
    timed: BTreeSet<(Key, u8, usize)>,
    dirty: bool,
}

/// Runs one stream over the forwarding tree `parent` (`None` = fed by the server; a parent's index
/// must be smaller than its child's) and returns one outcome per receiver.
pub(crate) fn run(
    job: &BroadcastJob,
    topo: &Topology,
    parent: &[Option<usize>],
    recovery: Recovery,
) -> Vec<ReceiverOutcome> {
    let n = job.receivers.len().min(parent.len());
    let net = Net::new(job, topo);
    let timing = Timing::new(job, topo.latency_model);
    let (mut hops, mut path) = (vec![0.0; n], vec![0.0; n]);
    let mut max_hop = 0.0f64;
    for i in 0..n {
        let (h, p, from) = match parent[i].filter(|&p| p < i) {
            Some(p) => (hops[p], path[p], Sender::Node(p)),
            None => (0.0, 0.0, Sender::Server),
        };
        let l = net.hop_latency(from);
        max_hop = max_hop.max(l);
        hops[i] = h + 1.0;
        path[i] = p + l;
    }
    let mut e = Engine {
        job,
        flow: FlowId(0),
        parent,
        recovery,
        shift: path.iter().map(|&p| timing.shift(p)).collect(),
        done_x: hops.iter().map(|&h| timing.done_at(h)).collect(),
        first_x: hops.iter().map(|&h| timing.first_write_at(h)).collect(),
        lag: vec![0.0; n],
        paused_at: vec![0.0; n],
        pause_until: vec![0.0; n],
        fail_at: death_times(job),
        st: vec![St::Live; n],
        out: vec![None; n],
        thresholds: BTreeSet::new(),
        timed: BTreeSet::new(),
        dirty: true,
        net,
    };
    e.flow = e.net.fluid.add_flow(f64::INFINITY, &[]);
    e.net.fluid.set_overhead(e.flow, timing.overhead(max_hop));
    for i in 0..n {
        e.insert_thresholds(i);
        if e.fail_at[i].is_finite() {
            e.timed.insert((Key(e.fail_at[i]), DEATH, i));
        }
    }
    e.run();
    e.out
        .into_iter()
        .map(|o| o.unwrap_or(ReceiverOutcome::Done { at: f64::INFINITY }))
        .collect()
}

impl Engine<'_> {
    fn run(&mut self) {
        loop {
            if self.dirty {
                self.rebuild_terms();
            }
            let next_x = self.thresholds.first().map(|&(Key(x), _, _)| x);
            let t_thr = next_x.map_or(f64::INFINITY, |x| {
                self.net.fluid.time_to_reach(self.flow, x)
            });
            let t_ext = self
                .timed
                .first()
                .map_or(f64::INFINITY, |&(Key(t), _, _)| t);
            if t_thr.min(t_ext) == f64::INFINITY {
                return;
            }
            if t_thr <= t_ext {
                self.net.fluid.advance_to(t_thr);
                let reached = self
                    .net
                    .fluid
                    .progress(self.flow)
                    .max(next_x.unwrap_or(0.0));
                while let Some(&(Key(x), i, kind)) = self.thresholds.first() {
                    if x > reached {
                        break;
                    }
                    self.thresholds.pop_first();
                    self.on_threshold(i, kind, t_thr);
                }
            } else {
                self.net.fluid.advance_to(t_ext);
                while let Some(&(Key(t), kind, i)) = self.timed.first() {
                    if t > t_ext {
                        break;
                    }
                    self.timed.pop_first();
                    self.on_timed(i, kind, t);
                }
            }
        }
    }

    fn insert_thresholds(&mut self, i: usize) {
        self.thresholds
            .insert((Key(self.done_x[i] + self.lag[i]), i, DONE));
        if self.job.receivers[i].write_error {
            self.thresholds
                .insert((Key(self.first_x[i] + self.lag[i]), i, FIRST_WRITE));
        }
    }

    fn remove_thresholds(&mut self, i: usize) {
        self.thresholds
            .remove(&(Key(self.done_x[i] + self.lag[i]), i, DONE));
        self.thresholds
            .remove(&(Key(self.first_x[i] + self.lag[i]), i, FIRST_WRITE));
    }

    fn on_threshold(&mut self, i: usize, kind: u8, t: f64) {
        if self.st[i] != St::Live {
            return;
        }
        let at = t + self.shift[i];
        if kind == FIRST_WRITE {
            if at < self.fail_at[i] {
                self.fail_at[i] = at;
                self.timed.insert((Key(at), WRITE_ERROR, i));
            }
        } else if at < self.fail_at[i] {
            self.out[i] = Some(ReceiverOutcome::Done { at });
            self.st[i] = St::Finished;
        }
    }

    fn on_timed(&mut self, i: usize, kind: u8, t: f64) {
        if kind == RESUME {
            if self.st[i] == St::Paused && self.pause_until[i] == t {
                // `max` also drops the NaN of ∞ − ∞ (a stream of infinite rate).
                self.lag[i] += (self.net.fluid.progress(self.flow) - self.paused_at[i]).max(0.0);
                self.st[i] = St::Live;
                self.insert_thresholds(i);
                self.dirty = true;
            }
            return;
        }
        if self.fail_at[i] != t || self.st[i] == St::Gone || self.finished_by(i, t) {
            return;
        }
        let reason = if kind == WRITE_ERROR {
            FailureReason::WriteError
        } else {
            FailureReason::Died
        };
        // A paused node's death is noticed only when its predecessor tries to feed it again.
        let noticed = if self.st[i] == St::Paused {
            t.max(self.pause_until[i])
        } else {
            t
        };
        self.remove_thresholds(i);
        self.out[i] = Some(ReceiverOutcome::Failed { at: t, reason });
        self.st[i] = St::Gone;
        self.dirty = true;
        let n = self.st.len();
        match self.recovery {
            Recovery::CutOff => {
                let mut below = vec![false; n];
                below[i] = true;
                for j in i + 1..n {
                    below[j] = self.parent[j].is_some_and(|p| p < j && below[p]);
                    if below[j] && self.st[j] != St::Gone && !self.finished_by(j, t) {
                        self.remove_thresholds(j);
                        self.out[j] = Some(ReceiverOutcome::Failed {
                            at: t,
                            reason: FailureReason::CutOff { by: i },
                        });
                        self.st[j] = St::Gone;
                    }
                }
            }
            Recovery::Reroute { resume_after } => {
                let until = noticed + resume_after;
                for j in i + 1..n {
                    match self.st[j] {
                        St::Live => {
                            self.remove_thresholds(j);
                            self.st[j] = St::Paused;
                            self.paused_at[j] = self.net.fluid.progress(self.flow);
                        }
                        St::Paused if self.pause_until[j] < until => {}
                        _ => continue,
                    }
                    self.pause_until[j] = until;
                    self.timed.insert((Key(until), RESUME, j));
                }
            }
        }
    }

    /// Whether receiver `i` completed at or before `t`.
    fn finished_by(&self, i: usize, t: f64) -> bool {
        matches!(self.out[i], Some(ReceiverOutcome::Done { at }) if at <= t)
    }

    /// Re-routes the stream over the receivers currently taking part in it.
    fn rebuild_terms(&mut self) {
        self.dirty = false;
        let mut terms = Vec::with_capacity(4 * self.st.len());
        let mut prev_alive = None;
        for j in 0..self.st.len() {
            let from = match self.recovery {
                Recovery::CutOff => self.parent[j].filter(|&p| p < j),
                Recovery::Reroute { .. } => prev_alive,
            };
            if self.st[j] != St::Gone {
                prev_alive = Some(j);
            }
            if matches!(self.st[j], St::Live | St::Finished) {
                let from = from.map_or(Sender::Server, Sender::Node);
                self.net.push_receive_terms(from, j, &mut terms);
            }
        }
        let fluid = &mut self.net.fluid;
        fluid.set_active(self.flow, false);
        if !terms.is_empty() {
            fluid.set_terms(self.flow, &terms);
            fluid.set_active(self.flow, true);
        }
    }
}

//! The server's metrics for the monitoring a site already has: process-wide families filled by one-line
//! calls where things happen (workflow ends, power commands, broadcasts, database operations), rendered in
//! Prometheus' text format by `kadeploy3d`'s `/metrics` listener (`metrics/listen` in `server.conf`).

pub mod family;
pub mod text;

pub use family::{Counter, Histogram};
pub use text::{CONTENT_TYPE, Kind, Text};

use hal::{Outcomes, PowerAction, PowerLevel};
use std::ops::{Deref, DerefMut};
use std::sync::MutexGuard;
use std::time::Instant;

/// Finished workflows.
pub static WORKFLOWS: Counter = Counter::new(
    "kadeploy_workflows_total",
    "Workflows that ended, by kind (deploy, reboot, power) and final state (done, error, aborted).",
    &["kind", "state"],
);

/// Node outcomes of finished workflows.
pub static NODES: Counter = Counter::new(
    "kadeploy_nodes_total",
    "Node outcomes of ended workflows: ok, ko (with the macro-step, micro-step and error kind where it \
     failed), brk (stopped at a breakpoint) or aborted.",
    &["kind", "outcome", "macro_step", "micro_step", "error"],
);

/// Workflow durations.
pub static WORKFLOW_DURATION: Histogram = Histogram::new(
    "kadeploy_workflow_duration_seconds",
    "Duration of ended workflows (virtual seconds on simulated backends).",
    &["kind"],
    &[
        10.0, 30.0, 60.0, 120.0, 180.0, 300.0, 450.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0, 7200.0,
    ],
);

/// Macro-step durations.
pub static STEP_DURATION: Histogram = Histogram::new(
    "kadeploy_macro_step_duration_seconds",
    "Duration of each macro-step instance of ended workflows, from its first start to its last end.",
    &["kind", "step"],
    &[
        1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 1200.0, 3600.0,
    ],
);

/// Image bytes delivered.
pub static BROADCAST_BYTES: Counter = Counter::new(
    "kadeploy_broadcast_bytes_total",
    "Image bytes delivered by broadcasts: the compressed image size times the nodes that received it.",
    &["strategy"],
);

/// Broadcast durations.
pub static BROADCAST_DURATION: Histogram = Histogram::new(
    "kadeploy_broadcast_duration_seconds",
    "Duration of broadcasts (virtual seconds on simulated backends).",
    &["strategy"],
    &[1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0],
);

/// Broadcast throughput.
pub static BROADCAST_THROUGHPUT: Histogram = Histogram::new(
    "kadeploy_broadcast_throughput_bytes_per_second",
    "Throughput of broadcasts: the compressed image size over the broadcast's duration.",
    &["strategy"],
    &[1e6, 1e7, 5e7, 1e8, 2.5e8, 5e8, 1e9, 2.5e9, 1e10],
);

/// Power commands.
pub static POWER: Counter = Counter::new(
    "kadeploy_power_commands_total",
    "Power commands per node, by action (reboot, power_on, power_off), level (soft, hard, very_hard) \
     and outcome (ok or the error kind).",
    &["action", "level", "outcome"],
);

/// Database latency.
pub static DATABASE: Histogram = Histogram::new(
    "kadeploy_database_operation_duration_seconds",
    "Time a database operation waited for the connection and held it.",
    &[],
    &[
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0,
    ],
);

/// Configuration reloads.
pub static RELOADS: Counter = Counter::new(
    "kadeploy_config_reloads_total",
    "Configuration reloads (SIGHUP), by result (ok, error: the previous configuration stays).",
    &["result"],
);

/// Records a power command's per-node outcomes.
pub fn power(action: PowerAction, level: PowerLevel, outcomes: &Outcomes) {
    // Counted per outcome first: one series update per kind, not one locked update per node.
    let mut counts: Vec<(&str, u64)> = Vec::new();
    for (_, o) in outcomes.iter() {
        let outcome = match o {
            Ok(()) => "ok",
            Err(e) => e.kind.as_str(),
        };
        match counts.iter_mut().find(|(k, _)| *k == outcome) {
            Some((_, n)) => *n += 1,
            None => counts.push((outcome, 1)),
        }
    }
    for (outcome, n) in counts {
        POWER.add(&[action.as_str(), level.as_str(), outcome], n as f64);
    }
}

/// Records a broadcast of `bytes` with `strategy` that took `seconds` and reached `outcomes`' OK nodes.
pub fn broadcast(strategy: &str, bytes: u64, seconds: f64, outcomes: &Outcomes) {
    let ok = outcomes.iter().filter(|(_, o)| o.is_ok()).count();
    BROADCAST_BYTES.add(&[strategy], bytes as f64 * ok as f64);
    BROADCAST_DURATION.observe(&[strategy], seconds);
    if seconds > 0.0 {
        BROADCAST_THROUGHPUT.observe(&[strategy], bytes as f64 / seconds);
    }
}

/// Every process-wide family, then what `extra` adds (values read at scrape time).
pub fn render(extra: impl FnOnce(&mut Text)) -> String {
    let mut t = Text::new();
    t.family(
        "kadeploy_build_info",
        "The running server's version (always 1).",
        Kind::Gauge,
    );
    t.sample("kadeploy_build_info", &[("version", crate::VERSION)], 1.0);
    WORKFLOWS.encode(&mut t);
    NODES.encode(&mut t);
    WORKFLOW_DURATION.encode(&mut t);
    STEP_DURATION.encode(&mut t);
    BROADCAST_BYTES.encode(&mut t);
    BROADCAST_DURATION.encode(&mut t);
    BROADCAST_THROUGHPUT.encode(&mut t);
    POWER.encode(&mut t);
    DATABASE.encode(&mut t);
    RELOADS.encode(&mut t);
    extra(&mut t);
    t.finish()
}

/// A lock guard that records, when dropped, how long since the lock was asked for in [`DATABASE`].
pub struct Timed<'a, T> {
    guard: MutexGuard<'a, T>,
    start: Instant,
}

impl<'a, T> Timed<'a, T> {
    /// Wraps `guard`, asked for at `start`.
    pub fn new(start: Instant, guard: MutexGuard<'a, T>) -> Self {
        Timed { guard, start }
    }
}

impl<T> Deref for Timed<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for Timed<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for Timed<'_, T> {
    fn drop(&mut self) {
        DATABASE.observe(&[], self.start.elapsed().as_secs_f64());
    }
}

//! Operations of the real `kadeploy3d` process: `--check-config`, the PID file, SIGHUP (configuration
//! reload, log files reopened), SIGTERM (drain or abort), daemon mode, Kadeploy's log file formats, and
//! `/metrics` checked by Prometheus' own `promtool`. One test binary: the scenarios are modules under
//! `ops/`.

#[path = "ops/check.rs"]
mod check;
#[path = "ops/daemonize.rs"]
mod daemonize;
#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;
#[path = "ops/metrics.rs"]
mod metrics;
#[path = "ops/process.rs"]
mod process;
#[path = "ops/signals.rs"]
mod signals;

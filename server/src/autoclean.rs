//! The autoclean task (spec §2.10): workflows that ended or failed more than `autoclean_threshold` ago are
//! forgotten, as after a `DELETE`, so their id then answers as an unknown one. Kadeploy sweeps every 300 s;
//! a threshold under 20 minutes is swept four times per threshold (at least once a second), so a workflow
//! is never kept much longer than its threshold.

use super::App;
use std::sync::Arc;
use std::time::Duration;

/// Kadeploy's sweep period.
const PERIOD: Duration = Duration::from_secs(300);

/// How often a `threshold` is checked.
pub fn period(threshold: Duration) -> Duration {
    (threshold / 4).clamp(Duration::from_secs(1), PERIOD)
}

/// Forgets the workflows of `app` that ended or failed at least `threshold` ago (cancelling whatever of
/// a failed one still runs); returns their ids.
pub fn sweep(app: &App, threshold: Duration) -> Vec<String> {
    let mut table = app.workflows.lock().unwrap_or_else(|e| e.into_inner());
    let old: Vec<String> = table
        .values()
        .filter(|w| w.finished_for().is_some_and(|age| age >= threshold))
        .map(|w| w.wid.clone())
        .collect();
    for wid in &old {
        if let Some(w) = table.remove(wid) {
            w.cancel.cancel();
        }
    }
    old
}

/// Sweeps the application `current` returns every [`period`], until it returns `None` (the server is
/// gone).
pub async fn run(current: impl Fn() -> Option<Arc<App>>, threshold: Duration) {
    let mut ticks = tokio::time::interval(period(threshold));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(app) = current() else { return };
        let gone = sweep(&app, threshold);
        if !gone.is_empty() {
            tracing::debug!("autoclean: forgot {} finished workflows", gone.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_periods() {
        assert_eq!(period(Duration::from_secs(360 * 60)), PERIOD);
        assert_eq!(period(Duration::from_secs(40)), Duration::from_secs(10));
        assert_eq!(period(Duration::ZERO), Duration::from_secs(1));
    }
}

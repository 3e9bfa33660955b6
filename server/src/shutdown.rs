//! Stopping the server (SIGTERM): new workflows are refused, the running ones get a bounded time to end,
//! then the ones left are cancelled, and whatever still runs after a second bound is recorded as aborted
//! in the database, so nothing stays `running` there.

use super::Live;
use std::time::{Duration, Instant};

/// How a shutdown went.
#[derive(Debug, Default)]
pub struct Stopped {
    /// Workflows cancelled because they outlasted the grace time.
    pub cancelled: Vec<String>,
    /// Workflows recorded as aborted because they did not end even once cancelled.
    pub aborted: Vec<String>,
}

/// How often the running workflows are counted while waiting.
const POLL: Duration = Duration::from_millis(50);

/// Refuses new workflows, waits up to `grace` for the running ones, cancels those left and waits up to
/// `cancel_wait` for them to record their end; records as aborted whatever still runs.
pub async fn drain(live: &Live, grace: Duration, cancel_wait: Duration) -> anyhow::Result<Stopped> {
    live.drain();
    let app = live.app();
    let mut stopped = Stopped::default();
    if !idle_within(&app, grace).await {
        let workflows: Vec<_> = app
            .workflows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|w| !w.done())
            .cloned()
            .collect();
        for wf in workflows {
            tracing::warn!(wid = %wf.wid, "still running at shutdown: cancelled");
            wf.cancel.cancel();
            stopped.cancelled.push(wf.wid.clone());
        }
        idle_within(&app, cancel_wait).await;
    }
    let store = app.store.clone();
    stopped.aborted = tokio::task::spawn_blocking(move || store.recover()).await??;
    for wid in &stopped.aborted {
        tracing::warn!(%wid, "did not end before the shutdown: recorded as aborted");
    }
    Ok(stopped)
}

/// Waits until no workflow part runs, at most `limit`; true when none does.
async fn idle_within(app: &super::App, limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        if app.running_parts() == 0 {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

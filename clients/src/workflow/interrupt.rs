//! What interrupts a running workflow client, as in Kadeploy's: Ctrl-C (SIGINT) deletes the workflows on
//! their servers (which cancels them) and exits 1; Enter on a terminal asks for a status snapshot (at most
//! one per second).

use crate::ClientError;
use std::future::Future;
use std::io::IsTerminal as _;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A future that resolves when the client must stop (Ctrl-C in the binaries, anything in tests).
pub type Interrupt = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How long the workflows get to delete themselves after an interruption.
const CLEANUP_WAIT: Duration = Duration::from_secs(10);

/// At most one status snapshot per this delay (`STATUS_UPDATE_DELAY`).
const STATUS_DELAY: Duration = Duration::from_secs(1);

/// SIGINT.
pub fn ctrl_c() -> Interrupt {
    Box::pin(async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}

/// Runs `work` until `interrupt`: then prints `SIGINT trapped`, cancels the workflows (each deletes its
/// own on its server), waits a bounded time for them, and fails with exit code 1.
pub async fn until_interrupted<T>(
    work: impl Future<Output = T>,
    interrupt: Interrupt,
    cancel: &CancellationToken,
) -> Result<T, ClientError> {
    tokio::pin!(work);
    tokio::select! {
        r = &mut work => Ok(r),
        () = interrupt => {
            println!("\nSIGINT trapped");
            cancel.cancel();
            let _ = tokio::time::timeout(CLEANUP_WAIT, &mut work).await;
            Err(ClientError::Interrupted)
        }
    }
}

/// Status requests: a new value each time Enter is pressed on the terminal.
#[derive(Clone, Debug)]
pub struct StatusRequests(Option<watch::Receiver<u64>>);

impl StatusRequests {
    /// Resolves at the next request (never when stdin is not a terminal).
    pub async fn next(&mut self) {
        let changed = match &mut self.0 {
            Some(rx) => rx.changed().await.is_ok(),
            None => false,
        };
        if !changed {
            std::future::pending::<()>().await;
        }
    }
}

/// Watches stdin for Enter when it is a terminal (a thread blocked on the terminal).
pub fn status_requests() -> StatusRequests {
    if !std::io::stdin().is_terminal() {
        return StatusRequests(None);
    }
    let (tx, rx) = watch::channel(0u64);
    let spawned = std::thread::Builder::new()
        .name("status-keys".into())
        .spawn(move || {
            let mut last: Option<Instant> = None;
            let mut line = String::new();
            loop {
                line.clear();
                match std::io::stdin().read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if last.is_some_and(|t| t.elapsed() < STATUS_DELAY) {
                    continue;
                }
                last = Some(Instant::now());
                tx.send_modify(|n| *n += 1);
            }
        });
    StatusRequests(spawned.ok().map(|_| rx))
}

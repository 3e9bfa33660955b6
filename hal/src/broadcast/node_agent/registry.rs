//! The jobs an agent has set up, by id, and the data connections' wait for theirs.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// A job's entry point for data connections.
pub(super) struct JobLink {
    pub(super) incoming: Mutex<Sender<TcpStream>>,
    pub(super) current: Arc<Mutex<Option<TcpStream>>>,
    /// Swarm connections of peers.
    pub(super) peers: Mutex<Sender<TcpStream>>,
}

/// The jobs set up on this agent, by id; `added` wakes the data connections waiting for their job.
#[derive(Default)]
pub(super) struct Registry {
    jobs: Mutex<BTreeMap<String, Arc<JobLink>>>,
    added: Condvar,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<JobLink>>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers `job` and wakes the connections waiting for it.
    pub(super) fn insert(&self, job: String, link: Arc<JobLink>) {
        self.lock().insert(job, link);
        self.added.notify_all();
    }

    pub(super) fn remove(&self, job: &str) {
        self.lock().remove(job);
    }

    /// Job `job`'s entry point, waiting until `deadline` for it to be set up.
    pub(super) fn wait_for(&self, job: &str, deadline: Instant) -> Option<Arc<JobLink>> {
        let mut jobs = self.lock();
        loop {
            if let Some(link) = jobs.get(job) {
                return Some(Arc::clone(link));
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            jobs = self
                .added
                .wait_timeout(jobs, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

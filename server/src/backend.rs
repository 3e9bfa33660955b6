//! Backends chosen by configuration (`backend/kind` in `server.conf`), and the executors workflows run on.
//!
//! A backend factory builds a cluster's [`hal::Drivers`]; the server library knows none of them (the
//! `kadeploy3d` binary registers the simulated cluster as `simulated`). Each cluster gets one [`Executor`]:
//! a thread with a current-thread tokio runtime. Virtual-time backends start it paused, so workflows run as
//! fast as the CPU allows, or paced at `time_scale`× real time; one runtime per cluster keeps one clock for
//! every workflow on that cluster, so node state stays consistent across workflows.

use kadeploy::config::{ClusterConfig, Loaded};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// What a factory gives for one cluster.
#[derive(Clone)]
pub struct BackendSpec {
    /// The drivers.
    pub drivers: hal::Drivers,
    /// Durations are virtual (tokio sleeps under a paused clock).
    pub virtual_time: bool,
    /// Image size (bytes) assumed when the server cannot see the file (simulated images).
    pub image_size: u64,
    /// Decompression ratio assumed with `image_size`.
    pub image_ratio: f64,
    /// Chooses BroadcastEnvAuto's strategy and chunk size on this cluster (none: its fallback).
    pub planner: Option<kadeploy::engine::planner::SharedPlanner>,
}

/// Builds a cluster's backend, inside the cluster's executor runtime, from the configuration as loaded
/// once ([`kadeploy::config::load_dir`]): a factory reads no configuration file.
pub type Factory =
    std::sync::Arc<dyn Fn(&ClusterConfig, &Loaded) -> anyhow::Result<BackendSpec> + Send + Sync>;

/// The name → constructor table of backends.
#[derive(Default)]
pub struct Backends {
    factories: BTreeMap<String, (bool, Factory)>,
}

impl Backends {
    /// An empty table.
    pub fn new() -> Self {
        Backends::default()
    }

    /// Registers `factory` under `name` (the value of `backend/kind`); `virtual_time` backends run on
    /// paused clocks.
    pub fn register(&mut self, name: &str, virtual_time: bool, factory: Factory) {
        self.factories
            .insert(name.to_string(), (virtual_time, factory));
    }

    /// The factory named `name`, with its `virtual_time` flag.
    pub fn get(&self, name: &str) -> Option<&(bool, Factory)> {
        self.factories.get(name)
    }

    /// Registered names.
    pub fn names(&self) -> Vec<String> {
        self.factories.keys().cloned().collect()
    }
}

/// A unit of work run on an executor: builds its (non-`Send`) future on the executor's thread.
pub type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// A thread running one current-thread runtime on which jobs are spawned as local tasks. Clones share the
/// thread, which ends when the last clone is dropped (dropping the jobs still running).
#[derive(Clone)]
pub struct Executor {
    tx: mpsc::UnboundedSender<Job>,
    running: Arc<AtomicUsize>,
}

/// Counts a job as running from its queuing until its future ends or is dropped.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Executor {
    /// Starts an executor; `init` runs first inside its runtime and its result is returned.
    /// `paused` starts the clock paused; with `time_scale` > 0 a pacer advances it at that rate.
    pub fn start<T: Send + 'static>(
        name: &str,
        paused: bool,
        time_scale: f64,
        init: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<(Executor, T)> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let (init_tx, init_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("wf-{name}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .start_paused(paused)
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = init_tx.send(Err(anyhow::Error::from(e)));
                        return;
                    }
                };
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, async move {
                    let value = init();
                    let failed = value.is_err();
                    let _ = init_tx.send(value);
                    if failed {
                        return;
                    }
                    if paused && time_scale > 0.0 {
                        tokio::task::spawn_local(pace(time_scale));
                    }
                    while let Some(job) = rx.recv().await {
                        tokio::task::spawn_local(job());
                    }
                });
            })?;
        let value = init_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the executor thread of {name} died"))??;
        let running = Arc::new(AtomicUsize::new(0));
        Ok((Executor { tx, running }, value))
    }

    /// Queues `job`; false when the executor is gone.
    pub fn spawn(&self, job: Job) -> bool {
        self.running.fetch_add(1, Ordering::AcqRel);
        let guard = Running(self.running.clone());
        let counted: Job = Box::new(move || {
            let future = job();
            Box::pin(async move {
                let _guard = guard;
                future.await;
            })
        });
        self.tx.send(counted).is_ok()
    }

    /// Jobs queued or running.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }
}

/// Advances a paused clock by `scale` ms per real ms; being always ready, it also stops auto-advance.
async fn pace(scale: f64) {
    let step = Duration::from_secs_f64(scale / 1000.0);
    loop {
        std::thread::sleep(Duration::from_millis(1));
        tokio::time::advance(step).await;
        tokio::task::yield_now().await;
    }
}

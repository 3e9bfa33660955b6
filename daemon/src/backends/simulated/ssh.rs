//! The simulated nodes' SSH endpoints (`ssh` in `simulation.conf`): the `simssh` crate's servers on their
//! own thread and real-time runtime, reading the cluster's virtual clock on the cluster's executor.

use anyhow::Context;
use kadeploy::config::Loaded;
use simssh::keys::PublicKey;
use simssh::{Clock, ClockFuture};
use simulator::cluster::SimCluster;
use simulator::params::SshParams;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Worker threads of the endpoints' runtime.
const WORKERS: usize = 2;

/// Where `path` (relative to the directory of `simulation.conf`) is.
fn resolve(loaded: &Loaded, path: &Path) -> PathBuf {
    let dir = loaded
        .simulation
        .as_ref()
        .and_then(|f| f.path.parent())
        .unwrap_or(Path::new("."));
    dir.join(path)
}

/// The keys of the configured `authorized_keys` file, bounded.
fn configured_keys(loaded: &Loaded, params: &SshParams) -> anyhow::Result<Vec<PublicKey>> {
    let Some(path) = &params.authorized_keys else {
        return Ok(Vec::new());
    };
    let path = resolve(loaded, path);
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|f| {
            f.take(simssh::keys::MAX_AUTHORIZED_KEYS_BYTES as u64)
                .read_to_string(&mut text)
        })
        .map_err(|source| simssh::SshError::Keys {
            path: path.display().to_string(),
            source,
        })?;
    let keys = simssh::keys::parse_authorized_keys(&text);
    if keys.is_empty() {
        return Err(simssh::SshError::NoKey {
            path: path.display().to_string(),
        }
        .into());
    }
    Ok(keys)
}

/// Starts the endpoints of `sim`, the cluster `cluster` of `loaded`; called on the cluster's executor.
pub fn start(
    sim: Arc<SimCluster>,
    cluster: &str,
    params: &SshParams,
    loaded: &Loaded,
) -> anyhow::Result<()> {
    let keys = configured_keys(loaded, params)?;
    let clusters = &loaded.config.clusters;
    let offset: usize = clusters
        .iter()
        .take_while(|c| c.name != cluster)
        .map(|c| c.nodes.len())
        .sum();
    let ssh_config = params.ssh_config.as_ref().map(|p| {
        let path = resolve(loaded, p);
        if clusters.len() > 1 {
            PathBuf::from(format!("{}-{cluster}", path.display()))
        } else {
            path
        }
    });
    let executor =
        tokio::runtime::Handle::try_current().context("the simulated cluster's runtime")?;
    let clock_sim = sim.clone();
    let clock: Clock = Arc::new(move || -> ClockFuture {
        let (sim, executor) = (clock_sim.clone(), executor.clone());
        Box::pin(async move { executor.spawn(async move { sim.now() }).await.ok() })
    });
    let params = params.clone();
    let (tx, rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
    std::thread::Builder::new()
        .name(format!("ssh-{cluster}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKERS)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e.into()));
                    return;
                }
            };
            rt.block_on(async move {
                let endpoints = match simssh::start(sim.clone(), &params, offset, keys, clock) {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = tx.send(Err(e.into()));
                        return;
                    }
                };
                if let Some(path) = &ssh_config {
                    let text = simssh::ssh_config(&sim, &endpoints);
                    if let Err(source) = std::fs::write(path, text) {
                        let e = simssh::SshError::SshConfig {
                            path: path.display().to_string(),
                            source,
                        };
                        let _ = tx.send(Err(e.into()));
                        return;
                    }
                }
                let _ = tx.send(Ok(()));
                // The endpoints live as long as the daemon; they stop when the cluster's runtime is gone.
                endpoints.finished().await;
            });
        })?;
    rx.recv().context("the SSH endpoints' thread died")?
}

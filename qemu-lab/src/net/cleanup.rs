//! Teardown of lab namespaces: on drop, for stale labs of dead processes, and on SIGINT/SIGTERM.

use super::NetError;
use super::process::{alive, run, terminate};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The prefix of every lab namespace; the creator's PID follows it (`kalab-<pid>-<name>`).
pub const NS_PREFIX: &str = "kalab-";

/// What a signal handler removes: namespaces, processes and directories.
#[derive(Default)]
struct Registry {
    namespaces: BTreeSet<String>,
    pids: BTreeSet<u32>,
    paths: BTreeSet<PathBuf>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

fn with_registry<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    let mut guard = registry().lock().unwrap_or_else(|e| e.into_inner());
    f(&mut guard)
}

pub(crate) fn register_namespace(ns: &str) {
    with_registry(|r| r.namespaces.insert(ns.to_string()));
}

pub(crate) fn unregister_namespace(ns: &str) {
    with_registry(|r| r.namespaces.remove(ns));
}

/// Registers a process (a VM, a BMC, `kabootd`) to kill when the signal cleanup runs.
pub fn register_pid(pid: u32) {
    with_registry(|r| r.pids.insert(pid));
}

/// Forgets a process registered with [`register_pid`] (it was stopped normally).
pub fn unregister_pid(pid: u32) {
    with_registry(|r| r.pids.remove(&pid));
}

/// Registers a file or directory to remove when the signal cleanup runs.
pub fn register_path(path: impl Into<PathBuf>) {
    with_registry(|r| r.paths.insert(path.into()));
}

/// Forgets a path registered with [`register_path`].
pub fn unregister_path(path: &Path) {
    with_registry(|r| r.paths.remove(path));
}

/// Namespaces currently listed by `ip netns list`.
pub fn list_namespaces() -> Result<Vec<String>, NetError> {
    let out = run(&["ip", "netns", "list"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// PIDs of the processes inside namespace `ns`.
pub fn namespace_pids(ns: &str) -> Vec<u32> {
    run(&["ip", "netns", "pids", ns])
        .map(|out| out.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Kills every process inside `ns` (SIGTERM, then SIGKILL), deletes the namespace and removes
/// `/etc/netns/<ns>`. Errors are logged, not returned: this runs from `Drop` and signal handlers.
pub fn teardown_namespace(ns: &str) {
    let left = terminate(&namespace_pids(ns), Duration::from_secs(3));
    if !left.is_empty() {
        tracing::warn!(ns, ?left, "processes survived SIGKILL");
    }
    if let Err(e) = run(&["ip", "netns", "del", ns]) {
        tracing::warn!(ns, error = %e, "deleting the namespace");
    }
    let etc = Path::new("/etc/netns").join(ns);
    if etc.exists()
        && let Err(e) = std::fs::remove_dir_all(&etc)
    {
        tracing::warn!(path = %etc.display(), error = %e, "removing");
    }
    unregister_namespace(ns);
}

/// The creator PID encoded in a lab namespace name, if `ns` is one.
pub fn creator_pid(ns: &str) -> Option<u32> {
    ns.strip_prefix(NS_PREFIX)?.split('-').next()?.parse().ok()
}

/// Removes the `kalab-*` namespaces whose creator process is gone; returns their names.
pub fn cleanup_stale() -> Result<Vec<String>, NetError> {
    let mut removed = Vec::new();
    for ns in list_namespaces()? {
        if let Some(pid) = creator_pid(&ns)
            && !alive(pid)
        {
            tracing::info!(ns, pid, "removing a stale lab namespace");
            teardown_namespace(&ns);
            removed.push(ns);
        }
    }
    Ok(removed)
}

/// Kills the registered processes, tears down the registered namespaces and removes the
/// registered paths. The signal handler calls it; callers may too (it empties the registry).
pub fn cleanup_registered() {
    let taken = with_registry(std::mem::take);
    let pids: Vec<u32> = taken.pids.into_iter().collect();
    terminate(&pids, Duration::from_secs(3));
    for ns in &taken.namespaces {
        teardown_namespace(ns);
    }
    for path in &taken.paths {
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
    }
}

/// Installs (once) a SIGINT/SIGTERM handler thread that runs [`cleanup_registered`] and exits
/// with status 128 + signal. Every [`super::LabNet`] registers its namespace automatically;
/// register other processes and paths with [`register_pid`] and [`register_path`].
pub fn install_signal_cleanup() -> Result<(), NetError> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name("kalab-signals".into())
                .spawn(move || signal_thread(ready_tx))
                .map_err(|e| e.to_string())?;
            ready_rx
                .recv()
                .map_err(|_| "the signal thread died".to_string())?
        })
        .clone()
        .map_err(NetError::Signals)
}

fn signal_thread(ready: std::sync::mpsc::Sender<Result<(), String>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    let code = rt.block_on(async move {
        let streams =
            signal(SignalKind::interrupt()).and_then(|i| Ok((i, signal(SignalKind::terminate())?)));
        let (mut int, mut term) = match streams {
            Ok(s) => s,
            Err(e) => {
                let _ = ready.send(Err(e.to_string()));
                return None;
            }
        };
        let _ = ready.send(Ok(()));
        tokio::select! {
            _ = int.recv() => Some(130),
            _ = term.recv() => Some(143),
        }
    });
    if let Some(code) = code {
        tracing::warn!("signal received: tearing the lab down");
        cleanup_registered();
        std::process::exit(code);
    }
}

#[cfg(test)]
mod tests {
    use super::creator_pid;

    #[test]
    fn creator_pid_reads_lab_names_only() {
        assert_eq!(creator_pid("kalab-1234-test"), Some(1234));
        assert_eq!(creator_pid("kalab-1234-test2"), Some(1234));
        assert_eq!(creator_pid("kalab-x-test"), None);
        assert_eq!(creator_pid("kbt1s"), None);
    }
}

//! Everything a running workflow needs: the drivers, the configuration, the output, cancellation,
//! the server-wide windows, and where each node currently is.

use super::report::NodeLog;
use crate::config::{ClusterConfig, ServerConfig};
use crate::nodelist;
use crate::output::Output;
use hal::{Drivers, NodeId};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Concurrency windows shared by every workflow of a server (Kadeploy's `windows/*`).
#[derive(Debug)]
pub struct Windows {
    /// At most this many nodes run reboot commands at once.
    pub reboot: Semaphore,
    /// Size of the reboot window.
    pub reboot_size: usize,
    /// Seconds to wait when the reboot window is full.
    pub reboot_sleep: f64,
    /// At most this many nodes probed at once.
    pub check_size: usize,
}

impl Windows {
    /// Windows sized from the server configuration.
    pub fn new(server: &ServerConfig) -> Self {
        let reboot_size = server.reboot_window.max(1);
        Windows {
            reboot: Semaphore::new(reboot_size),
            reboot_size,
            reboot_sleep: server.reboot_window_sleep,
            check_size: server.check_window.max(1),
        }
    }
}

/// Where a node is: the macro-step instance and micro-step it runs.
#[derive(Clone, Debug, Default)]
pub struct Position {
    /// Macro-step instance.
    pub macro_step: Option<Arc<str>>,
    /// Micro-step.
    pub micro_step: Option<Arc<str>>,
}

/// Where each node is, as numbers of step names: two numbers per node instead of two shared strings, so
/// that moving a million nodes into a step touches no reference count.
struct Places {
    /// The step names seen so far; number `i + 1` is `names[i]`, 0 is none.
    names: Vec<Arc<str>>,
    /// The (macro-step instance, micro-step) numbers of each node, by node index.
    at: Vec<(u32, u32)>,
}

impl Places {
    /// The number of `name`, given on first sight (a workflow has a few dozen step names).
    fn intern(&mut self, name: &Arc<str>) -> u32 {
        let found = self
            .names
            .iter()
            .position(|n| Arc::ptr_eq(n, name) || n == name);
        let i = found.unwrap_or_else(|| {
            self.names.push(name.clone());
            self.names.len() - 1
        });
        u32::try_from(i + 1).unwrap_or(u32::MAX)
    }

    /// The name numbered `number` (0: none).
    fn name(&self, number: u32) -> Option<Arc<str>> {
        let i = (number as usize).checked_sub(1)?;
        self.names.get(i).cloned()
    }
}

/// The shared state of one workflow run.
pub struct Context {
    /// Backends.
    pub drivers: Drivers,
    /// Server settings.
    pub server: Arc<ServerConfig>,
    /// The cluster the workflow runs on.
    pub cluster: Arc<ClusterConfig>,
    /// Where output lines go.
    pub output: Output,
    /// Cancelled when the workflow is killed.
    pub cancel: CancellationToken,
    /// Server-wide windows.
    pub windows: Arc<Windows>,
    /// Where per-node command traces go (`-d`); none by default.
    pub debug: Option<super::debug::DebugSink>,
    /// Chooses BroadcastEnvAuto's strategy and chunk size; none by default (the fallback).
    pub planner: Option<super::planner::SharedPlanner>,
    positions: Mutex<Places>,
    logs: Mutex<Vec<NodeLog>>,
    spans: Mutex<Vec<(Arc<str>, f64, f64)>>,
}

impl Context {
    /// A context for one workflow on `cluster`.
    pub fn new(
        drivers: Drivers,
        server: Arc<ServerConfig>,
        cluster: Arc<ClusterConfig>,
        windows: Arc<Windows>,
        output: Output,
    ) -> Self {
        let n = cluster.nodes.len();
        Context {
            drivers,
            server,
            cluster,
            output,
            cancel: CancellationToken::new(),
            windows,
            debug: None,
            planner: None,
            positions: Mutex::new(Places {
                names: Vec::new(),
                at: vec![(0, 0); n],
            }),
            logs: Mutex::new(vec![NodeLog::default(); n]),
            spans: Mutex::new(Vec::new()),
        }
    }

    /// The FQDN of `node`.
    pub fn name(&self, node: NodeId) -> &str {
        self.cluster
            .nodes
            .get(node.index())
            .map(|n| n.name.as_str())
            .unwrap_or("?")
    }

    /// The nodes' names folded the way Kadeploy prints node sets (`node-[1-3,5].dom`).
    pub fn fold(&self, nodes: &[NodeId]) -> String {
        let names: Vec<&str> = nodes.iter().map(|&n| self.name(n)).collect();
        nodelist::fold(&names)
    }

    /// Seconds since the workflow's output started.
    pub fn now(&self) -> f64 {
        self.output.elapsed()
    }

    /// Records that `nodes` entered `micro` of `macro_step`.
    pub fn enter(&self, nodes: &[NodeId], macro_step: &Arc<str>, micro: Option<&Arc<str>>) {
        let mut places = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        let place = (
            places.intern(macro_step),
            micro.map_or(0, |m| places.intern(m)),
        );
        for n in nodes {
            if let Some(p) = places.at.get_mut(n.index()) {
                *p = place;
            }
        }
    }

    /// Where `node` currently is.
    pub fn position(&self, node: NodeId) -> Position {
        let places = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        let Some(&(macro_step, micro)) = places.at.get(node.index()) else {
            return Position::default();
        };
        Position {
            macro_step: places.name(macro_step),
            micro_step: places.name(micro),
        }
    }

    /// Updates the statistics record of each node of `nodes`.
    pub fn log(&self, nodes: &[NodeId], mut f: impl FnMut(&mut NodeLog)) {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        for n in nodes {
            if let Some(l) = logs.get_mut(n.index()) {
                f(l);
            }
        }
    }

    /// The statistics record of `node`.
    pub fn node_log(&self, node: NodeId) -> NodeLog {
        let logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        logs.get(node.index()).cloned().unwrap_or_default()
    }

    /// Moves the statistics records of `nodes` out, in order (for the final report: a million records are
    /// not copied); a node listed twice, or unknown, gets an empty record.
    pub fn take_logs(&self, nodes: &[NodeId]) -> Vec<NodeLog> {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        nodes
            .iter()
            .map(|n| {
                logs.get_mut(n.index())
                    .map(std::mem::take)
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Records that a run of macro-step `name` lasted from `start` to `end` (seconds).
    pub fn span(&self, name: &Arc<str>, start: f64, end: f64) {
        let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        match spans.iter_mut().find(|(n, _, _)| n == name) {
            Some(span) => {
                span.1 = span.1.min(start);
                span.2 = span.2.max(end);
            }
            None => spans.push((name.clone(), start, end)),
        }
    }

    /// Each macro-step instance with the time from its first start to its last end, in first-start order.
    pub fn spans(&self) -> Vec<(String, f64)> {
        let spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        spans
            .iter()
            .map(|(n, s, e)| (n.to_string(), e - s))
            .collect()
    }
}

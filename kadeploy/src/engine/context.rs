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
    positions: Mutex<Vec<Position>>,
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
            positions: Mutex::new(vec![Position::default(); n]),
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
        let mut positions = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        for n in nodes {
            if let Some(p) = positions.get_mut(n.index()) {
                p.macro_step = Some(macro_step.clone());
                p.micro_step = micro.cloned();
            }
        }
    }

    /// Where `node` currently is.
    pub fn position(&self, node: NodeId) -> Position {
        let positions = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        positions.get(node.index()).cloned().unwrap_or_default()
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

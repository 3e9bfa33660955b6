//! A workflow's outputs as clients read them: log lines by cluster (`logs[/<cluster>]`), Kadeploy's
//! per-node debug blocks (`debugs[/<node>]`), both consumed on read, and the end-of-operation hook.

use super::Workflow;
use kadeploy::engine::debug::Trace;
use std::sync::atomic::Ordering;

impl Workflow {
    /// Appends a log line `<epoch>|<text>` for a line written `time` seconds into the part of cluster
    /// `cluster` (`None`: a line of the whole workflow), shown with `prefix`.
    pub fn push_log(&self, time: f64, cluster: Option<&str>, prefix: Option<&str>, text: &str) {
        let epoch = self.start_time as f64 + time;
        let line = match prefix {
            Some(p) => format!("{epoch:.5}|[{p}] {text}\n"),
            None => format!("{epoch:.5}|{text}\n"),
        };
        let key = cluster.map(String::from);
        self.lock().logs.entry(key).or_default().push_str(&line);
    }

    /// The lines added since the last call (empty after an error): every line, or with `cluster`, only
    /// the lines of that cluster's part (`logs/<cluster>`), as Kadeploy's `work_get_logs`.
    pub fn take_logs(&self, cluster: Option<&str>) -> String {
        let mut inner = self.lock();
        if inner.error.is_some() {
            inner.logs.clear();
        }
        match cluster {
            Some(c) => inner.logs.remove(&Some(c.to_string())).unwrap_or_default(),
            None => std::mem::take(&mut inner.logs).into_values().collect(),
        }
    }

    /// Appends Kadeploy's debug block of `trace` (`DebugControl#push`) to its node's unread debug lines.
    pub fn push_debug(&self, trace: &Trace) {
        let epoch = self.start_time as f64 + trace.time;
        let mut block = String::new();
        let mut line = |text: &str| block.push_str(&format!("{epoch:.5}|{text}\n"));
        line("-------------------------");
        line(&format!("NODE: {}", trace.node));
        line("-------------------------");
        line(&format!("COMMAND: {}", trace.command));
        for l in trace.stdout.lines() {
            line(&format!("STDOUT: {l}"));
        }
        for l in trace.stderr.lines() {
            line(&format!("STDERR: {l}"));
        }
        line(&format!("STATUS: {}", trace.status));
        let mut inner = self.lock();
        inner
            .debugs
            .entry(trace.node.clone())
            .or_default()
            .push_str(&block);
    }

    /// The debug lines added since the last call, of every node or of `node` (empty after an error).
    pub fn take_debugs(&self, node: Option<&str>) -> String {
        let mut inner = self.lock();
        if inner.error.is_some() {
            inner.debugs.clear();
        }
        match node {
            Some(n) => inner.debugs.remove(n).unwrap_or_default(),
            None => std::mem::take(&mut inner.debugs).into_values().collect(),
        }
    }

    /// Starts the end-of-operation hook in the background, once, if the request asked for one.
    pub fn run_hook(&self) {
        if let Some(template) = &self.hook
            && !self.hook_started.swap(true, Ordering::AcqRel)
        {
            crate::hooks::spawn(
                crate::hooks::command(template, &self.wid),
                crate::hooks::HOOK_TIMEOUT,
            );
        }
    }
}

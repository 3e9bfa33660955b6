//! Kadeploy-style output: lines tagged with a verbosity level (0–5) and the virtual time they were written.

use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// One output line.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    /// Seconds since the output was created (virtual time under the simulator).
    pub time: f64,
    /// Verbosity level: shown when the requested level is at least this.
    pub level: u8,
    /// The text, without newline.
    pub text: String,
}

/// A consumer of lines as they are written (a terminal, a progress bar, the server's log buffer).
pub type Sink = Box<dyn Fn(&LogLine) + Send + Sync>;

/// The output of one workflow. Cheap to clone; all clones write to the same buffer.
#[derive(Clone)]
pub struct Output {
    inner: Arc<Inner>,
}

struct Inner {
    start: Instant,
    keep: bool,
    /// Lines above this level are neither passed to the sink nor kept.
    max_level: u8,
    lines: Mutex<Vec<LogLine>>,
    sink: Option<Sink>,
}

impl Output {
    /// An output that keeps every line in memory.
    pub fn new() -> Self {
        Output::build(None, true, u8::MAX)
    }

    /// An output that passes every line to `sink`, and keeps them when `keep` is set.
    pub fn with_sink(sink: Sink, keep: bool) -> Self {
        Output::build(Some(sink), keep, u8::MAX)
    }

    /// An output that passes the lines of level at most `max_level` to `sink` (and keeps them when `keep`
    /// is set); the others are dropped unwritten, so the engine need not format them (see [`Output::wants`]).
    pub fn with_sink_up_to(sink: Sink, keep: bool, max_level: u8) -> Self {
        Output::build(Some(sink), keep, max_level)
    }

    fn build(sink: Option<Sink>, keep: bool, max_level: u8) -> Self {
        Output {
            inner: Arc::new(Inner {
                start: Instant::now(),
                keep,
                max_level,
                lines: Mutex::new(Vec::new()),
                sink,
            }),
        }
    }

    /// Seconds elapsed since the output was created.
    pub fn elapsed(&self) -> f64 {
        self.inner.start.elapsed().as_secs_f64()
    }

    /// Whether a line of `level` goes anywhere: callers skip formatting the lines nobody reads.
    pub fn wants(&self, level: u8) -> bool {
        level <= self.inner.max_level && (self.inner.keep || self.inner.sink.is_some())
    }

    /// Writes the line `text` builds at `level`, calling `text` only when the line goes somewhere.
    pub fn push_with(&self, level: u8, text: impl FnOnce() -> String) {
        if self.wants(level) {
            self.push(level, text());
        }
    }

    /// Writes `text` at `level`.
    pub fn push(&self, level: u8, text: impl Into<String>) {
        if level > self.inner.max_level {
            return;
        }
        let line = LogLine {
            time: self.elapsed(),
            level,
            text: text.into(),
        };
        if let Some(sink) = &self.inner.sink {
            sink(&line);
        }
        if self.inner.keep {
            self.inner
                .lines
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line);
        }
    }

    /// The lines kept so far with a level at most `verbosity`.
    pub fn lines(&self, verbosity: u8) -> Vec<LogLine> {
        let lines = self.inner.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .filter(|l| l.level <= verbosity)
            .cloned()
            .collect()
    }
}

impl Default for Output {
    fn default() -> Self {
        Output::new()
    }
}

/// Formats a duration as Kadeploy does in its messages (whole seconds).
pub fn secs(duration: f64) -> String {
    format!("{}s", duration.round() as i64)
}

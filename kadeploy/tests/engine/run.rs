//! What a scenario leaves to assert on: the report, the HAL calls, the output lines, and when each node left the
//! workflow, with small queries that keep tests readable.

use super::fake::{Call, Event, FakeHal, key_matches};
use super::scenario::{id, num};
use hal::NodeId;
use kadeploy::engine::{Failure, NodeStatus, Report};
use kadeploy::error::RequestError;
use kadeploy::output::LogLine;
use std::sync::Arc;

/// Whether two virtual times are the same: timers round them to the millisecond.
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.01
}

/// How a node left the workflow, as the output tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    /// `End of <op> for <nodes> after Ns`.
    Ok,
    /// `<Op> failed for <nodes> after Ns`.
    Ko,
    /// `Breakpoint reached for <nodes>`.
    Brk,
}

/// What happened in a scenario.
pub struct Run {
    /// The workflow's result.
    pub result: Result<Report, RequestError>,
    /// HAL calls, output lines and the cancellation, in order.
    pub events: Vec<Event>,
    /// The fake, in its final state.
    pub fake: Arc<FakeHal>,
}

impl Run {
    /// The report; panics when the request was refused.
    pub fn report(&self) -> &Report {
        match &self.result {
            Ok(report) => report,
            Err(e) => panic!("the request was refused: {e}"),
        }
    }

    /// The refusal; panics when the workflow ran.
    pub fn error(&self) -> &RequestError {
        match &self.result {
            Ok(_) => panic!("the request was accepted"),
            Err(e) => e,
        }
    }

    /// The final status of `node-<n>`.
    pub fn status(&self, n: u32) -> &NodeStatus {
        let report = self.report();
        &report
            .nodes
            .iter()
            .find(|(node, _)| *node == id(n))
            .expect("node in the report")
            .1
    }

    /// Why `node-<n>` failed; panics when it did not.
    pub fn failure(&self, n: u32) -> &Failure {
        match self.status(n) {
            NodeStatus::Ko(f) => f,
            other => panic!("node-{n} did not fail: {other:?}"),
        }
    }

    /// Numbers of the nodes that ended OK.
    pub fn ok(&self) -> Vec<u32> {
        self.with_status(|s| matches!(s, NodeStatus::Ok))
    }

    /// Numbers of the nodes that ended KO.
    pub fn ko(&self) -> Vec<u32> {
        self.with_status(|s| matches!(s, NodeStatus::Ko(_)))
    }

    /// Numbers of the nodes stopped at a breakpoint.
    pub fn brk(&self) -> Vec<u32> {
        self.with_status(|s| matches!(s, NodeStatus::Brk { .. }))
    }

    fn with_status(&self, f: impl Fn(&NodeStatus) -> bool) -> Vec<u32> {
        self.report()
            .nodes
            .iter()
            .filter(|(_, s)| f(s))
            .map(|(n, _)| num(*n))
            .collect()
    }

    /// Every HAL call, in order.
    pub fn calls(&self) -> impl Iterator<Item = &Call> {
        self.events.iter().filter_map(|e| match e {
            Event::Call(c) => Some(c),
            _ => None,
        })
    }

    /// The calls matching `pattern` (see `fake::key_matches`).
    pub fn calls_to<'a>(&'a self, pattern: &'a str) -> impl Iterator<Item = &'a Call> + 'a {
        self.calls()
            .filter(move |c| key_matches(pattern, &c.op.key()))
    }

    /// The calls matching `pattern` that include `node-<n>`.
    pub fn calls_for<'a>(
        &'a self,
        n: u32,
        pattern: &'a str,
    ) -> impl Iterator<Item = &'a Call> + 'a {
        self.calls_to(pattern)
            .filter(move |c| c.nodes.contains(&id(n)))
    }

    /// How many calls matching `pattern` included `node-<n>`.
    pub fn count(&self, n: u32, pattern: &str) -> usize {
        self.calls_for(n, pattern).count()
    }

    /// The keys of the calls that included `node-<n>`, in order, without probes.
    pub fn trace(&self, n: u32) -> Vec<String> {
        self.calls()
            .filter(|c| c.nodes.contains(&id(n)))
            .map(|c| c.op.key())
            .filter(|k| k != "probe")
            .collect()
    }

    /// The output lines of exactly `level`.
    pub fn lines_at(&self, level: u8) -> Vec<String> {
        self.lines()
            .filter(|l| l.level == level)
            .map(|l| l.text.clone())
            .collect()
    }

    /// The output lines up to `verbosity`.
    pub fn transcript(&self, verbosity: u8) -> Vec<String> {
        self.lines()
            .filter(|l| l.level <= verbosity)
            .map(|l| l.text.clone())
            .collect()
    }

    /// Whether some output line is exactly `text`.
    pub fn said(&self, text: &str) -> bool {
        self.lines().any(|l| l.text == text)
    }

    fn lines(&self) -> impl Iterator<Item = &LogLine> {
        self.events.iter().filter_map(|e| match e {
            Event::Line(l) => Some(l),
            _ => None,
        })
    }

    /// The names of the micro-steps run, in output order (level-3 lines `  <name>`).
    pub fn micro_steps(&self) -> Vec<String> {
        self.lines_at(3)
            .into_iter()
            .filter(|l| !l.starts_with("   "))
            .map(|l| l.trim().to_string())
            .collect()
    }

    /// The macro-step instances run, in output order (`Performing a <Op>[<Instance>] step`).
    pub fn macro_steps(&self) -> Vec<String> {
        self.lines_at(1)
            .iter()
            .filter_map(|l| performed(l))
            .map(String::from)
            .collect()
    }

    /// When `node-<n>` left the workflow, as the output tells it.
    pub fn done_time(&self, n: u32) -> f64 {
        let (i, _, _) = self
            .done_events()
            .into_iter()
            .find(|(_, node, _)| *node == id(n))
            .expect("node done");
        match &self.events[i] {
            Event::Line(line) => line.time,
            _ => unreachable!("done events are lines"),
        }
    }

    /// For each node leaving the workflow: the index of the event that says so, the node and how.
    pub fn done_events(&self) -> Vec<(usize, NodeId, Done)> {
        let mut out = Vec::new();
        for (i, event) in self.events.iter().enumerate() {
            let Event::Line(line) = event else { continue };
            if line.level != 1 {
                continue;
            }
            let parsed = line
                .text
                .strip_prefix("Breakpoint reached for ")
                .map(|rest| (rest, Done::Brk))
                .or_else(|| between(&line.text, "End of ", " for ", Done::Ok))
                .or_else(|| between(&line.text, "", " failed for ", Done::Ko));
            if let Some((nodes, how)) = parsed {
                let names = kadeploy::nodelist::expand(nodes).expect("a node list");
                for node_name in names {
                    let n: u32 = node_name
                        .trim_start_matches("node-")
                        .trim_end_matches(".test")
                        .parse()
                        .expect("a node");
                    out.push((i, id(n), how));
                }
            }
        }
        out
    }
}

/// The instance of a `Performing a <Op>[<Instance>] step` line.
pub fn performed(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("Performing a ")?.strip_suffix("] step")?;
    rest.split_once('[').map(|(_, instance)| instance)
}

/// The node list of `<prefix><word><sep><nodes> after Ns` lines (`End of deployment for`, `Deployment failed for`).
fn between<'a>(text: &'a str, prefix: &str, sep: &str, how: Done) -> Option<(&'a str, Done)> {
    let rest = text.strip_prefix(prefix)?;
    let (word, nodes) = rest.split_once(sep)?;
    if word.contains('[') {
        return None; // `Step Deploy[<Instance>] failed for ...`: a macro-step, not the workflow
    }
    let (nodes, _) = nodes.rsplit_once(" after ")?;
    Some((nodes, how))
}

//! What `kasim` prints: Kadeploy's output lines live, a progress bar on a terminal, the OK/KO lists,
//! the per-macro-step virtual durations, and the JSON summary line.

use super::args::DeployArgs;
use super::setup::Setup;
use indicatif::{ProgressBar, ProgressStyle};
use kadeploy::engine::Report;
use kadeploy::nodelist;
use kadeploy::output::{LogLine, Sink};
use serde_json::json;
use std::io::IsTerminal;

/// Prints output lines as the engine writes them, and drives the progress bar.
pub struct Printer {
    verbosity: u8,
    bar: Option<ProgressBar>,
}

/// Line prefixes after which a folded node list follows, for the progress bar.
const DONE_PREFIXES: [&str; 3] = [
    "End of deployment for ",
    "Deployment failed for ",
    "Breakpoint reached for ",
];

impl Printer {
    /// A printer at `verbosity` for `nodes` nodes; the bar shows only on a terminal.
    pub fn new(verbosity: u8, nodes: usize, json: bool) -> Self {
        let bar = (std::io::stderr().is_terminal() && !json).then(|| {
            let bar = ProgressBar::new(nodes as u64);
            if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} nodes done {msg}")
            {
                bar.set_style(style);
            }
            bar
        });
        Printer { verbosity, bar }
    }

    /// The sink to give the engine's output.
    pub fn sink(&self) -> Sink {
        let verbosity = self.verbosity;
        let bar = self.bar.clone();
        Box::new(move |line: &LogLine| {
            if line.level <= verbosity {
                match &bar {
                    Some(b) => b.suspend(|| println!("{}", line.text)),
                    None => println!("{}", line.text),
                }
            }
            if let Some(b) = &bar {
                if let Some(list) = DONE_PREFIXES.iter().find_map(|p| line.text.strip_prefix(p)) {
                    let list = list.split(" after ").next().unwrap_or(list);
                    b.inc(nodelist::expand(list).map(|v| v.len()).unwrap_or(0) as u64);
                }
                b.set_message(format!("(virtual {:.0}s)", line.time));
            }
        })
    }

    /// The highest output level the sink uses: the verbosity, or every level when the progress bar reads
    /// the lines (it counts the nodes of the end lines and shows the virtual time of each line).
    pub fn max_level(&self) -> u8 {
        if self.bar.is_some() {
            u8::MAX
        } else {
            self.verbosity
        }
    }

    /// Removes the progress bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Prints the OK and KO lists, the durations, and the JSON line when asked.
pub fn summary(setup: &Setup, args: &DeployArgs, report: &Report) {
    let name = |n: hal::NodeId| setup.cluster.nodes[n.index()].name.clone();
    let ok = report.ok();
    let ko = report.ko();
    // One buffered writer for the lists: a million nodes are a million lines.
    {
        use std::io::Write as _;
        let nodes = &setup.cluster.nodes;
        let mut w = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        let mut lists = || -> std::io::Result<()> {
            if !ok.is_empty() {
                writeln!(w, "\nThe deployment is successful on nodes")?;
                for n in &ok {
                    writeln!(w, "{}", nodes[n.index()].name)?;
                }
            }
            if !ko.is_empty() {
                writeln!(w, "\nThe deployment failed on nodes")?;
                for (n, f) in &ko {
                    writeln!(w, "{} ({})", nodes[n.index()].name, f.error)?;
                }
            }
            w.flush()
        };
        // A closed stdout (a pipe to `head`) is not an error of the deployment.
        let _ = lists();
    }
    println!("\nMacro-step durations (virtual, first start to last end):");
    for (step, secs) in &report.macro_durations {
        println!("  {step:<36} {secs:>10.1}s");
    }
    println!(
        "Virtual time: {:.1}s, {} OK, {} KO, seed {}",
        report.seconds,
        ok.len(),
        ko.len(),
        setup.params.seed
    );
    if args.json {
        let nodes_ko: Vec<_> = ko
            .iter()
            .map(|(n, f)| json!({"node": name(*n), "macro": f.macro_step, "micro": f.micro_step, "error": f.error}))
            .collect();
        let steps: Vec<_> = report
            .macro_durations
            .iter()
            .map(|(s, t)| json!({"name": s, "seconds": t}))
            .collect();
        let value = json!({
            "nodes_ok": ok.iter().map(|n| name(*n)).collect::<Vec<_>>(),
            "nodes_ko": nodes_ko,
            "virtual_seconds": report.seconds,
            "seed": setup.params.seed,
            "nodes": setup.cluster.nodes.len(),
            "broadcast": args.strategy().map(|s| s.to_string()),
            "macro_steps": steps,
        });
        println!("{value}");
    }
}

/// Prints wall-clock time and peak resident memory to stderr (never to stdout: it is not deterministic).
pub fn stats(wall: f64, nodes: usize) {
    let peak = peak_rss_kib()
        .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    eprintln!("kasim: {nodes} nodes, wall {wall:.3} s, peak RSS {peak}");
}

/// Peak resident set size of this process (`VmHWM`), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Says which setting ran out when nodes ended on a macro-step timeout: the step's timeout from the
/// automata, and the windows that pace reboots (to stderr: it is advice, not Kadeploy's output).
pub fn timeout_hint(setup: &Setup, report: &Report) {
    let mut by_step: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for (_, f) in report.ko() {
        if f.error.starts_with("Timeout in the ") {
            *by_step.entry(f.macro_step.to_string()).or_default() += 1;
        }
    }
    let a = &setup.cluster.automata;
    for (step, count) in by_step {
        let timeout = a
            .set_deployment_env
            .iter()
            .chain(&a.broadcast_env)
            .chain(&a.boot_new_env)
            .find(|i| i.kind.instance_name() == step)
            .map_or_else(|| "its".to_string(), |i| format!("{} s", i.timeout));
        eprintln!(
            "kasim: {count} nodes ran out of the {step} macro-step's timeout ({timeout}, automata in \
             the cluster file); with {} nodes, the reboot window lets {} nodes reboot at once ({} s \
             sleep when full) and the check window probes {} at once",
            setup.cluster.nodes.len(),
            setup.server.reboot_window,
            setup.server.reboot_window_sleep,
            setup.server.check_window
        );
    }
}

//! `kasim campaign`: a seeded matrix of deployments with injected faults (never boots, hangs, deaths
//! mid-broadcast, failing power commands, disk errors, and their combinations, on 1 to N nodes), each
//! run through the real engine and checked against the invariants of [`check`]; prints the counts.

mod check;
mod oracle;
mod scenario;

pub use check::{Verdict, check};
pub use oracle::{Expected, Model, check_automata, expect, first_try_may_time_out, time_bound};
pub use scenario::{FAULT_KINDS, FaultKind, Scenario, generate};

use super::args::{CampaignArgs, DeployArgs};
use super::setup::{self, Setup};
use crate::cluster::FailurePlan;
use anyhow::{anyhow, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Panics seen anywhere in the process (spawned tasks included) since the campaign started.
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// The campaign's counts.
#[derive(Debug, Default, Serialize)]
pub struct Tally {
    /// Scenarios run.
    pub scenarios: usize,
    /// Scenarios by number of fault kinds (0 = healthy, 1, 2+ = combined).
    pub by_kinds: BTreeMap<String, usize>,
    /// Scenarios injecting each kind.
    pub by_fault: BTreeMap<&'static str, usize>,
    /// Hang scenarios by step.
    pub by_hang_step: BTreeMap<String, usize>,
    /// Nodes deployed over all scenarios.
    pub nodes: usize,
    /// Largest scenario.
    pub max_nodes: usize,
    /// Healthy nodes, and those that ended OK.
    pub healthy: usize,
    /// Healthy nodes that ended OK.
    pub healthy_ok: usize,
    /// Faulty nodes.
    pub faulty: usize,
    /// Faulty nodes KO at the expected step with the expected reason.
    pub faulty_ko_as_expected: usize,
    /// Faulty nodes whose faults the workflow does not meet or survives, OK as expected.
    pub faulty_ok_as_expected: usize,
    /// Scenarios that broke an invariant.
    pub failed_scenarios: usize,
    /// Broken invariants.
    pub violations: usize,
    /// Scenarios whose simulation panicked.
    pub panics: usize,
    /// Longest workflow, in virtual seconds.
    pub longest_virtual_seconds: f64,
    /// The bound the timeouts put on a workflow.
    pub timeout_bound_seconds: Option<f64>,
    /// Wall-clock seconds of the whole campaign.
    pub wall_seconds: f64,
}

/// Runs the campaign of `args`; exit code 0 when every invariant held in every scenario.
pub fn run(args: &CampaignArgs) -> anyhow::Result<ExitCode> {
    let wall = Instant::now();
    if args.max_nodes == 0 {
        bail!("--max-nodes must be at least 1");
    }
    let base = setup::load(&DeployArgs {
        nodes: args.max_nodes,
        seed: None,
        broadcast: None,
        tree_arity: 2,
        config: args.config.clone(),
        verbose_level: 0,
        json: false,
        stats: false,
        breakpoint: None,
        image_size: None,
        chunk: None,
        key: false,
        timeline: None,
    })?;
    let automata = &base.cluster.automata;
    check_automata(automata).map_err(|e| anyhow!(e))?;
    let bound = time_bound(automata);
    let shortest = automata
        .set_deployment_env
        .iter()
        .chain(&automata.broadcast_env)
        .chain(&automata.boot_new_env)
        .map(|i| i.timeout)
        .filter(|t| *t > 0.0)
        .fold(f64::INFINITY, f64::min);
    if !(args.command_timeout > 0.0 && args.command_timeout < shortest) {
        bail!(
            "--command-timeout must be > 0 and below every macro-step timeout ({shortest} s): \
             otherwise a hung node holds its whole group until the macro-step times out"
        );
    }
    let model = Model {
        command_timeout: args.command_timeout,
        detect_timeout: base.params.fault_tolerance.detect_timeout,
        set_deployment_retries: automata.set_deployment_env[0].retries,
        first_try_may_time_out: false,
    };
    // Count every panic, even one a spawned task's join would hide, and print one line for it.
    std::panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        eprintln!("panic: {info}");
    }));
    let mut tally = Tally {
        timeout_bound_seconds: bound,
        ..Tally::default()
    };
    let indices = match args.only {
        Some(i) => i..i + 1,
        None => 0..args.scenarios,
    };
    for index in indices {
        let scenario = generate(args.seed, index, &base.cluster.nodes);
        let sink: kadeploy::output::Sink = if args.only.is_some() {
            println!("{:#?}", scenario);
            Box::new(|line| {
                if line.level <= 4 {
                    println!("{}", line.text)
                }
            })
        } else {
            Box::new(|_| {})
        };
        let verdict = run_one(&base, &scenario, &model, sink);
        count(&mut tally, &scenario, &verdict);
        if args.verbose || !verdict.violations.is_empty() {
            println!(
                "scenario {index}: {} nodes, faults {:?}, broadcast {:?}: {} healthy OK of {}, {} faulty as expected of {}{}",
                scenario.nodes,
                scenario.kinds,
                scenario.broadcast,
                verdict.healthy_ok,
                verdict.healthy,
                verdict.faulty_ko_as_expected + verdict.faulty_ok_as_expected,
                verdict.faulty,
                if verdict.violations.is_empty() {
                    ""
                } else {
                    ": FAILED"
                }
            );
            for line in verdict.violations.iter().take(10) {
                println!("  {line}");
            }
        }
    }
    tally.wall_seconds = wall.elapsed().as_secs_f64();
    print(&tally);
    if args.json {
        println!("{}", serde_json::to_string(&tally)?);
    }
    Ok(if tally.violations == 0 && tally.panics == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Deploys `scenario` on a copy of `base`; a panic is a violation.
fn run_one(
    base: &Setup,
    scenario: &Scenario,
    model: &Model,
    sink: kadeploy::output::Sink,
) -> Verdict {
    let mut setup = Setup {
        server: base.server.clone(),
        cluster: base.cluster.clone(),
        params: base.params.clone(),
        warnings: Vec::new(),
        scaled: None,
    };
    Arc::make_mut(&mut setup.cluster)
        .nodes
        .truncate(scenario.nodes);
    setup.params.seed = scenario.seed;
    setup.params.failures = scenario.failures.clone();
    setup.params.ops.command_timeout = Some(model.command_timeout);
    let args = DeployArgs {
        nodes: scenario.nodes,
        seed: Some(scenario.seed),
        broadcast: scenario.broadcast,
        tree_arity: scenario.tree_arity,
        config: None,
        verbose_level: 0,
        json: false,
        stats: false,
        breakpoint: None,
        image_size: Some(scenario.image_size),
        chunk: None,
        key: false,
        timeline: None,
    };
    let failure = |message: String| Verdict {
        violations: vec![message],
        ..Verdict::default()
    };
    let plan =
        match FailurePlan::resolve(&setup.params.failures, scenario.seed, &setup.cluster.nodes) {
            Ok(plan) => plan,
            Err(e) => return failure(format!("the failure rules do not resolve: {e}")),
        };
    let panics = PANICS.load(Ordering::SeqCst);
    let outcome = catch_unwind(AssertUnwindSafe(|| super::simulate(&setup, &args, sink)));
    if PANICS.load(Ordering::SeqCst) != panics {
        return failure("PANIC".into());
    }
    let report = match outcome {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => return failure(format!("the deployment failed to run: {e:#}")),
        Err(_) => return failure("PANIC".into()),
    };
    let reboot_timeout = match setup.cluster.timeout_reboot.eval(scenario.nodes as f64) {
        Ok(t) => t,
        Err(e) => return failure(format!("the reboot timeout does not evaluate: {e}")),
    };
    let model = Model {
        first_try_may_time_out: first_try_may_time_out(
            &plan,
            scenario.nodes,
            reboot_timeout,
            model.command_timeout,
            setup.cluster.automata.set_deployment_env[0].timeout,
        ),
        ..*model
    };
    let names: Vec<String> = setup.cluster.nodes.iter().map(|n| n.name.clone()).collect();
    check(&report, &plan, &names, &setup.cluster.automata, &model).with_seconds(report.seconds)
}

/// Adds one scenario to the tally.
fn count(t: &mut Tally, s: &Scenario, v: &Verdict) {
    t.scenarios += 1;
    let class = match s.kinds.len() {
        0 => "healthy".to_string(),
        1 => "one kind".to_string(),
        k => format!("{k} kinds combined"),
    };
    *t.by_kinds.entry(class).or_default() += 1;
    for k in &s.kinds {
        *t.by_fault.entry(k.name()).or_default() += 1;
    }
    if let Some(step) = &s.failures.hang.step
        && s.kinds.contains(&FaultKind::Hang)
    {
        *t.by_hang_step.entry(step.clone()).or_default() += 1;
    }
    t.nodes += s.nodes;
    t.max_nodes = t.max_nodes.max(s.nodes);
    t.healthy += v.healthy;
    t.healthy_ok += v.healthy_ok;
    t.faulty += v.faulty;
    t.faulty_ko_as_expected += v.faulty_ko_as_expected;
    t.faulty_ok_as_expected += v.faulty_ok_as_expected;
    t.longest_virtual_seconds = t.longest_virtual_seconds.max(v.seconds);
    if v.violations.iter().any(|l| l == "PANIC") {
        t.panics += 1;
    }
    if !v.violations.is_empty() {
        t.failed_scenarios += 1;
        t.violations += v.violations.len();
    }
}

/// Prints the tally for people.
fn print(t: &Tally) {
    println!(
        "{} scenarios, {} nodes (1 to {} per scenario), {:.1} s",
        t.scenarios, t.nodes, t.max_nodes, t.wall_seconds
    );
    for (class, n) in &t.by_kinds {
        println!("  {class}: {n} scenarios");
    }
    for (kind, n) in &t.by_fault {
        println!("  with {kind}: {n} scenarios");
    }
    let steps: Vec<String> = t
        .by_hang_step
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    println!("  hangs by step: {}", steps.join(", "));
    println!("healthy nodes OK: {} of {}", t.healthy_ok, t.healthy);
    println!(
        "faulty nodes as expected: {} of {} ({} KO at the expected step with the expected reason, {} OK: fault not met or survived)",
        t.faulty_ko_as_expected + t.faulty_ok_as_expected,
        t.faulty,
        t.faulty_ko_as_expected,
        t.faulty_ok_as_expected
    );
    match t.timeout_bound_seconds {
        Some(b) => println!(
            "longest workflow: {:.1} virtual s (timeouts allow {b} s)",
            t.longest_virtual_seconds
        ),
        None => println!(
            "longest workflow: {:.1} virtual s",
            t.longest_virtual_seconds
        ),
    }
    println!(
        "violations: {} in {} scenarios; panics: {}",
        t.violations, t.failed_scenarios, t.panics
    );
}

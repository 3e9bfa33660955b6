//! The `kasim` command: a whole Kadeploy deployment of a simulated cluster, through the real engine,
//! in virtual time; Kadeploy-style output, OK/KO lists, per-macro-step durations, optional JSON and
//! timeline; the strategy picked by the simulator (`--broadcast auto`); `kasim campaign`, the fault
//! campaign; and `kasim sweep`, the broadcast models over a grid of parameters.

mod allocator;
mod args;
pub mod campaign;
mod print;
pub mod setup;
pub mod sweep;
pub mod testbed;
mod timeline;

pub use allocator::keep_freed_memory;
pub use args::{
    BroadcastArg, CampaignArgs, Cli, Command, DeployArgs, GridArgs, MergeArgs, SweepAction,
    SweepArgs,
};

use crate::auto::{self, Choice, show_bytes};
use crate::cluster::SimCluster;
use anyhow::bail;
use hal::Strategy;
use kadeploy::engine::{self, Context, DeployRequest, Report, Windows};
use kadeploy::environment::Environment;
use kadeploy::output::Output;
use setup::Setup;
use std::process::ExitCode;
use std::sync::Arc;

/// The public key `--key` installs on the simulated nodes (its content is never checked).
const SIMULATED_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKasimSimulatedKey kasim";

/// Runs a `kasim` command; the exit code is 0 when every node ended OK, 1 otherwise.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Deploy(args) => deploy(&args),
        Command::Campaign(args) => campaign::run(&args),
        Command::Sweep(args) => sweep::run(&args),
        Command::Testbed(args) => testbed::run(&args),
    }
}

fn deploy(args: &DeployArgs) -> anyhow::Result<ExitCode> {
    let wall = std::time::Instant::now();
    let mut setup = setup::load(args)?;
    for w in &setup.warnings {
        eprintln!("Warning: {w}");
    }
    if let Some(note) = &setup.scaled {
        eprintln!("kasim: {note}");
    }
    if let Some(c) = args.chunk {
        if !(c.is_finite() && c > 0.0) {
            bail!("--chunk must be a positive number of bytes");
        }
        setup.params.network.chunk = c;
    }
    let choice = (args.broadcast == Some(BroadcastArg::Auto)).then(|| {
        let size = args.image_size.unwrap_or(setup.params.image.size).max(0.0);
        let c = auto::choose(
            &setup.params,
            setup.cluster.nodes.len(),
            size,
            setup.params.image.ratio,
        );
        print_choice(&c);
        c
    });
    if let Some(c) = &choice {
        setup.params.network.chunk = c.best.chunk;
    }
    let strategy = choice.as_ref().map(|c| c.best.strategy).or(args.strategy());
    let printer = print::Printer::new(args.verbose_level, setup.cluster.nodes.len(), args.json);
    println!("Deployment #D-sim-{} started", setup.params.seed);
    let (report, sim) = simulate_with(&setup, args, strategy, printer.sink(), printer.max_level())?;
    println!("Deployment #D-sim-{} done", setup.params.seed);
    printer.finish();
    if let Some(c) = &choice {
        let measured = sim
            .broadcast_runs()
            .first()
            .map_or(f64::NAN, |r| r.end - r.start);
        println!(
            "Broadcast auto: {} with {} chunks, predicted {:.1}s, simulated {:.1}s",
            c.best.strategy,
            show_bytes(c.best.chunk),
            c.best.seconds,
            measured
        );
    }
    print::summary(&setup, args, &report);
    print::timeout_hint(&setup, &report);
    if let Some(path) = &args.timeline {
        timeline::write(path, &setup, &report, &sim.broadcast_runs())?;
        eprintln!("kasim: wrote {}", path.display());
    }
    if args.stats {
        print::stats(wall.elapsed().as_secs_f64(), setup.cluster.nodes.len());
    }
    Ok(if report.ko().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints what `--broadcast auto` predicted.
fn print_choice(c: &Choice) {
    println!("Broadcast auto: predicted time to the last node, per strategy (best chunk):");
    let mut seen: Vec<Strategy> = Vec::new();
    for p in &c.predicted {
        if seen.contains(&p.strategy) {
            continue;
        }
        seen.push(p.strategy);
        let best = c
            .predicted
            .iter()
            .filter(|x| x.strategy == p.strategy)
            .fold(*p, |a, x| if x.seconds < a.seconds { *x } else { a });
        println!(
            "  {:<12} {:>10.1}s  ({} chunks)",
            best.strategy.to_string(),
            best.seconds,
            show_bytes(best.chunk)
        );
    }
    for (s, why) in &c.skipped {
        println!("  {:<12} skipped: {why}", s.to_string());
    }
    println!(
        "Broadcast auto: chose {} with {} chunks (predicted {:.1}s)",
        c.best.strategy,
        show_bytes(c.best.chunk),
        c.best.seconds
    );
}

/// Runs one deployment of `setup` on a fresh simulated cluster, in virtual time, with the strategy
/// `args` asks for.
pub fn simulate(
    setup: &Setup,
    args: &DeployArgs,
    sink: kadeploy::output::Sink,
) -> anyhow::Result<Report> {
    Ok(simulate_with(setup, args, args.strategy(), sink, u8::MAX)?.0)
}

/// Runs one deployment of `setup` with `strategy` (the automata's when `None`); returns the report and
/// the simulated cluster (its broadcast runs, its nodes' final state). Output lines above `max_level`
/// are not formatted nor given to `sink`.
pub fn simulate_with(
    setup: &Setup,
    args: &DeployArgs,
    strategy: Option<Strategy>,
    sink: kadeploy::output::Sink,
    max_level: u8,
) -> anyhow::Result<(Report, Arc<SimCluster>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()?;
    runtime.block_on(async {
        let cluster = setup.cluster.clone();
        let server = Arc::new(setup.server.clone());
        let sim = Arc::new(SimCluster::new(
            cluster.nodes.clone(),
            setup.params.clone(),
            setup.params.seed,
        )?);
        let windows = Arc::new(Windows::new(&server));
        let output = Output::with_sink_up_to(sink, false, max_level);
        let mut ctx = Context::new(sim.drivers(), server, cluster.clone(), windows, output);
        ctx.planner = Some(Arc::new(crate::planner::SimPlanner::new(
            setup.params.clone(),
        )));
        let image = &setup.params.image;
        let size = args.image_size.unwrap_or(image.size).max(0.0) as u64;
        let mut req = DeployRequest::new(
            (0..cluster.nodes.len() as u32).map(hal::NodeId).collect(),
            Environment::sample_tarball(size, image.ratio),
        );
        req.broadcast_strategy = strategy;
        req.breakpoint = args.breakpoint.clone();
        if args.key {
            req.ssh_key = Some(SIMULATED_KEY.to_string());
        }
        let report = engine::deploy(&ctx, &req).await?;
        Ok((report, sim))
    })
}

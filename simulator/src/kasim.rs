//! The `kasim` command: a whole Kadeploy deployment of a simulated cluster, through the real engine,
//! in virtual time; Kadeploy-style output, OK/KO lists, per-macro-step durations, optional JSON; and
//! `kasim campaign`, the fault campaign.

mod args;
pub mod campaign;
mod print;
pub mod setup;

pub use args::{BroadcastArg, CampaignArgs, Cli, Command, DeployArgs};

use crate::cluster::SimCluster;
use kadeploy::engine::{self, Context, DeployRequest, Report, Windows};
use kadeploy::environment::Environment;
use kadeploy::output::Output;
use setup::Setup;
use std::process::ExitCode;
use std::sync::Arc;

/// Runs a `kasim` command; the exit code is 0 when every node ended OK, 1 otherwise.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Deploy(args) => deploy(&args),
        Command::Campaign(args) => campaign::run(&args),
    }
}

fn deploy(args: &DeployArgs) -> anyhow::Result<ExitCode> {
    let wall = std::time::Instant::now();
    let setup = setup::load(args)?;
    for w in &setup.warnings {
        eprintln!("Warning: {w}");
    }
    let printer = print::Printer::new(args.verbose_level, setup.cluster.nodes.len(), args.json);
    println!("Deployment #D-sim-{} started", setup.params.seed);
    let report = simulate(&setup, args, printer.sink())?;
    println!("Deployment #D-sim-{} done", setup.params.seed);
    printer.finish();
    print::summary(&setup, args, &report);
    if args.stats {
        print::stats(wall.elapsed().as_secs_f64(), setup.cluster.nodes.len());
    }
    Ok(if report.ko().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs one deployment of `setup` on a fresh simulated cluster, in virtual time.
pub fn simulate(
    setup: &Setup,
    args: &DeployArgs,
    sink: kadeploy::output::Sink,
) -> anyhow::Result<Report> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()?;
    runtime.block_on(async {
        let cluster = Arc::new(setup.cluster.clone());
        let server = Arc::new(setup.server.clone());
        let sim = Arc::new(SimCluster::new(
            cluster.nodes.clone(),
            setup.params.clone(),
            setup.params.seed,
        )?);
        let windows = Arc::new(Windows::new(&server));
        let output = Output::with_sink(sink, false);
        let ctx = Context::new(sim.drivers(), server, cluster.clone(), windows, output);
        let image = &setup.params.image;
        let size = args.image_size.unwrap_or(image.size).max(0.0) as u64;
        let mut req = DeployRequest::new(
            (0..cluster.nodes.len() as u32).map(hal::NodeId).collect(),
            Environment::sample_tarball(size, image.ratio),
        );
        req.broadcast_strategy = args.strategy();
        req.breakpoint = args.breakpoint.clone();
        Ok(engine::deploy(&ctx, &req).await?)
    })
}

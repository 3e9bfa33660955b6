//! Command-line arguments of `kasim`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use hal::Strategy;
use std::path::PathBuf;

/// Simulate Kadeploy deployments of a virtual cluster, deterministically, in virtual time.
#[derive(Debug, Parser)]
#[command(name = "kasim", version, about)]
pub struct Cli {
    /// What to simulate.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses `args` (the first is the program name); exits with clap's message on bad arguments.
    pub fn from_args(args: &[&str]) -> Cli {
        Cli::parse_from(args)
    }
}

/// `kasim` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy an environment on the simulated cluster through the real workflow engine.
    Deploy(DeployArgs),
    /// Run a seeded matrix of deployments with injected faults and check every outcome.
    Campaign(CampaignArgs),
}

/// Arguments of `kasim campaign`.
#[derive(Debug, Args, Clone)]
pub struct CampaignArgs {
    /// Number of scenarios.
    #[arg(long, default_value_t = 1000)]
    pub scenarios: usize,
    /// Seed of the scenario matrix; the same seed runs the same scenarios.
    #[arg(short = 's', long, default_value_t = 1)]
    pub seed: u64,
    /// Largest cluster of a scenario (each deploys 1 to this many nodes).
    #[arg(long, default_value_t = 300)]
    pub max_nodes: usize,
    /// A Kadeploy configuration directory, as for `deploy` (default: the shipped 300-node sample).
    #[arg(short = 'c', long)]
    pub config: Option<PathBuf>,
    /// Seconds after which a node hung in a command fails alone (the site backend's
    /// `backend/command_timeout`); it must be below every macro-step timeout.
    #[arg(long, default_value_t = 120.0)]
    pub command_timeout: f64,
    /// Print a line for every scenario, not only the failed ones.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Run only the scenario of this index, printing its failure rules and Kadeploy's output.
    #[arg(long)]
    pub only: Option<usize>,
    /// Print the counts as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `kasim deploy`.
#[derive(Debug, Args, Clone)]
pub struct DeployArgs {
    /// Number of nodes to deploy (the first N of the cluster; more are generated after the first node's pattern).
    #[arg(short = 'n', long, default_value_t = 300)]
    pub nodes: usize,
    /// Seed of every random draw; the same seed gives the same output.
    #[arg(short = 's', long)]
    pub seed: Option<u64>,
    /// Broadcast strategy used by every BroadcastEnv step (default: what the automata says).
    #[arg(short = 'b', long, value_enum)]
    pub broadcast: Option<BroadcastArg>,
    /// Arity of the tree broadcast.
    #[arg(long, default_value_t = 2)]
    pub tree_arity: u32,
    /// A Kadeploy configuration directory (server.conf, clusters.conf, cluster files, optional
    /// simulation.conf), or a simulation.conf file inside one. Default: the shipped 300-node sample.
    #[arg(short = 'c', long)]
    pub config: Option<PathBuf>,
    /// Verbosity of the Kadeploy output, 0-5.
    #[arg(short = 'V', long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(0..=5))]
    pub verbose_level: u8,
    /// Print one JSON object as the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Print wall-clock time and peak memory to stderr at the end.
    #[arg(long)]
    pub stats: bool,
    /// Stop the nodes before this step (`Macro` or `Macro:micro`).
    #[arg(long)]
    pub breakpoint: Option<String>,
    /// Image size in bytes (default: simulation.conf's `image.size`).
    #[arg(long)]
    pub image_size: Option<f64>,
}

/// Broadcast strategies selectable on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BroadcastArg {
    /// Pipelined chain.
    Chain,
    /// Pipelined k-ary tree (`--tree-arity`).
    Tree,
    /// Fault-tolerant chain (Kascade).
    FtChain,
    /// One stream per node from the server.
    Unicast,
}

impl DeployArgs {
    /// The strategy asked for, if any.
    pub fn strategy(&self) -> Option<Strategy> {
        self.broadcast.map(|b| match b {
            BroadcastArg::Chain => Strategy::Chain,
            BroadcastArg::Tree => Strategy::Tree {
                arity: self.tree_arity.max(1),
            },
            BroadcastArg::FtChain => Strategy::FaultTolerantChain,
            BroadcastArg::Unicast => Strategy::Unicast,
        })
    }
}

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
    /// Run the broadcast models over a grid of parameters and write CSV and plots
    /// (`kasim sweep merge` joins the CSVs of shards).
    Sweep(Box<SweepArgs>),
    /// Append the broadcast models' prediction to each row of the namespace testbed's CSV.
    Testbed(super::testbed::TestbedArgs),
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
    /// Chunk size of the broadcast in bytes (default: simulation.conf's `network.chunk`).
    #[arg(long)]
    pub chunk: Option<f64>,
    /// Install a public key on the nodes as `kadeploy3 -k` does (its micro-steps `send_key_in_deploy_env`
    /// and `send_key`).
    #[arg(long)]
    pub key: bool,
    /// Write a per-node Gantt timeline of the deployment to this file (`.svg` or `.png`).
    #[arg(long)]
    pub timeline: Option<PathBuf>,
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
    /// Rate-controlled IP multicast with NAK repair.
    Multicast,
    /// BitTorrent-like exchange of verified chunks.
    Swarm,
    /// Let the simulator predict every strategy and chunk size and use the fastest.
    Auto,
}

impl DeployArgs {
    /// The strategy asked for, if any (`auto` is decided later, by the simulator).
    pub fn strategy(&self) -> Option<Strategy> {
        self.broadcast.and_then(|b| b.strategy(self.tree_arity))
    }
}

impl BroadcastArg {
    /// The strategy named, with `arity` for trees; `None` for `auto`.
    pub fn strategy(self, arity: u32) -> Option<Strategy> {
        Some(match self {
            BroadcastArg::Chain => Strategy::Chain,
            BroadcastArg::Tree => Strategy::Tree {
                arity: arity.max(1),
            },
            BroadcastArg::FtChain => Strategy::FaultTolerantChain,
            BroadcastArg::Unicast => Strategy::Unicast,
            BroadcastArg::Multicast => Strategy::Multicast,
            BroadcastArg::Swarm => Strategy::Swarm,
            BroadcastArg::Auto => return None,
        })
    }
}

/// Arguments of `kasim sweep`.
#[derive(Debug, Args, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SweepArgs {
    /// `merge`: join the CSVs of shards into the result of one run.
    #[command(subcommand)]
    pub action: Option<SweepAction>,
    /// The grid.
    #[command(flatten)]
    pub grid: GridArgs,
    /// CSV output file (default: standard output).
    #[arg(short = 'o', long)]
    pub out: Option<PathBuf>,
    /// Directory to write the plots to (time against N, completion-time CDF; SVG and PNG).
    #[arg(long)]
    pub plots: Option<PathBuf>,
    /// Run only shard I of N (0 ≤ I < N): the grid points whose index modulo N is I.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Do not run: write an sbatch job-array script to this file, one array task per shard, each
    /// writing `OUT.shard-I-of-N.csv` next to `--out`.
    #[arg(long, requires = "out")]
    pub slurm: Option<PathBuf>,
    /// Array tasks (shards) of the `--slurm` script.
    #[arg(long, default_value_t = 4)]
    pub shards: usize,
}

/// Subcommands of `kasim sweep`.
#[derive(Debug, Subcommand, Clone)]
pub enum SweepAction {
    /// Join shard CSVs (any order) into exactly the CSV one run of the whole grid writes.
    Merge(MergeArgs),
}

/// Arguments of `kasim sweep merge`.
#[derive(Debug, Args, Clone)]
pub struct MergeArgs {
    /// The shards' CSV files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Merged CSV output (default: standard output).
    #[arg(short = 'o', long)]
    pub out: Option<PathBuf>,
    /// Directory to write the plots to.
    #[arg(long)]
    pub plots: Option<PathBuf>,
}

/// The parameter grid of a sweep: every combination of the lists, `seeds` innermost.
#[derive(Debug, Args, Clone)]
pub struct GridArgs {
    /// Strategies (comma-separated): chain, tree, ft-chain, unicast, multicast, swarm.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "chain,ft-chain,tree,unicast,multicast,swarm"
    )]
    pub strategies: Vec<BroadcastArg>,
    /// Arity of the tree.
    #[arg(long, default_value_t = 2)]
    pub tree_arity: u32,
    /// Node counts.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    pub nodes: Vec<usize>,
    /// Compressed image sizes in bytes.
    #[arg(long, value_delimiter = ',', default_value = "1e9")]
    pub sizes: Vec<f64>,
    /// Link rates (goodput, bytes/s) of the nodes and the server.
    #[arg(long, value_delimiter = ',', default_value = "117.7e6")]
    pub links: Vec<f64>,
    /// Topologies: `flat` (one non-blocking switch) or `switches:K:U` (K nodes per switch, uplinks of
    /// U bytes/s).
    #[arg(long, value_delimiter = ',', default_value = "flat")]
    pub topologies: Vec<String>,
    /// Failure rates: each node dies during the broadcast with this probability.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub failures: Vec<f64>,
    /// Seeds.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub seeds: Vec<u64>,
    /// Chunk size in bytes (default: simulation.conf's `network.chunk`).
    #[arg(long)]
    pub chunk: Option<f64>,
    /// A Kadeploy configuration directory or simulation.conf whose simulation parameters (disks,
    /// latency, ratio, knobs) the grid starts from (default: the shipped sample's).
    #[arg(short = 'c', long)]
    pub config: Option<PathBuf>,
}

/// Parses `I/N` with N ≥ 1 and I < N.
fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: a shard is I/N"))?;
    let i: usize = i
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: I is not a number"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: N is not a number"))?;
    if n == 0 || i >= n {
        return Err(format!("`{s}`: need 0 <= I < N"));
    }
    Ok((i, n))
}

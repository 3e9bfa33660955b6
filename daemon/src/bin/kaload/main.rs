//! `kaload`: a load benchmark of `kadeploy3d` (acceptance 4 of the control-plane issue). It starts the
//! server (simulated backend, virtual time as fast as possible) on loopback, runs concurrent deployments
//! through the REST API as the Ruby clients do (POST, poll the workflow, read logs, state, DELETE), and
//! reports throughput, the latency of `GET` on a workflow, and the server's peak RSS.
//!
//! `cargo build --release -p kadeploy3d && target/release/kaload --workflows 50 --nodes 300`
//!
//! With `--url`, it loads a server started elsewhere (the restart campaign kills and restarts it).

mod layout;
mod run;

use clap::Parser;

/// Load benchmark of kadeploy3d.
#[derive(Parser)]
#[command(name = "kaload")]
pub struct Args {
    /// Concurrent deployments.
    #[arg(long, default_value_t = 50)]
    workflows: usize,
    /// Nodes per deployment (each deployment has its own nodes).
    #[arg(long, default_value_t = 300)]
    nodes: usize,
    /// Clusters the nodes are spread over (default: one per deployment).
    #[arg(long)]
    clusters: Option<usize>,
    /// Pause between two polls of a workflow, as the Ruby clients' 1 s loop.
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
    /// Reuse HTTP connections (the Ruby clients open one per request).
    #[arg(long)]
    keep_alive: bool,
    /// The kadeploy3d binary (default: next to kaload).
    #[arg(long)]
    server: Option<std::path::PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_s: u64,
    /// Load an already running kadeploy3d (e.g. `https://127.0.0.1:25300`) instead of starting one: root
    /// must already have rights on its nodes and a `debian12` environment; the deployments use its
    /// nodes (`GET /nodes?list`), `--workflows` x `--nodes` of them.
    #[arg(long)]
    url: Option<String>,
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run::run(args)) {
        eprintln!("kaload: {e:#}");
        std::process::exit(1);
    }
}

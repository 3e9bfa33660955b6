//! `kaagent`: the node agent of the image broadcast. Listens for jobs from the deployer and data
//! streams from upstream nodes, accepting only peers that know the deployment's token (which the
//! deployer writes to `--token-file` over SSH before each broadcast); see `hal::broadcast::node_agent`.
//!
//! Static build for deploy kernels (glibc, no musl toolchain needed):
//! `RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p hal --bin kaagent --target x86_64-unknown-linux-gnu`

use anyhow::Context;
use clap::Parser;
use hal::broadcast::node_agent::{AgentConfig, DEFAULT_HANDSHAKE_TIMEOUT};
use hal::broadcast::token::DEFAULT_TOKEN_FILE;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

/// Node agent: receives, forwards, decompresses, writes and verifies broadcast images.
#[derive(Parser)]
#[command(name = "kaagent", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:25301")]
    listen: SocketAddr,
    /// Take job targets relative to this directory and keep them inside it (several agents on one
    /// machine).
    #[arg(long)]
    root: Option<PathBuf>,
    /// The deployment's token: a file owned by root (or the agent's user) and readable by its owner
    /// only, read at each connection.
    #[arg(long, default_value = DEFAULT_TOKEN_FILE)]
    token_file: PathBuf,
    /// Seconds a peer has to authenticate after connecting.
    #[arg(long, default_value_t = DEFAULT_HANDSHAKE_TIMEOUT.as_secs_f64())]
    handshake_timeout: f64,
    /// Log filter (tracing env-filter syntax).
    #[arg(long, env = "KAAGENT_LOG", default_value = "info")]
    log: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log))
        .with_writer(std::io::stderr)
        .init();
    let handshake_timeout = Duration::try_from_secs_f64(args.handshake_timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .context("--handshake-timeout must be a positive number of seconds")?;
    let listener =
        TcpListener::bind(args.listen).with_context(|| format!("listening on {}", args.listen))?;
    let config = AgentConfig {
        root: args.root,
        token_file: args.token_file,
        handshake_timeout,
    };
    hal::broadcast::node_agent::run(listener, config).context("accepting connections")
}

//! `kaagent`: the node agent of the image broadcast. Listens for jobs from the deployer and data
//! streams from upstream nodes; see `hal::broadcast::agent`.
//!
//! Static build for deploy kernels (glibc, no musl toolchain needed):
//! `RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p hal --bin kaagent --target x86_64-unknown-linux-gnu`

use anyhow::Context;
use clap::Parser;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

/// Node agent: receives, forwards, decompresses, writes and verifies broadcast images.
#[derive(Parser)]
#[command(name = "kaagent", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:25301")]
    listen: SocketAddr,
    /// Take job targets relative to this directory (several agents on one machine).
    #[arg(long)]
    root: Option<PathBuf>,
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
    let listener =
        TcpListener::bind(args.listen).with_context(|| format!("listening on {}", args.listen))?;
    hal::broadcast::agent::run(listener, args.root).context("accepting connections")
}

//! `kabootd`: the network boot services (DHCP, TFTP, HTTP) standalone, from one YAML file.

use anyhow::Context;
use clap::Parser;
use hal::netboot::services::{self, ServicesConfig};
use std::path::PathBuf;

/// Serves DHCP, TFTP and HTTP for network-booting nodes.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The services file (sections `dhcp`, `tftp`, `http`; see hal::netboot::services).
    #[arg(short, long)]
    config: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let config = ServicesConfig::from_yaml(&text)
        .with_context(|| format!("in {}", args.config.display()))?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime
        .block_on(services::run(config))
        .with_context(|| format!("serving {}", args.config.display()))
}

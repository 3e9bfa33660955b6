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
    /// Prints the configuration with every default filled in (among them the limits against hostile
    /// clients: DHCP `decline_hold`, `max_declined`; TFTP `max_transfers_per_client`,
    /// `max_negotiated_timeout`, `stall_timeout_ms`; HTTP `header_timeout`, `idle_timeout`,
    /// `max_connections`, `max_connections_per_client`), then exits.
    #[arg(long)]
    print_config: bool,
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
    if args.print_config {
        print!("{}", config.to_yaml()?);
        return Ok(());
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime
        .block_on(services::run(config))
        .with_context(|| format!("serving {}", args.config.display()))
}

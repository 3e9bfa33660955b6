//! `kalab-bmc`: one lab BMC, an IPMI-over-LAN server driving one QEMU VM.

use clap::Parser;
use qemu_lab::bmc::{BmcConfig, run};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Serve IPMI over LAN (RMCP+) for one lab VM.
#[derive(Parser)]
struct Args {
    /// UDP address to listen on (`<ip>:<port>`).
    #[arg(long)]
    listen: SocketAddr,
    /// IPMI user name.
    #[arg(long, default_value = "ADMIN")]
    user: String,
    /// File holding the IPMI password (first line).
    #[arg(long)]
    password_file: PathBuf,
    /// Shell script that starts the VM daemonized and writes the pidfile.
    #[arg(long)]
    start_script: PathBuf,
    /// The VM's pidfile.
    #[arg(long)]
    pidfile: PathBuf,
    /// The VM's QMP unix socket.
    #[arg(long)]
    qmp: Option<PathBuf>,
    /// The VM's serial console unix socket, attached by serial-over-LAN (`sol activate`).
    #[arg(long)]
    serial: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.password_file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.password_file.display()))?;
    let password = text.lines().next().unwrap_or("").to_string();
    run(BmcConfig {
        listen: args.listen,
        user: args.user,
        password,
        start_script: args.start_script,
        pidfile: args.pidfile,
        qmp: args.qmp,
        serial: args.serial,
    })
    .await?;
    Ok(())
}

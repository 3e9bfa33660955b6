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
    qemu_lab::device::init_logging();
    let args = Args::parse();
    let password = qemu_lab::device::first_line(&args.password_file)?;
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

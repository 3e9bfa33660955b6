//! `kalab-redfish`: one lab VM's Redfish service (HTTPS, self-signed).

use clap::Parser;
use qemu_lab::redfish::{RedfishConfig, run};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Serve Redfish (power, boot override, sessions) for one lab VM.
#[derive(Parser)]
struct Args {
    /// TCP address to listen on (`<ip>:<port>`).
    #[arg(long)]
    listen: SocketAddr,
    /// The system's id (the VM's name).
    #[arg(long)]
    id: String,
    /// The account's user name.
    #[arg(long, default_value = "ADMIN")]
    user: String,
    /// File holding the password (first line).
    #[arg(long)]
    password_file: PathBuf,
    /// The VM's directory (start.sh, qemu.pid, qmp.sock).
    #[arg(long)]
    vm_dir: PathBuf,
    /// Plain HTTP instead of HTTPS.
    #[arg(long)]
    plain_http: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    qemu_lab::device::init_logging();
    let args = Args::parse();
    let password = qemu_lab::device::first_line(&args.password_file)?;
    run(RedfishConfig {
        listen: args.listen,
        id: args.id,
        user: args.user,
        password,
        vm_dir: args.vm_dir,
        plain_http: args.plain_http,
    })
    .await
}

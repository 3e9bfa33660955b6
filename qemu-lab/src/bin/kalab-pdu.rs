//! `kalab-pdu`: the lab's switched PDU, an SNMP agent whose outlets power lab VMs.

use clap::Parser;
use hal::power::snmp::client::V3User;
use hal::power::snmp::models::OutletModel;
use hal::power::snmp::usm::{AuthProtocol, PrivProtocol};
use qemu_lab::pdu::{PduConfig, run};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Serve SNMP (v1/v2c/v3) for a PDU whose outlets power lab VMs.
#[derive(Parser)]
struct Args {
    /// UDP address to listen on (`<ip>:<port>`).
    #[arg(long)]
    listen: SocketAddr,
    /// OIDs of this PDU model: apc, raritan or eaton.
    #[arg(long, default_value = "apc")]
    model: String,
    /// Read-only community.
    #[arg(long, default_value = "public")]
    read_community: String,
    /// File holding the read-write community (first line).
    #[arg(long)]
    write_community_file: PathBuf,
    /// SNMPv3 user (read-write).
    #[arg(long)]
    v3_user: Option<String>,
    /// Its authentication protocol (sha, sha256).
    #[arg(long, default_value = "sha")]
    v3_auth: String,
    /// File holding its authentication password (first line).
    #[arg(long)]
    v3_auth_password_file: Option<PathBuf>,
    /// File holding its privacy (AES) password (first line); without it the user is authNoPriv.
    #[arg(long)]
    v3_priv_password_file: Option<PathBuf>,
    /// The VM directory of each outlet, outlet 1 first (holds start.sh, qemu.pid, qmp.sock).
    #[arg(long = "outlet", required = true)]
    outlets: Vec<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    qemu_lab::device::init_logging();
    let args = Args::parse();
    let model = OutletModel::builtin(&args.model).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown model {:?} (expected {:?})",
            args.model,
            OutletModel::BUILTIN
        )
    })?;
    let user = match &args.v3_user {
        None => None,
        Some(name) => {
            let auth = AuthProtocol::parse(&args.v3_auth)
                .ok_or_else(|| anyhow::anyhow!("unknown auth protocol {:?}", args.v3_auth))?;
            let auth_file = args
                .v3_auth_password_file
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("--v3-user needs --v3-auth-password-file"))?;
            let privacy = match &args.v3_priv_password_file {
                Some(f) => Some((PrivProtocol::Aes128, qemu_lab::device::first_line(f)?)),
                None => None,
            };
            Some(V3User {
                user: name.clone(),
                auth,
                auth_password: qemu_lab::device::first_line(auth_file)?,
                privacy,
                context: String::new(),
            })
        }
    };
    run(PduConfig {
        listen: args.listen,
        model,
        read_community: args.read_community,
        write_community: qemu_lab::device::first_line(&args.write_community_file)?,
        user,
        outlets: args.outlets,
    })
    .await?;
    Ok(())
}

//! `kanetload`: load generator for DHCP and TFTP servers (ours, dnsmasq, tftpd-hpa), time-bounded;
//! prints one `key=value` line. Used by `scripts/bench-netboot.sh`.

use clap::{Parser, Subcommand};
use hal::netboot::load::{dhcp, tftp};
use std::time::Duration;

/// Drives a DHCP or TFTP server and reports rates.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    what: What,
    /// Seconds to run.
    #[arg(short, long, default_value_t = 5.0)]
    seconds: f64,
}

#[derive(Subcommand)]
enum What {
    /// DISCOVER/REQUEST from random MACs on an interface; counts ACKs.
    Dhcp {
        /// Client interface (the socket binds 0.0.0.0:68 on it).
        #[arg(short, long)]
        interface: String,
        /// Exchanges in flight.
        #[arg(short, long, default_value_t = 64)]
        concurrency: usize,
        /// Seed of MACs and transaction ids.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Concurrent downloads of one file.
    Tftp {
        /// Server address, e.g. 10.77.0.1:69.
        #[arg(short = 'a', long)]
        server: std::net::SocketAddr,
        /// File name on the server.
        #[arg(short, long)]
        file: String,
        /// Concurrent clients.
        #[arg(short, long, default_value_t = 1)]
        clients: usize,
        /// Block size asked for.
        #[arg(short, long, default_value_t = 1468)]
        blksize: u16,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let duration = Duration::from_secs_f64(args.seconds.clamp(0.1, 600.0));
    match args.what {
        What::Dhcp {
            interface,
            concurrency,
            seed,
        } => {
            let load = dhcp::DhcpLoad {
                interface,
                duration,
                concurrency,
                timeout: Duration::from_secs(2),
                seed,
            };
            let r = dhcp::run(&load)?;
            println!(
                "acks={} naks={} timeouts={} seconds={:.2} acks_per_second={:.0}",
                r.acks,
                r.naks,
                r.timeouts,
                r.elapsed.as_secs_f64(),
                r.acks_per_second
            );
        }
        What::Tftp {
            server,
            file,
            clients,
            blksize,
        } => {
            let load = tftp::TftpLoad {
                server,
                file,
                clients,
                blksize,
                duration,
            };
            let r = tftp::run(&load)?;
            println!(
                "bytes={} transfers={} failures={} seconds={:.2} mb_per_second={:.1}",
                r.bytes,
                r.transfers,
                r.failures,
                r.elapsed.as_secs_f64(),
                r.mb_per_second
            );
        }
    }
    Ok(())
}

//! `kadeploy3d`: the Kadeploy REST server, with the simulated cluster registered as the `simulated` backend
//! (the default of `backend/kind`), so it runs out of the box on a laptop, and the real drivers of a site
//! (PXE, SSH, IPMI or command templates, kaagent broadcast) as the `site` backend.

use anyhow::Context as _;
use clap::Parser;
use hal::netboot::services::{self, ServicesConfig};
use kadeploy::server::{App, BackendSpec, Backends, Settings, serve};
use simulator::cluster::SimCluster;
use simulator::params::SimParams;
use std::path::{Path, PathBuf};

mod import_mysql;

/// The embedded boot services' file in the configuration directory (new file, `kabootd`'s format).
const NETBOOT_FILE: &str = "netboot.conf";
use std::sync::Arc;

/// Kadeploy server.
#[derive(Parser)]
#[command(name = "kadeploy3d", version)]
struct Args {
    /// Configuration directory (server.conf, clusters.conf, cluster files, simulation.conf).
    #[arg(
        short = 'c',
        long,
        env = "KADEPLOY3_CONFIG_DIR",
        default_value = "/etc/kadeploy3"
    )]
    config: PathBuf,
    /// Listen on this address instead of server.conf's port (e.g. 127.0.0.1:0).
    #[arg(long)]
    bind: Option<std::net::SocketAddr>,
    /// SQLite database file instead of server.conf's `database/file`.
    #[arg(long)]
    database: Option<PathBuf>,
    /// Pace simulated workflows at N x real time instead of server.conf's `backend/time_scale`
    /// (0 = virtual time as fast as possible).
    #[arg(long, value_name = "N")]
    time_scale: Option<f64>,
    /// Import a Kadeploy 3.3 MySQL/MariaDB database (mysql://user[:pass]@host[:port]/db[?socket=PATH];
    /// MYSQL_PWD gives the password) into the database, print what was imported, and exit.
    #[arg(long, value_name = "URL")]
    import_mysql: Option<String>,
}

fn backends() -> Backends {
    let mut b = Backends::new();
    b.register(
        "simulated",
        true,
        Arc::new(|cluster, dir| {
            let file = dir.join("simulation.conf");
            let params = if file.is_file() {
                SimParams::load(&file)?
            } else {
                SimParams::default()
            };
            let sim = Arc::new(SimCluster::new(
                cluster.nodes.clone(),
                params.clone(),
                params.seed,
            )?);
            Ok(BackendSpec {
                drivers: sim.drivers(),
                virtual_time: true,
                image_size: params.image.size.max(0.0) as u64,
                image_ratio: params.image.ratio,
            })
        }),
    );
    b.register(
        kadeploy::site::KIND,
        false,
        Arc::new(kadeploy::site::backend),
    );
    b
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    if let Some(url) = &args.import_mysql {
        return import_mysql::run(url, args.database.as_deref(), &args.config);
    }
    let mut settings = Settings::load(&args.config)?;
    if let Some(db) = args.database {
        settings.database = db;
    }
    if let Some(scale) = args.time_scale {
        settings.time_scale = scale.max(0.0);
    }
    let loaded = kadeploy::config::load_dir(&args.config)
        .with_context(|| format!("loading {}", args.config.display()))?;
    settings.set_consoles(&loaded);
    let boot = boot_services(&args.config, &loaded.config.clusters)?;
    let app = App::with_config(settings, loaded.config, args.config.clone(), &backends())?;
    let bind = args.bind.unwrap_or_else(|| {
        let ip = if app.settings.local_only {
            [127, 0, 0, 1]
        } else {
            [0, 0, 0, 0]
        };
        (ip, app.settings.port).into()
    });
    let listener = std::net::TcpListener::bind(bind).with_context(|| format!("binding {bind}"))?;
    let l = serve(app, listener).await?;
    let scheme = if l.secure { "https" } else { "http" };
    println!("kadeploy3d listening on {scheme}://{}", l.addr);
    let boot = async move {
        match boot {
            Some(config) => services::run(config).await.context("network boot services"),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = l.task => { r??; }
        r = boot => { r?; }
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

/// The embedded network boot services (DHCP, TFTP, HTTP) of `<config>/netboot.conf`, when that file
/// exists; it has `kabootd`'s format, with relative paths resolved against the configuration directory.
/// Nodes of `clusters` with a `mac` get a DHCP reservation (their address and host name) unless
/// `netboot.conf` already reserves that MAC.
fn boot_services(
    dir: &Path,
    clusters: &[kadeploy::config::ClusterConfig],
) -> anyhow::Result<Option<ServicesConfig>> {
    let file = dir.join(NETBOOT_FILE);
    if !file.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let mut config =
        ServicesConfig::from_yaml(&text).with_context(|| format!("in {}", file.display()))?;
    if let Some(t) = config.tftp.as_mut() {
        t.root = dir.join(&t.root);
    }
    if let Some(h) = config.http.as_mut() {
        h.root = dir.join(&h.root);
    }
    if let Some(d) = config.dhcp.as_mut() {
        d.lease_file = d.lease_file.as_ref().map(|f| dir.join(f));
        add_reservations(d, clusters)?;
    }
    Ok(Some(config))
}

/// Adds a DHCP reservation for every cluster node with a `mac` that `dhcp.hosts` does not list yet.
fn add_reservations(
    dhcp: &mut hal::netboot::dhcp::DhcpConfig,
    clusters: &[kadeploy::config::ClusterConfig],
) -> anyhow::Result<()> {
    for cluster in clusters {
        for node in &cluster.nodes {
            let Some(mac) = cluster.macs.get(&node.name) else {
                continue;
            };
            if dhcp.hosts.iter().any(|h| h.mac == *mac) {
                continue;
            }
            let std::net::IpAddr::V4(ip) = node.address else {
                anyhow::bail!("{}: a DHCPv4 reservation needs an IPv4 address", node.name);
            };
            dhcp.hosts.push(hal::netboot::dhcp::Host {
                mac: *mac,
                ip,
                hostname: Some(node.name.clone()),
                boot: None,
                ipxe: None,
            });
        }
    }
    Ok(())
}

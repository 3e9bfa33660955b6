//! Loads what a simulated deployment needs: the Kadeploy configuration directory, the simulation
//! parameters, and the node list sized to `--nodes`.

use super::args::DeployArgs;
use crate::params::SimParams;
use anyhow::{Context as _, bail};
use hal::NodeInfo;
use kadeploy::config::{ClusterConfig, ServerConfig, load_dir};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The shipped sample configuration (a 300-node simulated cluster).
pub const SAMPLE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/sim300");

/// Name of our simulation parameter file inside a Kadeploy configuration directory.
pub const PARAMS_FILE: &str = "simulation.conf";

/// Everything loaded for one simulated deployment.
pub struct Setup {
    /// Server settings.
    pub server: ServerConfig,
    /// The cluster, with exactly the nodes to deploy (shared with the engine's context: a million nodes'
    /// names are not copied for it).
    pub cluster: Arc<ClusterConfig>,
    /// Simulation parameters (with the seed to use).
    pub params: SimParams,
    /// Configuration warnings (unused fields).
    pub warnings: Vec<String>,
    /// What was scaled for a cluster generated past the configured one, for the user.
    pub scaled: Option<String>,
}

/// Reads the configuration named by `args` (or the sample) and sizes the cluster to `args.nodes`.
pub fn load(args: &DeployArgs) -> anyhow::Result<Setup> {
    let (dir, params_file) = locate(args.config.as_deref())?;
    let loaded = load_dir(&dir)
        .with_context(|| format!("loading the Kadeploy configuration in {}", dir.display()))?;
    let mut params = match &params_file {
        Some(f) => SimParams::load(f)?,
        None => SimParams::default(),
    };
    if let Some(seed) = args.seed {
        params.seed = seed;
    }
    let server = loaded.config.server;
    let Some(mut cluster) = loaded.config.clusters.into_iter().next() else {
        bail!("{}: no cluster is configured", dir.display());
    };
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let configured = cluster.nodes.len();
    resize(&mut cluster, args.nodes);
    let mut server = server;
    let chunk = args.chunk.unwrap_or(params.network.chunk);
    let scaled =
        scale_windows(&mut server, configured, args.nodes).map(|w| match scale_broadcast_timeouts(
            &mut cluster,
            &params,
            chunk,
            configured,
            args.nodes,
        ) {
            Some(t) => format!("{w}; {t}"),
            None => w,
        });
    Ok(Setup {
        server,
        cluster: Arc::new(cluster),
        params,
        warnings: loaded.warnings,
        scaled,
    })
}

/// The configuration directory and the simulation file, from `--config`.
fn locate(config: Option<&Path>) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    let path = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(SAMPLE_DIR));
    let (dir, file) = if path.is_dir() {
        let file = path.join(PARAMS_FILE);
        let file = file.is_file().then_some(file);
        (path, file)
    } else if path.is_file() {
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        (dir, Some(path))
    } else {
        bail!(
            "{}: no such configuration directory or file",
            path.display()
        );
    };
    Ok((dir, file))
}

/// Past the configured cluster, a site of `n` nodes would not reboot them 100 at a time: the reboot and
/// check windows grow by `n / configured` (rounded up), so that the number of windows a step goes
/// through, and so the time a macro-step's timeout must cover, stays what the configuration was
/// written for. Returns what changed, or `None` when nothing did.
pub fn scale_windows(server: &mut ServerConfig, configured: usize, n: usize) -> Option<String> {
    if configured == 0 || n <= configured {
        return None;
    }
    let factor = n.div_ceil(configured);
    let (reboot, check) = (server.reboot_window, server.check_window);
    server.reboot_window = reboot.max(1).saturating_mul(factor).min(n);
    server.check_window = check.max(1).saturating_mul(factor).min(n);
    Some(format!(
        "{n} nodes, {configured} configured: windows scaled as a site of {n} nodes would have them \
         (reboot window {reboot} -> {}, check window {check} -> {})",
        server.reboot_window, server.check_window
    ))
}

/// Past the configured cluster, a pipelined broadcast (Kascade's chain, the default) gets one more hop
/// per node, each delaying the stream by about one chunk at the slowest rate of a node (link, disk,
/// decompression) plus a hop latency: a site of `n` nodes would give its BroadcastEnv steps that much
/// more time. Returns what changed.
pub fn scale_broadcast_timeouts(
    cluster: &mut ClusterConfig,
    params: &SimParams,
    chunk: f64,
    configured: usize,
    n: usize,
) -> Option<String> {
    if configured == 0 || n <= configured {
        return None;
    }
    let ratio = params.image.ratio.max(1e-9);
    let rate = params
        .network
        .bandwidth
        .min(params.disk.write_rate / ratio)
        .min(params.disk.decompress_rate / ratio);
    let per_hop = chunk / rate + 2.0 * params.network.latency;
    let extra = ((n - configured) as f64 * per_hop).ceil();
    if !(extra.is_finite() && extra > 0.0) {
        return None;
    }
    let mut changed = Vec::new();
    for i in &mut cluster.automata.broadcast_env {
        if i.timeout > 0.0 {
            changed.push(format!(
                "{} {} -> {}",
                i.kind.instance_name(),
                i.timeout,
                i.timeout + extra
            ));
            i.timeout += extra;
        }
    }
    (!changed.is_empty()).then(|| {
        format!(
            "BroadcastEnv timeouts +{extra} s for {} more pipeline hops ({})",
            n - configured,
            changed.join(", ")
        )
    })
}

/// Keeps the first `n` nodes, or generates more after the first node's naming pattern.
fn resize(cluster: &mut ClusterConfig, n: usize) {
    if n <= cluster.nodes.len() {
        cluster.nodes.truncate(n);
        return;
    }
    let first = cluster
        .nodes
        .first()
        .map(|x| x.name.clone())
        .unwrap_or_else(|| "node-1.sim".into());
    let (short, domain) = first.split_once('.').unwrap_or((first.as_str(), ""));
    let prefix = short
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches('-');
    let prefix = if prefix.is_empty() { "node" } else { prefix };
    cluster.nodes = (1..=n)
        .map(|i| {
            let name = if domain.is_empty() {
                format!("{prefix}-{i}")
            } else {
                format!("{prefix}-{i}.{domain}")
            };
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 16, 0, 0)) + i as u32);
            NodeInfo {
                name,
                address: IpAddr::V4(ip),
            }
        })
        .collect();
}

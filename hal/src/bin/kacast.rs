//! `kacast`: broadcasts an image or file to hosts running `kaagent`, outside any deployment, with any
//! strategy and chunk size, and writes each node's timeline as JSON and CSV; see `hal::broadcast::cast`.

use anyhow::Context;
use clap::Parser;
use hal::WriteTarget;
use hal::broadcast::cast::{self, Cast};
use hal::broadcast::deployer::Options;
use hal::broadcast::token::{AgentToken, DEFAULT_TOKEN_FILE};
use hal::image::DEFAULT_CHUNK_SIZE;
use std::path::PathBuf;
use std::time::Duration;

/// Broadcast an image or file to kaagent nodes and record each node's timeline.
#[derive(Parser)]
#[command(name = "kacast", version)]
struct Args {
    /// The image or file to send.
    #[arg(long)]
    image: String,
    /// Hosts running kaagent, `host` or `host:port` (port 25301 when none), comma-separated.
    #[arg(long, value_delimiter = ',')]
    hosts: Vec<String>,
    /// A file of hosts, one a line (`#` comments).
    #[arg(long)]
    hosts_file: Option<PathBuf>,
    /// chain, tree[:ARITY], ft-chain, unicast, multicast or swarm.
    #[arg(long, default_value = "chain")]
    strategy: String,
    /// Chunk size in bytes.
    #[arg(long, default_value_t = u64::from(DEFAULT_CHUNK_SIZE))]
    chunk_size: u64,
    /// The agents' token file, for agents started by hand with the same `--token-file`.
    #[arg(long, required_unless_present = "ssh_key", conflicts_with = "ssh_key")]
    token_file: Option<PathBuf>,
    /// Hand a fresh token to every host over SSH with this private key first, as the site backend
    /// does (written to `--remote-token-file`, removed afterwards).
    #[arg(long)]
    ssh_key: Option<PathBuf>,
    /// SSH user on the hosts.
    #[arg(long, default_value = "root")]
    ssh_user: String,
    /// SSH port of the hosts.
    #[arg(long, default_value_t = 22)]
    ssh_port: u16,
    /// Where the agents read their token on the hosts (SSH mode).
    #[arg(long, default_value = DEFAULT_TOKEN_FILE)]
    remote_token_file: String,
    /// A static kaagent to send over SSH and start where no agent answers (SSH mode).
    #[arg(long, requires = "ssh_key")]
    agent_binary: Option<PathBuf>,
    /// Image layout: dd (a raw file or disk image), tar or fsa.
    #[arg(long, default_value = "dd")]
    kind: String,
    /// Compression of the image: none, gzip, bzip2, xz or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// Where each node writes a dd or fsa image (relative to an agent's `--root`, if any).
    #[arg(long, default_value = "")]
    device: String,
    /// Where each node extracts a tar image.
    #[arg(long, default_value = "")]
    extraction_dir: String,
    /// Multicast forward error correction: M repair datagrams after each block of K (e.g. 32/2;
    /// 1 <= K <= 128, 1 <= M <= min(K, 32)); off when not given.
    #[arg(long, value_name = "K/M")]
    fec: Option<String>,
    /// Seconds a node may stay silent before it is timed out.
    #[arg(long, default_value_t = 30.0)]
    report_timeout: f64,
    /// Seconds a node may stay silent once it has sent a heartbeat (agents send one every half
    /// second while their job is quiet): a node powered off mid-job is timed out this soon.
    #[arg(long, default_value_t = 5.0)]
    heartbeat_timeout: f64,
    /// Write the timeline as JSON here (`-` for stdout).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the timeline as CSV here (`-` for stdout).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Log filter (tracing env-filter syntax).
    #[arg(long, env = "KACAST_LOG", default_value = "warn")]
    log: String,
}

/// Runs the cast handing the token over SSH with `key`.
#[cfg(feature = "ssh")]
fn over_ssh(job: &Cast, args: &Args, key: &std::path::Path) -> anyhow::Result<cast::Timeline> {
    let mut ssh = hal::ssh::SshConfig::new(key);
    ssh.user = args.ssh_user.clone();
    ssh.port = args.ssh_port;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let timeline = runtime.block_on(job.run_over_ssh(
        ssh,
        &args.remote_token_file,
        args.agent_binary.clone(),
    ))?;
    Ok(timeline)
}

/// Without the `ssh` feature there is no SSH mode.
#[cfg(not(feature = "ssh"))]
fn over_ssh(_: &Cast, _: &Args, _: &std::path::Path) -> anyhow::Result<cast::Timeline> {
    anyhow::bail!("kacast was built without the ssh feature: use --token-file")
}

/// `seconds` as a duration, or an error naming `flag` when it is not a positive number.
fn positive_seconds(seconds: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{flag} must be a positive number of seconds"))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log))
        .with_writer(std::io::stderr)
        .init();
    let mut hosts = args.hosts.clone();
    if let Some(file) = &args.hosts_file {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        hosts.extend(cast::hosts_from_text(&text));
    }
    let report_timeout = positive_seconds(args.report_timeout, "--report-timeout")?;
    let heartbeat_timeout = positive_seconds(args.heartbeat_timeout, "--heartbeat-timeout")?;
    let kind = cast::parse_kind(&args.kind)?;
    let mut options = Options {
        chunk_size: Cast::check_chunk(args.chunk_size)?,
        report_timeout,
        heartbeat_timeout,
        ..Options::default()
    };
    options.multicast.fec = args
        .fec
        .as_deref()
        .map(hal::broadcast::mcast_fec::Fec::parse)
        .transpose()?;
    let job = Cast {
        image: Cast::image(&args.image, kind, &args.compression)?,
        target: WriteTarget {
            device: args.device.clone(),
            extraction_dir: args.extraction_dir.clone(),
        },
        strategy: cast::parse_strategy(&args.strategy)?,
        agents: cast::resolve_hosts(&hosts)?,
        options,
    };
    let timeline = match (&args.token_file, &args.ssh_key) {
        (Some(file), _) => {
            let token = AgentToken::from_file(file)
                .with_context(|| format!("token file {}", file.display()))?;
            job.run(token)
        }
        (None, Some(key)) => over_ssh(&job, &args, key)?,
        (None, None) => anyhow::bail!("--token-file or --ssh-key is needed"),
    };
    for (path, text) in [
        (&args.json, timeline.to_json()),
        (&args.csv, timeline.to_csv()),
    ] {
        match path {
            Some(p) if p.as_os_str() == "-" => print!("{text}"),
            Some(p) => {
                std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?
            }
            None => {}
        }
    }
    let failed = timeline.nodes.iter().filter(|n| !n.ok).count();
    eprintln!(
        "kacast: {} of {} nodes written in {:.3} s ({})",
        timeline.nodes.len() - failed,
        timeline.nodes.len(),
        timeline.elapsed,
        timeline.strategy
    );
    for n in timeline.nodes.iter().filter(|n| !n.ok) {
        eprintln!(
            "kacast: {}: {}",
            n.node,
            n.error.as_deref().unwrap_or("failed")
        );
    }
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

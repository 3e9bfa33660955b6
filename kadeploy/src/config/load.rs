//! Loading a configuration directory (`server.conf`, `clusters.conf`, cluster files, `command.conf`,
//! `simulation.conf`), once: everything the engine, the server's settings and the backends use.

use super::cluster::{self, ClusterSpecific, RemoteOps};
use super::clusters::{self, ClusterEntry};
use super::connector;
use super::drivers::{self, SshKeys};
use super::error::{ConfigError, Ctx};
use super::files::{ReadFile, resolve};
use super::server;
use super::server_conf::{self, ServerConf};
use super::types::{ClusterConfig, Config, ServerConfig};
use super::wire;
use super::yaml::parse_yaml;
use hal::netboot::pxe::{Headers, PxeConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

pub use super::clusters::Commands;

/// The simulated cluster's parameter file in a configuration directory (kadeploy3d's addition).
pub const SIMULATION_FILE: &str = "simulation.conf";

/// A loaded configuration directory: nothing in it is read again by the server or its backends.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// Warnings, e.g. `Unused field foo in server.conf`, in file order.
    pub warnings: Vec<String>,
    /// `command.conf`: per-node command overrides, by host name then command key (`reboot_soft`...), with
    /// `DEFAULT_CONNECTOR` replaced.
    pub commands: Commands,
    /// `remoteops` of each cluster, by cluster name (`DEFAULT_CONNECTOR` replaced, group files read).
    pub remoteops: BTreeMap<String, RemoteOps>,
    /// `server.conf` for the server's own settings and the backend keys.
    pub server_conf: ServerConf,
    /// `pxe/*`: the PXE profile writer's methods (each cluster's headers are in [`Loaded::pxe_headers`]).
    pub pxe: PxeConfig,
    /// `pxe/headers` of each cluster file, by cluster name.
    pub pxe_headers: BTreeMap<String, Headers>,
    /// `ssh_private_key` and the user of `external/default_connector`.
    pub ssh: SshKeys,
    /// `simulation.conf`, when the directory has one.
    pub simulation: Option<TextFile>,
}

impl Loaded {
    /// The `command.conf` overrides of the nodes of `cluster`.
    pub fn commands_of(&self, cluster: &ClusterConfig) -> Commands {
        cluster
            .nodes
            .iter()
            .filter_map(|n| Some((n.name.clone(), self.commands.get(&n.name)?.clone())))
            .collect()
    }

    /// The PXE writer's configuration for `cluster`: [`Loaded::pxe`] with the cluster's headers.
    pub fn pxe_of(&self, cluster: &ClusterConfig) -> PxeConfig {
        let mut pxe = self.pxe.clone();
        pxe.headers = self
            .pxe_headers
            .get(&cluster.name)
            .cloned()
            .unwrap_or_default();
        pxe
    }
}

/// A file read whole at load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextFile {
    /// Where it was read (for messages).
    pub path: PathBuf,
    /// Its contents.
    pub text: String,
}

/// A value read from one file, with the file's warnings.
#[derive(Clone, Debug)]
pub struct Parsed<T> {
    /// The validated value.
    pub value: T,
    /// Warnings such as `Unused field <path> in <file>`.
    pub warnings: Vec<String>,
}

/// Parses `server.conf` text; `file_name` is used in messages.
pub fn parse_server(text: &str, file_name: &str) -> Result<Parsed<ServerConfig>, ConfigError> {
    let (w, warnings) = parse_yaml::<wire::ServerFile>(text, file_name)?;
    let value = server::convert(&w, Ctx { file: file_name })?;
    Ok(Parsed { value, warnings })
}

/// Parses `clusters.conf` text: clusters with their nodes expanded and checked.
pub fn parse_clusters(
    text: &str,
    file_name: &str,
) -> Result<Parsed<Vec<ClusterEntry>>, ConfigError> {
    let (w, warnings) = parse_yaml::<wire::ClustersFile>(text, file_name)?;
    let value = clusters::convert(&w, Ctx { file: file_name })?;
    Ok(Parsed { value, warnings })
}

/// Parses a cluster-specific file; its scripts are resolved against `dir` and read from disk.
pub fn parse_cluster_specific(
    text: &str,
    file_name: &str,
    dir: &Path,
) -> Result<Parsed<ClusterSpecific>, ConfigError> {
    parse_cluster_specific_with(text, file_name, dir, &mut |path: &Path| {
        fs::read_to_string(path)
    })
}

/// Parses a cluster-specific file; files named by keys (scripts) are resolved against `dir` and read with `read`.
pub fn parse_cluster_specific_with(
    text: &str,
    file_name: &str,
    dir: &Path,
    read: ReadFile<'_>,
) -> Result<Parsed<ClusterSpecific>, ConfigError> {
    let (w, warnings) = parse_yaml::<wire::ClusterFile>(text, file_name)?;
    let value = cluster::convert(&w, Ctx { file: file_name }, dir, read)?;
    Ok(Parsed { value, warnings })
}

/// Parses `command.conf` text; `nodes` are the host names of all clusters.
pub fn parse_commands(
    text: &str,
    file_name: &str,
    nodes: &BTreeSet<String>,
) -> Result<Parsed<Commands>, ConfigError> {
    let (w, warnings) = parse_yaml::<wire::CommandsFile>(text, file_name)?;
    let value = clusters::convert_commands(&w, Ctx { file: file_name }, nodes)?;
    Ok(Parsed { value, warnings })
}

/// Parses `server.conf` text for the server's settings (without the engine's validation, so that a partial
/// file will do); files it names are resolved against `dir` and read now.
pub fn parse_server_conf(
    text: &str,
    file_name: &str,
    dir: &Path,
) -> Result<Parsed<ServerConf>, ConfigError> {
    let (w, warnings) = parse_yaml::<wire::ServerFile>(text, file_name)?;
    let value = server_conf::convert(w, Ctx { file: file_name }, dir, &mut |p: &Path| fs::read(p))?;
    Ok(Parsed { value, warnings })
}

/// Reads `server.conf` (or `server_conf.yml`) of `dir` alone, for tools that need nothing else (see
/// [`parse_server_conf`]).
pub fn load_server_conf(dir: &Path) -> Result<Parsed<ServerConf>, ConfigError> {
    let (path, text) = read_server_file(dir)?;
    parse_server_conf(&text, &file_name(&path), dir)
}

/// Loads a configuration directory: `server.conf` (or `server_conf.yml`) with the files it names,
/// `clusters.conf` (or `clusters.yml`), each cluster's `conf_file`, the optional `command.conf` (or
/// `cmd.yml`) and the optional `simulation.conf` (kept as text).
pub fn load_dir(dir: &Path) -> Result<Loaded, ConfigError> {
    let mut warnings = Vec::new();
    let (server_path, text) = read_server_file(dir)?;
    let server_name = file_name(&server_path);
    let ctx = Ctx { file: &server_name };
    let (w, server_warnings) = parse_yaml::<wire::ServerFile>(&text, &server_name)?;
    warnings.extend(server_warnings);
    let mut server = server::convert(&w, ctx)?;
    let pxe = drivers::pxe(&w, ctx, dir)?;
    let ssh = drivers::ssh(&w, dir);
    let default_connector =
        connector::expand(&w.external.default_connector, Some(&ssh.private_key));
    server.taktuk_connector =
        connector::substitute(&w.external.taktuk.connector, &default_connector);
    let server_conf = server_conf::convert(w, ctx, dir, &mut |p: &Path| fs::read(p))?;
    let (clusters_path, text) = read_first(dir, &["clusters.conf", "clusters.yml"])?
        .ok_or_else(|| not_found(dir, "clusters.conf"))?;
    let entries = parse_clusters(&text, &file_name(&clusters_path))?;
    warnings.extend(entries.warnings);
    let mut clusters = Vec::with_capacity(entries.value.len());
    let mut remoteops = BTreeMap::new();
    let mut pxe_headers = BTreeMap::new();
    for entry in entries.value {
        let path = resolve(dir, &entry.conf_file);
        let text = fs::read_to_string(&path).map_err(|source| ConfigError::Io { path, source })?;
        let specific = parse_cluster_specific(&text, &entry.conf_file, dir)?;
        warnings.extend(specific.warnings);
        let headers = specific.value.pxe_headers.clone();
        let (config, ops) = specific.value.into_cluster(entry);
        remoteops.insert(config.name.clone(), ops.with_connector(&default_connector));
        pxe_headers.insert(config.name.clone(), headers);
        clusters.push(config);
    }
    let mut commands = BTreeMap::new();
    if let Some((path, text)) = read_first(dir, &["command.conf", "cmd.yml"])? {
        let nodes: BTreeSet<String> = clusters
            .iter()
            .flat_map(|c| c.nodes.iter().map(|n| n.name.clone()))
            .collect();
        let parsed = parse_commands(&text, &file_name(&path), &nodes)?;
        warnings.extend(parsed.warnings);
        commands = parsed.value;
        for cmd in commands
            .values_mut()
            .flat_map(|entries| entries.values_mut())
        {
            *cmd = connector::substitute(cmd, &default_connector);
        }
    }
    let simulation = read_optional(&dir.join(SIMULATION_FILE))?;
    Ok(Loaded {
        config: Config { server, clusters },
        warnings,
        commands,
        remoteops,
        server_conf,
        pxe,
        pxe_headers,
        ssh,
        simulation,
    })
}

/// Reads `server.conf` (or `server_conf.yml`) of `dir`.
fn read_server_file(dir: &Path) -> Result<(PathBuf, String), ConfigError> {
    read_first(dir, &["server.conf", "server_conf.yml"])?
        .ok_or_else(|| not_found(dir, "server.conf"))
}

/// Reads an optional file: `None` when it does not exist or is not a file.
fn read_optional(path: &Path) -> Result<Option<TextFile>, ConfigError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(TextFile {
            path: path.to_path_buf(),
            text,
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound || path.is_dir() => Ok(None),
        Err(source) => Err(ConfigError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads the first of `names` that exists in `dir`; `None` when none does.
fn read_first(dir: &Path, names: &[&str]) -> Result<Option<(PathBuf, String)>, ConfigError> {
    for name in names {
        let path = dir.join(name);
        match fs::read_to_string(&path) {
            Ok(text) => return Ok(Some((path, text))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(ConfigError::Io { path, source }),
        }
    }
    Ok(None)
}

/// The error for a missing mandatory file.
fn not_found(dir: &Path, name: &str) -> ConfigError {
    ConfigError::Io {
        path: dir.join(name),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    }
}

/// The file name used in messages.
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

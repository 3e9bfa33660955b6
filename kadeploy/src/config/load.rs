//! Loading a configuration directory (`server.conf`, `clusters.conf`, cluster files, `command.conf`).

use super::cluster::{self, ClusterSpecific, ReadFile, RemoteOps};
use super::clusters::{self, ClusterEntry};
use super::error::{ConfigError, Ctx};
use super::server;
use super::types::{Config, ServerConfig};
use super::wire;
use super::yaml::parse_yaml;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Per-node command overrides of `command.conf`, by host name then command key (`reboot_soft`...).
pub type Commands = BTreeMap<String, BTreeMap<String, String>>;

/// A loaded configuration directory.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// Warnings, e.g. `Unused field foo in server.conf`, in file order.
    pub warnings: Vec<String>,
    /// `command.conf`: per-node command overrides, by host name then command key (`reboot_soft`...).
    pub commands: Commands,
    /// `remoteops` of each cluster, by cluster name.
    pub remoteops: BTreeMap<String, RemoteOps>,
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

/// Loads a configuration directory: `server.conf` (or `server_conf.yml`), `clusters.conf` (or `clusters.yml`),
/// each cluster's `conf_file`, and the optional `command.conf` (or `cmd.yml`).
pub fn load_dir(dir: &Path) -> Result<Loaded, ConfigError> {
    let mut warnings = Vec::new();
    let (server_path, text) = read_first(dir, &["server.conf", "server_conf.yml"])?
        .ok_or_else(|| not_found(dir, "server.conf"))?;
    let server = parse_server(&text, &file_name(&server_path))?;
    warnings.extend(server.warnings);
    let (clusters_path, text) = read_first(dir, &["clusters.conf", "clusters.yml"])?
        .ok_or_else(|| not_found(dir, "clusters.conf"))?;
    let entries = parse_clusters(&text, &file_name(&clusters_path))?;
    warnings.extend(entries.warnings);
    let mut clusters = Vec::with_capacity(entries.value.len());
    let mut remoteops = BTreeMap::new();
    for entry in entries.value {
        let path = cluster::resolve(dir, &entry.conf_file);
        let text = fs::read_to_string(&path).map_err(|source| ConfigError::Io { path, source })?;
        let specific = parse_cluster_specific(&text, &entry.conf_file, dir)?;
        warnings.extend(specific.warnings);
        let (config, ops) = specific.value.into_cluster(entry);
        remoteops.insert(config.name.clone(), ops);
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
    }
    Ok(Loaded {
        config: Config {
            server: server.value,
            clusters,
        },
        warnings,
        commands,
        remoteops,
    })
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

//! One simulated node's files, rebuilt from the simulator's journal: the production system, the deploy
//! environment's RAM (fresh at every boot), and each disk partition's tree; which of them `/` shows
//! depends on the system the node runs (the deploy environment sees a mounted partition under its
//! mount point). Deployments' effects land here: keys, sent files, the image's files (tar images the
//! server can read), pre/post-install archives extracted and their scripts run by the simulated shell.

use crate::archive::{self, ArchiveCache};
use crate::vfs::{Entry, FileTree, FsError, normalize};
use hal::{ImageKind, Operation};
use simulator::cluster::{Env, NodeEvent};
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::debug;

/// A script an event leaves to run on the node (by [`crate::replay`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptRun {
    /// The command line.
    pub text: String,
    /// Its environment.
    pub env: Vec<(String, String)>,
    /// Its working directory (tree path).
    pub cwd: String,
}

/// Which tree a path lands in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeId {
    /// The production system's disk.
    Production,
    /// The running system's RAM (deploy environment, custom profiles).
    Ram,
    /// A partition, by device.
    Disk(String),
}

/// A node's trees and what it runs.
#[derive(Debug)]
pub struct NodeFs {
    name: String,
    production: FileTree,
    ram: FileTree,
    disks: BTreeMap<String, FileTree>,
    /// Mount points of the running system (tree paths) and their devices.
    mounts: Vec<(String, String)>,
    /// The system the last boot landed in.
    env: Option<Env>,
    /// The partition the deployed system runs from.
    image_device: Option<String>,
    /// Journal events lost (the journal overflowed before they were read).
    pub lost_events: u64,
}

/// Directories every system has.
const BASE_DIRS: &[&str] = &[
    "bin",
    "boot",
    "dev",
    "etc",
    "home",
    "mnt",
    "root/.ssh",
    "tmp",
    "usr/bin",
    "var/log",
];

/// A fresh system tree for `name`, as `env` boots it.
fn base_tree(name: &str, env: Env) -> FileTree {
    let mut t = FileTree::with_dirs(BASE_DIRS);
    let _ = t.write("etc/hostname", format!("{name}\n").as_bytes(), false, true);
    let release = match env {
        Env::Deploy => "PRETTY_NAME=\"Kadeploy deployment environment\"\nID=kadeploy\n",
        _ => "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
    };
    let _ = t.write("etc/os-release", release.as_bytes(), false, true);
    t
}

impl NodeFs {
    /// A node running its production system since the start.
    pub fn new(name: &str) -> Self {
        NodeFs {
            name: name.to_string(),
            production: base_tree(name, Env::Production),
            ram: FileTree::default(),
            disks: BTreeMap::new(),
            mounts: Vec::new(),
            env: Some(Env::Production),
            image_device: None,
            lost_events: 0,
        }
    }

    /// The node's configured name (FQDN).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The system the last boot landed in.
    pub fn env(&self) -> Option<Env> {
        self.env
    }

    /// The tree `/` of the running system is.
    fn root(&self) -> TreeId {
        match self.env {
            Some(Env::Production) => TreeId::Production,
            Some(Env::Deployed) => match &self.image_device {
                Some(d) => TreeId::Disk(d.clone()),
                None => TreeId::Ram,
            },
            _ => TreeId::Ram,
        }
    }

    /// Where the absolute or `cwd`-relative `path` lands: a tree and the path inside it.
    pub fn locate(&self, cwd: &str, path: &str) -> Result<(TreeId, String), FsError> {
        let rel = normalize(cwd, path)?;
        let mounted = self
            .mounts
            .iter()
            .filter(|(dir, _)| rel == *dir || rel.starts_with(&format!("{dir}/")))
            .max_by_key(|(dir, _)| dir.len());
        Ok(match mounted {
            Some((dir, device)) => (
                TreeId::Disk(device.clone()),
                rel.get(dir.len()..)
                    .unwrap_or("")
                    .trim_start_matches('/')
                    .to_string(),
            ),
            None => (self.root(), rel),
        })
    }

    /// The tree `id` (an empty one for an unknown partition).
    pub fn tree(&self, id: &TreeId) -> &FileTree {
        static EMPTY: std::sync::OnceLock<FileTree> = std::sync::OnceLock::new();
        match id {
            TreeId::Production => &self.production,
            TreeId::Ram => &self.ram,
            TreeId::Disk(d) => self
                .disks
                .get(d)
                .unwrap_or_else(|| EMPTY.get_or_init(FileTree::default)),
        }
    }

    /// The tree `id`, to change it (an unknown partition starts empty, like an unformatted one).
    pub fn tree_mut(&mut self, id: &TreeId) -> &mut FileTree {
        match id {
            TreeId::Production => &mut self.production,
            TreeId::Ram => &mut self.ram,
            TreeId::Disk(d) => self.disks.entry(d.clone()).or_default(),
        }
    }

    /// The entry at `path`.
    pub fn stat(&self, cwd: &str, path: &str) -> Result<Entry, FsError> {
        let (id, rel) = self.locate(cwd, path)?;
        self.tree(&id).get(&rel).cloned().ok_or(FsError::NotFound)
    }

    /// The content of the file at `path`.
    pub fn read(&self, cwd: &str, path: &str) -> Result<Arc<Vec<u8>>, FsError> {
        let (id, rel) = self.locate(cwd, path)?;
        self.tree(&id).read(&rel)
    }

    /// Writes (or appends to) the file at `path`, creating its directories when `parents`.
    pub fn write(
        &mut self,
        cwd: &str,
        path: &str,
        data: &[u8],
        append: bool,
        parents: bool,
    ) -> Result<(), FsError> {
        let (id, rel) = self.locate(cwd, path)?;
        self.tree_mut(&id).write(&rel, data, append, parents)
    }

    /// The public keys the running system's root accepts (`/root/.ssh/authorized_keys`), bounded.
    pub fn authorized_keys(&self) -> String {
        let text = self
            .read("", "/root/.ssh/authorized_keys")
            .unwrap_or_default();
        let cut = text.len().min(crate::keys::MAX_AUTHORIZED_KEYS_BYTES);
        String::from_utf8_lossy(&text[..cut]).into_owned()
    }

    /// Applies one journal event; returns the script it leaves to run with the simulated shell, if any
    /// (a post-install's, a custom operation's).
    pub fn apply(&mut self, event: &NodeEvent, cache: &ArchiveCache) -> Option<ScriptRun> {
        match event {
            NodeEvent::Booted(env) => {
                self.mounts.clear();
                self.env = *env;
                if matches!(env, Some(Env::Deploy | Env::Custom) | None) {
                    self.ram = match env {
                        Some(e) => base_tree(&self.name, *e),
                        None => FileTree::default(),
                    };
                }
            }
            NodeEvent::PoweredOff => {
                self.mounts.clear();
                self.env = None;
                self.ram = FileTree::default();
            }
            NodeEvent::Image {
                image,
                target,
                to_disk,
            } => {
                if !to_disk {
                    return None;
                }
                let tree = match image.kind {
                    ImageKind::Tar => match cache.tar(&image.path, &image.compression) {
                        Ok(tree) => (*tree).clone(),
                        Err(e) => {
                            debug!(node = %self.name, error = %e, "image files not simulated");
                            base_tree(&self.name, Env::Deployed)
                        }
                    },
                    _ => base_tree(&self.name, Env::Deployed),
                };
                self.disks.insert(target.device.clone(), tree);
                self.image_device = Some(target.device.clone());
            }
            NodeEvent::Operation(op) => return self.apply_op(op, cache),
        }
        None
    }

    /// Applies a successful node operation.
    fn apply_op(&mut self, op: &Operation, cache: &ArchiveCache) -> Option<ScriptRun> {
        match op {
            Operation::SendKey { keys, destination } => {
                let mut text = keys.clone();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                let _ = self.write("", destination, text.as_bytes(), true, true);
            }
            Operation::RunScript { purpose, .. } if purpose == "partitioning" => {
                self.disks.clear();
                self.production = FileTree::default();
                self.image_device = None;
            }
            Operation::Format { device, .. } => {
                self.disks.insert(device.clone(), FileTree::default());
                if self.image_device.as_deref() == Some(device.as_str()) {
                    self.image_device = None;
                }
            }
            Operation::Mount { device, dir } => {
                if let Ok(rel) = normalize("", dir) {
                    let _ = self.ram.mkdir(&rel, true);
                    self.disks.entry(device.clone()).or_default();
                    self.mounts.push((rel, device.clone()));
                }
            }
            Operation::Umount { target } => {
                let rel = normalize("", target).unwrap_or_default();
                self.mounts
                    .retain(|(dir, device)| *dir != rel && device != target);
            }
            Operation::SendFile {
                source,
                destination,
                size,
            } => {
                let entry = archive::read_file(source).unwrap_or(Entry::Opaque(*size));
                if let Ok((id, rel)) = self.locate("", destination) {
                    let tree = self.tree_mut(&id);
                    let _ = tree.mkdir(crate::vfs::parent(&rel), true);
                    let _ = tree.insert(&rel, entry);
                }
            }
            Operation::InstallArchive {
                archive,
                dir,
                script,
                env,
            } => return self.install_archive(archive, dir, script.as_deref(), env, cache),
            Operation::WriteImage { target, .. } => {
                self.image_device = Some(target.device.clone());
            }
            Operation::Exec { command, env } => {
                return Some(ScriptRun {
                    text: command.clone(),
                    env: env.clone(),
                    cwd: "root".into(),
                });
            }
            _ => {}
        }
        None
    }

    /// Extracts a pre/post-install archive into `dir`; its script is left to run there.
    fn install_archive(
        &mut self,
        archive: &str,
        dir: &str,
        script: Option<&str>,
        env: &[(String, String)],
        cache: &ArchiveCache,
    ) -> Option<ScriptRun> {
        let tree = match cache.tar(archive, archive::sniff(archive)) {
            Ok(t) => t,
            Err(e) => {
                debug!(node = %self.name, error = %e, "archive not simulated");
                return None;
            }
        };
        let (id, base) = self.locate("", dir).ok()?;
        let target = self.tree_mut(&id);
        let _ = target.mkdir(&base, true);
        for (path, entry) in tree.under("") {
            let at = if base.is_empty() {
                path.clone()
            } else {
                format!("{base}/{path}")
            };
            let _ = match entry {
                Entry::Dir => target.mkdir(&at, true),
                e => target.insert(&at, e.clone()),
            };
        }
        let script = script.filter(|s| !s.trim().is_empty() && s.trim() != "none")?;
        Some(ScriptRun {
            text: format!("sh ./{script}"),
            env: env.to_vec(),
            cwd: normalize("", dir).unwrap_or_default(),
        })
    }
}

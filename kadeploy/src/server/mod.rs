//! `kadeploy3d`'s REST API (spec §3): HTTP parsed into typed commands, one file per resource, one error
//! envelope ([`reply`]). The engine never sees HTTP; workflows run on per-cluster executors ([`backend`]).

pub mod auth;
mod autoclean;
pub mod backend;
mod catalog;
mod conn;
pub mod console;
mod files;
pub mod grab;
pub mod ident;
pub mod limits;
mod listen;
mod meta;
mod operations;
pub mod params;
pub mod reply;
mod route;
pub mod settings;
pub mod steps;
mod submit;
mod tls;
pub mod workflow;
pub mod x509;

pub use backend::{BackendSpec, Backends, Executor, Factory};
pub use listen::{Listening, self_signed, serve};
pub use settings::Settings;

use crate::config::{ClusterConfig, Config, ServerConfig, load_dir};
use crate::engine::Windows;
use crate::store::Store;
use anyhow::Context as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use workflow::Workflow;

/// The version `GET /version` answers.
pub const VERSION: &str = "3.3.11.rust";

/// One cluster as the server runs it.
pub struct Cluster {
    /// Its configuration.
    pub config: Arc<ClusterConfig>,
    /// Its backend.
    pub backend: BackendSpec,
    /// Where its workflows run.
    pub executor: Executor,
    /// Windows shared by its workflows.
    pub windows: Arc<Windows>,
}

/// The server state shared by every request.
pub struct App {
    /// `server.conf` settings of the HTTP layer.
    pub settings: Settings,
    /// Engine settings.
    pub server: Arc<ServerConfig>,
    /// Clusters, in `clusters.conf` order.
    pub clusters: Vec<Cluster>,
    /// Node name → (cluster index, node id).
    pub nodes: BTreeMap<String, (usize, hal::NodeId)>,
    /// The database.
    pub store: Arc<Store>,
    /// Running and finished workflows by id.
    pub workflows: Mutex<BTreeMap<String, Arc<Workflow>>>,
    /// Workflows recorded as aborted at start-up.
    pub recovered: Vec<String>,
    /// Held from a submission's "in use" check until its nodes are recorded as busy.
    pub admit: Mutex<()>,
    /// Open consoles by id.
    pub consoles: Mutex<BTreeMap<String, Arc<console::Console>>>,
}

impl App {
    /// Loads the configuration directory `dir`, opens the database (recording interrupted workflows as
    /// aborted), and starts each cluster's backend from `backends`.
    pub fn start(dir: &Path, backends: &Backends) -> anyhow::Result<Arc<App>> {
        let mut settings = Settings::load(dir)?;
        let loaded = load_dir(dir)
            .with_context(|| format!("loading the configuration in {}", dir.display()))?;
        settings.set_consoles(&loaded);
        for w in loaded.warnings.iter().filter(|w| !w.contains("backend")) {
            tracing::warn!("{w}");
        }
        App::with_config(settings, loaded.config, dir.to_path_buf(), backends)
    }

    /// Like [`App::start`] with an already loaded configuration.
    pub fn with_config(
        settings: Settings,
        config: Config,
        dir: PathBuf,
        backends: &Backends,
    ) -> anyhow::Result<Arc<App>> {
        let store = Arc::new(
            Store::open(&settings.database)
                .with_context(|| format!("opening {}", settings.database.display()))?,
        );
        let recovered = store.recover()?;
        for wid in &recovered {
            tracing::warn!(%wid, "the workflow was running when the server stopped: recorded as aborted");
        }
        let server = Arc::new(config.server);
        let mut clusters = Vec::new();
        let mut nodes = BTreeMap::new();
        for (i, cfg) in config.clusters.into_iter().enumerate() {
            let cfg = Arc::new(cfg);
            let factory = backends.get(&settings.backend).ok_or_else(|| {
                anyhow::anyhow!(
                    "server.conf: backend/kind '{}' is unknown (known: {})",
                    settings.backend,
                    backends.names().join(", ")
                )
            })?;
            let (paused, factory) = (factory.0, factory.1.clone());
            let (cfg2, dir2) = (cfg.clone(), dir.clone());
            let (executor, backend) =
                Executor::start(&cfg.name, paused, settings.time_scale, move || {
                    factory(&cfg2, &dir2)
                })?;
            for (j, n) in cfg.nodes.iter().enumerate() {
                nodes.insert(n.name.clone(), (i, hal::NodeId(j as u32)));
            }
            let windows = Arc::new(Windows::new(&server));
            clusters.push(Cluster {
                config: cfg,
                backend,
                executor,
                windows,
            });
        }
        Ok(Arc::new(App {
            settings,
            server,
            clusters,
            nodes,
            store,
            workflows: Mutex::new(BTreeMap::new()),
            recovered,
            admit: Mutex::new(()),
            consoles: Mutex::new(BTreeMap::new()),
        }))
    }

    /// The user is almighty.
    pub fn almighty(&self, user: &str) -> bool {
        self.settings.almighty.iter().any(|u| u == user)
    }

    /// The workflow `wid`.
    pub fn workflow(&self, wid: &str) -> Option<Arc<Workflow>> {
        self.workflows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(wid)
            .cloned()
    }
}

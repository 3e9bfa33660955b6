//! The control plane of `kadeploy3d`: the REST API (spec §3: HTTP parsed into typed commands, one file per
//! resource, one error envelope, [`reply`]), the database ([`store`]) and the import of a Kadeploy 3.3
//! database ([`migrate`]). The engine never sees HTTP; workflows run on per-cluster executors ([`backend`]).

mod api;
pub mod auth;
mod autoclean;
pub mod backend;
mod conn;
pub mod console;
pub mod fetch;
pub mod hooks;
pub mod ident;
pub mod limits;
mod listen;
pub mod live;
pub mod logfiles;
pub mod metrics_http;
pub mod migrate;
pub mod nodeset;
pub mod observe;
pub mod params;
pub mod passwords;
mod reload;
pub mod reply;
pub mod server_files;
pub mod settings;
pub mod shutdown;
pub mod steps;
pub mod store;
pub mod submit;
mod tls;
pub mod trust;
pub mod workflow;
pub mod x509;

pub use backend::{BackendSpec, Backends, Executor, Factory};
pub use listen::{Listening, self_signed, serve, serve_live};
pub use live::Live;
pub use logfiles::LogFiles;
pub use settings::Settings;

use crate::store::Store;
use anyhow::Context as _;
use kadeploy::config::{ClusterConfig, Loaded, ServerConfig, load_dir};
use kadeploy::engine::Windows;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use workflow::Workflow;

pub use kadeploy::VERSION;

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
    /// Running and finished workflows by id (shared with the applications of later configurations).
    pub workflows: Arc<Mutex<BTreeMap<String, Arc<Workflow>>>>,
    /// Workflows recorded as aborted at start-up.
    pub recovered: Vec<String>,
    /// Held from a submission's "in use" check until its nodes are recorded as busy.
    pub admit: Arc<Mutex<()>>,
    /// Open consoles by id.
    pub consoles: Arc<Mutex<BTreeMap<String, Arc<console::Console>>>>,
    /// `logs/logfile` and `logs/debugfile`.
    pub logs: Arc<LogFiles>,
    /// Executors of clusters that an earlier configuration defined, kept while their workflows run.
    pub retired: Mutex<Vec<Executor>>,
}

impl App {
    /// Loads the configuration directory `dir` once (logging each of its warnings once), opens the database
    /// (locked for the life of the process; an error when another process holds it), records interrupted
    /// workflows as aborted, and starts each cluster's backend from `backends`.
    pub fn start(dir: &Path, backends: &Backends) -> anyhow::Result<Arc<App>> {
        let loaded = load_dir(dir)
            .with_context(|| format!("loading the configuration in {}", dir.display()))?;
        let settings = Settings::from_loaded(&loaded)?;
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        App::with_config(settings, loaded, backends)
    }

    /// Like [`App::start`] with an already loaded configuration (whose warnings the caller shows): the
    /// backends are built from `loaded`, no file of the configuration directory is read again.
    pub fn with_config(
        settings: Settings,
        loaded: Loaded,
        backends: &Backends,
    ) -> anyhow::Result<Arc<App>> {
        let loaded = Arc::new(loaded);
        let addresses: Vec<std::net::IpAddr> = (loaded.config.clusters.iter())
            .flat_map(|c| c.nodes.iter().map(|n| n.address))
            .collect();
        // On stderr whatever the log filter (kadeploy3d shows only errors by default).
        for w in trust::warnings(&settings, &addresses) {
            eprintln!("kadeploy3d: WARNING: {w}");
        }
        // Locked before anything reads or changes it: a second server on this database stops here,
        // before recording the first one's running workflows as aborted.
        let store = Arc::new(
            Store::open(&settings.database)
                .with_context(|| format!("opening {}", settings.database.display()))?,
        );
        let recovered = store.recover()?;
        Store::watch(&store, crate::store::WATCH_PERIOD);
        for wid in &recovered {
            tracing::warn!(%wid, "the workflow was running when the server stopped: recorded as aborted");
        }
        let (logs, errors) = LogFiles::open(&settings);
        for e in errors {
            tracing::warn!("{e}");
        }
        let (clusters, nodes) = start_clusters(&settings, &loaded, backends)?;
        Ok(Arc::new(App {
            settings,
            server: Arc::new(loaded.config.server.clone()),
            clusters,
            nodes,
            store,
            workflows: Arc::new(Mutex::new(BTreeMap::new())),
            recovered,
            admit: Arc::new(Mutex::new(())),
            consoles: Arc::new(Mutex::new(BTreeMap::new())),
            logs: Arc::new(logs),
            retired: Mutex::new(Vec::new()),
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

    /// Workflow parts queued or running on this application's executors, retired ones included.
    pub fn running_parts(&self) -> usize {
        let retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        self.clusters
            .iter()
            .map(|c| &c.executor)
            .chain(retired.iter())
            .map(Executor::running)
            .sum()
    }
}

/// Cluster indices of the nodes of a cluster list.
type NodeIndex = BTreeMap<String, (usize, hal::NodeId)>;

/// Starts each cluster of `loaded` on its executor with its backend (`settings.backend` in `backends`,
/// built from `loaded`), with windows sized by `server.conf`.
fn start_clusters(
    settings: &Settings,
    loaded: &Arc<Loaded>,
    backends: &Backends,
) -> anyhow::Result<(Vec<Cluster>, NodeIndex)> {
    let (paused, factory) = backends.get(&settings.backend).ok_or_else(|| {
        anyhow::anyhow!(
            "server.conf: backend/kind '{}' is unknown (known: {})",
            settings.backend,
            backends.names().join(", ")
        )
    })?;
    let mut clusters = Vec::new();
    let mut nodes = BTreeMap::new();
    for (i, cfg) in loaded.config.clusters.iter().enumerate() {
        let cfg = Arc::new(cfg.clone());
        let (factory, cfg2, loaded2) = (factory.clone(), cfg.clone(), loaded.clone());
        let (executor, backend) =
            Executor::start(&cfg.name, *paused, settings.time_scale, move || {
                factory(&cfg2, &loaded2)
            })?;
        for (j, n) in cfg.nodes.iter().enumerate() {
            nodes.insert(n.name.clone(), (i, hal::NodeId(j as u32)));
        }
        clusters.push(Cluster {
            config: cfg,
            backend,
            executor,
            windows: Arc::new(Windows::new(&loaded.config.server)),
        });
    }
    Ok((clusters, nodes))
}

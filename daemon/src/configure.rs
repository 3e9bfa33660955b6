//! The configuration as the daemon runs it: the configuration directory loaded once (at start, and again
//! on each reload), `server.conf`'s settings built from it with the command line's overrides, and the
//! warnings to show, once per load.

use crate::args::Args;
use anyhow::Context as _;
use kadeploy::config::Loaded;
use kadeploy_server::Settings;

/// A loaded configuration.
pub struct Configuration {
    /// The HTTP layer's settings.
    pub settings: Settings,
    /// The validated configuration.
    pub loaded: Loaded,
}

impl Configuration {
    /// Reads `args.config` once ([`kadeploy::config::load_dir`]: settings and backends are built from
    /// that) and applies `--database` and `--time-scale`.
    pub fn load(args: &Args) -> anyhow::Result<Configuration> {
        let loaded = kadeploy::config::load_dir(&args.config)
            .with_context(|| format!("loading {}", args.config.display()))?;
        let mut settings = Settings::from_loaded(&loaded)?;
        if let Some(db) = &args.database {
            settings.database = db.clone();
        }
        if let Some(scale) = args.time_scale {
            settings.time_scale = scale.max(0.0);
        }
        Ok(Configuration { settings, loaded })
    }

    /// The loader's warnings (`Unused field ...`), then a notice when the server drives the simulated
    /// cluster because `backend/kind` is left out, then the `site` backend's warnings when it is chosen.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = self.loaded.warnings.clone();
        if self.settings.backend_defaulted {
            out.push(simulated_notice());
        }
        if self.settings.backend == crate::backends::site::KIND {
            out.extend(crate::backends::site::warnings(&self.loaded));
        }
        out
    }

    /// Logs [`Configuration::warnings`].
    pub fn log_warnings(&self) {
        for w in self.warnings() {
            tracing::warn!("{w}");
        }
    }
}

/// What a server without `backend/kind` says at start.
pub fn simulated_notice() -> String {
    format!(
        "server.conf has no backend/kind: kadeploy3d drives the SIMULATED cluster ({}, simulation.conf), \
         no real node is touched; set backend/kind: {} to deploy real nodes",
        crate::backends::simulated::KIND,
        crate::backends::site::KIND
    )
}

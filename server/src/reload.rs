//! Reloading the configuration (SIGHUP): a new application built from the new configuration, sharing the
//! running one's database, workflows, consoles and admission lock. Settings bound when the server started
//! (listening port and TLS, database file, metrics address) keep their running values until a restart.

use super::{App, Backends, Executor, LogFiles, Settings, start_clusters};
use kadeploy::config::Loaded;
use std::sync::{Arc, Mutex};

impl App {
    /// The application of a newly loaded configuration (`settings` built from `loaded`, the one load of
    /// the configuration directory). Every cluster's backend is started anew from `backends` and `loaded`;
    /// workflows still running finish on the executors they started on, kept in [`App::retired`] until
    /// then. Also returns the changes that need a restart.
    pub fn reload(
        &self,
        mut settings: Settings,
        loaded: Loaded,
        backends: &Backends,
    ) -> anyhow::Result<(Arc<App>, Vec<String>)> {
        let restart = keep_bound_settings(&self.settings, &mut settings);
        let loaded = Arc::new(loaded);
        let (clusters, nodes) = start_clusters(&settings, &loaded, backends)?;
        let logs = if self.logs.same_as(&settings) {
            self.logs.clone()
        } else {
            let (logs, errors) = LogFiles::open(&settings);
            for e in errors {
                tracing::warn!("{e}");
            }
            Arc::new(logs)
        };
        let retired: Vec<Executor> = {
            let old = self.retired.lock().unwrap_or_else(|e| e.into_inner());
            old.iter()
                .chain(self.clusters.iter().map(|c| &c.executor))
                .filter(|e| e.running() > 0)
                .cloned()
                .collect()
        };
        let app = App {
            settings,
            server: Arc::new(loaded.config.server.clone()),
            clusters,
            nodes,
            store: self.store.clone(),
            workflows: self.workflows.clone(),
            recovered: self.recovered.clone(),
            admit: self.admit.clone(),
            consoles: self.consoles.clone(),
            logs,
            retired: Mutex::new(retired),
        };
        Ok((Arc::new(app), restart))
    }
}

/// Gives `new` the running values of the settings bound at start-up; returns those that changed.
fn keep_bound_settings(running: &Settings, new: &mut Settings) -> Vec<String> {
    let mut changed = Vec::new();
    let mut keep = |key: &str, differs: bool| {
        if differs {
            changed.push(format!(
                "{key} changed: the new value takes effect at the next restart"
            ));
        }
    };
    keep("network/ports/kadeploy_server", running.port != new.port);
    keep("security/secure_server", running.secure != new.secure);
    keep("security/local_only", running.local_only != new.local_only);
    keep(
        "security/certificate",
        running.certificate != new.certificate,
    );
    keep(
        "authentication/certificate",
        running.cert.is_some() != new.cert.is_some(),
    );
    keep("database/file", running.database != new.database);
    keep("metrics/listen", running.metrics != new.metrics);
    new.port = running.port;
    new.secure = running.secure;
    new.local_only = running.local_only;
    new.certificate = running.certificate.clone();
    new.database = running.database.clone();
    new.metrics = running.metrics;
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const BASE: &str = "authentication: {acl: {whitelist: [127.0.0.1]}}\n";

    fn settings(extra: &str) -> Settings {
        Settings::parse(&format!("{BASE}{extra}"), Path::new("/etc/kadeploy3"))
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    #[test]
    fn settings_bound_at_start_keep_their_running_values() {
        let running = settings("network: {ports: {kadeploy_server: 25300}}\n");
        let mut new = settings(
            "network: {ports: {kadeploy_server: 25301}}\ndatabase: {file: /tmp/other.sqlite}\n\
             metrics: {listen: '127.0.0.1:9100'}\nrights: {almighty_users: 'root,alice'}\n",
        );
        let changed = keep_bound_settings(&running, &mut new);
        assert_eq!(
            changed,
            [
                "network/ports/kadeploy_server changed: the new value takes effect at the next restart",
                "database/file changed: the new value takes effect at the next restart",
                "metrics/listen changed: the new value takes effect at the next restart",
            ]
        );
        assert_eq!(new.port, 25300);
        assert_eq!(new.database, running.database);
        assert_eq!(new.metrics, None);
        assert_eq!(new.almighty, ["root", "alice"], "the rest is reloaded");
        let mut same = settings("network: {ports: {kadeploy_server: 25300}}\n");
        assert!(keep_bound_settings(&running, &mut same).is_empty());
    }
}

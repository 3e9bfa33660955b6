//! The boot services together (`kabootd`, or embedded in `kadeploy3d`): the YAML file with optional
//! `dhcp`, `tftp` and `http` sections, and one function that runs the configured ones.

use super::dhcp::{DhcpConfig, DhcpServer};
use super::http::{HttpConfig, HttpServer};
use super::tftp::{TftpConfig, TftpServer};
use serde::{Deserialize, Serialize};

/// The boot services file; an absent section is a service not started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServicesConfig {
    /// `dhcp`: see [`DhcpConfig`].
    pub dhcp: Option<DhcpConfig>,
    /// `tftp`: see [`TftpConfig`].
    pub tftp: Option<TftpConfig>,
    /// `http`: see [`HttpConfig`].
    pub http: Option<HttpConfig>,
}

/// Why the services stopped.
#[derive(Debug, thiserror::Error)]
#[error("{service}: {message}")]
pub struct ServicesError {
    /// `dhcp`, `tftp`, `http` or the file.
    pub service: &'static str,
    /// What went wrong.
    pub message: String,
}

impl ServicesConfig {
    /// Parses the YAML text; errors name the key.
    pub fn from_yaml(text: &str) -> Result<Self, ServicesError> {
        serde_saphyr::from_str(text).map_err(|e| ServicesError {
            service: "config",
            message: e.to_string(),
        })
    }

    /// The configuration as YAML, every key of each present section written out (defaults included).
    pub fn to_yaml(&self) -> Result<String, ServicesError> {
        serde_saphyr::to_string(self).map_err(|e| ServicesError {
            service: "config",
            message: e.to_string(),
        })
    }
}

fn err(service: &'static str) -> impl Fn(String) -> ServicesError {
    move |message| ServicesError { service, message }
}

/// Binds every configured service, then serves until one fails.
pub async fn run(config: ServicesConfig) -> Result<(), ServicesError> {
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(c) = config.dhcp {
        let server = DhcpServer::bind(c).map_err(|e| err("dhcp")(e.to_string()))?;
        tasks.spawn(async move { server.run().await.map_err(|e| err("dhcp")(e.to_string())) });
    }
    if let Some(c) = config.tftp {
        let server = TftpServer::bind(c).map_err(|e| err("tftp")(e.to_string()))?;
        tasks.spawn(async move { server.run().await.map_err(|e| err("tftp")(e.to_string())) });
    }
    if let Some(c) = config.http {
        let server = HttpServer::bind(c)
            .await
            .map_err(|e| err("http")(e.to_string()))?;
        tasks.spawn(async move { server.run().await.map_err(|e| err("http")(e.to_string())) });
    }
    if tasks.is_empty() {
        return Err(err("config")("no dhcp, tftp or http section".into()));
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| err("task")(e.to_string()))??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_defaults_name_every_limit_and_read_back() {
        let c = ServicesConfig::from_yaml(
            "dhcp: {server_ip: 10.0.0.1}\ntftp: {root: /srv}\nhttp: {root: /srv}\n",
        )
        .unwrap();
        let text = c.to_yaml().unwrap();
        for key in [
            "decline_hold: 600",
            "max_declined: 1024",
            "max_transfers_per_client: 8",
            "max_negotiated_timeout: 10",
            "stall_timeout_ms: 15000",
            "header_timeout: 10",
            "idle_timeout: 60",
            "max_connections: 512",
            "max_connections_per_client: 32",
            "keep_alive: true",
        ] {
            assert!(text.contains(key), "{key} missing from:\n{text}");
        }
        assert_eq!(ServicesConfig::from_yaml(&text).unwrap(), c);
    }
}

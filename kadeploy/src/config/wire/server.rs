//! Wire structs of `server.conf` (`CommonConfig#load`).

use super::{Environments, External, Hooks, Network, Pxe, Windows};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `server.conf`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ServerFile {
    /// `database/*`: Kadeploy's MySQL settings, accepted and ignored (this server keeps its own database).
    pub database: Option<Value>,
    /// `backend/{kind, time_scale}` (kadeploy3d's addition): the hardware backend and simulated pacing.
    pub backend: Option<Value>,
    /// `rights/*`.
    pub rights: Rights,
    /// `authentication/*`.
    pub authentication: Authentication,
    /// `security/*`.
    pub security: Security,
    /// `ssh_private_key` (default `<confdir>/keys/id_deploy`).
    pub ssh_private_key: Option<String>,
    /// `logs/*`.
    pub logs: Logs,
    /// `verbosity/*`.
    pub verbosity: Verbosity,
    /// `cache/*`.
    pub cache: Cache,
    /// `network/*`.
    pub network: Network,
    /// `windows/*`.
    pub windows: Windows,
    /// `environments/*`.
    pub environments: Environments,
    /// `pxe/*`.
    pub pxe: Pxe,
    /// `hooks/*`.
    pub hooks: Hooks,
    /// `autoclean_threshold` in minutes (360); fractions of a minute are accepted.
    pub autoclean_threshold: f64,
    /// `external/*`.
    pub external: External,
    /// `metrics/*` (kadeploy3d's addition).
    pub metrics: Metrics,
    /// `limits/*` (kadeploy3d's addition): connection, request and console bounds
    /// (`kadeploy_server::limits::Limits`).
    pub limits: Option<Value>,
}

impl Default for ServerFile {
    fn default() -> Self {
        ServerFile {
            database: None,
            backend: None,
            rights: Rights::default(),
            authentication: Authentication::default(),
            security: Security::default(),
            ssh_private_key: None,
            logs: Logs::default(),
            verbosity: Verbosity::default(),
            cache: Cache::default(),
            network: Network::default(),
            windows: Windows::default(),
            environments: Environments::default(),
            pxe: Pxe::default(),
            hooks: Hooks::default(),
            autoclean_threshold: 360.0,
            limits: None,
            external: External::default(),
            metrics: Metrics::default(),
        }
    }
}

/// `rights/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Rights {
    /// `kind`: `db` or `dummy` (`db`).
    pub kind: String,
    /// `almighty_users`: comma-separated (`root`).
    pub almighty_users: String,
    /// `purge_deployment_timer` in seconds (900).
    pub purge_deployment_timer: u64,
}

impl Default for Rights {
    fn default() -> Self {
        Rights {
            kind: "db".into(),
            almighty_users: "root".into(),
            purge_deployment_timer: 900,
        }
    }
}

/// `authentication/*`: each method is optional.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Authentication {
    /// `global/*`.
    pub global: AuthGlobal,
    /// `acl/*`.
    pub acl: Option<Whitelist>,
    /// `certificate/*`.
    pub certificate: Option<AuthCertificate>,
    /// `http_basic/*`.
    pub http_basic: Option<AuthHttpBasic>,
    /// `ident/*`.
    pub ident: Option<AuthIdent>,
}

/// `authentication/global/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthGlobal {
    /// `headers_prefix` (`X-Kadeploy-`).
    pub headers_prefix: String,
}

impl Default for AuthGlobal {
    fn default() -> Self {
        AuthGlobal {
            headers_prefix: "X-Kadeploy-".into(),
        }
    }
}

/// A section with a mandatory `whitelist` (`acl`, `ident`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Whitelist {
    /// `whitelist`: hosts, networks or `/regexps/`.
    pub whitelist: Option<Vec<String>>,
}

/// `authentication/ident/*`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthIdent {
    /// `whitelist`: hosts, networks or `/regexps/`.
    pub whitelist: Option<Vec<String>>,
    /// New key `port`: the identd port queried on the client host (113); a privileged port (below 1024).
    pub port: Option<u16>,
}

/// `authentication/certificate/*`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthCertificate {
    /// `ca_public_key/*` (or `ca_cert`).
    pub ca_public_key: Option<KeyFile>,
    /// `ca_cert` (or `ca_public_key`).
    pub ca_cert: Option<String>,
    /// `whitelist`.
    pub whitelist: Vec<String>,
    /// New key `trusted_front_ends`: the hosts allowed to pass a client's certificate in the
    /// `<prefix>Certificate` header, having authenticated the client by TLS themselves (none by default).
    pub trusted_front_ends: Vec<String>,
}

/// `{algorithm, file}` of a key.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct KeyFile {
    /// `algorithm`: `RSA`, `DSA` or `EC`.
    pub algorithm: Option<String>,
    /// `file`.
    pub file: Option<String>,
}

/// `authentication/http_basic/*`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthHttpBasic {
    /// `dbfile`: htpasswd file, mandatory.
    pub dbfile: Option<String>,
    /// `realm`.
    pub realm: Option<String>,
    /// `whitelist`.
    pub whitelist: Vec<String>,
}

/// `security/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Security {
    /// `secure_server` (true): HTTPS.
    pub secure_server: bool,
    /// `local_only` (false).
    pub local_only: bool,
    /// `certificate` (`''`: self-signed).
    pub certificate: String,
    /// `private_key/*`: required with `certificate`.
    pub private_key: Option<KeyFile>,
    /// `force_secure_client` (false).
    pub force_secure_client: bool,
    /// New key `server_file_directories`: the directories `server://` references may name (none by
    /// default: every `server://` reference is refused).
    pub server_file_directories: Vec<String>,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            secure_server: true,
            local_only: false,
            certificate: String::new(),
            private_key: None,
            force_secure_client: false,
            server_file_directories: Vec::new(),
        }
    }
}

/// `logs/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Logs {
    /// `logfile` (`''`).
    pub logfile: String,
    /// `database` (true).
    pub database: bool,
    /// `debugfile` (`''`).
    pub debugfile: String,
}

impl Default for Logs {
    fn default() -> Self {
        Logs {
            logfile: String::new(),
            database: true,
            debugfile: String::new(),
        }
    }
}

/// `metrics/*` (kadeploy3d's addition): the Prometheus endpoint.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Metrics {
    /// `listen`: `address:port` of the plain-HTTP `/metrics` listener (absent: no listener).
    pub listen: Option<String>,
}

/// `verbosity/*`: levels 0..4.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Verbosity {
    /// `logs` (3).
    pub logs: u8,
    /// `clients` (3).
    pub clients: u8,
}

impl Default for Verbosity {
    fn default() -> Self {
        Verbosity {
            logs: 3,
            clients: 3,
        }
    }
}

/// `cache/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Cache {
    /// `directory` (`/tmp`).
    pub directory: String,
    /// `size` in MB; mandatory in Kadeploy, optional here.
    pub size: Option<u64>,
    /// `concurrency_level` (10).
    pub concurrency_level: u32,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            directory: "/tmp".into(),
            size: None,
            concurrency_level: 10,
        }
    }
}

//! The server's own settings, built from `server.conf` as loaded ([`kadeploy::config::ServerConf`], no file
//! is read here): Kadeploy's keys (port, TLS, authentication, rights, almighty users) plus this server's
//! additions `database/file` and `backend/{kind,time_scale}`.

use super::x509::CaKey;
use kadeploy::config::{CaSource, Loaded, ServerConf};
use serde_json::Value;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A whitelist entry: an address or a network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// Parses `IP`, `IP/len`, or a host name (resolved once now).
    pub fn parse(s: &str) -> Vec<Net> {
        let (host, prefix) = match s.split_once('/') {
            Some((h, p)) => (h, p.parse().ok()),
            None => (s, None),
        };
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(a) => vec![a],
            Err(_) => std::net::ToSocketAddrs::to_socket_addrs(&(host, 0))
                .map(|it| it.map(|a| a.ip()).collect())
                .unwrap_or_default(),
        };
        addrs
            .into_iter()
            .map(|addr| Net {
                addr,
                prefix: prefix.unwrap_or(if addr.is_ipv4() { 32 } else { 128 }),
            })
            .collect()
    }

    /// The network's address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// `ip` is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let bits = u32::from(self.prefix.min(32));
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let bits = u32::from(self.prefix.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

/// `true` when `ip` is allowed by `list` (an empty list allows everyone).
pub fn allowed(list: &[Net], ip: IpAddr) -> bool {
    list.is_empty() || list.iter().any(|n| n.contains(ip))
}

/// `true` when `ip` is in `list` (an empty list allows nobody).
pub fn listed(list: &[Net], ip: IpAddr) -> bool {
    list.iter().any(|n| n.contains(ip))
}

/// HTTP Basic settings.
#[derive(Clone, Debug)]
pub struct BasicAuth {
    /// The htpasswd file.
    pub dbfile: PathBuf,
    /// Realm of `WWW-Authenticate`.
    pub realm: String,
    /// Allowed sources.
    pub whitelist: Vec<Net>,
    /// Checks the passwords (bounded concurrency, short cache).
    pub passwords: std::sync::Arc<super::passwords::Passwords>,
}

/// X.509 certificate authentication settings (`authentication/certificate`).
#[derive(Clone, Debug)]
pub struct CertAuth {
    /// The trusted CA's key.
    pub ca: super::x509::CaKey,
    /// Allowed sources.
    pub whitelist: Vec<Net>,
    /// New key `trusted_front_ends`: the hosts whose `<prefix>Certificate` header is believed (they
    /// authenticated the client by TLS themselves); empty (the default): the header is refused.
    pub front_ends: Vec<Net>,
}

/// Ident authentication settings (`authentication/ident`).
#[derive(Clone, Debug)]
pub struct IdentAuth {
    /// Allowed sources (an empty list allows nobody).
    pub whitelist: Vec<Net>,
    /// New key `authentication/ident/port`: the identd port queried on the client host (113); only a
    /// privileged port (below 1024) is accepted, where only the host's administrator can answer.
    pub port: u16,
}

/// Everything the HTTP layer needs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `network/ports/kadeploy_server` (25300).
    pub port: u16,
    /// `security/secure_server` (true): HTTPS.
    pub secure: bool,
    /// `security/local_only`: bind to localhost.
    pub local_only: bool,
    /// `security/certificate` and `security/private_key/file`, when configured.
    pub certificate: Option<(PathBuf, PathBuf)>,
    /// `network/server_hostname`.
    pub hostname: String,
    /// `authentication/global/headers_prefix` (`X-Kadeploy-`).
    pub headers_prefix: String,
    /// `authentication/acl/whitelist`, when ACL is configured.
    pub acl: Option<Vec<Net>>,
    /// `authentication/http_basic`, when configured.
    pub basic: Option<BasicAuth>,
    /// `authentication/certificate`, when configured.
    pub cert: Option<CertAuth>,
    /// `authentication/ident`, when configured.
    pub ident: Option<IdentAuth>,
    /// `rights/almighty_users` (`root`).
    pub almighty: Vec<String>,
    /// `rights/kind: dummy` grants everything.
    pub rights_dummy: bool,
    /// `rights/purge_deployment_timer` (900 s).
    pub purge_timer: i64,
    /// `verbosity/clients` (3).
    pub verbosity: u8,
    /// New key `database/file`: the SQLite file (default `/var/lib/kadeploy3/kadeploy3.sqlite`; relative to
    /// the configuration directory when relative).
    pub database: PathBuf,
    /// New key `backend/kind` (`simulated`).
    pub backend: String,
    /// New key `backend/time_scale`: 0 = virtual time as fast as possible; N > 0 = N× real time.
    pub time_scale: f64,
    /// `cache/directory` (`/tmp`) and `cache/size`: where fetched files are kept.
    pub cache: super::fetch::Cache,
    /// `environments/max_preinstall_size` (20 MB), in bytes.
    pub max_preinstall: u64,
    /// `environments/max_postinstall_size` (20 MB), in bytes.
    pub max_postinstall: u64,
    /// `pxe/dhcp/repository` + `pxe/dhcp/userfiles/directory`: where uploaded PXE files go.
    pub pxe_userfiles: Option<PathBuf>,
    /// New key `security/server_file_directories`: where `server://` references may point (none by default).
    pub server_files: super::server_files::ServerFiles,
    /// `pxe/dhcp/userfiles/max_size` (MB, 200 when absent), in bytes: the largest PXE file of a request.
    pub max_pxe_file: u64,
    /// The clusters whose `remoteops` have a `console` command (`None`: not known, consoles allowed).
    pub console_clusters: Option<std::collections::BTreeSet<String>>,
    /// `backend/kind` was left out (the server then drives the simulated cluster).
    pub backend_defaulted: bool,
    /// `logs/logfile`: one CSV record per node per workflow (relative to the configuration directory).
    pub logfile: Option<PathBuf>,
    /// `logs/debugfile`: every output line of every workflow, prefixed `<wid>|<user> -> `.
    pub debugfile: Option<PathBuf>,
    /// `verbosity/logs` (3): the most verbose level written to the debug file.
    pub debugfile_level: u8,
    /// New key `metrics/listen`: where `/metrics` is served over plain HTTP (off when absent).
    pub metrics: Option<std::net::SocketAddr>,
    /// New keys `limits/*` and Kadeploy's `autoclean_threshold`: connection, console and workflow bounds.
    pub limits: super::limits::Limits,
    /// `hooks/end_of_{deployment,reboot,power}`: run at the end of operations that ask for it.
    pub hooks: kadeploy::config::wire::Hooks,
    /// `pxe/dhcp/method` (`PXElinux`...), what `GET /info` reports.
    pub pxe_method: String,
}

impl Settings {
    /// The settings of a loaded configuration directory, with the clusters that have a console command;
    /// reads no file.
    pub fn from_loaded(loaded: &Loaded) -> anyhow::Result<Settings> {
        let mut settings = Settings::from_conf(&loaded.server_conf)?;
        settings.console_clusters = Some(
            loaded
                .remoteops
                .iter()
                .filter(|(_, ops)| ops.console.is_some())
                .map(|(name, _)| name.clone())
                .collect(),
        );
        Ok(settings)
    }

    /// Parses `server.conf` text alone (relative paths resolved against `dir`, the files it names read
    /// now), as [`Settings::from_conf`] of [`kadeploy::config::parse_server_conf`].
    pub fn parse(text: &str, dir: &Path) -> anyhow::Result<Settings> {
        let conf = kadeploy::config::parse_server_conf(text, "server.conf", dir)?;
        Settings::from_conf(&conf.value)
    }

    /// The settings of `server.conf` as loaded (consoles not known); reads no file.
    pub fn from_conf(conf: &ServerConf) -> anyhow::Result<Settings> {
        let (w, dir) = (&conf.file, conf.dir.as_path());
        let auth = Auth::from_conf(conf)?;
        let server_files = super::server_files::ServerFiles::new(
            w.security
                .server_file_directories
                .iter()
                .map(|d| dir.join(d)),
        );
        let certificate = w
            .security
            .private_key
            .as_ref()
            .and_then(|k| k.file.clone())
            .filter(|_| !w.security.certificate.is_empty())
            .map(|k| (dir.join(&w.security.certificate), dir.join(k)));
        let database = (w.database.as_ref())
            .and_then(|d| d.get("file"))
            .and_then(Value::as_str)
            .unwrap_or("/var/lib/kadeploy3/kadeploy3.sqlite");
        let metrics = match w.metrics.listen.as_deref() {
            None | Some("") => None,
            Some(a) => Some(a.parse().map_err(|e| {
                anyhow::anyhow!("server.conf: metrics/listen: '{a}' is not an address:port ({e})")
            })?),
        };
        let file = |f: &str| (!f.is_empty()).then(|| dir.join(f));
        let hostname = w
            .network
            .server_hostname
            .clone()
            .unwrap_or_else(|| "localhost".into());
        let limits = super::limits::Limits::parse(
            w.limits.as_ref().unwrap_or(&Value::Null),
            w.autoclean_threshold,
        )?;
        let dhcp = w.pxe.dhcp.as_ref();
        let userfiles = dhcp.and_then(|d| d.userfiles.as_ref());
        Ok(Settings {
            limits,
            hooks: w.hooks.clone(),
            pxe_method: dhcp.map_or_else(|| "PXElinux".into(), |d| d.method.clone()),
            port: w.network.ports.kadeploy_server,
            secure: w.security.secure_server,
            local_only: w.security.local_only,
            certificate,
            hostname,
            headers_prefix: w.authentication.global.headers_prefix.clone(),
            acl: auth.acl,
            basic: auth.basic,
            cert: auth.cert,
            ident: auth.ident,
            almighty: w
                .rights
                .almighty_users
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            rights_dummy: w.rights.kind == "dummy",
            purge_timer: w.rights.purge_deployment_timer as i64,
            verbosity: w.verbosity.clients,
            database: dir.join(database),
            backend: conf.backend.kind.clone(),
            time_scale: conf.backend.time_scale,
            console_clusters: None,
            backend_defaulted: conf.backend.defaulted,
            logfile: file(&w.logs.logfile),
            debugfile: file(&w.logs.debugfile),
            debugfile_level: w.verbosity.logs,
            metrics,
            server_files,
            max_pxe_file: userfiles.and_then(|u| u.max_size).unwrap_or(200) << 20,
            pxe_userfiles: dhcp.and_then(|d| d.repository.as_deref()).map(|repo| {
                dir.join(repo).join(
                    userfiles
                        .and_then(|u| u.directory.as_deref())
                        .unwrap_or("userfiles"),
                )
            }),
            cache: super::fetch::Cache {
                dir: dir.join(&w.cache.directory),
                size: w.cache.size.map(|mb| mb << 20),
            },
            max_preinstall: w.environments.max_preinstall_size << 20,
            max_postinstall: w.environments.max_postinstall_size << 20,
        })
    }
}

/// The authentication methods of `server.conf`.
struct Auth {
    acl: Option<Vec<Net>>,
    basic: Option<BasicAuth>,
    cert: Option<CertAuth>,
    ident: Option<IdentAuth>,
}

impl Auth {
    /// `authentication/*`; with `security/local_only`, every whitelist is localhost.
    fn from_conf(conf: &ServerConf) -> anyhow::Result<Auth> {
        let (w, dir) = (&conf.file, conf.dir.as_path());
        let list = |v: &[String]| v.iter().flat_map(|s| Net::parse(s)).collect::<Vec<_>>();
        let local = |v: Vec<Net>| {
            if w.security.local_only {
                Net::parse("127.0.0.1")
            } else {
                v
            }
        };
        let acl = w
            .authentication
            .acl
            .as_ref()
            .map(|a| local(list(a.whitelist.as_deref().unwrap_or(&[]))));
        let basic = w.authentication.http_basic.as_ref().and_then(|b| {
            let file = b.dbfile.as_ref()?;
            Some(BasicAuth {
                dbfile: dir.join(file),
                realm: b.realm.clone().unwrap_or_else(|| "Kadeploy".into()),
                whitelist: local(list(&b.whitelist)),
                passwords: std::sync::Arc::default(),
            })
        });
        let cert = match (&w.authentication.certificate, &conf.ca) {
            (None, _) => None,
            (Some(_), None) => anyhow::bail!(
                "server.conf: authentication/certificate needs ca_cert or ca_public_key/file"
            ),
            (Some(c), Some(ca)) => Some(CertAuth {
                ca: match ca.source {
                    CaSource::Certificate => CaKey::from_cert_bytes(&ca.path, &ca.bytes)?,
                    CaSource::PublicKey => CaKey::from_key_bytes(&ca.path, &ca.bytes)?,
                },
                whitelist: local(list(&c.whitelist)),
                front_ends: list(&c.trusted_front_ends),
            }),
        };
        let ident = match &w.authentication.ident {
            None => None,
            Some(i) => {
                let port = i.port.unwrap_or(super::ident::IDENT_PORT);
                if port == 0 || port >= 1024 {
                    anyhow::bail!(
                        "server.conf: authentication/ident/port {port} is not a privileged port (1 to 1023): \
                         any user of the client host could answer there"
                    );
                }
                Some(IdentAuth {
                    whitelist: local(list(i.whitelist.as_deref().unwrap_or(&[]))),
                    port,
                })
            }
        };
        Ok(Auth {
            acl,
            basic,
            cert,
            ident,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let n = Net::parse("10.16.0.0/16");
        assert!(n[0].contains("10.16.3.4".parse().unwrap()));
        assert!(!n[0].contains("10.17.0.1".parse().unwrap()));
        assert!(Net::parse("127.0.0.1")[0].contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(allowed(&[], "1.2.3.4".parse().unwrap()));
    }
}

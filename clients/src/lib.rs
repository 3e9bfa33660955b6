//! Shared code of Kadeploy's command-line clients (spec §2.1): `client.conf`, the HTTP exchange with the
//! auth header, Kadeploy's exit codes, node lists, and the workflow polling loop.

pub mod console;
pub mod export;
pub mod tools;
pub mod workflow;

use anyhow::Context as _;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Where the client runs: its configuration directory and its user.
#[derive(Clone, Debug)]
pub struct ClientEnv {
    /// `KADEPLOY3_CONFIG_DIR` (default `/etc/kadeploy3`).
    pub config_dir: PathBuf,
    /// `USER`.
    pub user: String,
}

impl ClientEnv {
    /// From the process environment.
    pub fn from_env() -> ClientEnv {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "nobody".into());
        let dir = std::env::var("KADEPLOY3_CONFIG_DIR").unwrap_or_else(|_| "/etc/kadeploy3".into());
        ClientEnv {
            config_dir: dir.into(),
            user,
        }
    }
}

/// A client failure and its exit code.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Usage, configuration or connection problem: exit 1.
    #[error("{0}")]
    Usage(String),
    /// HTTP 400 with a Kadeploy error: exit with its number.
    #[error("{1}")]
    Api(i32, String),
    /// Another HTTP status.
    #[error("HTTP error {0}: {1}")]
    Http(u16, String),
}

impl ClientError {
    /// Kadeploy's exit code.
    pub fn code(&self) -> i32 {
        match self {
            ClientError::Usage(_) => 1,
            ClientError::Api(n, _) => *n,
            ClientError::Http(404, _) => 1,
            ClientError::Http(500, _) => 3,
            ClientError::Http(_, _) => 2,
        }
    }
}

impl From<anyhow::Error> for ClientError {
    fn from(e: anyhow::Error) -> Self {
        ClientError::Usage(format!("{e:#}"))
    }
}

#[derive(Deserialize)]
struct ServerEntry {
    name: String,
    hostname: String,
    port: u16,
    #[serde(default)]
    secure: Option<bool>,
    #[serde(default)]
    auth_headers_prefix: Option<String>,
    /// New key: a PEM client certificate presented in the TLS handshake (certificate authentication);
    /// relative to the configuration directory.
    #[serde(default)]
    certificate: Option<PathBuf>,
    /// New key: the PEM private key of `certificate`.
    #[serde(default)]
    private_key: Option<PathBuf>,
}

#[derive(Deserialize)]
struct ClientConf {
    default: String,
    servers: Vec<ServerEntry>,
}

/// A connection to one server.
pub struct Api {
    base: String,
    host: String,
    port: u16,
    prefix: String,
    /// The user sent in the auth header.
    pub user: String,
    http: reqwest::Client,
}

impl Api {
    /// Reads `client.conf`, picks `server` (or the default), checks it answers `GET /version`.
    pub async fn connect(env: &ClientEnv, server: Option<&str>) -> Result<Api, ClientError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = &env.config_dir;
        let path = [dir.join("client.conf"), dir.join("client_conf.yml")]
            .into_iter()
            .find(|p| p.is_file());
        let path =
            path.ok_or_else(|| ClientError::Usage(format!("no client.conf in {}", dir.display())))?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let conf: ClientConf = serde_saphyr::from_str(&text)
            .map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())))?;
        let name = server.unwrap_or(&conf.default);
        let s = conf
            .servers
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| ClientError::Usage(format!("Unknown server {name}")))?;
        let scheme = if s.secure.unwrap_or(true) {
            "https"
        } else {
            "http"
        };
        let mut builder = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(120));
        match (&s.certificate, &s.private_key) {
            (Some(cert), Some(key)) => {
                let mut pem = std::fs::read(dir.join(cert))
                    .with_context(|| format!("reading {}", dir.join(cert).display()))?;
                pem.push(b'\n');
                pem.extend(
                    std::fs::read(dir.join(key))
                        .with_context(|| format!("reading {}", dir.join(key).display()))?,
                );
                let identity = reqwest::Identity::from_pem(&pem)
                    .context("the client certificate and key of client.conf")?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => {
                return Err(ClientError::Usage(format!(
                    "{}: certificate and private_key go together",
                    path.display()
                )));
            }
        }
        let http = builder.build().context("building the HTTP client")?;
        let mut api = Api {
            base: format!("{scheme}://{}:{}", s.hostname, s.port),
            host: s.hostname.clone(),
            port: s.port,
            prefix: String::new(),
            user: env.user.clone(),
            http,
        };
        let probe = api
            .http
            .get(format!("{}/version", api.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if probe.is_err() {
            return Err(ClientError::Usage(format!(
                "The {name} server is unreachable"
            )));
        }
        api.prefix = match &s.auth_headers_prefix {
            Some(p) => p.clone(),
            None => api
                .text(Method::GET, "/auth_headers_prefix", &[], None)
                .await?
                .trim()
                .to_string(),
        };
        Ok(api)
    }

    /// This host's address as the server reaches it: the source address of the route to the server
    /// (the URL of the file server exporting local files).
    pub fn local_address(&self) -> Result<String, ClientError> {
        let io = |e: std::io::Error| {
            ClientError::Usage(format!("cannot find a route to {}: {e}", self.host))
        };
        let server = std::net::ToSocketAddrs::to_socket_addrs(&(self.host.as_str(), self.port))
            .map_err(io)?
            .next()
            .ok_or_else(|| ClientError::Usage(format!("cannot resolve {}", self.host)))?;
        let any: std::net::SocketAddr = if server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = std::net::UdpSocket::bind(any).map_err(io)?;
        sock.connect(server).map_err(io)?;
        Ok(sock.local_addr().map_err(io)?.ip().to_string())
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        accept: &str,
    ) -> Result<reqwest::Response, ClientError> {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut req = self
            .http
            .request(method, url)
            .header("Accept", accept)
            .query(query);
        if !self.prefix.is_empty() {
            req = req.header(format!("{}User", self.prefix), &self.user);
        }
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Usage(format!("connection error: {e}")))?;
        let status = resp.status();
        if status == StatusCode::OK {
            return Ok(resp);
        }
        let code = resp
            .headers()
            .get("X-Application-Error-Code")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let text = resp.text().await.unwrap_or_default().trim().to_string();
        Err(match (status, code) {
            (StatusCode::BAD_REQUEST, Some(n)) => {
                ClientError::Api(n, format!("Error #{n}: {text}"))
            }
            (StatusCode::NOT_FOUND, _) => {
                ClientError::Http(404, format!("Resource not found {path}: {text}"))
            }
            (s, _) => ClientError::Http(s.as_u16(), text),
        })
    }

    /// A JSON request.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let text = self.text(method, path, query, body).await?;
        serde_json::from_str(&text)
            .map_err(|e| ClientError::Usage(format!("invalid JSON from the server: {e}")))
    }

    /// A text request (also YAML or gzip-decoded CSV).
    pub async fn text(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<String, ClientError> {
        self.text_as(method, path, query, body, "application/json")
            .await
    }

    /// A text request with an explicit `Accept`.
    pub async fn text_as(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        accept: &str,
    ) -> Result<String, ClientError> {
        let resp = self.send(method, path, query, body, accept).await?;
        let gz = resp
            .headers()
            .get("Content-Encoding")
            .is_some_and(|v| v.as_bytes() == b"gzip");
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        if gz {
            let mut out = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
                .context("gunzip")?;
            return Ok(out);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Reads a node file (`-` = stdin); `#` lines and empty lines are ignored.
pub fn read_node_file(path: &str) -> Result<Vec<String>, ClientError> {
    let text = if path == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading stdin")?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| ClientError::Usage(format!("The file {path} cannot be read: {e}")))?
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

/// Expands `-m` values and `-f` files into node names, checking Kadeploy's hostname characters.
pub fn nodes(machines: &[String], files: &[String]) -> Result<Vec<String>, ClientError> {
    let mut out = Vec::new();
    for f in files {
        out.extend(read_node_file(f)?);
    }
    for m in machines {
        if !m
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-[],".contains(c))
        {
            return Err(ClientError::Usage(format!("Invalid hostname: {m}")));
        }
        out.extend(kadeploy::nodelist::expand(m).map_err(|e| ClientError::Usage(e.to_string()))?);
    }
    Ok(out)
}

/// Runs `f` on a fresh runtime and maps the result to an exit code, printing errors to stderr.
pub fn block_on<F: std::future::Future<Output = Result<(), ClientError>>>(f: F) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    match rt.block_on(f) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            e.code()
        }
    }
}

/// Parses a client's command line (`args` without the program name); on error or `--help`, prints
/// clap's message and gives the exit code (1 for errors, 0 for help and version).
pub(crate) fn parse_args<T: clap::Parser>(name: &str, args: &[String]) -> Result<T, i32> {
    T::try_parse_from(std::iter::once(name.to_string()).chain(args.iter().cloned())).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() { 1 } else { 0 }
    })
}

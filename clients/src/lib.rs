//! Shared code of Kadeploy's command-line clients (spec §2.1): `client.conf`, the HTTP exchange with the
//! auth header, Kadeploy's exit codes, node lists, and the workflow polling loop.

pub mod console;
pub mod export;
pub mod global;
pub mod tools;
pub mod trace;
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
    /// Ctrl-C: the workflows were deleted; exit 1.
    #[error("")]
    Interrupted,
    /// The server does not answer `GET /version` (`The <host> server is unreachable`): exit 1.
    #[error("{0}")]
    Unreachable(String),
}

impl ClientError {
    /// Kadeploy's exit code.
    pub fn code(&self) -> i32 {
        match self {
            ClientError::Usage(_) | ClientError::Unreachable(_) | ClientError::Interrupted => 1,
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
    /// The server's name in multi-server mode (`-M`): output lines are prefixed with `[name] `.
    pub label: Option<String>,
    /// The HTTP Basic password (`--password`), sent with `user`.
    password: Option<String>,
    /// Dump the exchanges (`-H`).
    debug_http: bool,
    http: reqwest::Client,
}

/// How a client talks to its servers (from the generic options).
#[derive(Clone, Debug, Default)]
pub struct Connection {
    /// HTTP Basic password (`--password`).
    pub password: Option<String>,
    /// Dump the HTTP exchanges (`-H`).
    pub debug_http: bool,
}

/// The names of the servers of client.conf, in the file's order.
pub fn server_names(env: &ClientEnv) -> Result<Vec<String>, ClientError> {
    let (_, conf) = load_conf(env)?;
    Ok(conf.servers.into_iter().map(|s| s.name).collect())
}

/// Reads `client.conf` (or `client_conf.yml`).
fn load_conf(env: &ClientEnv) -> Result<(PathBuf, ClientConf), ClientError> {
    let dir = &env.config_dir;
    let path = [dir.join("client.conf"), dir.join("client_conf.yml")]
        .into_iter()
        .find(|p| p.is_file());
    let path =
        path.ok_or_else(|| ClientError::Usage(format!("no client.conf in {}", dir.display())))?;
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let conf: ClientConf = serde_saphyr::from_str(&text)
        .map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())))?;
    Ok((path, conf))
}

impl Api {
    /// Reads `client.conf`, picks `server` (or the default), checks it answers `GET /version`.
    pub async fn connect(env: &ClientEnv, server: Option<&str>) -> Result<Api, ClientError> {
        Api::open(env, server, &Connection::default()).await
    }

    /// As [`Api::connect`], with the generic options' credentials and HTTP trace.
    pub async fn open(
        env: &ClientEnv,
        server: Option<&str>,
        how: &Connection,
    ) -> Result<Api, ClientError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = &env.config_dir;
        let (path, conf) = load_conf(env)?;
        let name = server.unwrap_or(&conf.default);
        let s = conf
            .servers
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = conf.servers.iter().map(|s| s.name.as_str()).collect();
                ClientError::Usage(format!(
                    "The {name} server is not defined in the configuration: {} values are allowed",
                    names.join(", ")
                ))
            })?;
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
            label: None,
            password: how.password.clone(),
            debug_http: how.debug_http,
            http,
        };
        let probe = api
            .http
            .get(format!("{}/version", api.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if probe.is_err() {
            return Err(ClientError::Unreachable(format!(
                "The {} server is unreachable",
                s.hostname
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

    /// The server's host name (from client.conf).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Prints `text` on stdout, each line prefixed with `[name] ` (padded to 10 columns, Kadeploy's
    /// `Client#debug`) in multi-server mode.
    pub fn say(&self, text: &str) {
        println!("{}", self.labelled(text));
    }

    /// `text` with the multi-server prefix on each line.
    pub fn labelled(&self, text: &str) -> String {
        match &self.label {
            None => text.to_string(),
            Some(name) => {
                let tag = format!("{:<10}", format!("[{name}] "));
                let lines: Vec<String> = text.split('\n').map(|l| format!("{tag}{l}")).collect();
                lines.join("\n")
            }
        }
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
    ) -> Result<Answer, ClientError> {
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
        if let Some(pw) = &self.password {
            req = req.basic_auth(&self.user, Some(pw));
        }
        let conn = |e: reqwest::Error| ClientError::Usage(format!("connection error: {e}"));
        let request = req.build().map_err(conn)?;
        if self.debug_http {
            trace_request(&request);
        }
        let resp = self.http.execute(request).await.map_err(conn)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(conn)?.to_vec();
        if self.debug_http {
            trace_response(status, &headers, &body);
        }
        if status == StatusCode::OK {
            return Ok(Answer { headers, body });
        }
        let code = headers
            .get("X-Application-Error-Code")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let text = String::from_utf8_lossy(&body).trim().to_string();
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

    /// A JSON request; the answer is read by its `Content-Type` as Kadeploy's client does: JSON is
    /// parsed, `text/plain` and `text/csv` give a string (the empty answer of a dry run), anything else
    /// is an error.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let resp = self
            .send(method, path, query, body, "application/json")
            .await?;
        let kind = resp
            .headers
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let text = body_text(resp)?;
        match kind.as_str() {
            "application/json" => serde_json::from_str(&text)
                .map_err(|e| ClientError::Usage(format!("invalid JSON from the server: {e}"))),
            "text/plain" | "text/csv" => Ok(Value::String(text)),
            other => Err(ClientError::Usage(format!(
                "Invalid server response (Content-Type: '{other}')\n{text}"
            ))),
        }
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
        body_text(resp)
    }
}

/// A successful answer: its headers and body.
struct Answer {
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

/// An answer's body as text, gunzipped when `Content-Encoding: gzip`.
fn body_text(resp: Answer) -> Result<String, ClientError> {
    let gz = resp
        .headers
        .get("Content-Encoding")
        .is_some_and(|v| v.as_bytes() == b"gzip");
    if gz {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&resp.body[..]), &mut out)
            .context("gunzip")?;
        return Ok(out);
    }
    Ok(String::from_utf8_lossy(&resp.body).into_owned())
}

/// `-H`: dumps a request before it is sent.
fn trace_request(r: &reqwest::Request) {
    let url = r.url();
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let headers: Vec<(String, String)> = (r.headers().iter())
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = r.body().and_then(|b| b.as_bytes()).unwrap_or_default();
    trace::emit(&trace::request(
        r.method().as_str(),
        &target,
        &headers,
        body,
    ));
}

/// `-H`: dumps a response.
fn trace_response(status: StatusCode, headers: &reqwest::header::HeaderMap, body: &[u8]) {
    let headers: Vec<(String, String)> = (headers.iter())
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    trace::emit(&trace::response(
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        &headers,
        body,
    ));
}

/// The command line of client `name` (`kadeploy3`, …, `karights3`), for help and tests.
pub fn command(name: &str) -> Option<clap::Command> {
    use clap::CommandFactory as _;
    Some(match name {
        "kadeploy3" => workflow::DeployCli::command(),
        "kareboot3" => workflow::RebootCli::command(),
        "kapower3" => workflow::PowerCli::command(),
        "kaenv3" => tools::EnvCli::command(),
        "karights3" => tools::RightsCli::command(),
        "kastat3" => tools::StatCli::command(),
        "kanodes3" => tools::NodesCli::command(),
        "kaconsole3" => console::ConsoleCli::command(),
        _ => return None,
    })
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
    trace::capture_fd4();
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
            let text = e.to_string();
            if !text.is_empty() {
                eprintln!("{text}");
            }
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

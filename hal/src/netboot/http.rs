//! The HTTP boot server (axum): the TFTP tree over HTTP for iPXE and UEFI HTTP boot, read-only and
//! confined to its root, with Range, HEAD, Last-Modified and ETag/If-None-Match.

use super::fsroot::{FsRoot, ResolveError};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::UNIX_EPOCH;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use tracing::{debug, info};

/// `http` section of the boot services configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// `listen` (`0.0.0.0:80`).
    pub listen: SocketAddr,
    /// `root`: the served tree (the same as TFTP's).
    pub root: PathBuf,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 80)),
            root: PathBuf::from("/var/lib/tftpboot"),
        }
    }
}

/// Why the HTTP server could not start or stopped.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The root directory is missing.
    #[error("http root {path}: {source}")]
    Root {
        /// The configured root.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Socket failure.
    #[error("http socket on {addr}: {source}")]
    Socket {
        /// The listen address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// The axum router serving `root`.
pub fn router(root: FsRoot) -> Router {
    Router::new().fallback(serve).with_state(root)
}

/// A bound HTTP boot server.
pub struct HttpServer {
    listener: tokio::net::TcpListener,
    root: FsRoot,
}

impl HttpServer {
    /// Checks the root and binds the listener.
    pub async fn bind(config: HttpConfig) -> Result<Self, HttpError> {
        let root = FsRoot::new(&config.root).map_err(|source| HttpError::Root {
            path: config.root.display().to_string(),
            source,
        })?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| HttpError::Socket {
                addr: config.listen,
                source,
            })?;
        Ok(HttpServer { listener, root })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves forever.
    pub async fn run(self) -> Result<(), HttpError> {
        let addr = self
            .listener
            .local_addr()
            .map_err(|source| HttpError::Socket {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })?;
        info!(%addr, root = %self.root.path().display(), "http boot server ready");
        axum::serve(self.listener, router(self.root))
            .await
            .map_err(|source| HttpError::Socket { addr, source })
    }
}

fn status(code: StatusCode) -> Response {
    if code.as_u16() >= 400 {
        super::stats::HTTP.error();
    }
    (code, code.canonical_reason().unwrap_or("")).into_response()
}

async fn serve(State(root): State<FsRoot>, req: Request) -> Response {
    super::stats::HTTP.request();
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let path = percent_decode(req.uri().path());
    let resolved = {
        let root = root.clone();
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            let file = root.resolve(&path)?;
            let meta = std::fs::metadata(&file).map_err(|source| ResolveError::Io {
                path: path.clone(),
                source,
            })?;
            if !meta.is_file() {
                return Err(ResolveError::NotFound(path));
            }
            Ok((file, meta))
        })
        .await
    };
    let (file, meta) = match resolved {
        Ok(Ok(x)) => x,
        Ok(Err(ResolveError::Forbidden(p))) => {
            debug!(path = %p, "http request outside the root refused");
            return status(StatusCode::FORBIDDEN);
        }
        Ok(Err(ResolveError::NotFound(_))) => return status(StatusCode::NOT_FOUND),
        _ => return status(StatusCode::INTERNAL_SERVER_ERROR),
    };
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let etag = format!("\"{:x}-{:x}\"", meta.len(), mtime);
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let etag_value = HeaderValue::from_str(&etag).ok();
    if matches {
        let mut resp = status(StatusCode::NOT_MODIFIED);
        if let Some(v) = etag_value {
            resp.headers_mut().insert(header::ETAG, v);
        }
        return resp;
    }
    let (parts, _) = req.into_parts();
    let inner = Request::from_parts(parts, Body::empty());
    match ServeFile::new(file).oneshot(inner).await {
        Ok(resp) => {
            let mut resp = resp.map(Body::new);
            if let Some(v) = etag_value {
                resp.headers_mut().insert(header::ETAG, v);
            }
            resp
        }
        Err(e) => match e {},
    }
}

/// Decodes `%XX` escapes; invalid escapes are kept as they are.
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes() {
        assert_eq!(percent_decode("/a%20b/%2e%2e/x%"), "/a b/../x%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%41%42"), "AB");
    }
}

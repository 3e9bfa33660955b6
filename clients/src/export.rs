//! The client's file server (spec §3.4, `Client.http_export_files`): client-side files named by a request
//! (environment image, pre/post-install archives, keys, custom-operation files) are served on a random port
//! at `/<urlsafe_base64(absolute path)>`, `HEAD` and `GET` only, with Kadeploy's `ETag`
//! (`"<inode hex>-<size hex>-<mtime hex>"`) as the checksum. Only the exported paths are served.

use super::ClientError;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A reference names a client-side file: a plain path or `local://`.
pub fn is_local(file: &str) -> bool {
    !file.contains("://") || file.starts_with("local://")
}

/// Makes a client-side reference absolute (`~` is the home directory); other references are unchanged.
pub fn absolute(file: &str) -> String {
    if !is_local(file) {
        return file.to_string();
    }
    let plain = file.strip_prefix("local://").unwrap_or(file);
    let expanded = match plain.strip_prefix("~/") {
        Some(rest) => Path::new(&std::env::var("HOME").unwrap_or_else(|_| "/".into())).join(rest),
        None => PathBuf::from(plain),
    };
    let abs = std::path::absolute(&expanded).unwrap_or(expanded);
    abs.display().to_string()
}

/// Rewrites the client-side file references of a request's parameters to absolute paths and lists them:
/// the environment's image and archives, `ssh_authorized_keys`, `pxe.files`, and the `file` of custom
/// operations.
pub fn collect(p: &mut Map<String, Value>) -> Vec<String> {
    let mut refs: Vec<&mut Value> = Vec::new();
    if let Some(env) = p.get_mut("environment").and_then(Value::as_object_mut) {
        for (k, v) in env.iter_mut() {
            match (k.as_str(), v) {
                ("image", Value::Object(img)) => refs.extend(img.get_mut("file")),
                ("preinstall", Value::Object(a)) => refs.extend(a.get_mut("archive")),
                ("postinstalls", Value::Array(list)) => refs.extend(
                    list.iter_mut()
                        .filter_map(|a| a.as_object_mut())
                        .filter_map(|a| a.get_mut("archive")),
                ),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    let mut localize = |v: &mut Value| {
        if let Some(s) = v.as_str().filter(|s| is_local(s)) {
            let abs = absolute(s);
            *v = Value::String(abs.clone());
            out.push(abs);
        }
    };
    refs.into_iter().for_each(&mut localize);
    if let Some(k) = p.get_mut("ssh_authorized_keys") {
        localize(k);
    }
    if let Some(Value::Array(list)) = p.get_mut("pxe").and_then(|x| x.get_mut("files")) {
        list.iter_mut().for_each(&mut localize);
    }
    if let Some(ops) = p.get_mut("custom_operations") {
        out.extend(custom_files(ops));
    }
    out.sort();
    out.dedup();
    out
}

/// The `file` of every custom operation (`{macro: {micro: {substitute|pre-ops|post-ops: [op]}}}`),
/// made absolute when client-side.
fn custom_files(ops: &mut Value) -> Vec<String> {
    let mut out = Vec::new();
    for micro in ops.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
        for step in micro
            .as_object_mut()
            .into_iter()
            .flat_map(|m| m.values_mut())
        {
            for list in step
                .as_object_mut()
                .into_iter()
                .flat_map(|m| m.values_mut())
            {
                for op in list.as_array_mut().into_iter().flatten() {
                    if let Some(f) = op.get_mut("file")
                        && let Some(s) = f.as_str().filter(|s| is_local(s))
                    {
                        let abs = absolute(s);
                        *f = Value::String(abs.clone());
                        out.push(abs);
                    }
                }
            }
        }
    }
    out
}

/// A running file server; stops when dropped.
pub struct FileServer {
    /// Its URL, sent as the request's `client` parameter.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `"<inode hex>-<size hex>-<mtime hex>"`, quotes included (WEBrick's ETag).
pub fn etag(meta: &std::fs::Metadata) -> String {
    format!(
        "\"{:x}-{:x}-{:x}\"",
        meta.ino(),
        meta.size(),
        meta.mtime().max(0)
    )
}

async fn serve_file(State(files): State<Arc<BTreeMap<String, String>>>, req: Request) -> Response {
    let key = req.uri().path().trim_start_matches('/');
    let Some(path) = files.get(key) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return StatusCode::NOT_FOUND.into_response();
        }
        Err(_) => return StatusCode::FORBIDDEN.into_response(),
    };
    let meta = match file.metadata().await {
        Ok(m) if m.is_file() => m,
        _ => return StatusCode::FORBIDDEN.into_response(),
    };
    let modified = meta
        .modified()
        .map(httpdate::fmt_http_date)
        .unwrap_or_default();
    let header = |s: String| HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""));
    let body = if req.method() == Method::HEAD {
        Body::empty()
    } else {
        let stream = futures_util::stream::unfold(file, |mut f| async move {
            use tokio::io::AsyncReadExt as _;
            let mut buf = vec![0u8; 1 << 16];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, std::io::Error>(Bytes::from(buf)), f))
                }
                Err(e) => Some((Err(e), f)),
            }
        });
        Body::from_stream(stream)
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::ETAG, header(etag(&meta)));
    h.insert(header::LAST_MODIFIED, header(modified));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, header(meta.len().to_string()));
    resp
}

/// Serves `files` (absolute paths) on a random port of every interface; `host` is the address the
/// server reaches this client at. With `secure`, HTTPS with a self-signed certificate.
pub async fn start(files: &[String], host: &str, secure: bool) -> Result<FileServer, ClientError> {
    let map: BTreeMap<String, String> = files
        .iter()
        .map(|f| {
            (
                base64::engine::general_purpose::URL_SAFE.encode(f),
                f.clone(),
            )
        })
        .collect();
    let app = axum::Router::new()
        .fallback(serve_file)
        .with_state(Arc::new(map));
    let io = |e: std::io::Error| ClientError::Usage(format!("cannot export the local files: {e}"));
    let listener = std::net::TcpListener::bind(("0.0.0.0", 0)).map_err(io)?;
    listener.set_nonblocking(true).map_err(io)?;
    let port = listener.local_addr().map_err(io)?.port();
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let task = if secure {
        let (cert, key) =
            kadeploy::wire::self_signed(&host).map_err(|e| ClientError::Usage(format!("{e:#}")))?;
        let config =
            axum_server::tls_rustls::RustlsConfig::from_pem(cert.into_bytes(), key.into_bytes())
                .await
                .map_err(io)?;
        let server = axum_server::from_tcp_rustls(listener, config).map_err(io)?;
        tokio::spawn(async move {
            if let Err(e) = server.serve(app.into_make_service()).await {
                tracing::warn!("the file server stopped: {e}");
            }
        })
    } else {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(io)?;
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!("the file server stopped: {e}");
            }
        })
    };
    let scheme = if secure { "https" } else { "http" };
    Ok(FileServer {
        url: format!("{scheme}://{host}:{port}"),
        task,
    })
}

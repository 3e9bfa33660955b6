//! The request path: body limits and parsing, parameter merging, authentication, then dispatch by
//! resource (Kadeploy's `launch`: authenticate, prepare, check rights, run).

use super::params::Params;
use super::reply::{self, HttpError, Reply, not_found};
use super::{App, VERSION, catalog, console, meta, submit};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;

mod panics;

/// Largest accepted body (1 MiB, as Kadeploy).
pub const MAX_BODY: usize = 1 << 20;

/// One parsed request.
pub struct Req {
    /// Method.
    pub method: Method,
    /// Percent-decoded path segments.
    pub segs: Vec<String>,
    /// Merged parameters.
    pub params: Params,
    /// The authenticated user.
    pub user: String,
    /// The user is almighty.
    pub almighty: bool,
    /// The client's address (consoles accept only their requester's).
    pub peer: SocketAddr,
}

/// The axum handler of every route; a panic anywhere below it is a 500 (see [`panics`]).
pub async fn handle(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    panics::guarded(respond(app, peer, req)).await
}

async fn respond(app: Arc<App>, peer: SocketAddr, req: Request) -> Response {
    let headers = req.headers().clone();
    let gz = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip") && !v.contains('*'));
    let realm = app.settings.basic.as_ref().map(|b| b.realm.clone());
    let Some(format) = reply::negotiate(&headers) else {
        return reply::render_error(
            HttpError::Status(StatusCode::NOT_ACCEPTABLE, String::new()),
            None,
        );
    };
    match dispatch(&app, peer, req).await {
        Ok(r) => reply::render(r, format, gz),
        Err(e) => reply::render_error(e, realm.as_deref()),
    }
}

/// Percent-decodes one path segment; an invalid escape (`%`, `%4`, `%zz`) is kept as is and invalid
/// UTF-8 becomes U+FFFD.
pub fn decode(seg: &str) -> String {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8_lossy()
        .into_owned()
}

async fn body_params(req: Request) -> Result<Map<String, Value>, HttpError> {
    let status = |s: StatusCode, m: &str| HttpError::Status(s, m.into());
    let headers = req.headers().clone();
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|_| {
            status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is larger than 1 MiB",
            )
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ctype = ctype.split(';').next().unwrap_or("").trim();
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid_body("the body is not UTF-8"))?;
    let value: Value =
        match ctype {
            "application/json" => serde_json::from_str(text)
                .map_err(|e| invalid_body(&format!("invalid JSON: {e}")))?,
            "application/x-yaml" | "text/yaml" | "application/yaml" => serde_saphyr::from_str(text)
                .map_err(|e| invalid_body(&format!("invalid YAML: {e}")))?,
            _ => {
                return Err(status(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "the body must be application/json or application/x-yaml",
                ));
            }
        };
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(invalid_body("the body must be an object")),
    }
}

fn invalid_body(msg: &str) -> HttpError {
    kadeploy::error::RequestError::new(kadeploy::error::ApiError::InvalidOption, msg).into()
}

async fn dispatch(app: &Arc<App>, peer: SocketAddr, req: Request) -> Result<Reply, HttpError> {
    let method = req.method().clone();
    let tls = req
        .extensions()
        .get::<Arc<axum_server::tls::TlsInfo>>()
        .cloned();
    let local_port = req
        .extensions()
        .get::<super::listen::LocalPort>()
        .map_or(app.settings.port, |p| p.0);
    let segs: Vec<String> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let query = req.uri().query().map(str::to_string);
    let first = segs.first().cloned().unwrap_or_default();
    let first = first.as_str();
    if method == Method::GET && segs.len() == 1 {
        match first {
            "version" => return Ok(Reply::Text(VERSION.into())),
            "auth_headers_prefix" => return Ok(Reply::Text(app.settings.headers_prefix.clone())),
            "info" => return Ok(Reply::Data(meta::info(app))),
            "clusters" => {
                return Ok(Reply::Data(
                    app.clusters
                        .iter()
                        .map(|c| Value::from(c.config.name.clone()))
                        .collect(),
                ));
            }
            _ => {}
        }
    }
    if ![
        "deployment",
        "reboot",
        "power",
        "environments",
        "rights",
        "nodes",
        "stats",
        "console",
    ]
    .contains(&first)
    {
        return Err(not_found(String::new()));
    }
    let has_body = req.headers().contains_key(header::CONTENT_LENGTH)
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let headers = req.headers().clone();
    let body = if has_body {
        body_params(req).await?
    } else {
        Map::new()
    };
    let params = Params::merge(body, query.as_deref());
    let creds = super::auth::Credentials {
        headers: &headers,
        peer,
        local_port,
        tls_cert: tls
            .as_ref()
            .and_then(|t| t.peer_certificates.first())
            .map(Vec::as_slice),
    };
    let user = super::auth::authenticate(&app.settings, &creds).await?;
    let almighty = app.almighty(&user);
    let r = Req {
        method,
        segs,
        params,
        user,
        almighty,
        peer,
    };
    match first {
        "deployment" | "reboot" | "power" if submit::in_memory(&r) => submit::route(app, r),
        "deployment" | "reboot" | "power" => blocking(app, r, submit::route).await,
        "environments" => blocking(app, r, |a, r| catalog::route(a, r)).await,
        "rights" => blocking(app, r, |a, r| meta::rights(a, r)).await,
        "nodes" => blocking(app, r, |a, r| meta::nodes(a, r)).await,
        "stats" => blocking(app, r, |a, r| meta::stats(a, r)).await,
        _ => blocking(app, r, console::route).await,
    }
}

/// Runs a handler that uses the database on tokio's blocking pool, so SQLite (one connection behind a
/// mutex) never stalls the runtime's workers: reads of running workflows stay fast while submissions
/// queue on the database.
async fn blocking(
    app: &Arc<App>,
    r: Req,
    f: impl FnOnce(&Arc<App>, Req) -> Result<Reply, HttpError> + Send + 'static,
) -> Result<Reply, HttpError> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let _scope = panics::HandlerScope::enter();
        f(&app, r)
    })
    .await
    .unwrap_or_else(|_| {
        Err(HttpError::Status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request handler failed".into(),
        ))
    })
}

/// 405 for a method a resource does not accept; `allow` lists the ones it does (the `Allow` header).
pub fn method_not_allowed(allow: &'static str) -> HttpError {
    HttpError::NotAllowed(allow)
}

/// An empty body, for `dry_run`.
pub fn empty() -> Reply {
    Reply::Text(String::new())
}

#[cfg(test)]
mod tests {
    use super::decode;
    use proptest::prelude::*;

    #[test]
    fn decodes_percent_escapes_and_keeps_broken_ones() {
        assert_eq!(decode("node%2D1"), "node-1");
        assert_eq!(decode("a%20b"), "a b");
        assert_eq!(decode("%C3%A9"), "é");
        assert_eq!(
            decode("%"),
            "%",
            "before f72496d this read past the end and panicked"
        );
        assert_eq!(decode("abc%"), "abc%");
        assert_eq!(decode("%4"), "%4");
        assert_eq!(decode("%zz%41"), "%zzA");
        assert_eq!(decode("%FF"), "\u{FFFD}");
    }

    proptest! {
        /// Any segment decodes without panicking, and decoding is the identity on text without `%`.
        #[test]
        fn decode_never_panics(seg in "[%0-9a-fA-FgG/é\u{0}-\u{7f}]{0,40}") {
            let out = decode(&seg);
            if !seg.contains('%') {
                prop_assert_eq!(out, seg);
            }
        }

        /// Encoded then decoded text is the text.
        #[test]
        fn decode_reverses_encoding(text in "\\PC{0,30}") {
            let encoded: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
            prop_assert_eq!(decode(&encoded), text);
        }
    }
}

//! The one place HTTP answers are built: content negotiation (JSON, YAML, text, gzip CSV), Kadeploy's
//! error envelope (400 + `X-Application-Error-Code`/`-Info`), and the other error statuses.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use kadeploy::error::RequestError;
use serde_json::Value;
use std::io::Write as _;

mod psych;
pub mod ruby;

pub use ruby::{Key, Ruby};

/// A successful answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A JSON value, YAML when the client prefers it.
    Data(Value),
    /// A value built as Kadeploy's Ruby server builds it (ordered hashes, Symbol keys): JSON in that
    /// order, or Ruby's `to_yaml` with its `:key:` form for Symbols.
    Ruby(Ruby),
    /// `text/plain`; a newline is appended.
    Text(String),
    /// `text/csv`, always gzipped.
    Csv(String),
}

/// A failed request.
#[derive(Clone, Debug)]
pub enum HttpError {
    /// A Kadeploy error: 400 with its number.
    Api(RequestError),
    /// Another status with a message (401, 403, 404, 406, 411, 413, 415, 500).
    Status(StatusCode, String),
    /// 405, with the methods of the `Allow` header.
    NotAllowed(&'static str),
}

impl From<RequestError> for HttpError {
    fn from(e: RequestError) -> Self {
        HttpError::Api(e)
    }
}

impl From<crate::store::StoreError> for HttpError {
    fn from(e: crate::store::StoreError) -> Self {
        HttpError::Api(e.into())
    }
}

/// 403 with Kadeploy's text.
pub fn forbidden(msg: &str) -> HttpError {
    HttpError::Status(StatusCode::FORBIDDEN, msg.into())
}

/// 404 with a detail.
pub fn not_found(msg: impl Into<String>) -> HttpError {
    HttpError::Status(StatusCode::NOT_FOUND, msg.into())
}

/// 405 for a method a resource does not accept; `allow` lists the ones it does (the `Allow` header).
pub fn method_not_allowed(allow: &'static str) -> HttpError {
    HttpError::NotAllowed(allow)
}

/// What the client accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/json` (or `*/*`, or nothing).
    Json,
    /// `application/x-yaml`.
    Yaml,
}

/// Parses `Accept`: JSON for `*/*` or no header, YAML when asked first, `None` (406) otherwise.
pub fn negotiate(headers: &HeaderMap) -> Option<Format> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(Format::Json);
    };
    let types: Vec<&str> = accept
        .split(',')
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .collect();
    if types
        .iter()
        .any(|t| *t == "*/*" || *t == "*" || t.is_empty())
    {
        return Some(Format::Json);
    }
    types.iter().find_map(|t| match *t {
        "application/json" => Some(Format::Json),
        "application/x-yaml" => Some(Format::Yaml),
        _ => None,
    })
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

fn build(status: StatusCode, ctype: &str, body: Vec<u8>, gz: bool) -> Response {
    let (body, gz) = if gz {
        (gzip(&body), true)
    } else {
        (body, false)
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(ctype) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if gz {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

pub use kadeploy::wire::to_yaml;

/// Ruby's `to_yaml` of a [`Ruby`] value, byte for byte (Symbol keys as `:key:`).
pub fn ruby_yaml(v: &Ruby) -> String {
    psych::to_yaml(v)
}

const JSON_TYPE: &str = "application/json; charset=\"UTF-8\"";
const YAML_TYPE: &str = "application/x-yaml; charset=\"UTF-8\"";

/// Renders a successful reply for a client accepting `format`, gzipped when `gz`.
pub fn render(reply: Reply, format: Format, gz: bool) -> Response {
    match reply {
        Reply::Ruby(v) => match format {
            Format::Json => {
                let body = serde_json::to_string_pretty(&v).unwrap_or_default();
                build(StatusCode::OK, JSON_TYPE, body.into_bytes(), gz)
            }
            Format::Yaml => build(StatusCode::OK, YAML_TYPE, ruby_yaml(&v).into_bytes(), gz),
        },
        Reply::Data(v) => match format {
            Format::Json => {
                let body = serde_json::to_string_pretty(&v).unwrap_or_default();
                build(StatusCode::OK, JSON_TYPE, body.into_bytes(), gz)
            }
            Format::Yaml => build(StatusCode::OK, YAML_TYPE, to_yaml(&v).into_bytes(), gz),
        },
        Reply::Text(t) => build(
            StatusCode::OK,
            "text/plain; charset=\"UTF-8\"",
            format!("{t}\n").into_bytes(),
            gz,
        ),
        Reply::Csv(c) => build(StatusCode::OK, "text/csv", c.into_bytes(), true),
    }
}

/// Renders an error: Kadeploy errors as 400 with the code and the Base64 message, except database
/// failures (error 20: the server's fault, not the request's), which are 500 with the same headers.
pub fn render_error(e: HttpError, realm: Option<&str>) -> Response {
    match e {
        HttpError::Api(err) => {
            let msg = err.to_string();
            let status = if err.kind == kadeploy::error::ApiError::DatabaseError {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_REQUEST
            };
            let mut r = build(status, "text/plain", format!("{msg}\n").into_bytes(), false);
            let info = base64::engine::general_purpose::STANDARD.encode(msg.as_bytes());
            let h = r.headers_mut();
            h.insert(
                "X-Application-Error-Code",
                HeaderValue::from(err.kind.code()),
            );
            if let Ok(v) = HeaderValue::from_str(&info) {
                h.insert("X-Application-Error-Info", v);
            }
            r
        }
        HttpError::NotAllowed(allow) => {
            let status = StatusCode::METHOD_NOT_ALLOWED;
            let text = format!(
                "{}\n",
                status.canonical_reason().unwrap_or("Method Not Allowed")
            );
            let mut r = build(status, "text/plain", text.into_bytes(), false);
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            r
        }
        HttpError::Status(status, msg) => {
            let prefix = match status {
                StatusCode::UNAUTHORIZED => "Unauthorized",
                StatusCode::FORBIDDEN => "Forbidden",
                StatusCode::NOT_FOUND => "File Not Found",
                _ => status.canonical_reason().unwrap_or("Error"),
            };
            let text = if msg.is_empty() {
                format!("{prefix}\n")
            } else {
                format!("{prefix} -- {msg}\n")
            };
            let mut r = build(status, "text/plain", text.into_bytes(), false);
            if status == StatusCode::UNAUTHORIZED
                && let Some(realm) = realm
                && let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\""))
            {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            r
        }
    }
}

//! The request handler: GET/HEAD of a file under the root, with Range (one range; several get the
//! whole file), Last-Modified and ETag/If-None-Match.

use crate::netboot::fsroot::{FsRoot, ResolveError};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::UNIX_EPOCH;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use tracing::debug;

fn status(code: StatusCode) -> Response {
    if code.as_u16() >= 400 {
        crate::netboot::stats::HTTP.error();
    }
    (code, code.canonical_reason().unwrap_or("")).into_response()
}

/// Serves one request from `root`.
pub async fn serve(State(root): State<FsRoot>, req: Request) -> Response {
    crate::netboot::stats::HTTP.request();
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
    let (mut parts, _) = req.into_parts();
    drop_multiple_ranges(&mut parts.headers);
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

/// tower-http answers a Range of several ranges with 416, which a client cannot recover from.
/// RFC 9110 §14.2 lets a server ignore Range: such a request gets the whole file with 200.
fn drop_multiple_ranges(headers: &mut HeaderMap) {
    let several = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(','));
    if several {
        debug!("several ranges asked: serving the whole file");
        headers.remove(header::RANGE);
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

    #[test]
    fn only_several_ranges_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_static("bytes=0-1"));
        drop_multiple_ranges(&mut h);
        assert!(h.contains_key(header::RANGE));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=0-1, 5-6"));
        drop_multiple_ranges(&mut h);
        assert!(!h.contains_key(header::RANGE));
    }
}

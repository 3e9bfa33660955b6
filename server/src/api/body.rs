//! Request bodies: at most [`MAX_BODY`] bytes (413 beyond), JSON or YAML (415 for another type), an
//! object (error 4 otherwise); blank bodies are empty objects.

use crate::reply::HttpError;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use kadeploy::error::{ApiError, RequestError};
use serde_json::{Map, Value};

/// Largest accepted body (1 MiB, as Kadeploy).
pub const MAX_BODY: usize = 1 << 20;

fn invalid_body(msg: &str) -> HttpError {
    RequestError::new(ApiError::InvalidOption, msg).into()
}

/// The request announces a body (`Content-Length` or `Transfer-Encoding`).
pub fn announced(headers: &HeaderMap) -> bool {
    headers.contains_key(header::CONTENT_LENGTH) || headers.contains_key(header::TRANSFER_ENCODING)
}

/// Reads and parses the body of a request with `headers`.
pub async fn object(headers: &HeaderMap, body: Body) -> Result<Map<String, Value>, HttpError> {
    let status = |s: StatusCode, m: &str| HttpError::Status(s, m.into());
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
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

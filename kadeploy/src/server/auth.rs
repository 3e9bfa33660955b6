//! Authentication (spec §3.2): the `<prefix>User` header trusted from ACL hosts, or HTTP Basic against an
//! htpasswd file (bcrypt `$2y$`/`$2b$`/`$2a$`, `{SHA}`, or plain). X.509 and ident are not implemented.

use super::reply::HttpError;
use super::settings::{Settings, allowed};
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use sha1::{Digest, Sha1};
use std::net::IpAddr;

fn unauthorized(msg: impl Into<String>) -> HttpError {
    HttpError::Status(
        StatusCode::UNAUTHORIZED,
        format!("Authentication failed: {}", msg.into()),
    )
}

/// Checks `password` against one htpasswd hash.
pub fn check_hash(hash: &str, password: &str) -> bool {
    if hash.starts_with("$2") {
        bcrypt::verify(password, hash).unwrap_or(false)
    } else if let Some(b64) = hash.strip_prefix("{SHA}") {
        let digest = Sha1::digest(password.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(digest) == b64
    } else {
        hash == password
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), HttpError>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let parsed = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
        })
        .ok_or_else(|| unauthorized("malformed Authorization header"));
    Some(parsed)
}

/// The authenticated user of a request from `source`, or a 401.
pub fn authenticate(
    s: &Settings,
    headers: &HeaderMap,
    source: IpAddr,
) -> Result<String, HttpError> {
    let header_name = format!("{}User", s.headers_prefix);
    let user = headers
        .get(header_name.as_str())
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|u| !u.is_empty());
    if let (Some(acl), Some(u)) = (&s.acl, user)
        && !acl.is_empty()
        && allowed(acl, source)
    {
        return Ok(u.to_string());
    }
    if let (Some(creds), Some(basic)) = (basic_credentials(headers), &s.basic) {
        let (name, password) = creds?;
        if !allowed(&basic.whitelist, source) {
            return Err(unauthorized(format!("the host {source} is not allowed")));
        }
        let db = std::fs::read_to_string(&basic.dbfile)
            .map_err(|e| unauthorized(format!("htpasswd file: {e}")))?;
        let ok = db
            .lines()
            .filter_map(|l| l.split_once(':'))
            .any(|(u, h)| u == name && check_hash(h.trim(), &password));
        return if ok {
            Ok(name)
        } else {
            Err(unauthorized("invalid user name or password"))
        };
    }
    if user.is_some() {
        let mut methods = Vec::new();
        if s.acl.is_some() {
            methods.push("acl");
        }
        if s.basic.is_some() {
            methods.push("http_basic");
        }
        return Err(unauthorized(format!(
            "valid methods are {}",
            methods.join(", ")
        )));
    }
    let basic = if s.basic.is_some() {
        " or using the HTTP Basic Authentication method"
    } else {
        ""
    };
    Err(unauthorized(format!(
        "no user specified in the {header_name} HTTP header{basic}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_hashes() {
        let b = bcrypt::hash("secret", 4).unwrap();
        assert!(check_hash(&b, "secret"));
        assert!(!check_hash(&b, "wrong"));
        assert!(check_hash("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "secret"));
        assert!(!check_hash("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "secreT"));
    }
}

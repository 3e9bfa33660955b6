//! Authentication (spec §3.2): the `<prefix>User` header trusted from ACL hosts, or HTTP Basic against an
//! htpasswd file (bcrypt `$2y$`/`$2b$`/`$2a$`, `{SHA}`, or plain), an X.509 certificate signed by the
//! configured CA ([`super::x509`]), or ident ([`super::ident`]).

use super::reply::HttpError;
use super::settings::{Settings, allowed};
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use sha1::{Digest, Sha1};
use std::net::SocketAddr;

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

/// What authentication looks at in one request.
pub struct Credentials<'a> {
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The client's address and port.
    pub peer: SocketAddr,
    /// The server's port of the connection (for ident).
    pub local_port: u16,
    /// The DER certificate the client presented in the TLS handshake, if any.
    pub tls_cert: Option<&'a [u8]>,
}

/// Checks the client certificate (the `<prefix>Certificate` header first, else the TLS one) when the
/// certificate method is configured and one was given: its common names.
fn certificate_names(s: &Settings, c: &Credentials<'_>) -> Option<Result<Vec<String>, HttpError>> {
    let cert = s.cert.as_ref()?;
    let header_name = format!("{}Certificate", s.headers_prefix);
    let checked = match (
        c.headers
            .get(header_name.as_str())
            .and_then(|v| v.to_str().ok()),
        c.tls_cert,
    ) {
        (Some(h), _) => cert.ca.verify_header(h),
        (None, Some(der)) => cert.ca.verify_der(der),
        (None, None) => return None,
    };
    Some(match checked {
        Err(e) => Err(unauthorized(e.to_string())),
        Ok(_) if !allowed(&cert.whitelist, c.peer.ip()) => Err(unauthorized(format!(
            "the host {} is not allowed to use certificates",
            c.peer.ip()
        ))),
        Ok(names) => Ok(names),
    })
}

/// The user identd reports for this connection.
async fn ident_user(s: &Settings, c: &Credentials<'_>) -> Option<Result<String, HttpError>> {
    let ident = s.ident.as_ref()?;
    if !allowed(&ident.whitelist, c.peer.ip()) {
        return Some(Err(unauthorized(format!(
            "the host {} is not allowed to use ident",
            c.peer.ip()
        ))));
    }
    let identd = SocketAddr::new(c.peer.ip(), ident.port);
    Some(
        super::ident::query(identd, c.peer.port(), c.local_port)
            .await
            .map_err(|e| unauthorized(e.to_string())),
    )
}

/// The authenticated user of a request, or a 401 (Kadeploy's order: ACL, HTTP Basic, then certificate
/// or ident for the user named in the header, then certificate or ident alone).
pub async fn authenticate(s: &Settings, c: &Credentials<'_>) -> Result<String, HttpError> {
    let (headers, source) = (c.headers, c.peer.ip());
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
    if let Some(user) = user {
        if let Some(names) = certificate_names(s, c) {
            let names = names?;
            return if names.iter().any(|n| n == user) {
                Ok(user.to_string())
            } else {
                Err(unauthorized(format!(
                    "the certificate is not issued to {user} (CN: {})",
                    names.join(", ")
                )))
            };
        }
        if let Some(found) = ident_user(s, c).await {
            let found = found?;
            return if found == user {
                Ok(found)
            } else {
                Err(unauthorized(format!(
                    "ident says the connection belongs to {found}, not {user}"
                )))
            };
        }
        let mut methods = Vec::new();
        for (on, name) in [
            (s.acl.is_some(), "acl"),
            (s.cert.is_some(), "cert"),
            (s.basic.is_some(), "http_basic"),
            (s.ident.is_some(), "ident"),
        ] {
            if on {
                methods.push(name);
            }
        }
        return Err(unauthorized(format!(
            "valid methods are {}",
            methods.join(", ")
        )));
    }
    // Kadeploy 3.3 answers a 500 here for a certificate without a user (quirk 10): the intended
    // behaviour is to take the user from the certificate.
    if let Some(names) = certificate_names(s, c) {
        return names?
            .into_iter()
            .next()
            .ok_or_else(|| unauthorized("the certificate has no common name"));
    }
    if let Some(found) = ident_user(s, c).await {
        return found;
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

//! Authentication (spec §3.2): the `<prefix>User` header trusted from ACL hosts, or HTTP Basic against an
//! htpasswd file ([`super::passwords`]), an X.509 certificate signed by the configured CA ([`super::x509`])
//! whose key the client proved to hold (in the TLS handshake, or through a front end listed in
//! `authentication/certificate/trusted_front_ends` that sends the `<prefix>Certificate` header), or ident
//! ([`super::ident`]).

use super::passwords::PasswordError;
use super::reply::HttpError;
use super::settings::{Settings, allowed, listed};
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use std::net::SocketAddr;

pub use super::passwords::check_hash;

fn unauthorized(msg: impl Into<String>) -> HttpError {
    HttpError::Status(
        StatusCode::UNAUTHORIZED,
        format!("Authentication failed: {}", msg.into()),
    )
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

/// Who sent a request, once authenticated.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The user.
    pub user: String,
    /// The user is almighty (`rights/almighty_users`).
    pub almighty: bool,
    /// The client's address (consoles accept only their requester's).
    pub peer: SocketAddr,
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

/// Checks the client certificate when the certificate method is configured and one was given: its
/// common names. The `<prefix>Certificate` header counts only from a trusted front end (anybody can copy a
/// public certificate into a header); otherwise the certificate of the TLS handshake, whose key the client
/// used to sign the handshake.
fn certificate_names(s: &Settings, c: &Credentials<'_>) -> Option<Result<Vec<String>, HttpError>> {
    let cert = s.cert.as_ref()?;
    let header_name = format!("{}Certificate", s.headers_prefix);
    let checked = match (c.headers.get(header_name.as_str()), c.tls_cert) {
        (Some(_), _) if !listed(&cert.front_ends, c.peer.ip()) => {
            return Some(Err(unauthorized(format!(
                "the {header_name} header is only accepted from the front ends of \
                 authentication/certificate/trusted_front_ends; present the certificate in the TLS handshake"
            ))));
        }
        (Some(h), _) => match h.to_str() {
            Ok(h) => cert.ca.verify_header(h),
            Err(_) => return Some(Err(unauthorized(format!("invalid {header_name} header")))),
        },
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
    if !listed(&ident.whitelist, c.peer.ip()) {
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
        let ok = match basic.passwords.check(&basic.dbfile, &name, &password).await {
            Ok(ok) => ok,
            Err(e @ PasswordError::Busy) => {
                return Err(HttpError::Status(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("Authentication failed: {e}"),
                ));
            }
            Err(e @ PasswordError::Database) => return Err(unauthorized(e.to_string())),
        };
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
                    "ident says the connection belongs to another user, not {user}"
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

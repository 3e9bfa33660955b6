//! A small Redfish client over HTTPS (rustls with ring; BMC certificates are self-signed, so they are not
//! verified, as `ipmitool` does not verify a BMC either): basic or session authentication, JSON bodies
//! bounded in size, the system found through the service's `Systems` collection.

use serde_json::{Value, json};
use std::time::Duration;

/// Largest response body read.
pub const MAX_BODY: usize = 1 << 20;

/// How requests authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// HTTP Basic on every request.
    Basic,
    /// A session (`POST /redfish/v1/SessionService/Sessions`, then `X-Auth-Token`), deleted at the end.
    Session,
}

impl AuthMode {
    /// Parses `basic` or `session`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "basic" => Some(AuthMode::Basic),
            "session" => Some(AuthMode::Session),
            _ => None,
        }
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum RedfishError {
    /// The HTTP client could not be built (TLS set-up).
    #[error("HTTP client: {0}")]
    Client(String),
    /// No connection, TLS failure or no answer in time.
    #[error("{url}: {message}")]
    Unreachable {
        /// The URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// 401 or 403.
    #[error("{url}: authentication refused ({status})")]
    Auth {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// Another non-success status, with the service's message when it gives one.
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The Redfish error message, if any.
        message: String,
    },
    /// The answer is not the JSON expected (too large, not JSON, a missing member).
    #[error("{url}: {message}")]
    Protocol {
        /// The URL.
        url: String,
        /// What is wrong.
        message: String,
    },
}

/// A connection to one Redfish service.
pub struct RedfishClient {
    http: reqwest::Client,
    base: String,
    user: String,
    password: String,
    /// The session token and the session's URI, once logged in.
    session: Option<(String, String)>,
}

/// Builds the HTTP client shared by every node (TLS through ring, certificates not verified).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, RedfishError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| RedfishError::Client(e.to_string()))
}

/// The Redfish error message of an error body (`error.@Message.ExtendedInfo[0].Message` or
/// `error.message`).
fn error_message(body: &Value) -> String {
    let error = &body["error"];
    error["@Message.ExtendedInfo"][0]["Message"]
        .as_str()
        .or_else(|| error["message"].as_str())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

impl RedfishClient {
    /// A client of the service at `base` (`https://bmc[:port]`).
    pub fn new(http: reqwest::Client, base: &str, user: &str, password: &str) -> Self {
        RedfishClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            user: user.into(),
            password: password.into(),
            session: None,
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("https://") || path.starts_with("http://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Opens a session (with [`AuthMode::Session`]).
    pub async fn login(&mut self, mode: AuthMode) -> Result<(), RedfishError> {
        if mode == AuthMode::Basic {
            return Ok(());
        }
        let url = self.url("/redfish/v1/SessionService/Sessions");
        let body = json!({"UserName": self.user, "Password": self.password});
        let response = self
            .http
            .post(&url)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| unreachable(&url, e))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (token, location) = (header("X-Auth-Token"), header("Location"));
        let body = read_body(&url, response).await?;
        let body = check(&url, status, &body)?;
        let token = token.ok_or_else(|| RedfishError::Protocol {
            url: url.clone(),
            message: "the session has no X-Auth-Token".into(),
        })?;
        let location = location
            .or_else(|| body["@odata.id"].as_str().map(str::to_string))
            .unwrap_or_default();
        self.session = Some((token, location));
        Ok(())
    }

    /// Deletes the session, if any (errors are logged: the session times out anyway).
    pub async fn logout(&mut self) {
        if let Some((token, location)) = self.session.take()
            && !location.is_empty()
        {
            let url = self.url(&location);
            let result = self
                .http
                .delete(&url)
                .header("X-Auth-Token", token)
                .send()
                .await;
            if let Err(e) = result {
                tracing::debug!(%url, "session delete: {e}");
            }
        }
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, url);
        match &self.session {
            Some((token, _)) => builder.header("X-Auth-Token", token),
            None => builder.basic_auth(&self.user, Some(&self.password)),
        }
    }

    /// GETs `path`'s JSON.
    pub async fn get(&self, path: &str) -> Result<Value, RedfishError> {
        let url = self.url(path);
        let response = self
            .request(reqwest::Method::GET, &url)
            .send()
            .await
            .map_err(|e| unreachable(&url, e))?;
        let status = response.status().as_u16();
        let body = read_body(&url, response).await?;
        check(&url, status, &body)
    }

    /// Sends `body` with `method` (POST, PATCH) to `path`.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> Result<Value, RedfishError> {
        let url = self.url(path);
        let response = self
            .request(method, &url)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| unreachable(&url, e))?;
        let status = response.status().as_u16();
        let body = read_body(&url, response).await?;
        check(&url, status, &body)
    }

    /// The `@odata.id` of the first member of `/redfish/v1/Systems`.
    pub async fn first_system(&self) -> Result<String, RedfishError> {
        let systems = self.get("/redfish/v1/Systems").await?;
        systems["Members"][0]["@odata.id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| RedfishError::Protocol {
                url: self.url("/redfish/v1/Systems"),
                message: "the Systems collection has no member".into(),
            })
    }
}

fn unreachable(url: &str, e: reqwest::Error) -> RedfishError {
    // The source chain says why (refused, TLS, timeout).
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    RedfishError::Unreachable {
        url: url.into(),
        message,
    }
}

/// Reads at most [`MAX_BODY`] bytes of the body.
async fn read_body(url: &str, mut response: reqwest::Response) -> Result<Vec<u8>, RedfishError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(RedfishError::Protocol {
            url: url.into(),
            message: "response body over 1 MiB".into(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(url, e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(RedfishError::Protocol {
                url: url.into(),
                message: "response body over 1 MiB".into(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Fails on a non-success status (with the service's message), else parses the body (empty = `null`).
fn check(url: &str, status: u16, body: &[u8]) -> Result<Value, RedfishError> {
    let parsed = || -> Result<Value, serde_json::Error> {
        if body.iter().all(u8::is_ascii_whitespace) {
            Ok(Value::Null)
        } else {
            serde_json::from_slice(body)
        }
    };
    match status {
        200..=299 => parsed().map_err(|e| RedfishError::Protocol {
            url: url.into(),
            message: format!("not JSON: {e}"),
        }),
        401 | 403 => Err(RedfishError::Auth {
            url: url.into(),
            status,
        }),
        _ => Err(RedfishError::Status {
            url: url.into(),
            status,
            message: parsed().map(|b| error_message(&b)).unwrap_or_default(),
        }),
    }
}

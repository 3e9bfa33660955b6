//! Bounds on what clients may hold on the server, from `server.conf`: how long a connection may stay idle
//! or take to send a request or finish its TLS handshake, how many connections and consoles may be open,
//! how long an unattached console lives, and how long finished workflows are kept (`autoclean_threshold`).
//! Every `limits/*` key is this server's addition and optional.

use serde_json::Value;
use std::time::Duration;

/// A `limits/*` value that is not usable.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// A duration or count that is not a positive number.
    #[error("server.conf: limits/{key} must be a positive number, not {value}")]
    NotPositive {
        /// The key under `limits/`.
        key: &'static str,
        /// The value found.
        value: String,
    },
    /// `autoclean_threshold` is negative or not a number.
    #[error("server.conf: autoclean_threshold must be a number of minutes >= 0, not {0}")]
    Autoclean(f64),
}

/// Connection, request, console and workflow bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// `limits/header_timeout` (10 s): a request's headers must arrive within this after its first byte.
    pub header_timeout: Duration,
    /// `limits/body_timeout` (30 s): a request's body must arrive within this after its headers.
    pub body_timeout: Duration,
    /// `limits/idle_timeout` (60 s): a connection with no request in progress and nothing sent or
    /// received for this long is closed; so is one whose client stops reading the reply for this long.
    pub idle_timeout: Duration,
    /// `limits/tls_handshake_timeout` (10 s).
    pub tls_handshake_timeout: Duration,
    /// `limits/max_connections` (4096): open API connections; further ones are closed at once. Lowered
    /// at start-up to half the process's open-file limit.
    pub max_connections: usize,
    /// `limits/max_connections_per_address` (half of the effective `max_connections`): open API
    /// connections from one client address, so that one host cannot take every connection.
    pub max_connections_per_address: Option<usize>,
    /// `limits/max_consoles` (64): open consoles; `POST /console` beyond it answers 503.
    pub max_consoles: usize,
    /// `limits/console_timeout` (300 s): a console no client is attached to is closed after this.
    pub console_timeout: Duration,
    /// `autoclean_threshold` (Kadeploy's key, 360 minutes): finished workflows are forgotten after this.
    pub autoclean_threshold: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections: 4096,
            max_connections_per_address: None,
            max_consoles: 64,
            console_timeout: Duration::from_secs(300),
            autoclean_threshold: Duration::from_secs(360 * 60),
        }
    }
}

impl Limits {
    /// Reads the `limits` mapping of `server.conf` (`Null` when absent) and `autoclean_threshold` (minutes).
    pub fn parse(limits: &Value, autoclean_minutes: f64) -> Result<Limits, LimitError> {
        let d = Limits::default();
        let seconds = |key: &'static str, default: Duration| -> Result<Duration, LimitError> {
            match &limits[key] {
                Value::Null => Ok(default),
                v => v
                    .as_f64()
                    .filter(|s| *s > 0.0)
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or_else(|| LimitError::NotPositive {
                        key,
                        value: v.to_string(),
                    }),
            }
        };
        let count = |key: &'static str, default: usize| -> Result<usize, LimitError> {
            match &limits[key] {
                Value::Null => Ok(default),
                v => v
                    .as_u64()
                    .filter(|n| *n > 0)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| LimitError::NotPositive {
                        key,
                        value: v.to_string(),
                    }),
            }
        };
        let autoclean_threshold = Some(autoclean_minutes * 60.0)
            .filter(|s| *s >= 0.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or(LimitError::Autoclean(autoclean_minutes))?;
        Ok(Limits {
            header_timeout: seconds("header_timeout", d.header_timeout)?,
            body_timeout: seconds("body_timeout", d.body_timeout)?,
            idle_timeout: seconds("idle_timeout", d.idle_timeout)?,
            tls_handshake_timeout: seconds("tls_handshake_timeout", d.tls_handshake_timeout)?,
            max_connections: count("max_connections", d.max_connections)?,
            max_connections_per_address: match limits["max_connections_per_address"] {
                Value::Null => None,
                _ => Some(count("max_connections_per_address", 1)?),
            },
            max_consoles: count("max_consoles", d.max_consoles)?,
            console_timeout: seconds("console_timeout", d.console_timeout)?,
            autoclean_threshold,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_overrides_and_refusals() {
        assert_eq!(
            Limits::parse(&Value::Null, 360.0).ok(),
            Some(Limits::default())
        );
        let l = Limits::parse(
            &json!({"header_timeout": 0.5, "max_connections": 20, "console_timeout": 2}),
            0.05,
        )
        .expect("valid");
        assert_eq!(l.header_timeout, Duration::from_millis(500));
        assert_eq!(l.max_connections, 20);
        assert_eq!(l.max_connections_per_address, None);
        assert_eq!(l.console_timeout, Duration::from_secs(2));
        assert_eq!(l.autoclean_threshold, Duration::from_secs(3));
        assert_eq!(l.idle_timeout, Limits::default().idle_timeout);
        for bad in [
            json!({"idle_timeout": 0}),
            json!({"idle_timeout": -1}),
            json!({"idle_timeout": "soon"}),
            json!({"max_consoles": 0}),
            json!({"max_connections": 2.5}),
            json!({"max_connections_per_address": 0}),
        ] {
            assert!(Limits::parse(&bad, 360.0).is_err(), "{bad}");
        }
        assert!(Limits::parse(&Value::Null, -1.0).is_err());
        assert!(Limits::parse(&Value::Null, f64::NAN).is_err());
    }
}

//! What the server and its clients share on the wire besides JSON: the YAML rendering Kadeploy's
//! clients print, and the self-signed certificate both sides listen with when none is configured.

use anyhow::Context as _;
use serde_json::Value;

/// The YAML of a value, starting with `---` as Ruby's `to_yaml` does.
pub fn to_yaml(v: &Value) -> String {
    let body = serde_saphyr::to_string(v).unwrap_or_default();
    format!("---\n{body}")
}

/// A self-signed certificate and key (PEM) for `hostname` (also valid for `localhost` and 127.0.0.1).
pub fn self_signed(hostname: &str) -> anyhow::Result<(String, String)> {
    let names = vec![
        hostname.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ];
    let ck = rcgen::generate_simple_self_signed(names)
        .context("generating the self-signed certificate")?;
    Ok((ck.cert.pem(), ck.signing_key.serialize_pem()))
}

/// The 20 kastat fields, in Kadeploy's order: what `kastat3 -F` may name and `/stats` answers.
pub const STAT_FIELDS: [&str; 20] = [
    "wid",
    "user",
    "hostname",
    "step1",
    "step2",
    "step3",
    "timeout_step1",
    "timeout_step2",
    "timeout_step3",
    "retry_step1",
    "retry_step2",
    "retry_step3",
    "start",
    "step1_duration",
    "step2_duration",
    "step3_duration",
    "env",
    "md5",
    "success",
    "error",
];

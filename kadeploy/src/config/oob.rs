//! `backend/redfish` and `backend/pdu`: the `site` backend's out-of-band power through Redfish BMCs (the
//! hard level and the status) and through SNMP PDUs (the very_hard level), typed at load with their secret
//! files read here.

use super::error::{ConfigError, Ctx};
use super::files::ReadFile;
use super::values::{expected, get, port, string};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// `backend/redfish`: each node's Redfish service, by template.
#[derive(Clone, PartialEq, Eq)]
pub struct RedfishKeys {
    /// `url`: the service's base URL template (`https://HOSTNAME_SHORT-bmc`).
    pub url: String,
    /// `user`.
    pub user: String,
    /// The first line of `password_file`, read at load.
    pub password: String,
    /// `auth` (`session`): `session` or `basic`.
    pub auth: String,
    /// `reboot` (`ForceRestart`): the reset of a reboot, `ForceRestart` or `PowerCycle`.
    pub reboot: String,
    /// `system`: the ComputerSystem's URI; found in `/redfish/v1/Systems` when absent.
    pub system: Option<String>,
    /// `timeout` (10 s): each HTTP request.
    pub timeout: Duration,
}

impl fmt::Debug for RedfishKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedfishKeys")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("auth", &self.auth)
            .field("reboot", &self.reboot)
            .field("system", &self.system)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// `backend/pdu/v3`: the SNMPv3 user.
#[derive(Clone, PartialEq, Eq)]
pub struct PduV3Keys {
    /// `user`.
    pub user: String,
    /// `auth` (`sha`): `sha` or `sha256`.
    pub auth: String,
    /// The first line of `auth_password_file`.
    pub auth_password: String,
    /// The first line of `priv_password_file` (AES), when given.
    pub priv_password: Option<String>,
    /// `context` (empty): the SNMPv3 contextName of the requests, for agents that serve several devices
    /// behind one address (proxies, snmpsim); at most 32 bytes (RFC 3411's `SnmpAdminString`).
    pub context: String,
}

/// `backend/pdu`: the PDUs' model, security and each node's outlet.
#[derive(Clone, PartialEq, Eq)]
pub struct PduKeys {
    /// `model`: `apc`, `raritan` or `eaton`.
    pub model: String,
    /// `port` (161).
    pub port: u16,
    /// The first line of `community_file` (v2c), when no `v3` user is given.
    pub community: Option<String>,
    /// `v3`.
    pub v3: Option<PduV3Keys>,
    /// `timeout` (2 s): the wait for each answer.
    pub timeout: Duration,
    /// `retries` (2): retransmissions.
    pub retries: u32,
    /// `outlets`: node name → (PDU host, outlet number).
    pub outlets: BTreeMap<String, (String, u32)>,
}

impl fmt::Debug for PduKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PduKeys")
            .field("model", &self.model)
            .field("port", &self.port)
            .field("v3_user", &self.v3.as_ref().map(|v| &v.user))
            .field("outlets", &self.outlets.len())
            .finish_non_exhaustive()
    }
}

/// Fails on a key of `map` outside `allowed`.
fn known_keys(
    map: &Map<String, Value>,
    allowed: &[&str],
    path: &str,
    ctx: Ctx<'_>,
) -> Result<(), ConfigError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(ctx.invalid(
            format!("{path}/{unknown}"),
            format!("unknown key (expected {})", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// The first line of the file named by `key` (relative to `dir`).
fn secret(
    map: &Map<String, Value>,
    key: &str,
    path: &str,
    ctx: Ctx<'_>,
    dir: &Path,
    read: ReadFile<'_>,
) -> Result<String, ConfigError> {
    let full = format!("{path}/{key}");
    let file = dir.join(string(ctx.required(get(map, key), &full)?, &full, ctx)?);
    let text = read(&file).map_err(|source| ConfigError::File {
        file: ctx.file.into(),
        key: full.clone(),
        path: file,
        source,
    })?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

fn seconds(
    map: &Map<String, Value>,
    key: &str,
    path: &str,
    default: u64,
    ctx: Ctx<'_>,
) -> Result<Duration, ConfigError> {
    match get(map, key) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v
            .as_u64()
            .filter(|s| (1..=600).contains(s))
            .map(Duration::from_secs)
            .ok_or_else(|| expected(ctx, &format!("{path}/{key}"), v, "1 to 600 seconds")),
    }
}

/// `backend/redfish`.
pub(super) fn redfish_keys(
    value: &Value,
    ctx: Ctx<'_>,
    dir: &Path,
    read: ReadFile<'_>,
) -> Result<RedfishKeys, ConfigError> {
    let path = "backend/redfish";
    let Value::Object(map) = value else {
        return Err(expected(ctx, path, value, "a mapping"));
    };
    known_keys(
        map,
        &[
            "url",
            "user",
            "password_file",
            "auth",
            "reboot",
            "system",
            "timeout",
        ],
        path,
        ctx,
    )?;
    let required = |key: &str| -> Result<String, ConfigError> {
        let full = format!("{path}/{key}");
        string(ctx.required(get(map, key), &full)?, &full, ctx)
    };
    let optional = |key: &str, default: &str| -> Result<String, ConfigError> {
        get(map, key).map_or(Ok(default.to_string()), |v| {
            string(v, &format!("{path}/{key}"), ctx)
        })
    };
    let url = required("url")?;
    if !url.starts_with("https://") && !url.starts_with("http://") {
        return Err(ctx.invalid(
            format!("{path}/url"),
            format!("{url:?} is not an http(s):// URL"),
        ));
    }
    let auth = optional("auth", "session")?;
    ctx.one_of(&auth, &["session", "basic"], &format!("{path}/auth"))?;
    let reboot = optional("reboot", "ForceRestart")?;
    ctx.one_of(
        &reboot,
        &["ForceRestart", "PowerCycle"],
        &format!("{path}/reboot"),
    )?;
    Ok(RedfishKeys {
        user: required("user")?,
        password: secret(map, "password_file", path, ctx, dir, read)?,
        url,
        auth,
        reboot,
        system: get(map, "system")
            .map(|v| string(v, &format!("{path}/system"), ctx))
            .transpose()?,
        timeout: seconds(map, "timeout", path, 10, ctx)?,
    })
}

/// `backend/pdu`.
pub(super) fn pdu_keys(
    value: &Value,
    ctx: Ctx<'_>,
    dir: &Path,
    read: ReadFile<'_>,
) -> Result<PduKeys, ConfigError> {
    let path = "backend/pdu";
    let Value::Object(map) = value else {
        return Err(expected(ctx, path, value, "a mapping"));
    };
    known_keys(
        map,
        &[
            "model",
            "port",
            "community_file",
            "v3",
            "timeout",
            "retries",
            "outlets",
        ],
        path,
        ctx,
    )?;
    let model = string(
        ctx.required(get(map, "model"), "backend/pdu/model")?,
        "backend/pdu/model",
        ctx,
    )?;
    ctx.one_of(
        &model,
        &hal::power::snmp::models::OutletModel::BUILTIN,
        "backend/pdu/model",
    )?;
    let v3 = get(map, "v3")
        .map(|v| v3_keys(v, ctx, dir, read))
        .transpose()?;
    let community = match (&v3, get(map, "community_file")) {
        (Some(_), None) => None,
        (None, None) => return Err(ctx.missing("backend/pdu/community_file")),
        (_, Some(_)) => Some(secret(map, "community_file", path, ctx, dir, read)?),
    };
    let retries = match get(map, "retries") {
        None => 2,
        Some(v) => v
            .as_u64()
            .filter(|r| *r <= 10)
            .ok_or_else(|| expected(ctx, "backend/pdu/retries", v, "0 to 10"))?
            as u32,
    };
    let outlets_value = ctx.required(get(map, "outlets"), "backend/pdu/outlets")?;
    let Value::Object(list) = outlets_value else {
        return Err(expected(
            ctx,
            "backend/pdu/outlets",
            outlets_value,
            "a mapping of node names",
        ));
    };
    let mut outlets = BTreeMap::new();
    for (node, v) in list {
        let key = format!("backend/pdu/outlets/{node}");
        let entry = v
            .as_object()
            .ok_or_else(|| expected(ctx, &key, v, "{host, outlet}"))?;
        known_keys(entry, &["host", "outlet"], &key, ctx)?;
        let host = string(
            ctx.required(get(entry, "host"), &format!("{key}/host"))?,
            &format!("{key}/host"),
            ctx,
        )?;
        let outlet_value = ctx.required(get(entry, "outlet"), &format!("{key}/outlet"))?;
        let outlet = outlet_value
            .as_u64()
            .and_then(|o| u32::try_from(o).ok())
            .filter(|o| *o >= 1)
            .ok_or_else(|| {
                expected(
                    ctx,
                    &format!("{key}/outlet"),
                    outlet_value,
                    "an outlet number from 1",
                )
            })?;
        outlets.insert(node.clone(), (host, outlet));
    }
    Ok(PduKeys {
        model,
        port: get(map, "port").map_or(Ok(161), |v| port(v, "backend/pdu/port", ctx))?,
        community,
        v3,
        timeout: seconds(map, "timeout", path, 2, ctx)?,
        retries,
        outlets,
    })
}

fn v3_keys(
    value: &Value,
    ctx: Ctx<'_>,
    dir: &Path,
    read: ReadFile<'_>,
) -> Result<PduV3Keys, ConfigError> {
    let path = "backend/pdu/v3";
    let Value::Object(map) = value else {
        return Err(expected(ctx, path, value, "a mapping"));
    };
    known_keys(
        map,
        &[
            "user",
            "auth",
            "auth_password_file",
            "priv_password_file",
            "context",
        ],
        path,
        ctx,
    )?;
    let context = get(map, "context").map_or(Ok(String::new()), |v| {
        string(v, "backend/pdu/v3/context", ctx)
    })?;
    if context.len() > MAX_CONTEXT {
        return Err(ctx.invalid(
            "backend/pdu/v3/context",
            format!("an SNMP context name has at most {MAX_CONTEXT} bytes"),
        ));
    }
    let auth = get(map, "auth").map_or(Ok("sha".to_string()), |v| {
        string(v, "backend/pdu/v3/auth", ctx)
    })?;
    ctx.one_of(&auth, &["sha", "sha256"], "backend/pdu/v3/auth")?;
    let auth_password = secret(map, "auth_password_file", path, ctx, dir, read)?;
    let priv_password = match get(map, "priv_password_file") {
        None => None,
        Some(_) => Some(secret(map, "priv_password_file", path, ctx, dir, read)?),
    };
    for (key, p) in [
        ("auth_password_file", Some(&auth_password)),
        ("priv_password_file", priv_password.as_ref()),
    ] {
        if p.is_some_and(|p| p.len() < 8) {
            return Err(ctx.invalid(
                format!("{path}/{key}"),
                "USM passwords have at least 8 characters",
            ));
        }
    }
    Ok(PduV3Keys {
        user: string(
            ctx.required(get(map, "user"), "backend/pdu/v3/user")?,
            "backend/pdu/v3/user",
            ctx,
        )?,
        auth,
        auth_password,
        priv_password,
        context,
    })
}

/// The longest SNMPv3 contextName (RFC 3411: `SnmpAdminString (SIZE(0..32))`).
const MAX_CONTEXT: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    const CTX: Ctx<'static> = Ctx {
        file: "server.conf",
    };

    fn parse<T>(
        yaml: &str,
        f: fn(&Value, Ctx<'_>, &Path, ReadFile<'_>) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        let value: Value = serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{e}"));
        let mut read = |path: &Path| -> io::Result<String> {
            match path.file_name().and_then(|n| n.to_str()) {
                Some("secret") => Ok("s3cret-password\nignored\n".into()),
                Some("short") => Ok("short\n".into()),
                _ => Err(io::Error::from(io::ErrorKind::NotFound)),
            }
        };
        f(&value, CTX, Path::new("/etc/kadeploy3"), &mut read)
    }

    #[test]
    fn redfish_keys_have_defaults_and_hide_the_password() {
        let k = parse(
            "{url: 'https://HOSTNAME_SHORT-bmc', user: root, password_file: secret}",
            redfish_keys,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (k.auth.as_str(), k.reboot.as_str()),
            ("session", "ForceRestart")
        );
        assert_eq!(
            (k.password.as_str(), k.timeout),
            ("s3cret-password", Duration::from_secs(10))
        );
        assert!(!format!("{k:?}").contains("s3cret"));
        for (yaml, key) in [
            (
                "{url: 'ftp://x', user: u, password_file: secret}",
                "backend/redfish/url",
            ),
            (
                "{url: 'https://x', user: u, password_file: secret, auth: digest}",
                "backend/redfish/auth",
            ),
            (
                "{url: 'https://x', user: u, password_file: secret, reboot: On}",
                "backend/redfish/reboot",
            ),
            (
                "{url: 'https://x', user: u, password_file: secret, pass: x}",
                "backend/redfish/pass",
            ),
            (
                "{url: 'https://x', password_file: secret}",
                "backend/redfish/user",
            ),
            (
                "{url: 'https://x', user: u, password_file: nofile}",
                "backend/redfish/password_file",
            ),
        ] {
            let e = parse(yaml, redfish_keys)
                .err()
                .unwrap_or_else(|| panic!("{yaml} must fail"));
            assert_eq!(e.key(), Some(key), "{yaml}: {e}");
        }
    }

    #[test]
    fn pdu_keys_v2c_and_v3() {
        let yaml =
            "{model: apc, community_file: secret, outlets: {node-1.lab: {host: pdu, outlet: 3}}}";
        let k = parse(yaml, pdu_keys).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (k.port, k.retries, k.community.as_deref()),
            (161, 2, Some("s3cret-password"))
        );
        assert_eq!(k.outlets["node-1.lab"], ("pdu".to_string(), 3));
        let yaml = "{model: eaton, port: 1161, v3: {user: admin, auth: sha256, auth_password_file: secret, \
                    priv_password_file: secret}, outlets: {}}";
        let k = parse(yaml, pdu_keys).unwrap_or_else(|e| panic!("{e}"));
        let v3 = k.v3.unwrap_or_else(|| panic!("v3"));
        assert_eq!(
            (v3.auth.as_str(), v3.priv_password.is_some(), k.community),
            ("sha256", true, None)
        );
        assert_eq!(v3.context, "", "no context by default");
        let yaml = "{model: apc, v3: {user: u, auth_password_file: secret, context: rack-12}, outlets: {}}";
        let k = parse(yaml, pdu_keys).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.v3.map(|v| v.context).as_deref(), Some("rack-12"));
        for (yaml, key) in [
            (
                "{model: cyberpower, community_file: secret, outlets: {}}",
                "backend/pdu/model",
            ),
            ("{model: apc, outlets: {}}", "backend/pdu/community_file"),
            (
                "{model: apc, community_file: secret, outlets: {n: {host: p, outlet: 0}}}",
                "backend/pdu/outlets/n/outlet",
            ),
            (
                "{model: apc, community_file: secret, outlets: {n: {outlet: 1}}}",
                "backend/pdu/outlets/n/host",
            ),
            (
                "{model: apc, v3: {user: u, auth_password_file: short}, outlets: {}}",
                "backend/pdu/v3/auth_password_file",
            ),
            (
                "{model: apc, v3: {user: u, auth: md5, auth_password_file: secret}, outlets: {}}",
                "backend/pdu/v3/auth",
            ),
            (
                "{model: apc, community_file: secret, retries: 50, outlets: {}}",
                "backend/pdu/retries",
            ),
            (
                "{model: apc, v3: {user: u, auth_password_file: secret, context: [a]}, outlets: {}}",
                "backend/pdu/v3/context",
            ),
            (
                "{model: apc, v3: {user: u, auth_password_file: secret, \
                 context: 0123456789abcdef0123456789abcdefX}, outlets: {}}",
                "backend/pdu/v3/context",
            ),
        ] {
            let e = parse(yaml, pdu_keys)
                .err()
                .unwrap_or_else(|| panic!("{yaml} must fail"));
            assert_eq!(e.key(), Some(key), "{yaml}: {e}");
        }
    }
}

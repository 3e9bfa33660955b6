//! `server.conf`'s `backend/*` (kadeploy3d's addition), typed once at load: which backend drives the clusters,
//! the pace of virtual time, and the keys of the `site` backend (kaagent, timeouts, native IPMI, whose
//! password file is read here so that no backend reads configuration files).

use super::error::{ConfigError, Ctx};
use super::files::ReadFile;
use super::oob::{PduKeys, RedfishKeys};
use super::values::{expected, get, port, string};
use serde_json::{Map, Value};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `backend/kind` when it is left out: the simulated cluster.
pub const DEFAULT_BACKEND: &str = "simulated";

/// The `backend/kind` of a site's real drivers, the backend whose keys [`SiteKeys`] types.
pub const SITE_BACKEND: &str = "site";

/// `backend/*`.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendKeys {
    /// `backend/kind` ([`DEFAULT_BACKEND`]); which names exist is for the server's backend table.
    pub kind: String,
    /// `backend/kind` was left out (the server then drives the simulated cluster).
    pub defaulted: bool,
    /// `backend/time_scale` (0): 0 = virtual time as fast as possible; N > 0 = N× real time (negative
    /// values count as 0).
    pub time_scale: f64,
    /// The `site` backend's keys, when `backend/kind` is [`SITE_BACKEND`] (other backends ignore them, and
    /// they are not checked then).
    pub site: Option<SiteKeys>,
}

impl Default for BackendKeys {
    fn default() -> Self {
        BackendKeys {
            kind: DEFAULT_BACKEND.into(),
            defaulted: true,
            time_scale: 0.0,
            site: None,
        }
    }
}

/// `backend/*` keys of the `site` backend.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteKeys {
    /// `backend/agent_port` (25301): where the nodes' `kaagent` listen.
    pub agent_port: u16,
    /// `backend/agent_token_file` (`/run/kaagent.token`): where the nodes' agents read the broadcast token;
    /// an absolute path of plain characters (it goes into shell command lines on the nodes).
    pub agent_token_file: String,
    /// `backend/agent_binary`: a static `kaagent` sent over SSH where none answers, resolved against the
    /// configuration directory.
    pub agent_binary: Option<PathBuf>,
    /// `backend/command_timeout` (600 s): per node command over SSH.
    pub command_timeout: Duration,
    /// `backend/power_timeout` (60 s): per power command template.
    pub power_timeout: Duration,
    /// `backend/ipmi`: native IPMI-over-LAN for the hard power level and the status.
    pub ipmi: Option<IpmiKeys>,
    /// `backend/redfish`: Redfish for the hard power level and the status.
    pub redfish: Option<RedfishKeys>,
    /// `backend/pdu`: SNMP PDU outlets for the very_hard power level.
    pub pdu: Option<PduKeys>,
}

impl Default for SiteKeys {
    fn default() -> Self {
        SiteKeys {
            agent_port: 25301,
            agent_token_file: hal::broadcast::token::DEFAULT_TOKEN_FILE.into(),
            agent_binary: None,
            command_timeout: Duration::from_secs(600),
            power_timeout: Duration::from_secs(60),
            ipmi: None,
            redfish: None,
            pdu: None,
        }
    }
}

/// `backend/ipmi`: each node's BMC, by template.
#[derive(Clone, PartialEq, Eq)]
pub struct IpmiKeys {
    /// `host`: the BMC host name template (`HOSTNAME_SHORT-bmc`).
    pub host: String,
    /// `port` (623).
    pub port: u16,
    /// `user`.
    pub user: String,
    /// The first line of `password_file` (relative to the configuration directory), read at load.
    pub password: String,
}

impl fmt::Debug for IpmiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpmiKeys")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Types `backend` (`None` when absent); files named by keys are resolved against `dir` and read with
/// `read`.
pub(crate) fn convert(
    backend: Option<&Value>,
    ctx: Ctx<'_>,
    dir: &Path,
    read: ReadFile<'_>,
) -> Result<BackendKeys, ConfigError> {
    let map = match backend {
        None | Some(Value::Null) => return Ok(BackendKeys::default()),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(expected(ctx, "backend", other, "a mapping")),
    };
    let (kind, defaulted) = match get(map, "kind") {
        None => (DEFAULT_BACKEND.to_string(), true),
        Some(Value::String(kind)) => (kind.clone(), false),
        Some(other) => return Err(expected(ctx, "backend/kind", other, "a string")),
    };
    let time_scale = match get(map, "time_scale") {
        None => 0.0,
        Some(v) => v
            .as_f64()
            .filter(|s| s.is_finite())
            .ok_or_else(|| expected(ctx, "backend/time_scale", v, "a number"))?
            .max(0.0),
    };
    let site = if kind == SITE_BACKEND {
        Some(site_keys(map, ctx, dir, read)?)
    } else {
        None
    };
    Ok(BackendKeys {
        kind,
        defaulted,
        time_scale,
        site,
    })
}

/// The `site` backend's keys of the `backend` mapping (unknown keys are left to other backends).
fn site_keys(
    map: &Map<String, Value>,
    ctx: Ctx<'_>,
    dir: &Path,
    read: ReadFile<'_>,
) -> Result<SiteKeys, ConfigError> {
    let d = SiteKeys::default();
    let agent_token_file = match get(map, "agent_token_file") {
        None => d.agent_token_file,
        Some(v) => string(v, "backend/agent_token_file", ctx)?,
    };
    check_token_file(&agent_token_file, ctx)?;
    let agent_binary = get(map, "agent_binary")
        .map(|v| string(v, "backend/agent_binary", ctx).map(|b| dir.join(b)))
        .transpose()?;
    let seconds = |key: &str, default: Duration| -> Result<Duration, ConfigError> {
        let path = format!("backend/{key}");
        get(map, key).map_or(Ok(default), |v| {
            v.as_u64()
                .map(Duration::from_secs)
                .ok_or_else(|| expected(ctx, &path, v, "a whole number of seconds"))
        })
    };
    Ok(SiteKeys {
        agent_port: match get(map, "agent_port") {
            None => d.agent_port,
            Some(v) => port(v, "backend/agent_port", ctx)?,
        },
        agent_token_file,
        agent_binary,
        command_timeout: seconds("command_timeout", d.command_timeout)?,
        power_timeout: seconds("power_timeout", d.power_timeout)?,
        ipmi: get(map, "ipmi")
            .map(|v| ipmi_keys(v, ctx, dir, read))
            .transpose()?,
        redfish: get(map, "redfish")
            .map(|v| super::oob::redfish_keys(v, ctx, dir, read))
            .transpose()?,
        pdu: get(map, "pdu")
            .map(|v| super::oob::pdu_keys(v, ctx, dir, read))
            .transpose()?,
    })
}

/// `backend/ipmi`: every key is known; `password_file` is read now.
fn ipmi_keys(
    value: &Value,
    ctx: Ctx<'_>,
    dir: &Path,
    read: ReadFile<'_>,
) -> Result<IpmiKeys, ConfigError> {
    let Value::Object(map) = value else {
        return Err(expected(ctx, "backend/ipmi", value, "a mapping"));
    };
    if let Some(unknown) = map
        .keys()
        .find(|k| !["host", "port", "user", "password_file"].contains(&k.as_str()))
    {
        return Err(ctx.invalid(
            format!("backend/ipmi/{unknown}"),
            "unknown key (expected host, port, user, password_file)",
        ));
    }
    let required = |key: &str| -> Result<String, ConfigError> {
        let path = format!("backend/ipmi/{key}");
        string(ctx.required(get(map, key), &path)?, &path, ctx)
    };
    let (host, user) = (required("host")?, required("user")?);
    let key = "backend/ipmi/password_file";
    let path = dir.join(required("password_file")?);
    let password = read(&path)
        .map_err(|source| ConfigError::File {
            file: ctx.file.into(),
            key: key.into(),
            path,
            source,
        })?
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    Ok(IpmiKeys {
        host,
        port: get(map, "port").map_or(Ok(623), |v| port(v, "backend/ipmi/port", ctx))?,
        user,
        password,
    })
}

/// `backend/agent_token_file` must be an absolute path of plain characters: it goes into shell command
/// lines on the nodes.
fn check_token_file(path: &str, ctx: Ctx<'_>) -> Result<(), ConfigError> {
    let plain = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    if path.starts_with('/') && plain && !path.ends_with('/') && !path.split('/').any(|p| p == "..")
    {
        return Ok(());
    }
    Err(ctx.invalid(
        "backend/agent_token_file",
        format!("{path:?} is not an absolute path of letters, digits, '/', '.', '_' and '-'"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    const CTX: Ctx<'static> = Ctx {
        file: "server.conf",
    };

    /// Types the `backend` mapping of `yaml`; password files are read from `files` (name → text).
    fn keys(yaml: &str, files: &[(&str, &str)]) -> Result<BackendKeys, ConfigError> {
        let value: Value = serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{e}"));
        let mut read = |path: &Path| -> io::Result<String> {
            files
                .iter()
                .find(|(name, _)| Path::new("/etc/kadeploy3").join(name) == path)
                .map(|(_, text)| text.to_string())
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        };
        convert(
            value.get("backend"),
            CTX,
            Path::new("/etc/kadeploy3"),
            &mut read,
        )
    }

    fn error(yaml: &str) -> String {
        match keys(yaml, &[]) {
            Ok(k) => panic!("{yaml:?} must fail, gave {k:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn absent_backend_is_the_simulated_cluster_in_virtual_time() {
        for yaml in ["other: 1\n", "backend:\n", "backend: {time_scale: ~}\n"] {
            let k = keys(yaml, &[]).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((k.kind.as_str(), k.defaulted), (DEFAULT_BACKEND, true));
            assert_eq!((k.time_scale, k.site), (0.0, None));
        }
        let k = keys("backend: {kind: simulated, time_scale: -3}\n", &[]).unwrap();
        assert_eq!(
            (k.defaulted, k.time_scale),
            (false, 0.0),
            "negative counts as 0"
        );
    }

    #[test]
    fn site_keys_are_typed_with_their_defaults() {
        let k = keys("backend: {kind: site}\n", &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.site, Some(SiteKeys::default()));
        let yaml = "backend:\n  kind: site\n  time_scale: 2.5\n  agent_port: 4000\n  \
                    agent_binary: bin/kaagent\n  command_timeout: 30\n  power_timeout: 5\n  \
                    ipmi: {host: HOSTNAME_SHORT-bmc, user: ADMIN, password_file: ipmi.pass}\n";
        let k = keys(yaml, &[("ipmi.pass", "s3cret\nignored\n")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.time_scale, 2.5);
        let site = k.site.unwrap_or_else(|| panic!("site keys"));
        assert_eq!(site.agent_port, 4000);
        assert_eq!(
            site.agent_binary.as_deref(),
            Some(Path::new("/etc/kadeploy3/bin/kaagent"))
        );
        assert_eq!(
            (site.command_timeout, site.power_timeout),
            (Duration::from_secs(30), Duration::from_secs(5))
        );
        let ipmi = site.ipmi.unwrap_or_else(|| panic!("ipmi keys"));
        assert_eq!((ipmi.port, ipmi.password.as_str()), (623, "s3cret"));
        assert!(!format!("{ipmi:?}").contains("s3cret"), "Debug hides it");
    }

    #[test]
    fn other_backends_leave_the_site_keys_unchecked() {
        let yaml = "backend: {kind: simulated, agent_port: x, ipmi: {password_file: none}}\n";
        let k = keys(yaml, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.site, None);
    }

    #[test]
    fn invalid_or_missing_keys_name_the_file_and_the_key() {
        for (yaml, message) in [
            (
                "backend: 3\n",
                "server.conf: backend: invalid value `3` (expected a mapping)",
            ),
            (
                "backend: {kind: [site]}\n",
                "server.conf: backend/kind: invalid value `[\"site\"]` (expected a string)",
            ),
            (
                "backend: {time_scale: fast}\n",
                "server.conf: backend/time_scale: invalid value `\"fast\"` (expected a number)",
            ),
            (
                "backend: {kind: site, agent_port: 70000}\n",
                "server.conf: backend/agent_port: invalid value `70000` (expected a port number)",
            ),
            (
                "backend: {kind: site, command_timeout: 1.5}\n",
                "server.conf: backend/command_timeout: invalid value `1.5` (expected a whole number \
                 of seconds)",
            ),
            (
                "backend: {kind: site, agent_token_file: 'run/token'}\n",
                "server.conf: backend/agent_token_file: \"run/token\" is not an absolute path",
            ),
            (
                "backend: {kind: site, ipmi: {host: h, password_file: p}}\n",
                "server.conf: backend/ipmi/user: mandatory field is missing",
            ),
            (
                "backend: {kind: site, ipmi: {host: h, user: u, password: p}}\n",
                "server.conf: backend/ipmi/password: unknown key",
            ),
            (
                "backend: {kind: site, ipmi: {host: h, user: u, password_file: p}}\n",
                "server.conf: backend/ipmi/password_file: cannot read /etc/kadeploy3/p:",
            ),
        ] {
            let e = error(yaml);
            assert!(e.starts_with(message), "{yaml:?}: {e}");
        }
    }

    #[test]
    fn token_files_must_be_plain_absolute_paths() {
        for ok in ["/run/kaagent.token", "/var/lib/kadeploy-agent/token_1"] {
            assert!(check_token_file(ok, CTX).is_ok(), "{ok}");
        }
        for bad in [
            "run/kaagent.token",
            "/run/$(reboot)",
            "/run/a b",
            "/run/../etc/shadow",
            "/run/",
            "",
        ] {
            let e = check_token_file(bad, CTX).map_err(|e| e.key().map(str::to_string));
            assert_eq!(e, Err(Some("backend/agent_token_file".into())), "{bad}");
        }
    }
}

//! The environment a submission names (`environment`, spec §3.7): an anonymous description given in
//! the request, or a recorded one looked up by name, version and owner with Kadeploy's visibility rules.

use super::common::{Context, err};
use crate::auth::Caller;
use crate::params::Params;
use kadeploy::envdesc::{EnvDesc, Visibility};
use kadeploy::error::{ApiError, RequestError};
use serde_json::{Map, Value, json};

/// The environment of a submission.
#[derive(Clone, Debug, PartialEq)]
pub struct SelectedEnv {
    /// Its description.
    pub desc: EnvDesc,
    /// Its owner (the requester for an anonymous one).
    pub owner: String,
    /// Its database id; `None` for an anonymous environment.
    pub id: Option<i64>,
    /// The recorded checksum of its image (empty when not known: anonymous environments).
    pub md5: String,
}

impl SelectedEnv {
    /// The id the database and the workflow object show: -1 for an anonymous environment.
    pub fn db_id(&self) -> i64 {
        self.id.unwrap_or(-1)
    }

    /// Its files' version in the cache: `<name>/<version>`, or `anon` for an anonymous environment.
    pub fn cache_version(&self) -> String {
        match self.id {
            Some(_) => format!("{}/{}", self.desc.name, self.desc.version),
            None => "anon".into(),
        }
    }

    /// The `environment` of the workflow object.
    pub fn view(&self) -> Value {
        json!({"id": self.db_id(), "user": self.owner, "name": self.desc.name, "version": self.desc.version})
    }

    /// The label of the log rows (`name:version`) and whether the environment is anonymous.
    pub fn label(&self) -> (String, bool) {
        (
            format!("{}:{}", self.desc.name, self.desc.version),
            self.id.is_none(),
        )
    }
}

/// Reads `environment`: `None` when absent.
pub fn select(
    ctx: &Context<'_>,
    caller: &Caller,
    p: &Params,
) -> Result<Option<SelectedEnv>, RequestError> {
    let Some(env) = p.object("environment")? else {
        return Ok(None);
    };
    let kind = env
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("database");
    match kind {
        "anonymous" => anonymous(env, caller, p).map(Some),
        "database" => recorded(ctx, env, caller).map(Some),
        _ => Err(err(
            ApiError::InvalidOption,
            "Parameter 'environment/kind': must have a value in (anonymous, database)",
        )),
    }
}

/// An anonymous environment: its files must be reachable from the server (error 3 for a client-side
/// file without a `client`).
fn anonymous(
    env: &Map<String, Value>,
    caller: &Caller,
    p: &Params,
) -> Result<SelectedEnv, RequestError> {
    let (desc, _) = EnvDesc::from_value(&Value::Object(env.clone()))?;
    let local = !desc.image.file.contains("://") || desc.image.file.starts_with("local://");
    if local && !p.has("client") {
        return Err(err(
            ApiError::InvalidClient,
            format!(
                "There is no way to retrieve {} from the Kadeploy server. Consider using a server:// or a http:// URL",
                desc.image.file
            ),
        ));
    }
    Ok(SelectedEnv {
        desc,
        owner: caller.user.clone(),
        id: None,
        md5: String::new(),
    })
}

/// A recorded environment: `name`, optional `version` (the last one otherwise) and `user` (the
/// requester, then the almighty users, otherwise); private environments only for their owner or an
/// almighty user.
fn recorded(
    ctx: &Context<'_>,
    env: &Map<String, Value>,
    caller: &Caller,
) -> Result<SelectedEnv, RequestError> {
    let name = env.get("name").and_then(Value::as_str).ok_or_else(|| {
        err(
            ApiError::MissingOption,
            "Parameter 'environment/name': is mandatory",
        )
    })?;
    let version = version(env)?;
    let owners: Vec<String> = match env.get("user").and_then(Value::as_str) {
        Some(u) => vec![u.to_string()],
        None => std::iter::once(caller.user.clone())
            .chain(ctx.almighty.iter().cloned())
            .collect(),
    };
    for owner in &owners {
        let rows = ctx
            .store
            .env_versions(owner, name)
            .map_err(RequestError::from)?;
        let row = rows
            .into_iter()
            .find(|e| version.is_none_or(|v| e.desc.version == v));
        if let Some(row) = row {
            let visible = row.user == caller.user
                || caller.almighty
                || row.desc.visibility != Visibility::Private;
            if visible {
                return Ok(SelectedEnv {
                    desc: row.desc,
                    owner: row.user,
                    id: Some(row.id),
                    md5: row.checksums.image,
                });
            }
        }
    }
    let v = version.map(|v| v.to_string()).unwrap_or_default();
    let first = owners.first().map(String::as_str).unwrap_or_default();
    Err(err(
        ApiError::InvalidEnvironment,
        format!("the environment {name},{v} of {first} does not exist"),
    ))
}

/// `environment/version`: a number or a string of digits from 0 to 4294967295 (out of range is an
/// error, not a wrap-around: 4294967297 used to select version 1).
fn version(env: &Map<String, Value>) -> Result<Option<u32>, RequestError> {
    match env.get("version") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .and_then(|v| u32::try_from(v).ok())
            .map(Some)
            .ok_or_else(|| {
                err(
                    ApiError::InvalidOption,
                    "Parameter 'environment/version': should be an Integer from 0 to 4294967295",
                )
            }),
    }
}

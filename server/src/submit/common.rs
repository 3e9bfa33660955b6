//! What every submission reads the same way: the parameters Kadeploy reads first (`nodes`,
//! `verbose_level`, `vlan`, `custom_operations`) and after the environment (`breakpoint`, the toggles),
//! `pxe`, `level` and the `timeout_*` expressions; and what a part takes from its cluster.

use crate::Cluster;
use crate::auth::Caller;
use crate::fetch::{EnvFiles, Requester};
use crate::nodeset::{self, NodeIndex};
use crate::params::Params;
use crate::steps;
use crate::store::Store;
use crate::workflow::Kind;
use hal::PowerLevel;
use kadeploy::config::{ClusterConfig, VlanConfig};
use kadeploy::engine::custom::CustomOps;
use kadeploy::engine::{UserPxe, VlanRequest};
use kadeploy::error::{ApiError, RequestError};
use kadeploy::expr::Expr;
use serde_json::Value;
use std::collections::BTreeMap;

pub(super) fn err(kind: ApiError, msg: impl Into<String>) -> RequestError {
    RequestError::new(kind, msg)
}

/// What reading a submission needs from the server.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The configured nodes.
    pub nodes: &'a NodeIndex,
    /// `verbosity/clients`: the default `verbose_level`.
    pub verbosity: u8,
    /// `rights/almighty_users`: whose environments a user may name without their owner.
    pub almighty: &'a [String],
    /// The database (environments, node states).
    pub store: &'a Store,
    /// `network/vlan/*`, when VLAN management is configured.
    pub vlan: Option<&'a VlanConfig>,
}

impl<'a> Context<'a> {
    /// The context of `app`.
    pub fn of(app: &'a crate::App) -> Context<'a> {
        Context {
            nodes: &app.nodes,
            verbosity: app.settings.verbosity,
            almighty: &app.settings.almighty,
            store: &app.store,
            vlan: app.server.vlan.as_ref(),
        }
    }
}

/// What every submission carries besides its operation.
#[derive(Clone, Debug)]
pub struct Common {
    /// The nodes (`nodes`), resolved, sorted and deduplicated.
    pub nodes: Vec<String>,
    /// `verbose_level` (0 to 5; `verbosity/clients` when absent).
    pub verbose: u8,
    /// `custom_operations`, checked; their files as the request names them.
    pub custom_operations: CustomOps,
    /// `breakpoint` (`Macro` or `Macro:micro`).
    pub breakpoint: Option<String>,
    /// `debug`: the workflow keeps debug outputs.
    pub debug: bool,
    /// `force`: nodes in use by another workflow are taken anyway.
    pub force: bool,
    /// `hook`: the server's end-of-operation hook runs once the operation has ended.
    pub hook: bool,
    /// `dry_run`: everything is checked, nothing runs.
    pub dry_run: bool,
    /// `vlan`: the VLAN to put the nodes in (checked: configured, plain, each node's name in it resolves).
    pub vlan: Option<String>,
    /// Whom the files are fetched for.
    pub requester: Requester,
}

/// The parameters Kadeploy reads first, before the environment: `nodes`, `verbose_level`, `vlan`,
/// `custom_operations`. [`Head::finish`] reads the rest of [`Common`].
pub struct Head {
    nodes: Vec<String>,
    verbose: u8,
    vlan: Option<String>,
    custom_operations: CustomOps,
}

impl Head {
    /// Reads the first parameters of a `kind` submission.
    pub fn parse(ctx: &Context<'_>, p: &Params, kind: Kind) -> Result<Head, RequestError> {
        let nodes = nodeset::resolve(ctx.nodes, &p.strings("nodes")?)?;
        let verbose = p.int("verbose_level")?.unwrap_or(i64::from(ctx.verbosity));
        let verbose = u8::try_from(verbose)
            .ok()
            .filter(|v| *v <= 5)
            .ok_or_else(|| {
                err(
                    ApiError::InvalidOption,
                    "Parameter 'verbose_level': must have a value in (0..5)",
                )
            })?;
        let vlan = match kind {
            Kind::Deploy | Kind::Reboot => vlan(ctx, p, &nodes)?,
            Kind::Power => None,
        };
        let mut custom_operations = CustomOps::new();
        if p.has("custom_operations") {
            let ops = p
                .object("custom_operations")
                .map_err(|e| err(ApiError::InvalidCustomop, e.detail))?
                .cloned()
                .unwrap_or_default();
            custom_operations =
                steps::custom_operations(&Value::Object(ops), kind, &mut |f| Ok(f.to_string()))?;
        }
        Ok(Head {
            nodes,
            verbose,
            vlan,
            custom_operations,
        })
    }

    /// Reads the parameters every submission has after its environment: `breakpoint` and the toggles.
    pub fn finish(self, caller: &Caller, p: &Params) -> Result<Common, RequestError> {
        Ok(Common {
            nodes: self.nodes,
            verbose: self.verbose,
            custom_operations: self.custom_operations,
            breakpoint: breakpoint(p)?,
            debug: p.toggle("debug"),
            force: p.toggle("force"),
            hook: p.toggle("hook"),
            dry_run: p.toggle("dry_run"),
            vlan: self.vlan,
            requester: Requester {
                user: caller.user.clone(),
                client: p.string("client"),
            },
        })
    }
}

/// `vlan` (Kadeploy's `work_prepare`): error 9 when VLAN management is not configured, when the id is not
/// a plain word (it goes into `set_cmd`'s shell command line), or when a node's name in the VLAN
/// (`<short><hostname_suffix>.<domain>`, `VLAN_ID` replaced) does not resolve.
fn vlan(ctx: &Context<'_>, p: &Params, nodes: &[String]) -> Result<Option<String>, RequestError> {
    use std::net::ToSocketAddrs;
    let Some(id) = p.string("vlan")? else {
        return Ok(None);
    };
    let Some(config) = ctx.vlan else {
        return Err(err(
            ApiError::InvalidVlan,
            "VLAN management is disabled (network/vlan is not configured)",
        ));
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if id.is_empty() || id.len() > 64 || !id.chars().all(plain) {
        return Err(err(
            ApiError::InvalidVlan,
            format!("Invalid VLAN id {id:?}"),
        ));
    }
    for host in nodes {
        let name = config.host_in_vlan(host, &id);
        let resolves = (name.as_str(), 0)
            .to_socket_addrs()
            .is_ok_and(|mut addresses| addresses.next().is_some());
        if !resolves {
            return Err(err(ApiError::InvalidVlan, format!("Cannot resolv {name}")));
        }
    }
    Ok(Some(id))
}

/// The engine's VLAN of a submission's `vlan`, asked by `user`.
pub fn vlan_request(vlan: &Option<String>, user: &str) -> Option<VlanRequest> {
    vlan.as_ref().map(|id| VlanRequest {
        id: id.clone(),
        user: user.to_string(),
    })
}

/// `breakpoint`: `Macro` or `Macro:micro`, words of letters, digits and `_`.
fn breakpoint(p: &Params) -> Result<Option<String>, RequestError> {
    let b = p.string("breakpoint")?;
    if let Some(b) = &b {
        let word =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let ok = match b.split_once(':') {
            Some((m, s)) => word(m) && word(s),
            None => word(b),
        };
        if !ok {
            return Err(err(
                ApiError::InvalidOption,
                format!("Invalid breakpoint '{b}' (Macro or Macro:micro)"),
            ));
        }
    }
    Ok(b)
}

/// `pxe`: the profile (`pxe/profile`), the values of `NODE_SINGULARITY` (`pxe/singularities`) and the files
/// to install (`pxe/files`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pxe {
    /// `pxe/profile`.
    pub profile: Option<String>,
    /// `pxe/singularities`: node name → value.
    pub singularities: Option<BTreeMap<String, String>>,
    /// `pxe/files`, `None` for an entry that is not a string: refused when the files are fetched, after
    /// the rights check, as Kadeploy does.
    pub files: Vec<Option<String>>,
}

impl Pxe {
    /// Reads `pxe` (error 4 when it is not a Hash).
    pub fn parse(p: &Params) -> Result<Pxe, RequestError> {
        let pxe = p.object("pxe")?;
        let profile = pxe
            .and_then(|x| x.get("profile"))
            .and_then(Value::as_str)
            .map(String::from);
        let files = pxe
            .and_then(|x| x.get("files"))
            .and_then(Value::as_array)
            .map(|files| files.iter().map(|f| f.as_str().map(String::from)).collect())
            .unwrap_or_default();
        let singularities = match pxe.and_then(|x| x.get("singularities")) {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(
                map.iter()
                    .map(|(node, value)| Ok((node.clone(), singularity(value)?)))
                    .collect::<Result<_, RequestError>>()?,
            ),
            Some(_) => {
                return Err(err(
                    ApiError::InvalidOption,
                    "Parameter 'pxe/singularities': should be a Hash",
                ));
            }
        };
        Ok(Pxe {
            profile,
            singularities,
            files,
        })
    }

    /// The engine's user profile, for `user`, when a profile is given.
    pub fn for_engine(&self, user: &str) -> Option<UserPxe> {
        self.profile.as_ref().map(|profile| UserPxe {
            profile: profile.clone(),
            user: user.to_string(),
            singularities: self.singularities.clone(),
        })
    }
}

/// One value of `pxe/singularities`: a string, or a number or boolean as text.
fn singularity(value: &Value) -> Result<String, RequestError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(_) | Value::Bool(_) => Ok(value.to_string()),
        Value::Null => Ok(String::new()),
        _ => Err(err(
            ApiError::InvalidOption,
            "Parameter 'pxe/singularities': the values should be Strings",
        )),
    }
}

/// The files of a submission once fetched: what the engine requests point at.
#[derive(Clone, Debug, Default)]
pub struct Fetched {
    /// The custom operations, their files fetched.
    pub custom_operations: CustomOps,
    /// The environment's files (deployments).
    pub environment: Option<EnvFiles>,
    /// The content of the authorized keys file.
    pub ssh_key: Option<String>,
}

/// What a part's engine request takes from the cluster it runs on.
#[derive(Clone, Copy)]
pub struct PartCluster<'a> {
    /// The cluster's configuration.
    pub config: &'a ClusterConfig,
    /// Image size its backend assumes when it cannot see the file.
    pub image_size: u64,
    /// Decompression ratio assumed with `image_size`.
    pub image_ratio: f64,
}

impl<'a> From<&'a Cluster> for PartCluster<'a> {
    fn from(c: &'a Cluster) -> Self {
        PartCluster {
            config: &c.config,
            image_size: c.backend.image_size,
            image_ratio: c.backend.image_ratio,
        }
    }
}

/// `level`: `soft` (the default), `hard` or `very_hard`.
pub fn level(p: &Params) -> Result<PowerLevel, RequestError> {
    let level = p.one_of("level", &["soft", "hard", "very_hard"])?;
    Ok(match level.as_deref() {
        Some("hard") => PowerLevel::Hard,
        Some("very_hard") => PowerLevel::VeryHard,
        _ => PowerLevel::Soft,
    })
}

/// An optional `timeout_*` expression of `n`.
pub fn expr(p: &Params, key: &str) -> Result<Option<Expr>, RequestError> {
    p.string(key)?
        .map(|s| {
            Expr::parse(&s)
                .map_err(|e| err(ApiError::InvalidOption, format!("Parameter '{key}': {e}")))
        })
        .transpose()
}

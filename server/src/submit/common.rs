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
use kadeploy::config::ClusterConfig;
use kadeploy::engine::custom::CustomOps;
use kadeploy::error::{ApiError, RequestError};
use kadeploy::expr::Expr;
use serde_json::Value;

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
}

impl<'a> Context<'a> {
    /// The context of `app`.
    pub fn of(app: &'a crate::App) -> Context<'a> {
        Context {
            nodes: &app.nodes,
            verbosity: app.settings.verbosity,
            almighty: &app.settings.almighty,
            store: &app.store,
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
    /// Whom the files are fetched for.
    pub requester: Requester,
}

/// The parameters Kadeploy reads first, before the environment: `nodes`, `verbose_level`, `vlan`,
/// `custom_operations`. [`Head::finish`] reads the rest of [`Common`].
pub struct Head {
    nodes: Vec<String>,
    verbose: u8,
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
        if p.has("vlan") {
            return Err(err(
                ApiError::InvalidVlan,
                "no VLAN is configured on this server",
            ));
        }
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
            requester: Requester {
                user: caller.user.clone(),
                client: p.string("client"),
            },
        })
    }
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

/// `pxe`: the profile (`pxe/profile`) and the files to install (`pxe/files`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pxe {
    /// `pxe/profile`.
    pub profile: Option<String>,
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
        Ok(Pxe { profile, files })
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

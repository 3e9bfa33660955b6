//! Workflow submissions (spec §3.7): `POST /deployment`, `POST /reboot`, `PUT /power` and
//! `GET /power?nodes=`. A request's parameters are read once, in Kadeploy's order, into a typed
//! submission ([`Deployment`], [`Reboot`], [`Power`]); then, as Kadeploy: rights are checked
//! ([`rights`]), nothing more happens for a dry run, the files the submission names are fetched
//! ([`Submission::fetch_files`]), the nodes are admitted and one engine run per cluster starts
//! ([`start`]), each built from its own cluster's settings ([`PartCluster`]).

pub mod common;
pub mod deployment;
pub mod environment;
pub mod power;
pub mod reboot;
pub mod rights;
pub mod start;

pub use common::{Common, Context, Fetched, PartCluster, Pxe};
pub use deployment::Deployment;
pub use environment::SelectedEnv;
pub use power::Power;
pub use reboot::Reboot;

use crate::App;
use crate::fetch;
use crate::workflow::{DbStates, Kind};
use common::err;
use hal::NodeId;
use kadeploy::config::ClusterConfig;
use kadeploy::engine::{DeployRequest, PowerRequest, RebootRequest};
use kadeploy::error::{ApiError, RequestError};

/// One typed submission.
#[derive(Clone, Debug)]
pub enum Submission {
    /// `POST /deployment`.
    Deployment(Deployment),
    /// `POST /reboot`.
    Reboot(Reboot),
    /// `PUT /power`, `GET /power?nodes=`.
    Power(Power),
}

/// The engine request of one part.
#[allow(clippy::large_enum_variant)]
pub enum EngineRequest {
    /// A deployment.
    Deploy(DeployRequest),
    /// A reboot.
    Reboot(RebootRequest),
    /// A power operation.
    Power(PowerRequest),
}

impl Submission {
    /// Its operation.
    pub fn kind(&self) -> Kind {
        match self {
            Submission::Deployment(_) => Kind::Deploy,
            Submission::Reboot(_) => Kind::Reboot,
            Submission::Power(_) => Kind::Power,
        }
    }

    /// What every submission carries.
    pub fn common(&self) -> &Common {
        match self {
            Submission::Deployment(d) => &d.common,
            Submission::Reboot(r) => &r.common,
            Submission::Power(p) => &p.common,
        }
    }

    /// The environment it names, if any.
    pub fn environment(&self) -> Option<&SelectedEnv> {
        match self {
            Submission::Deployment(d) => Some(&d.environment),
            Submission::Reboot(r) => r.environment.as_ref(),
            Submission::Power(_) => None,
        }
    }

    /// Fetches the files the submission names, in Kadeploy's order: custom operations, the
    /// environment, the authorized keys, then the PXE files (installed in the PXE repository).
    pub async fn fetch_files(&self, app: &App) -> Result<Fetched, RequestError> {
        let common = self.common();
        let who = &common.requester;
        let mut custom_operations = common.custom_operations.clone();
        fetch::custom_operations(app, who, &mut custom_operations).await?;
        let mut fetched = Fetched {
            custom_operations,
            ..Fetched::default()
        };
        let (key, pxe) = match self {
            Submission::Deployment(d) => {
                let env = &d.environment;
                let files = fetch::environment(app, who, &env.desc, &env.cache_version()).await?;
                fetched.environment = Some(files);
                (&d.ssh_key_file, &d.pxe)
            }
            Submission::Reboot(r) => (&r.ssh_key_file, &r.pxe),
            Submission::Power(_) => return Ok(fetched),
        };
        if let Some(file) = key {
            fetched.ssh_key = Some(fetch::keys(app, who, file).await?);
        }
        for file in &pxe.files {
            let file = file.as_deref().ok_or_else(|| {
                err(
                    ApiError::InvalidOption,
                    "Parameter 'pxe/files': should be an Array of String",
                )
            })?;
            fetch::pxe_file(app, who, file).await?;
        }
        Ok(fetched)
    }

    /// The engine request of the part of the nodes `nodes` of `cluster`.
    pub fn engine_request(
        &self,
        files: &Fetched,
        cluster: PartCluster<'_>,
        nodes: Vec<NodeId>,
    ) -> EngineRequest {
        match self {
            Submission::Deployment(d) => {
                EngineRequest::Deploy(d.engine_request(files, cluster, nodes))
            }
            Submission::Reboot(r) => EngineRequest::Reboot(r.engine_request(files, cluster, nodes)),
            Submission::Power(p) => EngineRequest::Power(p.engine_request(files, nodes)),
        }
    }

    /// The database states of its nodes while it runs and when they fail.
    pub fn states(&self) -> DbStates {
        match self {
            Submission::Deployment(_) => DbStates {
                running: "deploying",
                ko: "deploy_failed",
            },
            Submission::Reboot(_) => DbStates {
                running: "rebooting",
                ko: "reboot_failed",
            },
            Submission::Power(_) => DbStates {
                running: "powering",
                ko: "power_failed",
            },
        }
    }

    /// The database state of the nodes of `cluster` that succeed.
    pub fn ok_state(&self, cluster: &ClusterConfig) -> String {
        match self {
            Submission::Deployment(_) => "deployed".into(),
            Submission::Reboot(r) => r.ok_state(cluster).into(),
            Submission::Power(_) => "powered".into(),
        }
    }

    /// The step-1 name of its log rows (`Simple`, `On`...): reboots and power operations only.
    pub fn step1(&self) -> Option<String> {
        match self {
            Submission::Deployment(_) => None,
            Submission::Reboot(r) => Some(r.step1().into()),
            Submission::Power(p) => Some(p.step1().into()),
        }
    }
}

#[cfg(test)]
mod tests;

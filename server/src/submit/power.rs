//! `PUT /power` and `GET /power?nodes=` (spec §3.7): a typed power operation, and its engine request.

use super::common::{Common, Context, Fetched, Head, err, level};
use crate::auth::Caller;
use crate::params::Params;
use crate::workflow::Kind;
use hal::{NodeId, PowerLevel};
use kadeploy::engine::{PowerOperation, PowerRequest};
use kadeploy::error::{ApiError, RequestError};

/// A power operation, as its request asks.
#[derive(Clone, Debug)]
pub struct Power {
    /// What every submission carries.
    pub common: Common,
    /// `status` of a `PUT` (`on`, `off`), or `Status` for a `GET`.
    pub operation: PowerOperation,
    /// `level`.
    pub level: PowerLevel,
}

impl Power {
    /// Reads a power request: `PUT /power` (`query_status` false) or `GET /power?nodes=`.
    pub fn parse(
        ctx: &Context<'_>,
        caller: &Caller,
        p: &Params,
        query_status: bool,
    ) -> Result<Power, RequestError> {
        let common = Head::parse(ctx, p, Kind::Power)?.finish(caller, p)?;
        let operation = if query_status {
            PowerOperation::Status
        } else {
            match p.one_of("status", &["on", "off"])?.as_deref() {
                Some("on") => PowerOperation::On,
                Some(_) => PowerOperation::Off,
                None => {
                    return Err(err(
                        ApiError::MissingOption,
                        "Parameter 'status': is mandatory",
                    ));
                }
            }
        };
        Ok(Power {
            common,
            operation,
            level: level(p)?,
        })
    }

    /// The engine request of the nodes `nodes`.
    pub fn engine_request(&self, files: &Fetched, nodes: Vec<NodeId>) -> PowerRequest {
        PowerRequest {
            nodes,
            operation: self.operation,
            level: self.level,
            custom_operations: files.custom_operations.clone(),
        }
    }

    /// The step-1 name of its log rows.
    pub fn step1(&self) -> &'static str {
        match self.operation {
            PowerOperation::On => "On",
            PowerOperation::Off => "Off",
            PowerOperation::Status => "Status",
        }
    }
}

//! Kadeploy's workflow engine (spec §5): Deploy, Reboot and Power workflows built from macro-steps and
//! micro-steps, nodes advancing asynchronously in groups with retries, fallbacks, timeouts, breakpoints,
//! cancellation and reboot escalation, over the `hal` traits.

pub mod context;
pub mod custom;
pub mod debug;
pub mod deletions;
pub mod exec;
pub mod manager;
pub mod plan;
pub mod planner;
pub mod positions;
pub mod report;
pub mod request;
pub mod slot;
pub mod step;
pub mod task;
pub mod trace;
pub mod workflow;

pub use context::{Context, Windows};
pub use report::{Failure, NodeLog, NodeStatus, Report};
pub use request::{DeployRequest, PowerOperation, PowerRequest, RebootKind, RebootRequest};
pub use slot::{BootNewEnvKind, BroadcastEnvKind, MacroKind, SetDeploymentEnvKind, Slot};
pub use step::{UserPxe, VlanRequest};
pub use workflow::{deploy, power, reboot};

//! A deterministic simulated cluster that implements every `hal` trait in virtual time, with flow-level
//! models of the network, disks and broadcasts, seeded boot phases and failure injection.

pub mod auto;
pub mod bcast;
pub mod cluster;
pub mod kasim;
pub mod model_input;
pub mod net;
pub mod params;
pub mod planner;
pub mod plot;
mod range;
pub mod rng;

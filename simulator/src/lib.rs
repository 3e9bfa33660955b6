//! A deterministic simulated cluster that implements every `hal` trait in virtual time, with flow-level
//! models of the network, disks and broadcasts, seeded boot phases and failure injection.

pub mod bcast;
pub mod cluster;
pub mod kasim;
pub mod net;
pub mod params;
mod range;
pub mod rng;

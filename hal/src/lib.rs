//! Hardware abstraction layer: one trait per hardware concern (power, network boot, node operations,
//! reachability, broadcast, console), the value types they exchange, and per-node outcomes.
//!
//! The deployer never knows whether a trait object is real, simulated or a lab VM. Every operation on a
//! node set returns one [`Outcome`] per node, in the order the nodes were given (none for an empty set):
//! partial failure is normal and one failing node never aborts the others. A node the backend does not
//! have fails alone with [`ErrorKind::Config`], it never panics. `hal::testing::conformance` (feature
//! `testing`) checks these contracts and each trait's own on any implementation.
//!
//! Features (both default): `netboot`, the DHCP/TFTP/HTTP boot services and `kabootd`; `ssh`, the SSH
//! backends (russh). Without them the traits, outcomes, typed operations, image pipeline, broadcast
//! (deployer and `kaagent`), native IPMI, command power and TCP probes remain.

pub mod broadcast;
pub mod console;
pub mod drivers;
pub mod image;
pub mod netboot;
pub mod node;
pub mod nodeops;
pub mod outcome;
pub mod power;
pub mod reachability;
#[cfg(feature = "ssh")]
pub mod ssh;
#[cfg(feature = "testing")]
pub mod testing;

pub use broadcast::{Broadcast, ImageKind, ImageSpec, Strategy, WriteTarget};
pub use console::{Console, ConsoleStream};
pub use drivers::Drivers;
pub use netboot::{BootProfile, LocalSystem, NetBoot};
pub use node::{NodeId, NodeInfo};
pub use nodeops::{FsaPart, NodeOps, Operation};
pub use outcome::{ErrorKind, NodeError, Outcome, Outcomes};
pub use power::{Power, PowerAction, PowerLevel, PowerState};
pub use reachability::{PortCheck, Reachability};

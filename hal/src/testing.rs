//! Test support shared by the workspace's tests (feature `testing`, enabled by their dev-dependencies):
//! the recording fake of every driver, the trait-level conformance suite every backend must pass, the
//! helpers that run tools in tests, and Debian's kernel for the boot tests.

pub mod conformance;
pub mod debian;
pub mod fake;
pub mod process;
pub mod snmpsim;

//! The engine tests' view of `hal::testing::fake`, the recording fake of every `hal` trait: its calls share one
//! event log with the workflow's output lines and the test's cancellations.

pub use hal::testing::fake::{
    Behaviour, Call, DEPLOY_ENV_PORT, Env, Op, SSH_PORT, Timings, key_matches,
};
use kadeploy::output::LogLine;

/// One entry of the scenario's event log, in the order things happened.
#[derive(Clone, Debug)]
pub enum Event {
    /// A HAL call started.
    Call(Call),
    /// The workflow wrote an output line.
    Line(LogLine),
    /// The test cancelled the workflow.
    Cancel,
}

impl From<Call> for Event {
    fn from(call: Call) -> Self {
        Event::Call(call)
    }
}

/// The event log shared by the fake, the output sink and the test.
pub type Log = hal::testing::fake::Log<Event>;

/// The recording fake, logging into a scenario's [`Log`].
pub type FakeHal = hal::testing::fake::FakeHal<Event>;

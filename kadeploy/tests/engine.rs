//! The workflow engine's test suite: Kadeploy's automata scenarios (success, fail, timeout, raise, retries,
//! fallback, raisable, breakpoint, kill, mixed) and the engine's own rules, run on a recording fake HAL in virtual
//! time, plus property tests over random automata and failure patterns.

mod engine {
    pub mod fake;
    pub mod logs;
    pub mod run;
    pub mod scenario;

    mod breakpoint;
    mod deploy;
    mod escalation;
    mod kill;
    mod output;
    mod plan;
    mod properties;
    mod reboot_power;
    mod server_side;
    mod timing;
    mod tracing_spans;
}

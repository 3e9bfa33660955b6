//! What each micro-step does, over the `hal` traits (spec §6): [`translate::translate`] decides from the step and
//! its context what runs (pure, unit-tested), [`execute`] runs it on the nodes.

pub mod action;
pub mod auto;
pub mod disk;
pub mod install;
pub mod kexec;
pub mod local;
pub mod ops;
pub mod power;
pub mod translate;
pub mod wait;

#[cfg(test)]
mod tests;

use super::context::Context;
use super::step::{Job, Step};
use action::{Action, StepContext};
use hal::{NodeId, Outcomes};

/// Runs `step` on `nodes`; `macro_attempt` counts retries of the enclosing macro-step
/// (a soft reboot becomes hard when the macro-step is retried).
pub async fn execute(
    ctx: &Context,
    job: &Job,
    step: &Step,
    nodes: &[NodeId],
    macro_attempt: u32,
) -> Outcomes {
    let cx = StepContext {
        server: &ctx.server,
        cluster: &ctx.cluster,
        job,
    };
    let action = translate::translate(step, cx, macro_attempt);
    let traced = ctx.debug.is_some() && !matches!(action, Action::Nothing);
    let command = traced.then(|| format!("{}: {action:?}", step.name()));
    let outcomes = run(ctx, action, nodes).await;
    if let Some(command) = command {
        record_traces(ctx, &command, &outcomes);
    }
    outcomes
}

/// Runs `action` on `nodes`.
pub async fn run(ctx: &Context, action: Action, nodes: &[NodeId]) -> Outcomes {
    match action {
        Action::Nothing => Outcomes::all(nodes, Ok(())),
        Action::Refuse(message) => ops::refuse(nodes, message),
        Action::SetProfile(profile) => ctx.drivers.netboot.set_profile(nodes, &profile).await,
        Action::Power(action, level) => power::escalate(ctx, action, level, nodes).await,
        Action::PowerStatus => power::status(ctx, nodes).await,
        Action::WaitReboot { timeout, check } => {
            wait::wait_reboot(ctx, nodes, &timeout, &check).await
        }
        Action::Run(op) => ops::run(ctx, op, nodes).await,
        Action::RunInSequence(list) => ops::run_all(ctx, list, nodes).await,
        Action::RunWindowed(op) => {
            power::windowed(ctx, nodes, |chunk| {
                let (node_ops, op) = (ctx.drivers.ops.clone(), op.clone());
                async move { node_ops.run(&op, &chunk).await }
            })
            .await
        }
        Action::CheckRootDevice(op) => ops::check_root_device(ctx, op, nodes).await,
        Action::Broadcast {
            image,
            target,
            strategy,
        } => ops::broadcast(ctx, &image, &target, strategy, None, nodes).await,
        Action::AutoBroadcast { image, target } => {
            auto::broadcast(ctx, &image, &target, nodes).await
        }
        Action::SetVlan { id, user } => local::set_vlan(ctx, &id, &user, nodes).await,
        Action::CustomBroadcast(b) => local::custom_broadcast(ctx, &b, nodes).await,
        Action::Custom { action, env } => match super::custom::operation(&action, env) {
            Ok(operation) => ops::run(ctx, operation, nodes).await,
            Err(e) => ops::refuse(nodes, e),
        },
    }
}

/// Passes one trace per node of `outcomes` of `command` to the context's sink, if any.
fn record_traces<T>(ctx: &Context, command: &str, outcomes: &Outcomes<T>) {
    let Some(sink) = &ctx.debug else { return };
    let time = ctx.now();
    for (node, outcome) in outcomes.iter() {
        let (stderr, status) = match outcome {
            Ok(_) => (String::new(), 0),
            Err(e) => (e.message.clone(), 1),
        };
        sink(&super::debug::Trace {
            time,
            node: ctx.name(*node).to_string(),
            command: command.to_string(),
            stdout: String::new(),
            stderr,
            status,
        });
    }
}

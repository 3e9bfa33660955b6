//! The two kinds of tasks the manager runs: macro-step instances (which run their micro-steps through a
//! nested manager and raise finished nodes to the workflow) and micro-steps (which run one `hal` operation).

use super::context::Context;
use super::exec;
use super::manager::{self, Batch, Hooks, Reporter, Slots, Task, TaskSpec};
use super::report::Failure;
use super::slot::Slot;
use super::step::{Job, Step};
use super::trace::{self, Tally};
use crate::output::secs;
use hal::{ErrorKind, NodeId, Outcomes};
use std::sync::Arc;
use tracing::{Instrument, Span};

/// A macro-step instance, e.g. `SetDeploymentEnvUntrusted`, with its micro-steps.
pub struct MacroTask {
    /// Settings (name = instance name).
    pub spec: TaskSpec,
    /// `Deploy`, `Reboot` or `Power`: the operation prefix of output lines.
    pub operation: &'static str,
    /// The statistics slot the instance counts in (`step1..3` columns).
    pub slot: Slot,
    /// Micro-steps, one per slot.
    pub micro: Slots,
}

/// One micro-step of a macro-step instance.
pub struct MicroTask {
    /// Settings (name = micro-step name).
    pub spec: TaskSpec,
    /// Name of the enclosing instance.
    pub macro_name: Arc<str>,
    /// What the micro-step does.
    pub step: Step,
    /// Data of the job.
    pub job: Arc<Job>,
}

struct MacroHooks<'a> {
    task: &'a MacroTask,
    report: &'a Reporter,
    start: f64,
    /// How the nodes left the instance, for its span.
    tally: Tally,
    /// Nodes a non-raisable instance keeps until its run ends, then releases as one OK and one KO group.
    held_ok: Vec<NodeId>,
    held_ko: Vec<(NodeId, Failure)>,
}

impl MacroHooks<'_> {
    fn emit(&mut self, ctx: &Context, batch: Batch) {
        let t = &self.task;
        let elapsed = ctx.now() - self.start;
        match &batch {
            Batch::Ok(nodes) => {
                ctx.output.push(
                    1,
                    format!("End of step {} after {}", t.step_label(), secs(elapsed)),
                );
                ctx.log(nodes, |l| l.durations[t.slot.index()] += elapsed);
            }
            Batch::Ko(failures) => {
                let nodes: Vec<NodeId> = failures.iter().map(|(n, _)| *n).collect();
                ctx.output.push_with(1, || {
                    format!(
                        "Step {} failed for {} after {}",
                        t.step_label(),
                        ctx.fold(&nodes),
                        secs(elapsed)
                    )
                });
                ctx.log(&nodes, |l| l.durations[t.slot.index()] += elapsed);
            }
            Batch::Brk(..) => {}
        }
        self.tally.add(&batch);
        self.report.send(batch);
    }
}

impl Hooks for MacroHooks<'_> {
    fn done(&mut self, ctx: &Context, batch: Batch) {
        match batch {
            Batch::Ok(nodes) if !self.task.spec.raisable => self.held_ok.extend(nodes),
            Batch::Ko(failures) if !self.task.spec.raisable => self.held_ko.extend(failures),
            // Breakpoints are raised at once whatever `raisable` says, as Kadeploy does.
            batch => self.emit(ctx, batch),
        }
    }
}

#[async_trait::async_trait]
impl Task for MacroTask {
    fn spec(&self) -> &TaskSpec {
        &self.spec
    }

    async fn run(
        &self,
        ctx: &Context,
        nodes: Vec<NodeId>,
        attempt: u32,
        _parent: u32,
        report: Reporter,
    ) {
        let span = trace::macro_step(ctx, &self.spec.name, attempt, &nodes);
        self.run_micro_steps(ctx, nodes, attempt, report, &span)
            .instrument(span.clone())
            .await
    }

    fn timeout_failure(&self, ctx: &Context, node: NodeId) -> Failure {
        // Kadeploy's `timeout!` logs the timeout as the step's duration.
        ctx.log(&[node], |l| {
            l.durations[self.slot.index()] += self.spec.timeout
        });
        let error = format!("Timeout in the {} step", self.spec.name);
        self.failure_where(ctx, node, error, ErrorKind::Timeout)
    }

    fn missing_failure(&self, ctx: &Context, node: NodeId) -> Failure {
        let error = "The node was left without outcome".to_string();
        self.failure_where(ctx, node, error, ErrorKind::CommandFailed)
    }

    fn breakpoint_reached(&self, ctx: &Context, nodes: &[NodeId]) -> String {
        ctx.output.push_with(2, || {
            format!(
                "*** Breakpoint on {} reached for {}",
                self.spec.name,
                ctx.fold(nodes)
            )
        });
        self.spec.name.to_string()
    }
}

#[async_trait::async_trait]
impl Task for MicroTask {
    fn spec(&self) -> &TaskSpec {
        &self.spec
    }

    async fn run(
        &self,
        ctx: &Context,
        nodes: Vec<NodeId>,
        attempt: u32,
        parent: u32,
        report: Reporter,
    ) {
        let span = trace::micro_step(ctx, &self.spec.name, attempt, &nodes);
        async {
            ctx.output.push(3, format!("  {}", self.spec.name));
            ctx.enter(&nodes, &self.macro_name, Some(&self.spec.name));
            let start = ctx.now();
            let outcomes = exec::execute(ctx, &self.job, &self.step, &nodes, parent).await;
            let (ok, ko) = self.sort_outcomes(ctx, outcomes);
            ctx.output.push(
                4,
                format!(
                    "   *  ~ Time in {}: {}",
                    self.spec.name,
                    secs(ctx.now() - start)
                ),
            );
            let (ok, ko) = (Batch::Ok(ok), Batch::Ko(ko));
            let mut tally = Tally::default();
            tally.add(&ok);
            tally.add(&ko);
            trace::close(ctx, &span, &tally, None);
            report.send(ok);
            report.send(ko);
        }
        .instrument(span.clone())
        .await
    }

    fn timeout_failure(&self, _ctx: &Context, _node: NodeId) -> Failure {
        self.failure(
            ErrorKind::Timeout,
            format!("Timeout in the {} step", self.spec.name),
        )
    }

    fn missing_failure(&self, _ctx: &Context, _node: NodeId) -> Failure {
        self.failure(
            ErrorKind::CommandFailed,
            "The node was left without outcome".into(),
        )
    }

    fn breakpoint_reached(&self, ctx: &Context, nodes: &[NodeId]) -> String {
        ctx.output.push_with(2, || {
            format!(
                "*** Breakpoint on {} reached for {}",
                self.spec.name,
                ctx.fold(nodes)
            )
        });
        format!("{}:{}", self.macro_name, self.spec.name)
    }
}

impl MacroTask {
    /// Runs the micro-steps on `nodes` (inside `span`), raising the nodes as they end.
    async fn run_micro_steps(
        &self,
        ctx: &Context,
        nodes: Vec<NodeId>,
        attempt: u32,
        report: Reporter,
        span: &Span,
    ) {
        ctx.output
            .push(1, format!("Performing a {} step", self.step_label()));
        ctx.enter(&nodes, &self.spec.name, None);
        ctx.log(&nodes, |l| {
            l.steps[self.slot.index()] = Some(self.spec.name.clone())
        });
        let mut hooks = MacroHooks {
            task: self,
            report: &report,
            start: ctx.now(),
            tally: Tally::default(),
            held_ok: Vec::new(),
            held_ko: Vec::new(),
        };
        manager::run(ctx, &self.micro, nodes, attempt, 5, &mut hooks).await;
        let (ok, ko) = (
            std::mem::take(&mut hooks.held_ok),
            std::mem::take(&mut hooks.held_ko),
        );
        if !ok.is_empty() {
            hooks.emit(ctx, Batch::Ok(ok));
        }
        if !ko.is_empty() {
            hooks.emit(ctx, Batch::Ko(ko));
        }
        ctx.span(&self.spec.name, hooks.start, ctx.now());
        trace::close(ctx, span, &hooks.tally, None);
    }

    /// Kadeploy's `macroname`: `Deploy[SetDeploymentEnvUntrusted]`, `Reboot[Simple]`, `Power[On]` (the instance
    /// name without the operation's prefix).
    fn step_label(&self) -> String {
        let name = &*self.spec.name;
        format!(
            "{}[{}]",
            self.operation,
            name.strip_prefix(self.operation).unwrap_or(name)
        )
    }
}

impl MacroTask {
    /// A failure of `node` inside this instance, at the micro-step the node is in.
    fn failure_where(
        &self,
        ctx: &Context,
        node: NodeId,
        error: String,
        kind: ErrorKind,
    ) -> Failure {
        let micro = ctx
            .position(node)
            .micro_step
            .unwrap_or_else(|| Arc::from(""));
        Failure {
            macro_step: self.spec.name.clone(),
            micro_step: micro,
            error,
            kind,
        }
    }
}

impl MicroTask {
    /// Splits `outcomes` into OK nodes and failures, with Kadeploy's lines about the failed nodes.
    fn sort_outcomes(
        &self,
        ctx: &Context,
        outcomes: Outcomes,
    ) -> (Vec<NodeId>, Vec<(NodeId, Failure)>) {
        let mut ok = Vec::with_capacity(outcomes.len());
        let mut ko = Vec::new();
        for (node, outcome) in outcomes {
            match outcome {
                Ok(()) => ok.push(node),
                Err(e) => ko.push((node, self.failure(e.kind, e.message))),
            }
        }
        if !ko.is_empty() {
            let failed: Vec<NodeId> = ko.iter().map(|(n, _)| *n).collect();
            ctx.output.push_with(2, || {
                format!(
                    "!!! The nodes {} failed on step {}",
                    ctx.fold(&failed),
                    self.spec.name
                )
            });
            for (n, f) in &ko {
                ctx.output
                    .push_with(5, || format!("{}: {}", ctx.name(*n), f.error));
                trace::node_failed(ctx, *n, f);
            }
        }
        (ok, ko)
    }

    fn failure(&self, kind: ErrorKind, error: String) -> Failure {
        Failure {
            macro_step: self.macro_name.clone(),
            micro_step: self.spec.name.clone(),
            error,
            kind,
        }
    }
}

//! Contracts of [`Reachability`]: one outcome per node in order, unknown nodes fail alone, a failing
//! check gives [`ErrorKind::Unreachable`], and a node passes only when every port check holds.

use super::{Checked, Contract, Expect, Nodes, Violation, call_name, check_empty, check_outcomes};
use crate::{ErrorKind, PortCheck, Reachability};

/// Checks the known nodes of a reachability backend pass and fail.
#[derive(Clone, Debug)]
pub struct ReachabilitySubject {
    /// The nodes to check on.
    pub nodes: Nodes,
    /// A check every known node passes.
    pub passing: PortCheck,
    /// A check every known node fails (at least one port).
    pub failing: PortCheck,
}

/// Runs every reachability contract on `probe`.
pub async fn check_reachability<R: Reachability + ?Sized>(
    probe: &R,
    subject: &ReachabilitySubject,
) -> Checked {
    subject.nodes.validate("reachability subject")?;
    if subject.failing.up.is_empty() && subject.failing.down.is_empty() {
        return Err(Violation::new(
            Contract::Setup,
            "reachability subject",
            "the failing check has no port",
        ));
    }
    let name = |check: &PortCheck| format!("up {:?} down {:?}", check.up, check.down);
    for check in [&subject.passing, &subject.failing] {
        let call = call_name("probe", &name(check), &[]);
        check_empty(&call, &probe.probe(&[], check).await)?;
    }
    let request = subject.nodes.mixed();
    let unknown = Some(subject.nodes.unknown);
    let call = call_name("probe", &name(&subject.passing), &request);
    let got = probe.probe(&request, &subject.passing).await;
    check_outcomes(
        &call,
        &request,
        unknown,
        &got,
        Expect::Ok,
        Contract::Success,
    )?;
    let unreachable = Expect::Fails(ErrorKind::Unreachable);
    let call = call_name("probe", &name(&subject.failing), &request);
    let got = probe.probe(&request, &subject.failing).await;
    check_outcomes(
        &call,
        &request,
        unknown,
        &got,
        unreachable,
        Contract::ErrorKind,
    )?;
    // Both checks at once: the failing ports must still fail the node.
    let both = PortCheck {
        up: [&subject.passing.up[..], &subject.failing.up[..]].concat(),
        down: [&subject.passing.down[..], &subject.failing.down[..]].concat(),
    };
    let call = call_name("probe", &name(&both), &request);
    let got = probe.probe(&request, &both).await;
    check_outcomes(
        &call,
        &request,
        unknown,
        &got,
        unreachable,
        Contract::EveryCheckHolds,
    )
}

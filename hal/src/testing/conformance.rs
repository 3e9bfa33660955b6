//! The HAL conformance suite: the contracts of the `hal` traits, written once as generic async checks that
//! any implementation (simulated, fake or real) must pass. Each check returns the first broken contract as
//! a [`Violation`] instead of panicking, so a test can also show that a broken backend is caught.
//!
//! The contracts come from the trait documentation: one outcome per requested node in request order
//! (`crate` root), an empty node list gives empty outcomes, a node the backend does not have fails alone
//! with [`ErrorKind::Config`] ([`crate::outcome::lookup`]), every error says what went wrong, plus each
//! trait's own (see the submodules). A subject describes what the backend under test can do, so a
//! backend is never asked for more than it documents.

mod boot;
mod broadcast;
mod console;
mod netboot;
mod nodeops;
mod power;
mod reachability;

pub use boot::{BootSubject, check_boot_visibility, check_powered_off_refusal};
pub use broadcast::{BroadcastSubject, check_broadcast};
pub use console::{ConsoleSubject, check_console};
pub use netboot::{NetBootSubject, check_netboot};
pub use nodeops::{NodeOpsSubject, check_node_ops};
pub use power::{PowerSubject, check_power};
pub use reachability::{ReachabilitySubject, check_reachability};

use crate::{ErrorKind, NodeId, Outcome, Outcomes};
use std::fmt::{self, Debug};

/// The contract a [`Violation`] breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Contract {
    /// The subject handed to the suite cannot exercise the contracts (e.g. fewer than two known nodes).
    Setup,
    /// Every call returns exactly one outcome per requested node, in request order.
    OneOutcomePerNode,
    /// A call on an empty node list returns empty outcomes.
    EmptyList,
    /// A node the backend does not have fails alone, with [`ErrorKind::Config`].
    UnknownNode,
    /// Every error has a message saying what went wrong.
    ErrorMessage,
    /// A failure has the kind its trait documents.
    ErrorKind,
    /// A call the subject says works succeeds on every known node.
    Success,
    /// Power status agrees with the last power action (off after an off, on after an on or a reboot).
    PowerState,
    /// A missing power command answers [`ErrorKind::NotSupported`] `<level>_<action> command is not provided`.
    NotSupported,
    /// A probe passes only when every port check holds.
    EveryCheckHolds,
    /// A reboot into a boot profile shows the profile's environment to probes only once the node booted.
    BootVisibility,
    /// A powered-off node refuses node operations alone, as unreachable.
    PoweredOff,
    /// A console opens, carries bytes when it echoes, closes, and opens again.
    Console,
}

impl fmt::Display for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Debug::fmt(self, f)
    }
}

/// A broken contract: which one, in which call, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("contract {contract} broken by {call}: {detail}")]
pub struct Violation {
    /// The contract broken.
    pub contract: Contract,
    /// The call that broke it, e.g. `power(reboot, hard, [#2, #9, #1, #0])`.
    pub call: String,
    /// What was seen instead.
    pub detail: String,
}

impl Violation {
    /// A violation of `contract` by `call`.
    pub fn new(contract: Contract, call: &str, detail: impl Into<String>) -> Self {
        Violation {
            contract,
            call: call.to_string(),
            detail: detail.into(),
        }
    }
}

/// Result of a conformance check.
pub type Checked = Result<(), Violation>;

/// The nodes a subject is checked on: nodes the backend has and one it does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nodes {
    /// Nodes the backend has (at least two, to see the order of outcomes).
    pub known: Vec<NodeId>,
    /// A node the backend does not have.
    pub unknown: NodeId,
}

impl Nodes {
    /// The first `count` nodes of a table of `count` nodes, and the node just past its end.
    pub fn table(count: u32) -> Self {
        Nodes {
            known: (0..count).map(NodeId).collect(),
            unknown: NodeId(count),
        }
    }

    /// The request the suite makes: the known nodes in reverse order with the unknown one second, so
    /// that an implementation that sorts, drops or appends outcomes is seen.
    pub fn mixed(&self) -> Vec<NodeId> {
        let mut request: Vec<NodeId> = self.known.iter().rev().copied().collect();
        request.insert(1.min(request.len()), self.unknown);
        request
    }

    /// Fails unless there are two known nodes and the unknown one is not among them.
    pub(crate) fn validate(&self, what: &str) -> Checked {
        if self.known.len() < 2 || self.known.contains(&self.unknown) {
            return Err(Violation::new(
                Contract::Setup,
                what,
                format!(
                    "needs two known nodes and an unknown one, got {:?} and {}",
                    self.known, self.unknown
                ),
            ));
        }
        Ok(())
    }
}

/// Formats a call on `nodes` for violations: `name(args, [#2, #9, #1])`.
pub(crate) fn call_name(name: &str, args: &str, nodes: &[NodeId]) -> String {
    let list: Vec<String> = nodes.iter().map(NodeId::to_string).collect();
    if args.is_empty() {
        format!("{name}([{}])", list.join(", "))
    } else {
        format!("{name}({args}, [{}])", list.join(", "))
    }
}

/// Checks one outcome per requested node in request order, and a message on every error.
pub fn check_shape<T: Debug>(call: &str, requested: &[NodeId], got: &Outcomes<T>) -> Checked {
    if requested.is_empty() && !got.is_empty() {
        return Err(Violation::new(
            Contract::EmptyList,
            call,
            format!("{} outcomes for no node: {:?}", got.len(), got.0),
        ));
    }
    if got.len() != requested.len() {
        return Err(Violation::new(
            Contract::OneOutcomePerNode,
            call,
            format!(
                "{} outcomes for {} nodes: {:?}",
                got.len(),
                requested.len(),
                got.0
            ),
        ));
    }
    for (i, ((node, outcome), wanted)) in got.iter().zip(requested).enumerate() {
        if node != wanted {
            return Err(Violation::new(
                Contract::OneOutcomePerNode,
                call,
                format!("outcome {i} is for {node}, the request has {wanted} there"),
            ));
        }
        if let Err(e) = outcome
            && e.message.trim().is_empty()
        {
            return Err(Violation::new(
                Contract::ErrorMessage,
                call,
                format!("{node} failed ({}) without a message", e.kind),
            ));
        }
    }
    Ok(())
}

/// What the suite expects of one node's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Success.
    Ok,
    /// A failure of this kind.
    Fails(ErrorKind),
}

/// Checks the shape of `got`, then each node's outcome: `unknown` must fail with
/// [`ErrorKind::Config`], the others as `expect` says (breaking `contract` when not).
pub(crate) fn check_outcomes<T: Debug>(
    call: &str,
    requested: &[NodeId],
    unknown: Option<NodeId>,
    got: &Outcomes<T>,
    expect: Expect,
    contract: Contract,
) -> Checked {
    check_shape(call, requested, got)?;
    for (node, outcome) in got.iter() {
        if Some(*node) == unknown {
            check_unknown(call, *node, outcome)?;
        } else {
            check_one(call, *node, outcome, expect, contract)?;
        }
    }
    Ok(())
}

/// Checks that the unknown `node` failed with [`ErrorKind::Config`] and a message.
pub(crate) fn check_unknown<T: Debug>(call: &str, node: NodeId, outcome: &Outcome<T>) -> Checked {
    match outcome {
        Err(e) if e.message.trim().is_empty() => Err(Violation::new(
            Contract::ErrorMessage,
            call,
            format!("{node} failed ({}) without a message", e.kind),
        )),
        Err(e) if e.kind == ErrorKind::Config => Ok(()),
        other => Err(Violation::new(
            Contract::UnknownNode,
            call,
            format!("unknown node {node} gave {other:?}, not a config error"),
        )),
    }
}

/// Checks one known node's outcome against `expect`.
pub(crate) fn check_one<T: Debug>(
    call: &str,
    node: NodeId,
    outcome: &Outcome<T>,
    expect: Expect,
    contract: Contract,
) -> Checked {
    let fine = match (expect, outcome) {
        (Expect::Ok, Ok(_)) => true,
        (Expect::Fails(kind), Err(e)) => e.kind == kind,
        _ => false,
    };
    if fine {
        return Ok(());
    }
    let wanted = match expect {
        Expect::Ok => "success".to_string(),
        Expect::Fails(kind) => format!("a failure of kind {kind}"),
    };
    Err(Violation::new(
        contract,
        call,
        format!("{node} gave {outcome:?}, expected {wanted}"),
    ))
}

/// Checks that a call on no node returned no outcome.
pub(crate) fn check_empty<T: Debug>(call: &str, got: &Outcomes<T>) -> Checked {
    if got.is_empty() {
        return Ok(());
    }
    Err(Violation::new(
        Contract::EmptyList,
        call,
        format!("{} outcomes for no node: {:?}", got.len(), got.0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeError;

    fn outcomes(pairs: &[(u32, bool)]) -> Outcomes {
        Outcomes(
            pairs
                .iter()
                .map(|&(n, ok)| {
                    let o = if ok {
                        Ok(())
                    } else {
                        Err(NodeError::new(ErrorKind::Config, "unknown node"))
                    };
                    (NodeId(n), o)
                })
                .collect(),
        )
    }

    #[test]
    fn the_mixed_request_reverses_and_inserts_the_unknown_node() {
        let nodes = Nodes::table(3);
        assert_eq!(nodes.mixed(), [NodeId(2), NodeId(3), NodeId(1), NodeId(0)]);
        assert!(nodes.validate("x").is_ok());
        let one = Nodes {
            known: vec![NodeId(0)],
            unknown: NodeId(1),
        };
        assert_eq!(one.validate("x").unwrap_err().contract, Contract::Setup);
    }

    #[test]
    fn shapes_are_checked_in_order() {
        let req = [NodeId(2), NodeId(9), NodeId(1)];
        let good = outcomes(&[(2, true), (9, false), (1, true)]);
        assert!(check_shape("c", &req, &good).is_ok());
        let swapped = outcomes(&[(9, false), (2, true), (1, true)]);
        let short = outcomes(&[(2, true), (9, false)]);
        for bad in [swapped, short] {
            let v = check_shape("c", &req, &bad).unwrap_err();
            assert_eq!(v.contract, Contract::OneOutcomePerNode, "{v}");
        }
        let v = check_shape("c", &[], &good).unwrap_err();
        assert_eq!(v.contract, Contract::EmptyList);
        let mut silent = good.clone();
        silent.0[1].1 = Err(NodeError::new(ErrorKind::Config, " "));
        let v = check_shape("c", &req, &silent).unwrap_err();
        assert_eq!(v.contract, Contract::ErrorMessage);
    }

    #[test]
    fn unknown_nodes_must_fail_as_config() {
        let req = [NodeId(2), NodeId(9), NodeId(1)];
        let good = outcomes(&[(2, true), (9, false), (1, true)]);
        let check = |o: &Outcomes| {
            check_outcomes("c", &req, Some(NodeId(9)), o, Expect::Ok, Contract::Success)
        };
        assert!(check(&good).is_ok());
        let lying = outcomes(&[(2, true), (9, true), (1, true)]);
        assert_eq!(check(&lying).unwrap_err().contract, Contract::UnknownNode);
        let failing = outcomes(&[(2, false), (9, false), (1, true)]);
        assert_eq!(check(&failing).unwrap_err().contract, Contract::Success);
    }
}

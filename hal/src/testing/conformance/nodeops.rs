//! Contracts of [`NodeOps`]: one outcome per node in order, unknown nodes fail alone, a failing
//! command fails with its documented kind on each node, and a node that cannot be contacted fails
//! alone as [`ErrorKind::Unreachable`] while the others succeed.

use super::{
    Checked, Contract, Expect, Nodes, call_name, check_empty, check_one, check_outcomes,
    check_shape,
};
use crate::{ErrorKind, NodeId, NodeOps, Operation};

/// What a node-operations backend under test can do.
#[derive(Clone, Debug)]
pub struct NodeOpsSubject {
    /// The nodes to check on.
    pub nodes: Nodes,
    /// Operations that succeed on every known node (at least one).
    pub ok: Vec<Operation>,
    /// Operations that fail on every known node, with the kind they fail with.
    pub failing: Vec<(Operation, ErrorKind)>,
    /// A known node that cannot be contacted (no server, powered off), if the backend has one.
    pub down: Option<NodeId>,
}

/// Runs every node-operation contract on `ops`.
pub async fn check_node_ops<O: NodeOps + ?Sized>(ops: &O, subject: &NodeOpsSubject) -> Checked {
    subject.nodes.validate("node operations subject")?;
    let Some(first_ok) = subject.ok.first() else {
        return Err(super::Violation::new(
            Contract::Setup,
            "node operations subject",
            "needs an operation that succeeds",
        ));
    };
    let all = subject
        .ok
        .iter()
        .chain(subject.failing.iter().map(|(op, _)| op));
    for op in all {
        check_empty(&call_name("run", op.name(), &[]), &ops.run(op, &[]).await)?;
    }
    let request = subject.nodes.mixed();
    let unknown = Some(subject.nodes.unknown);
    for op in &subject.ok {
        let call = call_name("run", op.name(), &request);
        let got = ops.run(op, &request).await;
        check_outcomes(
            &call,
            &request,
            unknown,
            &got,
            Expect::Ok,
            Contract::Success,
        )?;
    }
    for (op, kind) in &subject.failing {
        let call = call_name("run", op.name(), &request);
        let got = ops.run(op, &request).await;
        check_outcomes(
            &call,
            &request,
            unknown,
            &got,
            Expect::Fails(*kind),
            Contract::ErrorKind,
        )?;
    }
    if let Some(down) = subject.down {
        let mut request = subject.nodes.known.clone();
        request.insert(1, down);
        let call = call_name("run", first_ok.name(), &request);
        let got = ops.run(first_ok, &request).await;
        check_shape(&call, &request, &got)?;
        for (node, outcome) in got.iter() {
            let (expect, contract) = if *node == down {
                (Expect::Fails(ErrorKind::Unreachable), Contract::ErrorKind)
            } else {
                (Expect::Ok, Contract::Success)
            };
            check_one(&call, *node, outcome, expect, contract)?;
        }
    }
    Ok(())
}

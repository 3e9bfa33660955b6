//! Contracts of [`Broadcast`]: every receiver is reported, once, in the order of the request (the
//! chain's order), unknown nodes fail alone, for every strategy the backend runs.

use super::{Checked, Contract, Expect, Nodes, call_name, check_empty, check_outcomes};
use crate::{Broadcast, ImageSpec, Strategy, WriteTarget};

/// An image that every known node of a broadcast backend under test receives.
#[derive(Clone, Debug)]
pub struct BroadcastSubject {
    /// The nodes to check on (ready to receive).
    pub nodes: Nodes,
    /// The image to send.
    pub image: ImageSpec,
    /// Where the nodes write it.
    pub target: WriteTarget,
    /// The strategies to check.
    pub strategies: Vec<Strategy>,
}

/// Runs every broadcast contract on `broadcast`.
pub async fn check_broadcast<B: Broadcast + ?Sized>(
    broadcast: &B,
    subject: &BroadcastSubject,
) -> Checked {
    subject.nodes.validate("broadcast subject")?;
    let request = subject.nodes.mixed();
    let (image, target) = (&subject.image, &subject.target);
    for &strategy in &subject.strategies {
        let name = strategy.to_string();
        let got = broadcast.broadcast(image, target, strategy, &[]).await;
        check_empty(&call_name("broadcast", &name, &[]), &got)?;
        let call = call_name("broadcast", &name, &request);
        let got = broadcast.broadcast(image, target, strategy, &request).await;
        let unknown = Some(subject.nodes.unknown);
        check_outcomes(
            &call,
            &request,
            unknown,
            &got,
            Expect::Ok,
            Contract::Success,
        )?;
    }
    Ok(())
}

//! Deliberately broken wrappers of a conforming backend: each breaks one contract, so the suite can show
//! it notices (a suite that passed these would be a suite that cannot fail).

use async_trait::async_trait;
use hal::{
    BootProfile, Broadcast, Console, ConsoleStream, ErrorKind, ImageSpec, NetBoot, NodeError,
    NodeId, NodeOps, Operation, Outcome, Outcomes, PortCheck, Power, PowerAction, PowerLevel,
    PowerState, Reachability, Strategy, WriteTarget,
};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How a [`Broken`] backend lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Drops the last outcome.
    DropsLast,
    /// Returns the outcomes in reverse order.
    Reverses,
    /// Adds an outcome for a node nobody asked for (also to an empty request).
    Phantom,
    /// Reports unknown nodes as unreachable instead of a configuration error.
    MisclassifiesUnknown,
    /// Empties every error message.
    Mute,
    /// Rewords every error message.
    Rewords,
    /// Reads every node as on.
    StatusAlwaysOn,
    /// Passes every probe of a known node.
    ProbesAlwaysPass,
    /// Probes only the first port of a check.
    FirstPortOnly,
    /// Turns every node-operation failure of a known node into a success.
    OpsNeverFail,
    /// Gives consoles whose shutdown never ends.
    ConsoleNeverCloses,
}

/// A backend that forwards to `inner` and then applies `fault`.
pub struct Broken<T: ?Sized> {
    /// The conforming backend.
    pub inner: Arc<T>,
    /// The lie.
    pub fault: Fault,
}

impl<T: ?Sized> Broken<T> {
    /// `inner` with `fault`.
    pub fn new(inner: Arc<T>, fault: Fault) -> Self {
        Broken { inner, fault }
    }

    /// Applies the error faults to one error.
    fn tamper_error(&self, e: &mut NodeError) {
        match self.fault {
            Fault::MisclassifiesUnknown if e.kind == ErrorKind::Config => {
                e.kind = ErrorKind::Unreachable;
            }
            Fault::Mute => e.message.clear(),
            Fault::Rewords => e.message = "failed".into(),
            _ => {}
        }
    }

    /// Applies the shape and error faults to any outcomes.
    fn tamper<V>(&self, mut outcomes: Outcomes<V>) -> Outcomes<V> {
        match self.fault {
            Fault::DropsLast => {
                outcomes.0.pop();
            }
            Fault::Reverses => outcomes.0.reverse(),
            Fault::Phantom => {
                let phantom = NodeError::new(ErrorKind::Config, "phantom");
                outcomes.0.push((NodeId(7777), Err(phantom)));
            }
            Fault::MisclassifiesUnknown | Fault::Mute | Fault::Rewords => {
                for (_, outcome) in &mut outcomes.0 {
                    if let Err(e) = outcome {
                        self.tamper_error(e);
                    }
                }
            }
            _ => {}
        }
        outcomes
    }
}

#[async_trait]
impl<T: Power + ?Sized> Power for Broken<T> {
    async fn power(&self, action: PowerAction, level: PowerLevel, nodes: &[NodeId]) -> Outcomes {
        self.tamper(self.inner.power(action, level, nodes).await)
    }

    async fn status(&self, nodes: &[NodeId]) -> Outcomes<PowerState> {
        let got = self.tamper(self.inner.status(nodes).await);
        if self.fault != Fault::StatusAlwaysOn {
            return got;
        }
        Outcomes(
            got.into_iter()
                .map(|(n, o)| (n, o.map(|_| PowerState::On)))
                .collect(),
        )
    }
}

#[async_trait]
impl<T: NetBoot + ?Sized> NetBoot for Broken<T> {
    async fn set_profile(&self, nodes: &[NodeId], profile: &BootProfile) -> Outcomes {
        self.tamper(self.inner.set_profile(nodes, profile).await)
    }
}

#[async_trait]
impl<T: NodeOps + ?Sized> NodeOps for Broken<T> {
    async fn run(&self, op: &Operation, nodes: &[NodeId]) -> Outcomes {
        let got = self.tamper(self.inner.run(op, nodes).await);
        match self.fault {
            Fault::OpsNeverFail => succeed_known(got),
            _ => got,
        }
    }
}

#[async_trait]
impl<T: Reachability + ?Sized> Reachability for Broken<T> {
    async fn probe(&self, nodes: &[NodeId], check: &PortCheck) -> Outcomes {
        let got = match self.fault {
            Fault::ProbesAlwaysPass => succeed_known(self.inner.probe(nodes, check).await),
            Fault::FirstPortOnly => {
                let first = PortCheck {
                    up: check.up.iter().take(1).copied().collect(),
                    down: Vec::new(),
                };
                self.inner.probe(nodes, &first).await
            }
            _ => self.inner.probe(nodes, check).await,
        };
        self.tamper(got)
    }
}

#[async_trait]
impl<T: Broadcast + ?Sized> Broadcast for Broken<T> {
    async fn broadcast(
        &self,
        image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        nodes: &[NodeId],
    ) -> Outcomes {
        self.tamper(self.inner.broadcast(image, target, strategy, nodes).await)
    }
}

#[async_trait]
impl<T: Console + ?Sized> Console for Broken<T> {
    async fn attach(&self, node: NodeId) -> Outcome<Box<dyn ConsoleStream>> {
        let stream = self.inner.attach(node).await.map_err(|mut e| {
            self.tamper_error(&mut e);
            e
        })?;
        match self.fault {
            Fault::ConsoleNeverCloses => Ok(Box::new(Stuck(stream))),
            _ => Ok(stream),
        }
    }
}

/// Every failure but a configuration error (an unknown node) turned into a success.
fn succeed_known(got: Outcomes) -> Outcomes {
    let pass = |o: Outcome| match o {
        Err(e) if e.kind == ErrorKind::Config => Err(e),
        _ => Ok(()),
    };
    Outcomes(got.into_iter().map(|(n, o)| (n, pass(o))).collect())
}

/// A console stream whose shutdown never completes.
struct Stuck(Box<dyn ConsoleStream>);

impl AsyncRead for Stuck {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stuck {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Pending
    }
}

//! Console: attach to a node's serial console.
//!
//! A real backend runs the configured console command (`conman`, `ipmitool sol activate`) or connects to
//! a console socket, and returns a byte stream. The simulator returns a stream that answers like a login
//! prompt of the environment the node runs.

pub mod command;

use crate::node::NodeId;
use crate::outcome::Outcome;
use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

/// A bidirectional console byte stream.
pub trait ConsoleStream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> ConsoleStream for T {}

/// Opens node consoles.
#[async_trait]
pub trait Console: Send + Sync {
    /// Attaches to the console of `node`. Shutting the stream down does not hang, dropping it releases
    /// the console (a console command is killed), and the console can be attached again. A node the
    /// backend does not have fails with [`crate::ErrorKind::Config`].
    async fn attach(&self, node: NodeId) -> Outcome<Box<dyn ConsoleStream>>;
}

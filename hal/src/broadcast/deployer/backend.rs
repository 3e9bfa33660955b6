//! [`KaagentBroadcast`] as the deployer's [`Broadcast`] backend: each broadcast runs on a blocking
//! thread, with the backend's chunk size or the one the deployer chose for it.

use super::{ConfigError, KaagentBroadcast};
use crate::broadcast::{Broadcast, ImageSpec, Strategy, WriteTarget};
use crate::node::NodeId;
use crate::outcome::{ErrorKind, NodeError, Outcomes};
use async_trait::async_trait;

impl KaagentBroadcast {
    /// The same backend sending chunks of `chunk` bytes (refused outside 1..=`MAX_CHUNK_SIZE`).
    pub fn with_chunk_size(&self, chunk: u32) -> Result<Self, ConfigError> {
        let mut this = self.clone();
        this.options.chunk_size = chunk;
        this.validate()?;
        Ok(this)
    }

    /// [`Self::with_chunk_size`], or every node of `nodes` failed with the reason the size was refused.
    pub fn chunked(&self, chunk: u32, nodes: &[NodeId]) -> Result<Self, Outcomes> {
        self.with_chunk_size(chunk).map_err(|e| {
            Outcomes::all(nodes, Err(NodeError::new(ErrorKind::Config, e.to_string())))
        })
    }
}

#[async_trait]
impl Broadcast for KaagentBroadcast {
    async fn broadcast(
        &self,
        image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        nodes: &[NodeId],
    ) -> Outcomes {
        let this = self.clone();
        let (image, target, list) = (image.clone(), target.clone(), nodes.to_vec());
        tokio::task::spawn_blocking(move || this.run(&image, &target, strategy, &list).outcomes)
            .await
            .unwrap_or_else(|e| {
                Outcomes::all(
                    nodes,
                    Err(NodeError::new(
                        ErrorKind::Transfer,
                        format!("broadcast task: {e}"),
                    )),
                )
            })
    }

    async fn broadcast_chunked(
        &self,
        image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        chunk: u32,
        nodes: &[NodeId],
    ) -> Outcomes {
        match self.chunked(chunk, nodes) {
            Ok(this) => this.broadcast(image, target, strategy, nodes).await,
            Err(refused) => refused,
        }
    }
}

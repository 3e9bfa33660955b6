//! Serial consoles of simulated nodes: an in-memory duplex stream whose far end prints a banner with
//! the node's name and the system it runs (a login prompt, or a note that nothing is running), then
//! echoes every line it receives. A powered-off node has no console.

use super::SimCluster;
use super::state::Env;
use async_trait::async_trait;
use hal::{Console, ConsoleStream, ErrorKind, NodeError, NodeId, Outcome};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tracing::debug;

/// Buffer size of the console pipe.
const PIPE_BUFFER: usize = 4096;

/// What the console of `short` prints first when the node runs `env` (`None` = down).
fn banner(short: &str, env: Option<Env>) -> String {
    match env {
        Some(env) => format!("{} {short} ttyS0\n\n{short} login: ", env.banner()),
        None => format!("[{short}: no system is running (booting, halted or crashed)]\n"),
    }
}

/// Serves the node side of a console: the banner, then an echo of each input line.
async fn serve(far: DuplexStream, banner: String) {
    let (read, mut write) = tokio::io::split(far);
    if write.write_all(banner.as_bytes()).await.is_err() {
        return;
    }
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if write
            .write_all(format!("{line}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

#[async_trait]
impl Console for SimCluster {
    async fn attach(&self, node: NodeId) -> Outcome<Box<dyn ConsoleStream>> {
        let i = self.index(node)?;
        let t = self.now();
        let (powered, env) = {
            let st = self.lock();
            (st[i].powered, st[i].env_at(t))
        };
        if !powered {
            let message = format!("{}: the node is powered off", self.name(i));
            return Err(NodeError::new(ErrorKind::Unreachable, message));
        }
        let (near, far) = tokio::io::duplex(PIPE_BUFFER);
        tokio::spawn(serve(far, banner(self.nodes[i].short_name(), env)));
        debug!(node = %self.nodes[i].name, env = env.map_or("down", Env::name), "simulated console attached");
        Ok(Box::new(near))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn banners_name_node_and_system() {
        assert_eq!(
            banner("node-1", Some(Env::Production)),
            "Debian GNU/Linux 12 node-1 ttyS0\n\nnode-1 login: "
        );
        assert!(
            banner("node-1", Some(Env::Deploy))
                .starts_with("Kadeploy deployment environment node-1")
        );
        assert!(banner("node-1", None).contains("no system is running"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_far_end_echoes_lines() {
        let (mut near, far) = tokio::io::duplex(PIPE_BUFFER);
        tokio::spawn(serve(far, "hello\n".to_string()));
        near.write_all(b"root\n").await.unwrap();
        let mut buf = vec![0; 11];
        near.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, b"hello\nroot\n");
    }
}

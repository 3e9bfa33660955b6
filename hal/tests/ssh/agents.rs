//! The broadcast's token handed over SSH ([`AgentsOverSsh`]): a `kaagent` on the node's address that
//! only knows its token file, an OpenSSH node that gets the token written there, and a node without
//! SSH that must fail before any image is sent to it.

use crate::harness::{Lab, s};
use hal::broadcast::deployer::{Agent, KaagentBroadcast, Options};
use hal::broadcast::over_ssh::AgentsOverSsh;
use hal::{Broadcast, ErrorKind, ImageKind, ImageSpec, NodeId, Strategy, WriteTarget};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The agent binary built by cargo for this test.
const KAAGENT: &str = env!("CARGO_BIN_EXE_kaagent");

/// A `kaagent` process, killed by PID on drop.
pub struct AgentProc(Child);

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `kaagent` on `addr`, writing under `root` and reading its token from `token_file` (which
/// does not exist yet: only the deployer's SSH step writes it).
pub fn start_agent(addr: SocketAddr, root: &str, token_file: &str) -> AgentProc {
    let child = Command::new(KAAGENT)
        .args(["--listen", &addr.to_string(), "--root", root])
        .args(["--token-file", token_file])
        .env("KAAGENT_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start kaagent");
    let agent = AgentProc(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
        assert!(
            Instant::now() < deadline,
            "kaagent on {addr} did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    agent
}

/// Node 0 (OpenSSH on 127.0.0.2, started by the caller) gets the token over SSH and the image from
/// its agent; node 1 (127.0.0.9, no SSH server, no agent) fails with the SSH step's error; the token
/// file is gone after the broadcast.
pub async fn token_handed_over_ssh(lab: &Lab) {
    let root = lab.path("agent-root");
    std::fs::create_dir_all(&root).unwrap();
    let token_file = s(&lab.path("agent.token"));
    let port = TcpListener::bind("127.0.0.2:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 2], port));
    let _agent = start_agent(addr, &s(&root), &token_file);

    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let image_path = lab.path("image.raw");
    std::fs::write(&image_path, &data).unwrap();
    let image = ImageSpec {
        path: s(&image_path),
        kind: ImageKind::Dd,
        compression: "none".into(),
        size: data.len() as u64,
        uncompressed_size: None,
    };
    let target = WriteTarget {
        device: "/disk.img".into(),
        extraction_dir: "/mnt".into(),
    };
    let agents = [(0u32, "127.0.0.2"), (1, "127.0.0.9")].map(|(i, ip)| {
        let agent = Agent {
            name: format!("node-{i}.lab"),
            addr: SocketAddr::new(ip.parse().unwrap(), port),
            switch: None,
        };
        (NodeId(i), agent)
    });
    let inner = KaagentBroadcast::new(agents, Options::default());
    let ops = Arc::new(lab.ops(&["127.0.0.2", "127.0.0.9"]));
    let broadcast = AgentsOverSsh::new(inner, ops, &token_file, port).unwrap();

    let out = broadcast
        .broadcast(&image, &target, Strategy::Chain, &[NodeId(0), NodeId(1)])
        .await;
    assert_eq!(out.ok_nodes(), vec![NodeId(0)], "{out:?}");
    let (node, err) = &out.failures()[0];
    assert_eq!(
        (*node, err.kind),
        (NodeId(1), ErrorKind::Unreachable),
        "{err}"
    );
    let written = std::fs::read(root.join("disk.img")).unwrap();
    assert!(written == data, "the node wrote other data");
    assert!(
        !std::path::Path::new(&token_file).exists(),
        "the token file stays on the node after the broadcast"
    );
}

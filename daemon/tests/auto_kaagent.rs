//! BroadcastEnvAuto on the real broadcast backend (issue 14, item 8): the engine's auto `send_environment`
//! asks the simulator's planner, then hands the chosen strategy and chunk size to `KaagentBroadcast`,
//! which streams a dd image to `kaagent` agents on loopback (127.0.0.x, one thread each, in this process);
//! every node writes the image, and the backend was asked exactly the planner's strategy and chunk size
//! (a 3 MiB image to 2 nodes: the swarm with 4 MiB chunks on the test's parameters). Without a planner the step falls back to the fault-tolerant chain with the backend's
//! chunk size and says so in the log. Before, the real backend had no way to take a chunk size per
//! broadcast and the engine knew no `Auto` broadcast.

use async_trait::async_trait;
use hal::broadcast::deployer::{Agent, KaagentBroadcast, Options};
use hal::broadcast::node_agent::{self, AgentConfig};
use hal::broadcast::token::AgentToken;
use hal::{Broadcast, ImageKind, ImageSpec, NodeId, Outcomes, Strategy, WriteTarget};
use kadeploy::config::load_dir;
use kadeploy::engine::context::{Context, Windows};
use kadeploy::engine::exec::auto::show_chunk;
use kadeploy::engine::exec::{self, action::Action};
use kadeploy::engine::planner::{BroadcastPlanner, PlanNode, PlanRequest};
use kadeploy::output::{LogLine, Output};
use simulator::cluster::SimCluster;
use simulator::params::SimParams;
use simulator::planner::SimPlanner;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bytes of the test image.
const IMAGE_SIZE: u64 = 3 * (1 << 20) + 777;

/// What the engine asked of the real backend: (strategy, chunk size when one was given).
type Calls = Arc<Mutex<Vec<(Strategy, Option<u32>)>>>;

/// The real backend, recording what it was asked before doing it.
struct Recording {
    inner: KaagentBroadcast,
    calls: Calls,
}

#[async_trait]
impl Broadcast for Recording {
    async fn broadcast(
        &self,
        image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        nodes: &[NodeId],
    ) -> Outcomes {
        self.calls.lock().expect("calls").push((strategy, None));
        self.inner.broadcast(image, target, strategy, nodes).await
    }

    async fn broadcast_chunked(
        &self,
        image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        chunk: u32,
        nodes: &[NodeId],
    ) -> Outcomes {
        self.calls
            .lock()
            .expect("calls")
            .push((strategy, Some(chunk)));
        self.inner
            .broadcast_chunked(image, target, strategy, chunk, nodes)
            .await
    }
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `n` agents on 127.0.0.2… (threads of this process serving until it ends), each under `root/node-<i>`,
/// and the token they accept.
fn agents(root: &Path, n: usize) -> (Vec<SocketAddr>, AgentToken) {
    let token = AgentToken::generate().expect("random token");
    let token_file = root.join("agent.token");
    std::fs::write(&token_file, format!("{}\n", token.secret())).expect("token file");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).expect("mode");
    let addrs = (0..n)
        .map(|i| {
            let listener = TcpListener::bind(("127.0.0.".to_string() + &(2 + i).to_string(), 0))
                .expect("bind a loopback address");
            let addr = listener.local_addr().expect("address");
            let dir = root.join(format!("node-{i}"));
            std::fs::create_dir_all(&dir).expect("node dir");
            let config = AgentConfig {
                root: Some(dir),
                token_file: token_file.clone(),
                ..AgentConfig::default()
            };
            std::thread::spawn(move || node_agent::run(listener, config));
            addr
        })
        .collect();
    (addrs, token)
}

/// Runs BroadcastEnvAuto's send_environment of `image` on 2 agents, with `planner` or none: the
/// outcomes, the backend's calls and the log.
fn auto_broadcast(
    planner: Option<SimPlanner>,
    name: &str,
) -> (Outcomes, Vec<(Strategy, Option<u32>)>, String) {
    let root =
        Scratch(std::env::temp_dir().join(format!("kadeploy-auto-{name}-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&root.0);
    std::fs::create_dir_all(&root.0).expect("scratch");
    let data: Vec<u8> = (0..IMAGE_SIZE as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let image_path = root.0.join("image.raw");
    std::fs::write(&image_path, &data).expect("image");
    let (addrs, token) = agents(&root.0, 2);
    let nodes = vec![NodeId(0), NodeId(1)];
    let options = Options {
        report_timeout: Duration::from_secs(30),
        ..Options::default()
    };
    let kaagent = KaagentBroadcast::new(
        addrs.iter().enumerate().map(|(i, &addr)| {
            (
                NodeId(i as u32),
                Agent {
                    name: format!("node-{}", i + 1),
                    addr,
                    switch: None,
                },
            )
        }),
        options,
    )
    .with_token(token);
    let calls = Calls::default();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../simulator/config/sim300");
    let loaded = load_dir(&sample).unwrap_or_else(|e| panic!("{e}"));
    let cluster = Arc::new(loaded.config.clusters[0].clone());
    let server = Arc::new(loaded.config.server.clone());
    let sim =
        Arc::new(SimCluster::new(cluster.nodes.clone(), SimParams::default(), 1).expect("sim"));
    let mut drivers = sim.drivers();
    drivers.broadcast = Arc::new(Recording {
        inner: kaagent,
        calls: calls.clone(),
    });
    let lines = Arc::new(Mutex::new(String::new()));
    let sink_lines = lines.clone();
    let output = Output::with_sink(
        Box::new(move |l: &LogLine| {
            let mut all = sink_lines.lock().expect("log");
            all.push_str(&l.text);
            all.push('\n');
        }),
        false,
    );
    let windows = Arc::new(Windows::new(&server));
    let mut ctx = Context::new(drivers, server, cluster, windows, output);
    ctx.planner = planner.map(|p| Arc::new(p) as _);
    let image = ImageSpec {
        path: image_path.display().to_string(),
        kind: ImageKind::Dd,
        compression: "none".into(),
        size: data.len() as u64,
        uncompressed_size: Some(data.len() as u64),
    };
    let target = WriteTarget {
        device: "/disk.img".into(),
        extraction_dir: "/mnt".into(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcomes = runtime.block_on(exec::run(
        &ctx,
        Action::AutoBroadcast { image, target },
        &nodes,
    ));
    for i in 0..2 {
        let written = std::fs::read(root.0.join(format!("node-{i}/disk.img"))).unwrap_or_default();
        assert!(
            written == data,
            "node {i} wrote {} bytes, not the image",
            written.len()
        );
    }
    let calls = calls.lock().expect("calls").clone();
    let log = lines.lock().expect("log").clone();
    (outcomes, calls, log)
}

#[test]
fn the_real_backend_runs_the_planners_strategy_and_chunk_size() {
    let mut params = SimParams::default();
    params.disk.write_rate = 1e12;
    params.disk.decompress_rate = 1e12;
    params.network.server_bandwidth = 10.0 * params.network.bandwidth;
    let planner = SimPlanner::new(params);
    let expected = planner
        .plan(&PlanRequest {
            cluster: "sim".into(),
            nodes: (0..2)
                .map(|i| PlanNode {
                    index: i,
                    name: format!("node-{}.sim.kadeploy", i + 1),
                    switch: None,
                })
                .collect(),
            image_size: IMAGE_SIZE,
            ratio: Some(1.0),
        })
        .expect("a plan");
    let (outcomes, calls, log) = auto_broadcast(Some(planner), "planned");
    assert!(outcomes.failures().is_empty(), "{outcomes:?}\n{log}");
    assert_eq!(
        calls,
        [(expected.strategy, Some(expected.chunk))],
        "the backend was asked the planner's choice: {log}"
    );
    let chose = format!(
        "auto: chose {} with chunk {}, predicted ",
        expected.strategy,
        show_chunk(expected.chunk)
    );
    assert!(log.contains(&chose), "{chose}\n{log}");
    assert!(log.contains("auto: measured "), "{log}");
}

#[test]
fn without_a_planner_the_real_backend_runs_the_fallback() {
    let (outcomes, calls, log) = auto_broadcast(None, "fallback");
    assert!(outcomes.failures().is_empty(), "{outcomes:?}\n{log}");
    assert_eq!(calls, [(Strategy::FaultTolerantChain, None)], "{log}");
    assert!(
        log.contains(
            "has no broadcast planner; falling back to ft-chain with the backend's chunk size"
        ),
        "{log}"
    );
}

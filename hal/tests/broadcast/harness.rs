//! Test harness: `kaagent` processes on loopback (one 127.0.0.x address each) sharing a token file,
//! images, hashes, clean-up.

use hal::broadcast::deployer::{Agent, KaagentBroadcast, Options};
use hal::broadcast::token::AgentToken;
use hal::{ImageKind, ImageSpec, NodeId, WriteTarget};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The agent binary built by cargo for this test.
pub const KAAGENT: &str = env!("CARGO_BIN_EXE_kaagent");

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh directory under /tmp (or /dev/shm when `tmpfs`).
    pub fn new(name: &str) -> Self {
        let base = if Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        };
        let d = PathBuf::from(base).join(format!("kabcast-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch dir");
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running agent process, killed (by PID) on drop.
pub struct AgentProc {
    /// The process.
    pub child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The token it accepts.
    pub token: AgentToken,
}

/// A deployment's token and the root-only file holding it (as the deployer writes it over SSH).
#[derive(Clone)]
pub struct TokenFile {
    /// The token.
    pub token: AgentToken,
    /// The file (mode 0600).
    pub path: PathBuf,
}

impl TokenFile {
    /// A fresh token written to `dir/agent.token`, or the one already there.
    pub fn in_dir(dir: &Path) -> TokenFile {
        let path = dir.join("agent.token");
        if let Ok(token) = AgentToken::from_file(&path) {
            return TokenFile { token, path };
        }
        let token = AgentToken::generate().expect("random token");
        TokenFile::write(&path, &token);
        TokenFile { token, path }
    }

    /// Writes `token` to `path`, readable by its owner only.
    pub fn write(path: &Path, token: &AgentToken) {
        std::fs::write(path, format!("{}\n", token.secret())).expect("write the token");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .expect("token file mode");
    }
}

impl AgentProc {
    /// Kills the agent now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free TCP port on `ip`.
pub fn free_port(ip: [u8; 4]) -> SocketAddr {
    let l = TcpListener::bind(SocketAddr::from((ip, 0))).expect("bind a free port");
    l.local_addr().expect("local addr")
}

/// Starts `n` agents on 127.0.0.2, 127.0.0.3, …, agent `i` writing under `<root>/node-<i>`.
pub fn start_agents(n: usize, root: &Path) -> Vec<AgentProc> {
    (0..n)
        .map(|i| {
            let addr = free_port([127, 0, 0, 2 + i as u8]);
            let dir = root.join(format!("node-{i}"));
            std::fs::create_dir_all(&dir).expect("node dir");
            let mut cmd = Command::new(KAAGENT);
            cmd.arg("--root").arg(&dir);
            spawn_agent(cmd, addr, &TokenFile::in_dir(root))
        })
        .collect()
}

/// Starts an agent with `cmd` (the binary, or a wrapper such as `ip netns exec`) listening on `addr`
/// and accepting the token of `token`.
pub fn spawn_agent(mut cmd: Command, addr: SocketAddr, token: &TokenFile) -> AgentProc {
    let child = cmd
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--token-file")
        .arg(&token.path)
        .env(
            "KAAGENT_LOG",
            std::env::var("KAAGENT_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .spawn()
        .expect("start kaagent");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
        assert!(
            Instant::now() < deadline,
            "kaagent on {addr} did not start listening"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    AgentProc {
        child,
        addr,
        token: token.token.clone(),
    }
}

/// Logs of the server side on stderr when `KABCAST_LOG` is set (a tracing filter).
pub fn trace() {
    if let Ok(filter) = std::env::var("KABCAST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// The backend over `agents` (holding the token of the first), node ids 0..n.
pub fn backend(agents: &[AgentProc], options: Options) -> (KaagentBroadcast, Vec<NodeId>) {
    trace();
    let nodes: Vec<NodeId> = (0..agents.len() as u32).map(NodeId).collect();
    let list = agents.iter().enumerate().map(|(i, a)| {
        (
            NodeId(i as u32),
            Agent {
                name: format!("node-{i}"),
                addr: a.addr,
                switch: None,
            },
        )
    });
    let mut b = KaagentBroadcast::new(list, options);
    if let Some(a) = agents.first() {
        b = b.with_token(a.token.clone());
    }
    (b, nodes)
}

/// Pseudo-random bytes (incompressible enough), deterministic.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A dd image spec for `path`.
pub fn dd_image(path: &Path, compression: &str, size: u64) -> ImageSpec {
    ImageSpec {
        path: path.display().to_string(),
        kind: ImageKind::Dd,
        compression: compression.into(),
        size,
        uncompressed_size: None,
    }
}

/// The same target for every node (agents started with `--root` keep them apart).
pub fn target(device: &Path, dir: &Path) -> WriteTarget {
    WriteTarget {
        device: device.display().to_string(),
        extraction_dir: dir.display().to_string(),
    }
}

/// BLAKE3 of a file's contents, hex.
pub fn file_hash(path: &Path) -> String {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    blake3::hash(&data).to_hex().to_string()
}

/// [`file_hash`] of each path, in order, on as many threads as the host has cores (the testbed's
/// checks of N copies of a 256 MiB image, between runs: they only cost the run's wall time).
pub fn file_hashes(paths: &[PathBuf]) -> Vec<String> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |c| c.get())
        .clamp(1, paths.len().max(1));
    let mut out = vec![String::new(); paths.len()];
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..paths.len())
                        .step_by(threads)
                        .map(|i| (i, file_hash(&paths[i])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (i, hash) in h.join().expect("a hashing thread") {
                out[i] = hash;
            }
        }
    });
    out
}

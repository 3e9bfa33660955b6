//! The deployer's side of the real broadcast backend: the server streams the chunked, verified image
//! to `kaagent` node agents (see [`super::node_agent`]) over TCP with any [`Strategy`] (chain, k-ary
//! tree, fault-tolerant chain, unicast) and collects one outcome per node from the agents' reports.
//! Every connection to an agent is authenticated with the deployment's token
//! ([`KaagentBroadcast::with_token`]), which the agents must hold already.

use super::forward::Forwarder;
use super::handshake::Sealer;
use super::mcast_send::{self, McastOptions, McastSender, status_interval};
use super::plan::{plan, swarm_peers, topology_order};
use super::store::{ChunkSource, FileSource};
use super::swarm_node;
mod backend;
mod collect;

use super::tally::Tally;
pub use super::tally::{BroadcastReport, NodeTimeline};
use super::token::AgentToken;
use super::wire::{self, ForwardPlan, Hello, MulticastPlan, NodePlan, Reply, SwarmPlan, Tuning};
use crate::broadcast::{ImageSpec, Strategy, WriteTarget};
use crate::image::{DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, Manifest};
use crate::node::NodeId;
use crate::outcome::{ErrorKind, NodeError};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The default port of `kaagent`.
pub const DEFAULT_PORT: u16 = 25301;

/// Settings of the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// Timeouts, buffers, hooks (sent to every node).
    pub tuning: Tuning,
    /// A node that reports nothing for this long is timed out.
    pub report_timeout: Duration,
    /// Once a node has sent a heartbeat (an agent sends one every [`wire::HEARTBEAT`] while its job is
    /// quiet), silence this long times it out: a node powered off mid-job closes no connection,
    /// and its neighbours should not wait `report_timeout` for it.
    pub heartbeat_timeout: Duration,
    /// Test hook: the server alone flips a byte of the first transmission of this chunk.
    pub source_corrupt_chunk: Option<u64>,
    /// Test hook: the server alone caps the send rate of each of its links (bytes/s).
    pub source_pace: Option<u64>,
    /// The multicast strategy's group, rate and hops.
    pub multicast: McastOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            chunk_size: DEFAULT_CHUNK_SIZE,
            tuning: Tuning {
                stall_timeout_ms: 3000,
                connect_timeout_ms: 3000,
                upstream_timeout_ms: 30_000,
                window: 32,
                socket_buffer: 4 << 20,
                corrupt_chunk: None,
                pace: None,
                cut_through: true,
                drop_one_in: None,
            },
            report_timeout: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(5),
            source_corrupt_chunk: None,
            source_pace: None,
            multicast: McastOptions::default(),
        }
    }
}

/// A node the backend can reach: its agent's address and, when known, its switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    /// Name for logs.
    pub name: String,
    /// The agent's address.
    pub addr: SocketAddr,
    /// The switch the node hangs off (nodes of one switch are kept adjacent in chains).
    pub switch: Option<u32>,
}

type ManifestCache = Mutex<BTreeMap<(String, u64, Option<SystemTime>, u32), Arc<Manifest>>>;

/// Broadcast through `kaagent` node agents over TCP. Cheap to clone (shared state).
#[derive(Clone)]
pub struct KaagentBroadcast {
    agents: Arc<BTreeMap<NodeId, Agent>>,
    options: Options,
    manifests: Arc<ManifestCache>,
    token: Option<AgentToken>,
}

/// A configuration the backend refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("kaagent broadcast: {0}")]
pub struct ConfigError(pub String);

impl KaagentBroadcast {
    /// A backend reaching `agents`.
    pub fn new(agents: impl IntoIterator<Item = (NodeId, Agent)>, options: Options) -> Self {
        KaagentBroadcast {
            agents: Arc::new(agents.into_iter().collect()),
            options,
            manifests: Arc::default(),
            token: None,
        }
    }

    /// The same backend authenticating to the agents with `token` (the agents must hold it: the
    /// deployer hands it to them first, over SSH). Without a token, every node fails.
    pub fn with_token(mut self, token: AgentToken) -> Self {
        self.token = Some(token);
        self
    }

    /// Checks the settings without touching any node.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let o = &self.options;
        if o.chunk_size == 0 || o.chunk_size > MAX_CHUNK_SIZE {
            return Err(ConfigError(format!(
                "chunk size {} out of 1..={MAX_CHUNK_SIZE}",
                o.chunk_size
            )));
        }
        if o.tuning.window < 4 {
            return Err(ConfigError(format!(
                "window of {} chunks, at least 4 needed",
                o.tuning.window
            )));
        }
        if o.tuning.stall_timeout_ms == 0 || o.tuning.connect_timeout_ms == 0 {
            return Err(ConfigError("timeouts must be positive".into()));
        }
        Ok(())
    }

    /// The manifest of the image at `path`, built once per file version and chunk size.
    pub fn manifest(&self, path: &str) -> Result<Arc<Manifest>, NodeError> {
        let meta = std::fs::metadata(path)
            .map_err(|e| NodeError::new(ErrorKind::Config, format!("image {path}: {e}")))?;
        let key = (
            path.to_string(),
            meta.len(),
            meta.modified().ok(),
            self.options.chunk_size,
        );
        if let Some(m) = self
            .manifests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(Arc::clone(m));
        }
        let file = std::fs::File::open(path)
            .map_err(|e| NodeError::new(ErrorKind::Config, format!("image {path}: {e}")))?;
        let m = Arc::new(Manifest::build(
            std::io::BufReader::with_capacity(1 << 20, file),
            self.options.chunk_size,
        )?);
        self.manifests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, Arc::clone(&m));
        Ok(m)
    }

    /// Runs a broadcast to its end (blocking) and returns the details. Phases: prepare (settings,
    /// token, manifest), plan (topology order, links), connect (sealed job hello), set up (each node's
    /// plan and the manifest), stream (feed the first links, collect every node's reports).
    pub fn run(
        &self,
        image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        nodes: &[NodeId],
    ) -> BroadcastReport {
        let start = Instant::now();
        let mut tally = Tally::default();
        let job = match self.prepare(image) {
            Ok(job) => job,
            Err(e) => {
                tally.fail_all(nodes, &e);
                return tally.report(nodes, start);
            }
        };
        let ordered = self.order(nodes, &mut tally);
        let live = self.connect(&ordered, &job, &mut tally);
        let addrs: Vec<SocketAddr> = live.iter().map(|(n, _)| self.agents[n].addr).collect();
        let p = plan(strategy, &addrs);
        let multicast = match strategy {
            Strategy::Multicast => match self.multicast_socket(&live) {
                Ok(m) => Some(m),
                Err(e) => {
                    let err = NodeError::new(ErrorKind::Config, format!("multicast: {e}"));
                    let all: Vec<NodeId> = live.iter().map(|(n, _)| *n).collect();
                    tally.fail_all(&all, &err);
                    return tally.report(nodes, start);
                }
            },
            _ => None,
        };
        let setup = Setup {
            job: &job,
            image,
            target,
            fault_tolerant: p.fault_tolerant,
            multicast: multicast.as_ref().map(|m| (m, status_interval(live.len()))),
            swarm: (strategy == Strategy::Swarm).then_some(&addrs[..]),
        };
        let ready = self.set_up(&setup, live.into_iter().zip(p.nodes), &mut tally);
        tracing::info!(job = %job.id, %strategy, nodes = ready.len(), chunks = job.manifest.chunk_count(), "broadcast starts");
        let feed = match multicast {
            Some(socket) => Feed::Multicast(socket),
            None if strategy == Strategy::Swarm => Feed::Seed,
            None => Feed::Links(p.source),
        };
        self.stream(&job, &image.path, feed, ready, &mut tally);
        tally.report(nodes, start)
    }

    /// The multicast sender's socket, on the address this host reaches the nodes from.
    fn multicast_socket(&self, live: &[(NodeId, Control)]) -> std::io::Result<UdpSocket> {
        let local = live
            .first()
            .map(|(_, (conn, _))| conn.local_addr())
            .transpose()?
            .map(|a| a.ip());
        match local {
            Some(IpAddr::V4(ip)) => mcast_send::bind(ip, &self.options.multicast),
            Some(IpAddr::V6(ip)) => Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!("IPv6 ({ip}) is not supported"),
            )),
            None => Err(std::io::Error::other("no node to send to")),
        }
    }

    /// Checks the settings, takes the token and builds the manifest; the job they make.
    fn prepare(&self, image: &ImageSpec) -> Result<Job, NodeError> {
        self.validate()
            .map_err(|e| NodeError::new(ErrorKind::Config, e.to_string()))?;
        let token = self.token.clone().ok_or_else(|| {
            NodeError::new(
                ErrorKind::Config,
                "kaagent broadcast: no token for the agents",
            )
        })?;
        let manifest = self.manifest(&image.path)?;
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let id = format!(
            "{}-{}-{nanos}",
            &manifest.image_hash.to_hex()[..16],
            std::process::id()
        );
        Ok(Job {
            id,
            token,
            manifest,
        })
    }

    /// The nodes that have an agent, in topology order (nodes of one switch adjacent); the others fail.
    fn order(&self, nodes: &[NodeId], tally: &mut Tally) -> Vec<NodeId> {
        let known: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|n| {
                let ok = self.agents.contains_key(n);
                if !ok {
                    tally.fail(
                        *n,
                        ErrorKind::Config,
                        format!("no agent address for node {n}"),
                    );
                }
                ok
            })
            .collect();
        let switches: Vec<Option<u32>> = known.iter().map(|n| self.agents[n].switch).collect();
        topology_order(&switches)
            .into_iter()
            .map(|i| known[i])
            .collect()
    }

    /// Opens every node's control connection and announces the job (sealed: the agent checks the
    /// token at once), all nodes at once; unreachable nodes fail and leave the plan.
    fn connect(&self, ordered: &[NodeId], job: &Job, tally: &mut Tally) -> Vec<(NodeId, Control)> {
        let connect_timeout = Duration::from_millis(self.options.tuning.connect_timeout_ms);
        let report_timeout = self.options.report_timeout;
        type Opened = std::io::Result<(TcpStream, Sealer, Instant)>;
        let opened: Vec<(NodeId, Opened)> = std::thread::scope(|s| {
            let handles: Vec<_> = ordered
                .iter()
                .map(|n| {
                    let addr = self.agents[n].addr;
                    let (token, job) = (job.token.clone(), job.id.clone());
                    (
                        *n,
                        s.spawn(move || -> std::io::Result<(TcpStream, Sealer, Instant)> {
                            let mut conn = TcpStream::connect_timeout(&addr, connect_timeout)?;
                            conn.set_read_timeout(Some(report_timeout))?;
                            // The hello, plan and manifest are written one after the other: with
                            // Nagle's algorithm each waited for the agent's delayed acknowledgement
                            // of the one before (40 ms per node, the nodes set up one by one).
                            conn.set_nodelay(true)?;
                            let mut sealer = Sealer::start(&mut conn, token)?;
                            sealer.send(&mut conn, &Hello::Job { job })?;
                            Ok((conn, sealer, Instant::now()))
                        }),
                    )
                })
                .collect();
            handles
                .into_iter()
                .map(|(n, h)| {
                    (
                        n,
                        h.join()
                            .unwrap_or_else(|_| Err(std::io::Error::other("panicked"))),
                    )
                })
                .collect()
        });
        let mut live = Vec::new();
        for (n, r) in opened {
            match r {
                Ok((conn, sealer, at)) => {
                    tally.connected(n, at);
                    live.push((n, (conn, sealer)));
                }
                Err(e) => {
                    let msg = format!("agent {}: {e}", self.agents[&n].addr);
                    tally.fail(n, ErrorKind::Unreachable, msg);
                }
            }
        }
        live
    }

    /// Sends every connected node its part of the plan and the manifest, all nodes at once; the
    /// nodes that answered ready, with their control connections, in plan order. The others fail
    /// with what they said or why not.
    fn set_up(
        &self,
        setup: &Setup<'_>,
        live: impl Iterator<Item = ((NodeId, Control), Vec<ForwardPlan>)>,
        tally: &mut Tally,
    ) -> Vec<(NodeId, TcpStream, usize)> {
        let encoded = setup.job.manifest.encode();
        let plans: Vec<(usize, NodeId, Control, NodePlan)> = live
            .enumerate()
            .map(|(index, ((n, control), forwards))| {
                let plan = self.node_plan(setup, n, index, forwards);
                (index, n, control, plan)
            })
            .collect();
        type Answer = std::io::Result<Reply>;
        let answers: Vec<(usize, NodeId, TcpStream, Answer)> = std::thread::scope(|s| {
            let handles: Vec<_> = plans
                .into_iter()
                .map(|(index, n, (mut conn, mut sealer), node_plan)| {
                    let encoded = &encoded;
                    s.spawn(move || {
                        let sent = sealer
                            .send(&mut conn, &node_plan)
                            .and_then(|()| sealer.send_raw(&mut conn, encoded));
                        // An agent that refused the job (a wrong token, a target it may not
                        // write) says why before closing, even when it closed before the whole
                        // set-up was sent.
                        let r = match (wire::recv::<Reply>(&mut conn), sent) {
                            (Ok(reply), _) => Ok(reply),
                            (Err(_), Err(e)) | (Err(e), Ok(())) => Err(e),
                        };
                        (index, n, conn, r)
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut ready = Vec::new();
        for (index, n, conn, r) in answers {
            match r {
                Ok(Reply::Ready) => ready.push((n, conn, index)),
                Ok(other) => tally.fail(
                    n,
                    ErrorKind::Transfer,
                    format!("agent refused the job: {other:?}"),
                ),
                Err(e) => tally.fail(n, ErrorKind::Unreachable, format!("agent set-up: {e}")),
            }
        }
        ready
    }

    /// Node `n`'s part of the job, at `index` in the plan, forwarding along `forwards`.
    fn node_plan(
        &self,
        setup: &Setup<'_>,
        n: NodeId,
        index: usize,
        forwards: Vec<ForwardPlan>,
    ) -> NodePlan {
        let multicast = setup.multicast.and_then(|(socket, status_ms)| {
            Some(MulticastPlan {
                group: self.options.multicast.group,
                sender: socket.local_addr().ok()?,
                node: u32::try_from(index).ok()?,
                status_ms,
                fec: self.options.multicast.fec,
            })
        });
        let swarm = setup.swarm.map(|addrs| SwarmPlan {
            peers: swarm_peers(addrs, index),
            node: u32::try_from(index).unwrap_or(u32::MAX),
            nodes: u32::try_from(addrs.len()).unwrap_or(u32::MAX),
        });
        NodePlan {
            job: setup.job.id.clone(),
            node: self.agents[&n].name.clone(),
            kind: setup.image.kind,
            compression: setup.image.compression.clone(),
            device: setup.target.device.clone(),
            extraction_dir: setup.target.extraction_dir.clone(),
            forwards,
            fault_tolerant: setup.fault_tolerant,
            tuning: self.options.tuning.clone(),
            multicast,
            swarm,
        }
    }

    /// Feeds the first links or the multicast group from the image file at `path` and collects the
    /// reports of the `ready` nodes (with their indices in the set-up) until each one is done.
    fn stream(
        &self,
        job: &Job,
        path: &str,
        feed: Feed,
        ready: Vec<(NodeId, TcpStream, usize)>,
        tally: &mut Tally,
    ) {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                let err = NodeError::new(ErrorKind::Config, format!("image {path}: {e}"));
                for (n, _, _) in &ready {
                    tally.outcomes.insert(*n, Err(err.clone()));
                }
                return;
            }
        };
        let chunks: Arc<dyn ChunkSource> =
            Arc::new(FileSource::new(file, Arc::clone(&job.manifest)));
        let t0 = Instant::now();
        let mut source_tuning = self.options.tuning.clone();
        if self.options.source_corrupt_chunk.is_some() {
            source_tuning.corrupt_chunk = self.options.source_corrupt_chunk;
        }
        if self.options.source_pace.is_some() {
            source_tuning.pace = self.options.source_pace;
        }
        let source = match feed {
            Feed::Links(links) => links,
            Feed::Seed => {
                let addrs: Vec<SocketAddr> =
                    ready.iter().map(|(n, _, _)| self.agents[n].addr).collect();
                let ready = ready.into_iter().map(|(n, c, _)| (n, c)).collect();
                let stop = AtomicBool::new(false);
                std::thread::scope(|s| {
                    let manifest = Arc::clone(&job.manifest);
                    let (stop, addrs, tuning) = (&stop, &addrs, &self.options.tuning);
                    s.spawn(move || {
                        swarm_node::seed(&job.id, &job.token, manifest, chunks, addrs, tuning, stop)
                    });
                    self.collect_all(ready, tally, t0);
                    stop.store(true, Ordering::SeqCst);
                });
                return;
            }
            Feed::Multicast(socket) => {
                let mut receivers = vec![false; ready.iter().map(|r| r.2 + 1).max().unwrap_or(0)];
                for (_, _, i) in &ready {
                    receivers[*i] = true;
                }
                let sender = McastSender {
                    socket,
                    options: self.options.multicast.clone(),
                    job: job.id.clone(),
                    token: job.token.clone(),
                    manifest: Arc::clone(&job.manifest),
                    source: Arc::clone(&chunks),
                    receivers,
                    window: u64::from(self.options.tuning.window),
                    status_every: Duration::from_millis(status_interval(ready.len())),
                    stall: Duration::from_millis(self.options.tuning.stall_timeout_ms.max(1)),
                };
                let ready = ready.into_iter().map(|(n, c, _)| (n, c)).collect();
                let r = std::thread::scope(|s| {
                    let h = s.spawn(move || sender.run());
                    self.collect_all(ready, tally, t0);
                    h.join().unwrap_or_default()
                });
                tally.repaired += r.repaired;
                tally.fec_sent += r.fec_sent;
                tally.lost.extend(
                    r.lost
                        .into_iter()
                        .map(|(i, w)| ("server".to_string(), format!("multicast receiver {i}"), w)),
                );
                return;
            }
        };
        let ready: Vec<(NodeId, TcpStream)> = ready.into_iter().map(|(n, c, _)| (n, c)).collect();
        std::thread::scope(|s| {
            let feeders: Vec<_> = source
                .into_iter()
                .map(|f| {
                    let fw = Forwarder {
                        job: job.id.clone(),
                        from: "server".into(),
                        plan: f,
                        source: Arc::clone(&chunks),
                        consumer: 0,
                        total: job.manifest.chunk_count(),
                        tuning: source_tuning.clone(),
                        successor_have: Arc::new(AtomicU64::new(0)),
                        token: job.token.clone(),
                    };
                    s.spawn(move || fw.run())
                })
                .collect();
            self.collect_all(ready, tally, t0);
            for h in feeders {
                if let Ok(r) = h.join() {
                    tally.lost.extend(
                        r.lost
                            .into_iter()
                            .map(|(a, w)| ("server".to_string(), a.to_string(), w)),
                    );
                }
            }
        });
    }
}

/// How the server feeds a broadcast: the first links of the plan, a multicast group, or the
/// swarm's seed.
enum Feed {
    Links(Vec<ForwardPlan>),
    Multicast(UdpSocket),
    Seed,
}

/// One broadcast's identity: its id (image hash, process, time), the token and the manifest.
struct Job {
    id: String,
    token: AgentToken,
    manifest: Arc<Manifest>,
}

/// A node's control connection and the sealer of what the deployer sends on it.
type Control = (TcpStream, Sealer);

/// What every node's set-up frame shares.
struct Setup<'a> {
    job: &'a Job,
    image: &'a ImageSpec,
    target: &'a WriteTarget,
    fault_tolerant: bool,
    /// Multicast: the sender's socket and the status interval (ms).
    multicast: Option<(&'a UdpSocket, u64)>,
    /// Swarm: every node's agent, in set-up order.
    swarm: Option<&'a [SocketAddr]>,
}

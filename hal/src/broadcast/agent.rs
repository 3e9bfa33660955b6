//! The node agent (`kaagent`): listens for jobs and data connections, and for each job receives the
//! image stream, forwards it to the node's successors while writing it, decompresses, extracts or
//! writes it, verifies it, and reports progress and the node's outcome to the server.
//!
//! Memory is bounded by the window (`Tuning::window` chunks) plus socket and decompressor buffers,
//! whatever the image size.

use super::forward::Forwarder;
use super::receive::{self, Upstream};
use super::store::{ChunkSource, ChunkStore};
use super::wire::{self, Hello, NodePlan, Reply, Report};
use crate::image::{Compression, ImageError, ImageErrorKind, ImageVerifier, Manifest, Sink};
use crate::outcome::NodeError;
use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A job's entry point for data connections.
struct JobLink {
    incoming: Mutex<Sender<TcpStream>>,
    current: Arc<Mutex<Option<TcpStream>>>,
}

type Registry = Arc<Mutex<BTreeMap<String, Arc<JobLink>>>>;

/// Serves jobs on `listener` until the process ends (or accepting fails).
///
/// With `root`, the targets of every job (device, extraction directory) are taken relative to it:
/// several agents on one machine (tests, benchmarks) then write to separate places.
pub fn run(listener: TcpListener, root: Option<PathBuf>) -> io::Result<()> {
    tracing::info!(addr = ?listener.local_addr().ok(), "kaagent listening");
    let registry: Registry = Arc::default();
    let root = Arc::new(root);
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e)
                if e.kind() == io::ErrorKind::ConnectionAborted
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        let (registry, root) = (Arc::clone(&registry), Arc::clone(&root));
        std::thread::spawn(move || handle(conn, &registry, root.as_deref()));
    }
    Ok(())
}

fn handle(mut conn: TcpStream, registry: &Registry, root: Option<&Path>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let hello = match wire::recv::<Hello>(&mut conn) {
        Ok(h) => h,
        Err(e) => {
            tracing::debug!(error = %e, "bad hello");
            return;
        }
    };
    match hello {
        Hello::Data { job, from } => {
            // The server sets every node up before the data flows; wait a little for a late set-up.
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let link = registry
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&job)
                    .cloned();
                if let Some(link) = link {
                    tracing::info!(%job, %from, "upstream connected");
                    let _ = conn.set_read_timeout(None);
                    if let Some(old) = link
                        .current
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take()
                    {
                        let _ = old.shutdown(std::net::Shutdown::Both);
                    }
                    let _ = link
                        .incoming
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .send(conn);
                    return;
                }
                if Instant::now() > deadline {
                    let _ = wire::send(
                        &mut conn,
                        &Reply::Refused {
                            reason: format!("unknown job {job}"),
                        },
                    );
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Hello::Job(mut plan) => {
            if let Some(root) = root {
                plan.device = rooted(root, &plan.device);
                plan.extraction_dir = rooted(root, &plan.extraction_dir);
            }
            let manifest = wire::read_raw(&mut conn)
                .map_err(|e| ImageError::io(ImageErrorKind::Io, "reading the manifest", &e))
                .and_then(|b| Manifest::decode(&b));
            let manifest = match manifest {
                Ok(m) => Arc::new(m),
                Err(e) => {
                    let _ = wire::send(
                        &mut conn,
                        &Reply::Refused {
                            reason: e.to_string(),
                        },
                    );
                    return;
                }
            };
            let (tx, rx) = mpsc::channel();
            let link = Arc::new(JobLink {
                incoming: Mutex::new(tx),
                current: Arc::default(),
            });
            registry
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(plan.job.clone(), Arc::clone(&link));
            let job = plan.job.clone();
            let _ = conn.set_read_timeout(None);
            if wire::send(&mut conn, &Reply::Ready).is_ok() {
                run_job(plan, manifest, conn, rx, &link);
            }
            registry
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&job);
        }
    }
}

enum Event {
    Written(Result<u64, ImageError>),
    Forwarded(super::forward::ForwardResult),
}

fn run_job(
    plan: NodePlan,
    manifest: Arc<Manifest>,
    mut control: TcpStream,
    rx: mpsc::Receiver<TcpStream>,
    link: &JobLink,
) {
    let start = Instant::now();
    let _span = tracing::info_span!("job", job = %plan.job, node = %plan.node).entered();
    let store = Arc::new(ChunkStore::new(
        plan.tuning.window as usize,
        1 + plan.forwards.len(),
    ));
    let (events, event_rx) = mpsc::channel();
    let refetched = Arc::new(AtomicU64::new(0));
    let successors: Vec<Arc<AtomicU64>> = plan
        .forwards
        .iter()
        .map(|f| {
            Arc::new(AtomicU64::new(if f.candidates.is_empty() {
                u64::MAX
            } else {
                0
            }))
        })
        .collect();
    {
        let (store, manifest, plan, events) = (
            Arc::clone(&store),
            Arc::clone(&manifest),
            plan.clone(),
            events.clone(),
        );
        std::thread::spawn(move || {
            let r = write_image(&plan, &manifest, &store);
            store.drop_consumer(0);
            let _ = events.send(Event::Written(r));
        });
    }
    for (i, f) in plan.forwards.iter().enumerate() {
        let fw = Forwarder {
            job: plan.job.clone(),
            from: plan.node.clone(),
            plan: f.clone(),
            source: Arc::clone(&store) as Arc<dyn ChunkSource>,
            consumer: 1 + i,
            total: manifest.chunk_count(),
            tuning: plan.tuning.clone(),
            successor_have: Arc::clone(&successors[i]),
        };
        let events = events.clone();
        std::thread::spawn(move || {
            let _ = events.send(Event::Forwarded(fw.run()));
        });
    }
    {
        let up = Upstream {
            incoming: rx,
            current: Arc::clone(&link.current),
            successors,
            fault_tolerant: plan.fault_tolerant,
            refetched: Arc::clone(&refetched),
        };
        let (store, manifest, tuning) = (
            Arc::clone(&store),
            Arc::clone(&manifest),
            plan.tuning.clone(),
        );
        std::thread::spawn(move || {
            if let Err(e) = receive::receive(&manifest, &store, &up, &tuning) {
                tracing::warn!(error = %e, "receiving failed");
                store.fail(e);
            }
        });
    }
    drop(events);
    let mut written = false;
    let mut forwarders = plan.forwards.len();
    let mut lost = Vec::new();
    while !(written && forwarders == 0) {
        match event_rx.recv_timeout(Duration::from_millis(500)) {
            Ok(Event::Written(r)) => {
                written = true;
                match &r {
                    Ok(bytes) => tracing::info!(
                        bytes,
                        ms = start.elapsed().as_millis() as u64,
                        "image written and verified"
                    ),
                    Err(e) => tracing::warn!(error = %e, "image not written"),
                }
                let result = r.map_err(NodeError::from);
                let _ = wire::send(
                    &mut control,
                    &Report::Written {
                        result,
                        elapsed_ms: start.elapsed().as_millis() as u64,
                    },
                );
            }
            Ok(Event::Forwarded(f)) => {
                forwarders -= 1;
                lost.extend(f.lost.into_iter().map(|(a, why)| (a.to_string(), why)));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = wire::send(&mut control, &Report::Progress { have: store.have() });
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let refetched = refetched.load(Ordering::SeqCst);
    let _ = wire::send(&mut control, &Report::Done { lost, refetched });
}

/// Reads the verified chunks of `store` in order, as one byte stream, checking the whole image at the end.
struct StoreReader<'a> {
    store: &'a ChunkStore,
    manifest: &'a Manifest,
    verifier: ImageVerifier,
    next: u64,
    chunk: Option<super::store::Chunk>,
    pos: usize,
}

impl BufRead for StoreReader<'_> {
    /// The rest of the current chunk, straight from the window (no copy).
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        loop {
            if self.chunk.as_ref().is_some_and(|c| self.pos < c.len()) {
                break;
            }
            if self.chunk.take().is_some() {
                self.store.release(0, self.next);
            }
            if self.next >= self.manifest.chunk_count() {
                self.verifier
                    .finish(self.manifest)
                    .map_err(io::Error::other)?;
                return Ok(&[]);
            }
            let c = loop {
                match self.store.get(self.next, Duration::from_secs(1)) {
                    Ok(Some(c)) => break c,
                    Ok(None) => continue,
                    Err(e) => return Err(io::Error::other(e)),
                }
            };
            let digest = self.manifest.chunks[self.next as usize];
            self.verifier
                .push(self.next, c.len(), &digest)
                .map_err(io::Error::other)?;
            self.next += 1;
            self.chunk = Some(c);
            self.pos = 0;
        }
        Ok(self.chunk.as_ref().map_or(&[][..], |c| &c[self.pos..]))
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
    }
}

impl Read for StoreReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = buf.len().min(avail.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

fn write_image(
    plan: &NodePlan,
    manifest: &Manifest,
    store: &ChunkStore,
) -> Result<u64, ImageError> {
    let compression: Compression = plan.compression.parse()?;
    let sink = Sink::for_kind(
        plan.kind,
        Path::new(&plan.device),
        Path::new(&plan.extraction_dir),
    )?;
    let reader = StoreReader {
        store,
        manifest,
        verifier: ImageVerifier::new(manifest),
        next: 0,
        chunk: None,
        pos: 0,
    };
    sink.write(compression.decoder(reader)?)
}

fn rooted(root: &Path, path: &str) -> String {
    root.join(path.trim_start_matches('/'))
        .display()
        .to_string()
}

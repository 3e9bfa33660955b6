//! The sending side of one link: connect to a successor, resume from the chunks it holds, stream
//! chunks, go back on a re-fetch request, and (fault-tolerant chain) fail over to the next live node
//! when the successor dies or stalls. Used by the agent for its successors and by the server as source.

use super::handshake::Sealer;
use super::store::ChunkSource;
use super::token::AgentToken;
use super::wire::{self, ForwardPlan, Hello, Reply, Tuning};
use crate::image::frame::{self, Feedback};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What a forwarder reports when it ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardResult {
    /// The successor that received the whole image, if any.
    pub completed: Option<SocketAddr>,
    /// Successors dropped on the way, with why.
    pub lost: Vec<(SocketAddr, String)>,
}

/// One outgoing link.
pub struct Forwarder {
    /// Job id.
    pub job: String,
    /// Who we are (for the successor's logs).
    pub from: String,
    /// Successor and fail-over candidates.
    pub plan: ForwardPlan,
    /// Where chunks come from.
    pub source: Arc<dyn ChunkSource>,
    /// Our consumer slot in `source`.
    pub consumer: usize,
    /// Number of chunks of the image.
    pub total: u64,
    /// Timeouts, buffers, hooks.
    pub tuning: Tuning,
    /// Chunks held by the current successor, for our own upstream acknowledgements
    /// (`u64::MAX` once there is no live successor).
    pub successor_have: Arc<AtomicU64>,
    /// The deployment's token, which the successor checks.
    pub token: AgentToken,
}

#[derive(Default)]
struct Feed {
    have: u64,
    child_have: u64,
    nack: Option<u64>,
    closed: Option<String>,
    last: Option<Instant>,
}

struct Shared {
    feed: Mutex<Feed>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Feed> {
        self.feed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Opens a data-plane TCP connection with large buffers, no Nagle, and a write timeout.
pub fn connect(addr: SocketAddr, tuning: &Tuning) -> std::io::Result<TcpStream> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if tuning.socket_buffer > 0 {
        sock.set_send_buffer_size(tuning.socket_buffer as usize)?;
        sock.set_recv_buffer_size(tuning.socket_buffer as usize)?;
    }
    sock.set_tcp_nodelay(true)?;
    sock.connect_timeout(
        &SockAddr::from(addr),
        Duration::from_millis(tuning.connect_timeout_ms),
    )?;
    Ok(sock.into())
}

/// Sets a stream's buffers and no-delay as [`connect`] does (for accepted connections).
pub fn tune(stream: &TcpStream, tuning: &Tuning) {
    let sock = socket2::SockRef::from(stream);
    if tuning.socket_buffer > 0 {
        let _ = sock.set_send_buffer_size(tuning.socket_buffer as usize);
        let _ = sock.set_recv_buffer_size(tuning.socket_buffer as usize);
    }
    let _ = stream.set_nodelay(true);
}

enum LinkEnd {
    Completed,
    Lost(String),
    SourceFailed(String),
}

impl Forwarder {
    /// Runs the link to its end: the image delivered, or every candidate lost.
    pub fn run(self) -> ForwardResult {
        let mut result = ForwardResult::default();
        for (i, &addr) in self.plan.candidates.iter().enumerate() {
            if i > 0 && !self.plan.failover {
                break;
            }
            match self.serve(addr) {
                LinkEnd::Completed => {
                    result.completed = Some(addr);
                    break;
                }
                LinkEnd::Lost(why) => {
                    tracing::warn!(job = %self.job, from = %self.from, successor = %addr, %why, "successor lost");
                    result.lost.push((addr, why));
                }
                LinkEnd::SourceFailed(why) => {
                    tracing::warn!(job = %self.job, from = %self.from, %why, "source failed, stop forwarding");
                    result.lost.push((addr, format!("not served: {why}")));
                    break;
                }
            }
        }
        self.successor_have.store(u64::MAX, Ordering::SeqCst);
        self.source.drop_consumer(self.consumer);
        result
    }

    fn serve(&self, addr: SocketAddr) -> LinkEnd {
        let mut stream = match connect(addr, &self.tuning) {
            Ok(s) => s,
            Err(e) => return LinkEnd::Lost(format!("connect: {e}")),
        };
        let handshake = Duration::from_millis(self.tuning.connect_timeout_ms.max(1));
        let _ = stream.set_read_timeout(Some(handshake));
        let _ = stream.set_write_timeout(Some(handshake));
        let hello = Hello::Data {
            job: self.job.clone(),
            from: self.from.clone(),
        };
        let have = match Sealer::start(&mut stream, self.token.clone())
            .and_then(|mut sealer| sealer.send(&mut stream, &hello))
            .and_then(|()| wire::recv::<Reply>(&mut stream))
        {
            Ok(Reply::Data { have }) => have.min(self.total),
            Ok(other) => return LinkEnd::Lost(format!("refused: {other:?}")),
            Err(e) => return LinkEnd::Lost(format!("handshake: {e}")),
        };
        if have < self.total && have < self.source.first_available() {
            return LinkEnd::Lost(format!(
                "holds {have} chunks but chunk {} is the oldest still in memory",
                self.source.first_available()
            ));
        }
        self.source.release(self.consumer, have);
        let _ = stream.set_read_timeout(None);
        let _ = stream.set_write_timeout(Some(Duration::from_millis(
            self.tuning.stall_timeout_ms.max(1),
        )));
        let shared = Arc::new(Shared {
            feed: Mutex::new(Feed {
                have,
                child_have: have,
                last: Some(Instant::now()),
                ..Feed::default()
            }),
            changed: Condvar::new(),
        });
        let reader = match stream.try_clone() {
            Ok(r) => r,
            Err(e) => return LinkEnd::Lost(format!("clone: {e}")),
        };
        let feedback = {
            let shared = Arc::clone(&shared);
            let source = Arc::clone(&self.source);
            let successor_have = Arc::clone(&self.successor_have);
            let consumer = self.consumer;
            std::thread::spawn(move || {
                read_feedback(reader, &shared, &*source, consumer, &successor_have)
            })
        };
        self.successor_have.store(have, Ordering::SeqCst);
        let end = self.stream_chunks(&stream, have, &shared);
        let _ = stream.shutdown(std::net::Shutdown::Both);
        let _ = feedback.join();
        end
    }

    fn stream_chunks(&self, stream: &TcpStream, mut cursor: u64, shared: &Shared) -> LinkEnd {
        let stall = Duration::from_millis(self.tuning.stall_timeout_ms.max(1));
        let poll = Duration::from_millis(100).min(stall);
        // Unbuffered: each chunk goes out in one vectored write, straight from the window.
        let mut out = stream;
        let mut corrupted = false;
        let mut end_sent = false;
        let started = Instant::now();
        let mut sent_bytes = 0u64;
        loop {
            let (acked, child_acked, nack, closed, last) = {
                let mut f = shared.lock();
                (
                    f.have,
                    f.child_have,
                    f.nack.take(),
                    f.closed.clone(),
                    f.last,
                )
            };
            if let Some(why) = closed {
                if acked >= self.total && child_acked >= self.total {
                    return LinkEnd::Completed;
                }
                return LinkEnd::Lost(why);
            }
            if let Some(index) = nack {
                tracing::info!(job = %self.job, from = %self.from, index, "re-fetch requested: going back");
                cursor = index.min(self.total);
                end_sent = false;
            }
            let stalled = last.is_some_and(|t| t.elapsed() > stall);
            if acked < cursor && stalled {
                return LinkEnd::Lost(format!(
                    "stalled: no acknowledgement for {} ms",
                    stall.as_millis()
                ));
            }
            if cursor >= self.total {
                if acked >= self.total && child_acked >= self.total {
                    return LinkEnd::Completed;
                }
                if !end_sent {
                    if let Err(e) = out
                        .flush()
                        .and_then(|()| frame::write_end(&mut out, self.total))
                    {
                        return LinkEnd::Lost(format!("send: {e}"));
                    }
                    end_sent = true;
                }
                let f = shared.lock();
                let _unused = shared.changed.wait_timeout(f, poll);
                continue;
            }
            let chunk = match self.source.get(cursor, poll) {
                Ok(Some(c)) => c,
                Ok(None) => {
                    if let Err(e) = out.flush() {
                        return LinkEnd::Lost(format!("send: {e}"));
                    }
                    continue;
                }
                Err(e) => return LinkEnd::SourceFailed(e.to_string()),
            };
            let sent = if self.tuning.corrupt_chunk == Some(cursor) && !corrupted {
                corrupted = true;
                let mut bad = chunk.as_ref().clone();
                if let Some(b) = bad.get_mut(0) {
                    *b ^= 0xff;
                }
                tracing::info!(job = %self.job, from = %self.from, index = cursor, "test hook: corrupting chunk");
                frame::write_chunk(&mut out, cursor, &bad)
            } else {
                frame::write_chunk(&mut out, cursor, &chunk)
            };
            if let Err(e) = sent {
                return LinkEnd::Lost(format!("send: {e}"));
            }
            cursor += 1;
            sent_bytes += chunk.len() as u64;
            if let Some(rate) = self.tuning.pace.filter(|r| *r > 0) {
                let due = Duration::from_secs_f64(sent_bytes as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    let _ = out.flush();
                    std::thread::sleep(wait);
                }
            }
        }
    }
}

fn read_feedback(
    mut reader: TcpStream,
    shared: &Shared,
    source: &dyn ChunkSource,
    consumer: usize,
    successor_have: &AtomicU64,
) {
    loop {
        let msg = frame::read_feedback(&mut reader);
        let mut f = shared.lock();
        match msg {
            Ok(Feedback::Ack { have, child_have }) => {
                // Any acknowledgement shows the successor lives (a full window sends keep-alives).
                f.last = Some(Instant::now());
                f.have = f.have.max(have);
                f.child_have = f.child_have.max(child_have);
                successor_have.store(f.have, Ordering::SeqCst);
                source.release(consumer, f.have.min(f.child_have));
            }
            Ok(Feedback::Nack { index }) => {
                f.nack = Some(index);
                f.last = Some(Instant::now());
            }
            Err(e) => {
                f.closed = Some(format!("connection: {}", e.message));
                drop(f);
                shared.changed.notify_all();
                return;
            }
        }
        drop(f);
        shared.changed.notify_all();
    }
}

//! The sending side of one link: connect to a successor, resume from the chunks it holds, stream
//! chunks (cut-through: a chunk still being received goes out piece by piece as it arrives), go back on a re-fetch request, and (fault-tolerant chain) fail over to the next live node
//! when the successor dies or stalls. Used by the agent for its successors and by the server as source.

use super::handshake::Sealer;
use super::store::{ChunkSource, Fetch};
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
        // Unbuffered: each chunk (or piece) goes out in one write, straight from the window.
        let mut out = stream;
        let mut corrupted = false;
        let mut end_sent = false;
        // The last reception streamed cut-through: never sent twice.
        let mut streamed: Option<u64> = None;
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
            let sent = match self.source.fetch(cursor, streamed, poll) {
                Ok(Fetch::Whole(chunk)) => {
                    self.send_whole(&mut out, cursor, &chunk, &mut corrupted)
                }
                Ok(Fetch::Streaming { seq, len }) => {
                    streamed = Some(seq);
                    self.send_streaming(&mut out, cursor, (seq, len), shared, &mut corrupted)
                }
                Ok(Fetch::Pending) => {
                    if let Err(e) = out.flush() {
                        return LinkEnd::Lost(format!("send: {e}"));
                    }
                    continue;
                }
                Err(e) => return LinkEnd::SourceFailed(e.to_string()),
            };
            match sent {
                Ok(bytes) => sent_bytes += bytes,
                Err(why) => return LinkEnd::Lost(why),
            }
            cursor += 1;
            self.pace(&mut out, started, sent_bytes);
        }
    }

    /// Sleeps as long as the test hook's rate asks for `sent_bytes` sent since `started`.
    fn pace(&self, out: &mut &TcpStream, started: Instant, sent_bytes: u64) {
        if let Some(rate) = self.tuning.pace.filter(|r| *r > 0) {
            let due = Duration::from_secs_f64(sent_bytes as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                let _ = out.flush();
                std::thread::sleep(wait);
            }
        }
    }

    /// Whether the test hook corrupts this transmission of chunk `index` (the first one only).
    fn corrupts(&self, index: u64, corrupted: &mut bool) -> bool {
        if self.tuning.corrupt_chunk == Some(index) && !*corrupted {
            *corrupted = true;
            tracing::info!(job = %self.job, from = %self.from, index, "test hook: corrupting chunk");
            return true;
        }
        false
    }

    /// Sends a whole verified chunk in one vectored write; the bytes sent, or why the link broke.
    fn send_whole(
        &self,
        out: &mut &TcpStream,
        index: u64,
        chunk: &[u8],
        corrupted: &mut bool,
    ) -> Result<u64, String> {
        let sent = if self.corrupts(index, corrupted) {
            let mut bad = chunk.to_vec();
            corrupt(&mut bad);
            frame::write_chunk(out, index, &bad)
        } else {
            frame::write_chunk(out, index, chunk)
        };
        sent.map_err(|e| format!("send: {e}"))?;
        Ok(chunk.len() as u64)
    }

    /// Cut-through: sends chunk `index` while it is being received (reception `seq`, `len` bytes),
    /// each piece as it arrives. A reception that breaks off is completed from the verified chunk
    /// when it is there, else with zeros: the successor finds the hash wrong and asks again.
    fn send_streaming(
        &self,
        out: &mut &TcpStream,
        index: u64,
        (seq, len): (u64, u32),
        shared: &Shared,
        corrupted: &mut bool,
    ) -> Result<u64, String> {
        let poll = Duration::from_millis(100);
        let send_err = |e: std::io::Error| format!("send: {e}");
        frame::write_chunk_header(out, index, len).map_err(send_err)?;
        let mut corrupt_next = self.corrupts(index, corrupted);
        let (mut sent, mut from) = (0usize, 0usize);
        let len = len as usize;
        while sent < len {
            if let Some(why) = shared.lock().closed.clone() {
                return Err(why);
            }
            let got = self.source.pieces(seq, from, poll);
            from += got.pieces.len();
            for piece in &got.pieces {
                let piece = &piece[..piece.len().min(len - sent)];
                if std::mem::take(&mut corrupt_next) {
                    let mut bad = piece.to_vec();
                    corrupt(&mut bad);
                    out.write_all(&bad).map_err(send_err)?;
                } else {
                    out.write_all(piece).map_err(send_err)?;
                }
                sent += piece.len();
            }
            if sent < len && got.end.is_some() && got.pieces.is_empty() {
                let rest = match self.source.get(index, Duration::ZERO) {
                    Ok(Some(chunk)) if chunk.len() == len => chunk[sent..].to_vec(),
                    _ => vec![0u8; len - sent],
                };
                out.write_all(&rest).map_err(send_err)?;
                sent = len;
            }
        }
        Ok(len as u64)
    }
}

/// The test hook's damage: one byte changed (so that two hops' damage never cancels out).
fn corrupt(data: &mut [u8]) {
    if let Some(b) = data.get_mut(0) {
        *b = b.wrapping_add(1);
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

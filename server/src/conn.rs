//! Guards on API connections: bounds on how many are open, in all and from one client address (beyond
//! them, new ones are closed at once), and deadlines on each: the idle keep-alive timeout, the header timeout (slowloris), the body timeout, and
//! a bound on a client that stops reading its reply. The deadlines are enforced by the connection's I/O
//! ([`Watched`]), which learns where the current request stands from the service wrapper ([`Tracked`])
//! and the request body wrapper ([`TrackedBody`]); a deadline that passes fails the read or write, and
//! hyper closes the connection.

use axum::http::Request;
use axum_server::accept::Accept;
use http_body::{Body, Frame, SizeHint};
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// The per-connection deadlines.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// From a request's first byte to its parsed headers.
    pub header: Duration,
    /// From a request's headers to the end of its body.
    pub body: Duration,
    /// With no request in progress, or while a write makes no progress.
    pub idle: Duration,
}

/// Where the connection's requests stand.
#[derive(Debug)]
struct Phase {
    /// Requests handed to the service whose response is not produced yet.
    in_flight: usize,
    /// Request bodies not read to their end yet.
    open_bodies: usize,
    /// When the oldest open body must be complete.
    body_deadline: Option<Instant>,
    /// First byte of a request whose headers are not parsed yet.
    head_since: Option<Instant>,
    /// Last byte read or written, or the last response produced.
    last_progress: Instant,
}

/// State shared by a connection's I/O, its service and its request bodies.
#[derive(Debug)]
struct Shared {
    phase: Mutex<Phase>,
    timeouts: Timeouts,
}

/// Why a deadline closed a connection.
#[derive(Clone, Copy, Debug)]
enum Expired {
    Idle,
    Header,
    Body,
    Stalled,
}

impl Expired {
    fn error(self) -> io::Error {
        let what = match self {
            Expired::Idle => "idle keep-alive timeout",
            Expired::Header => "request header timeout",
            Expired::Body => "request body timeout",
            Expired::Stalled => "the client stopped reading",
        };
        io::Error::new(io::ErrorKind::TimedOut, what)
    }
}

impl Shared {
    fn new(timeouts: Timeouts) -> Shared {
        Shared {
            phase: Mutex::new(Phase {
                in_flight: 0,
                open_bodies: 0,
                body_deadline: None,
                head_since: None,
                last_progress: Instant::now(),
            }),
            timeouts,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The deadline of a pending read: none while a request is handled and its body is complete.
    fn read_deadline(&self) -> Option<(Instant, Expired)> {
        let p = self.lock();
        if let Some(d) = p.body_deadline {
            return Some((d, Expired::Body));
        }
        if p.in_flight > 0 {
            return None;
        }
        Some(match p.head_since {
            Some(t) => (t + self.timeouts.header, Expired::Header),
            None => (p.last_progress + self.timeouts.idle, Expired::Idle),
        })
    }

    /// The deadline of a pending write or flush.
    fn write_deadline(&self) -> (Instant, Expired) {
        (
            self.lock().last_progress + self.timeouts.idle,
            Expired::Stalled,
        )
    }

    fn bytes_read(&self) {
        let mut p = self.lock();
        let now = Instant::now();
        p.last_progress = now;
        if p.in_flight == 0 && p.head_since.is_none() {
            p.head_since = Some(now);
        }
    }

    fn bytes_written(&self) {
        self.lock().last_progress = Instant::now();
    }

    fn request_started(&self, has_body: bool) {
        let mut p = self.lock();
        p.in_flight += 1;
        p.head_since = None;
        if has_body {
            p.open_bodies += 1;
            let deadline = Instant::now() + self.timeouts.body;
            p.body_deadline.get_or_insert(deadline);
        }
    }

    fn request_answered(&self) {
        let mut p = self.lock();
        p.in_flight = p.in_flight.saturating_sub(1);
        p.last_progress = Instant::now();
    }

    fn body_ended(&self) {
        let mut p = self.lock();
        p.open_bodies = p.open_bodies.saturating_sub(1);
        if p.open_bodies == 0 {
            p.body_deadline = None;
        }
    }
}

/// Arms `timer` for `deadline`; ready with the error once it has passed.
fn expiry(
    timer: &mut Pin<Box<Sleep>>,
    (deadline, why): (Instant, Expired),
    cx: &mut Context<'_>,
) -> Poll<io::Error> {
    if timer.deadline() != deadline {
        timer.as_mut().reset(deadline);
    }
    match timer.as_mut().poll(cx) {
        Poll::Ready(()) => {
            tracing::debug!("closing an API connection: {:?}", why);
            Poll::Ready(why.error())
        }
        Poll::Pending => Poll::Pending,
    }
}

/// How many connections may be open.
#[derive(Clone, Copy, Debug)]
pub struct Slots {
    /// In all.
    pub total: usize,
    /// From one client address.
    pub per_address: usize,
}

/// Open connections by client address.
type PerAddress = Arc<Mutex<BTreeMap<IpAddr, usize>>>;

/// One connection counted for its client address until dropped.
struct AddressSlot {
    table: PerAddress,
    addr: IpAddr,
}

impl AddressSlot {
    /// Counts a connection from `addr`, unless `max` are open already.
    fn take(table: &PerAddress, addr: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut t = table.lock().unwrap_or_else(|e| e.into_inner());
        let open = t.entry(addr).or_insert(0);
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(AddressSlot {
            table: table.clone(),
            addr,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = t.get_mut(&self.addr) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                t.remove(&self.addr);
            }
        }
    }
}

/// The slots a connection holds until its I/O is dropped.
struct Held {
    _total: OwnedSemaphorePermit,
    _address: Option<AddressSlot>,
}

/// A connection's I/O with its deadlines; holds the connection's slots until dropped.
pub struct Watched<S> {
    inner: S,
    shared: Arc<Shared>,
    read_timer: Pin<Box<Sleep>>,
    write_timer: Pin<Box<Sleep>>,
    _slots: Held,
}

impl<S> Watched<S> {
    fn new(inner: S, shared: Arc<Shared>, slots: Held) -> Watched<S> {
        let now = Instant::now();
        Watched {
            inner,
            shared,
            read_timer: Box::pin(tokio::time::sleep_until(now)),
            write_timer: Box::pin(tokio::time::sleep_until(now)),
            _slots: slots,
        }
    }

    fn write_stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let deadline = self.shared.write_deadline();
        expiry(&mut self.write_timer, deadline, cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.shared.bytes_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.shared.read_deadline() {
                Some(deadline) => expiry(&mut this.read_timer, deadline, cx).map(Err),
                None => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.shared.bytes_written();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.write_stalled(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.shared.bytes_written();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.write_stalled(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.write_stalled(cx).map(Err),
            done => done,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_shutdown(cx) {
            Poll::Pending => self.write_stalled(cx).map(Err),
            done => done,
        }
    }
}

/// Marks the request answered when the handler's future ends, however it ends.
struct Answered(Arc<Shared>);

impl Drop for Answered {
    fn drop(&mut self) {
        self.0.request_answered();
    }
}

/// Marks a request body complete when it is read to its end or dropped.
struct BodyOpen(Arc<Shared>);

impl Drop for BodyOpen {
    fn drop(&mut self) {
        self.0.body_ended();
    }
}

/// A request body that reports when it ends.
pub struct TrackedBody<B> {
    inner: B,
    open: Option<BodyOpen>,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_))))
            || this.inner.is_end_stream()
        {
            this.open = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The connection's service: tells the connection when a request starts and when it is answered.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, B> tower::Service<Request<B>> for Tracked<S>
where
    S: tower::Service<Request<TrackedBody<B>>>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    B: Body + Unpin,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let has_body = !req.body().is_end_stream();
        self.shared.request_started(has_body);
        let answered = Answered(self.shared.clone());
        let open = has_body.then(|| BodyOpen(self.shared.clone()));
        let future = self
            .inner
            .call(req.map(|inner| TrackedBody { inner, open }));
        Box::pin(async move {
            let response = future.await;
            drop(answered);
            response
        })
    }
}

/// An acceptor that bounds the open connections (a connection over a bound is closed at once) and puts
/// each accepted one under [`Watched`] deadlines, after `inner` (TCP options, TLS) accepted it.
#[derive(Clone)]
pub struct Guard<A> {
    inner: A,
    total: Arc<Semaphore>,
    per_address: PerAddress,
    per_address_max: usize,
    timeouts: Timeouts,
    refusals: Arc<Mutex<Option<std::time::Instant>>>,
}

impl<A> Guard<A> {
    /// At most `slots` connections at once, each with `timeouts`.
    pub fn new(inner: A, slots: Slots, timeouts: Timeouts) -> Guard<A> {
        Guard {
            inner,
            total: Arc::new(Semaphore::new(slots.total.clamp(1, Semaphore::MAX_PERMITS))),
            per_address: Arc::new(Mutex::new(BTreeMap::new())),
            per_address_max: slots.per_address.max(1),
            timeouts,
            refusals: Arc::new(Mutex::new(None)),
        }
    }

    /// The slots of a connection from `peer`, unless a bound is reached.
    fn slots(&self, peer: Option<IpAddr>) -> Option<Held> {
        let address = match peer {
            Some(addr) => Some(AddressSlot::take(
                &self.per_address,
                addr,
                self.per_address_max,
            )?),
            None => None,
        };
        let total = self.total.clone().try_acquire_owned().ok()?;
        Some(Held {
            _total: total,
            _address: address,
        })
    }

    /// Logs a refusal, at most once a minute.
    fn refused(&self) {
        let mut last = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            *last = Some(std::time::Instant::now());
            tracing::warn!(
                "too many API connections: new connections are closed \
                 (limits/max_connections, limits/max_connections_per_address)"
            );
        }
    }
}

/// The future of [`Guard::accept`].
type Accepted<T, S> = Pin<Box<dyn Future<Output = io::Result<(Watched<T>, S)>> + Send>>;

impl<A, S> Accept<TcpStream, S> for Guard<A>
where
    A: Accept<TcpStream, Tracked<S>>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Watched<A::Stream>;
    type Service = A::Service;
    type Future = Accepted<A::Stream, A::Service>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let peer = stream.peer_addr().ok().map(|a| a.ip().to_canonical());
        let Some(slots) = self.slots(peer) else {
            self.refused();
            drop(stream);
            return Box::pin(std::future::ready(Err(io::Error::other(
                "too many connections",
            ))));
        };
        let shared = Arc::new(Shared::new(self.timeouts));
        let tracked = Tracked {
            inner: service,
            shared: shared.clone(),
        };
        let accepted = self.inner.accept(stream, tracked);
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            Ok((Watched::new(stream, shared, slots), service))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts() -> Timeouts {
        Timeouts {
            header: Duration::from_secs(10),
            body: Duration::from_secs(30),
            idle: Duration::from_secs(60),
        }
    }

    #[test]
    fn address_slots_are_counted_and_released() {
        let table = PerAddress::default();
        let a: IpAddr = "10.0.0.1".parse().expect("address");
        let b: IpAddr = "10.0.0.2".parse().expect("address");
        let first = AddressSlot::take(&table, a, 2).expect("first");
        let second = AddressSlot::take(&table, a, 2).expect("second");
        assert!(AddressSlot::take(&table, a, 2).is_none(), "a third from a");
        let other = AddressSlot::take(&table, b, 2).expect("from b");
        drop(first);
        let third = AddressSlot::take(&table, a, 2).expect("a slot was released");
        drop((second, third, other));
        assert!(table.lock().expect("table").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_request() {
        let s = Shared::new(timeouts());
        let start = Instant::now();
        let (d, why) = s.read_deadline().expect("idle");
        assert!(matches!(why, Expired::Idle));
        assert_eq!(d, start + Duration::from_secs(60));
        tokio::time::advance(Duration::from_secs(5)).await;
        s.bytes_read();
        let (d, why) = s.read_deadline().expect("header");
        assert!(matches!(why, Expired::Header));
        assert_eq!(d, start + Duration::from_secs(15));
        s.request_started(true);
        let (d, why) = s.read_deadline().expect("body");
        assert!(matches!(why, Expired::Body));
        assert_eq!(d, start + Duration::from_secs(35));
        s.body_ended();
        assert!(s.read_deadline().is_none(), "no deadline while handled");
        tokio::time::advance(Duration::from_secs(100)).await;
        s.request_answered();
        let (d, why) = s.read_deadline().expect("idle again");
        assert!(matches!(why, Expired::Idle));
        assert_eq!(d, start + Duration::from_secs(165));
        assert_eq!(s.write_deadline().0, d);
    }
}

//! Serving HTTP connections so that slow, idle or greedy clients cannot hold the server.
//!
//! `poem::Server` accepts as fast as the kernel hands out connections (and on an accept error
//! such as `EMFILE` retries at once, spinning a core), keeps every connection for as long as the
//! client likes, and builds hyper without a timer, so hyper's header-read timeout is off. Its
//! `idle_timeout` is reset by any read, so a client dripping one header line every few seconds
//! keeps it alive. This module serves poem endpoints through hyper directly instead, because
//! only there can one see when a request head has been parsed (the service is called), when
//! its body is read, and when its response has gone out, which the limits need:
//!
//! - **Header-read timeout** ([`ConnectionLimits::header_read_timeout`]): a request head must
//!   be complete this long after the accept (first request) or after the first byte that
//!   follows the previous response (every later request on a kept-alive connection). Sending
//!   more bytes does not extend it. (hyper's own header timer is not used: it starts as soon
//!   as hyper waits for the next request, so it would also cut idle kept-alive connections.)
//! - **Body timeout** ([`ConnectionLimits::body_timeout`]): a request body must be complete
//!   this long after its head. Reading it later fails with [`BodyTimedOut`], which the API
//!   answers with 408 and a close. A body nobody reads (a route that takes none, a request
//!   refused before its body) is never waited for: hyper closes the connection instead.
//! - **Write timeout** ([`ConnectionLimits::write_timeout`]): a response must be handed to the
//!   socket within this long of the handler returning it, however slowly the client reads.
//! - Between those, a request is in flight and no timer runs, so a handler may wait on a
//!   provider as long as it needs.
//! - **Idle timeout** ([`ConnectionLimits::idle_timeout`]): a kept-alive connection with
//!   nothing in flight is closed this long after its last response, unless a new request
//!   starts (and then the header timeout applies).
//! - **Per-client cap** ([`ConnectionLimits::max_connections_per_client`]): one IP address
//!   (IPv6: one /64, what one host is usually given) holds at most this many connections; a
//!   connection over it is answered 429 at once and closed, before it takes a slot. Trusted
//!   proxies are exempt: many clients share their address, and the proxy must limit them.
//! - **Connection cap** ([`ConnectionLimits::max_connections`]): at the cap a new connection
//!   waits for a slot, and the kept-alive connection idle the longest is closed to free one.
//!   With none idle, new clients wait in the kernel's backlog until a connection closes,
//!   rather than being accepted and dropped.
//! - **Accept back-off**: after an accept error (`EMFILE`, `ENFILE`, `ENOBUFS`, ...) one warning
//!   is logged and the loop pauses, 10 ms at first, doubling up to 1 s, back to 10 ms after the
//!   next success.
//!
//! On shutdown the loop stops accepting, asks every connection to finish what is in flight and
//! close, and drops whatever is still open after the grace period. The timeouts keep running
//! meanwhile, so a slow client cannot hold the stop up.
//!
//! Not limited here: a request body's size (the API caps it) and protocol upgrades, which are
//! not offered.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use poem::Endpoint;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Instant, Sleep};

use crate::config::{ServerConfig, TrustedProxies};

/// HTTP/2 settings `poem::Server` used, kept so that h2c clients see no change.
const H2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
const H2_MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;

/// How long clients may take and how many connections are served at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to send a complete request head, counted from the accept for the first request
    /// and from the first byte after the previous response for later ones.
    pub header_read_timeout: Duration,
    /// Time to send a complete request body, counted from the end of its head.
    pub body_timeout: Duration,
    /// Time to take a complete response, counted from when the handler returned it.
    pub write_timeout: Duration,
    /// Time a kept-alive connection may wait, after its last response, before starting the
    /// next request.
    pub idle_timeout: Duration,
    /// Connections served at once; beyond it new ones wait in the kernel's backlog. At least 1.
    pub max_connections: usize,
    /// Connections one client address (an IPv6 /64) may hold; more are refused. At least 1.
    pub max_connections_per_client: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self::of(&ServerConfig::default())
    }
}

impl ConnectionLimits {
    /// The limits `server.*` sets.
    pub fn of(server: &ServerConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(server.header_timeout_seconds),
            body_timeout: Duration::from_secs(server.body_timeout_seconds),
            write_timeout: Duration::from_secs(server.write_timeout_seconds),
            idle_timeout: Duration::from_secs(server.idle_timeout_seconds),
            max_connections: server.max_connections,
            max_connections_per_client: server.max_connections_per_ip,
        }
    }

    /// How often a connection looks at its deadlines: a quarter of the shortest timeout,
    /// between 10 ms and 1 s.
    fn tick(&self) -> Duration {
        (self
            .header_read_timeout
            .min(self.idle_timeout)
            .min(self.write_timeout)
            / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}

/// Who is let in beyond the connection cap: the per-client cap, its exemptions, and what a
/// refused connection is told.
#[derive(Debug, Clone)]
pub struct Admission {
    /// Addresses exempt from the per-client cap (`server.trusted_proxies`).
    pub exempt: TrustedProxies,
    /// A complete HTTP/1.1 response written, best effort, to a connection over the cap
    /// before it is closed.
    pub refusal: Bytes,
}

/// The error a request body's read fails with once the body timeout has passed (inside an
/// `io::Error` of kind `TimedOut`).
#[derive(Debug)]
pub struct BodyTimedOut(pub Duration);

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_secs() {
            1 if self.0.subsec_nanos() == 0 => {
                f.write_str("the request body did not arrive within 1 second")
            }
            n if self.0.subsec_nanos() == 0 => {
                write!(f, "the request body did not arrive within {n} seconds")
            }
            _ => write!(
                f,
                "the request body did not arrive within {} ms",
                self.0.as_millis()
            ),
        }
    }
}

impl std::error::Error for BodyTimedOut {}

/// Serves `endpoint` on `listener` within `limits` until `shutdown` completes, then lets open
/// connections finish for up to `grace` and drops the rest.
pub(crate) async fn serve<E>(
    listener: TcpListener,
    endpoint: E,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
    limits: ConnectionLimits,
    admission: Admission,
) -> io::Result<()>
where
    E: Endpoint + 'static,
{
    let local = listener.local_addr()?;
    let endpoint = Arc::new(endpoint);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let clients = Arc::new(Clients::new(
        limits.max_connections_per_client.max(1),
        admission.exempt,
    ));
    let live = Arc::new(Live::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut backoff = Backoff::default();
    tokio::pin!(shutdown);

    loop {
        while let Some(done) = connections.try_join_next() {
            report(done);
        }
        let (stream, remote) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = accept_with_backoff(|| listener.accept(), &mut backoff) => accepted,
        };
        // Over its own cap, a client is refused before it can take a slot or push anyone out.
        let Some(client) = clients.admit(remote.ip()) else {
            refuse(&stream, &admission.refusal);
            continue;
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Full: free the slot of the connection idle the longest, if any is idle;
                // otherwise this client waits, and the next ones in the backlog.
                live.close_idlest();
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                }
            }
        };
        let clock = Arc::new(Clock::new(limits));
        let registration = live.register(clock.clone());
        connections.spawn(serve_connection(Connection {
            stream,
            local,
            remote,
            limits,
            clock,
            endpoint: endpoint.clone(),
            stop: stop_rx.clone(),
            _held: Held {
                _slot: slot,
                _client: client,
                _registration: registration,
            },
        }));
    }

    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(grace, async {
        while let Some(done) = connections.join_next().await {
            report(done);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "grace period over: closing connections still in use"
        );
        connections.shutdown().await;
    }
    Ok(())
}

fn report(done: Result<(), JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!("a connection task panicked: {e}");
    }
}

/// Writes the refusal if the socket takes it at once (it never waits on the client), then
/// closes the connection.
fn refuse(stream: &TcpStream, refusal: &[u8]) {
    let _ = stream.try_write(refusal);
}

/// How many connections each client address holds.
struct Clients {
    limit: usize,
    exempt: TrustedProxies,
    open: Mutex<HashMap<ClientKey, usize>>,
    /// Refusals since the last warning, and when that was: one warning a minute at most.
    refused: AtomicU64,
    warned: Mutex<Option<Instant>>,
}

/// What the per-client cap counts by: an IPv4 address, or the /64 of an IPv6 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(std::net::Ipv4Addr),
    V6Prefix(u64),
}

impl ClientKey {
    fn of(ip: IpAddr) -> ClientKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientKey::V4(v4),
            IpAddr::V6(v6) => ClientKey::V6Prefix((u128::from(v6) >> 64) as u64),
        }
    }
}

impl Clients {
    const WARN_EVERY: Duration = Duration::from_secs(60);

    fn new(limit: usize, exempt: TrustedProxies) -> Clients {
        Clients {
            limit,
            exempt,
            open: Mutex::default(),
            refused: AtomicU64::new(0),
            warned: Mutex::new(None),
        }
    }

    /// Counts one more connection from `ip`, or None when it already holds `limit`.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ClientPermit> {
        if self.exempt.contains(ip) {
            return Some(ClientPermit {
                clients: self.clone(),
                key: None,
            });
        }
        let key = ClientKey::of(ip);
        {
            let mut open = lock(&self.open);
            let count = open.entry(key).or_insert(0);
            if *count < self.limit {
                *count += 1;
                return Some(ClientPermit {
                    clients: self.clone(),
                    key: Some(key),
                });
            }
        }
        self.note_refusal(ip);
        None
    }

    fn release(&self, key: ClientKey) {
        let mut open = lock(&self.open);
        if let Some(count) = open.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&key);
            }
        }
    }

    fn note_refusal(&self, ip: IpAddr) {
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let mut warned = lock(&self.warned);
        let now = Instant::now();
        if warned.is_none_or(|at| now >= at + Self::WARN_EVERY) {
            *warned = Some(now);
            self.refused.store(0, Ordering::Relaxed);
            tracing::warn!(
                client_ip = %ip,
                limit = self.limit,
                refused,
                "refusing connections over server.max_connections_per_ip (the count is since the last such warning)"
            );
        }
    }
}

/// One connection counted against its client's cap while alive.
struct ClientPermit {
    clients: Arc<Clients>,
    /// None for an exempt address.
    key: Option<ClientKey>,
}

impl Drop for ClientPermit {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.clients.release(key);
        }
    }
}

/// The clocks of the open connections, to find the one idle the longest.
#[derive(Default)]
struct Live {
    next: AtomicU64,
    clocks: Mutex<HashMap<u64, Arc<Clock>>>,
}

impl Live {
    fn register(self: &Arc<Self>, clock: Arc<Clock>) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.clocks).insert(id, clock);
        Registration {
            live: self.clone(),
            id,
        }
    }

    /// Asks the kept-alive connection idle the longest to close; false when none is idle.
    fn close_idlest(&self) -> bool {
        let clocks = lock(&self.clocks);
        let mut idle: Vec<(Instant, &Arc<Clock>)> = clocks
            .values()
            .filter_map(|clock| Some((clock.idle_since()?, clock)))
            .collect();
        idle.sort_by_key(|(since, _)| *since);
        // One that started a request meanwhile says no; the next idlest is asked.
        idle.into_iter().any(|(_, clock)| clock.close_if_idle())
    }
}

/// Keeps a connection's clock in `Live` while alive.
struct Registration {
    live: Arc<Live>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.live.clocks).remove(&self.id);
    }
}

/// What a connection holds until it closes: its slot, its count against its client's cap,
/// its place among the live connections.
struct Held {
    _slot: OwnedSemaphorePermit,
    _client: ClientPermit,
    _registration: Registration,
}

/// One accepted connection and what serving it needs.
struct Connection<E> {
    stream: TcpStream,
    local: SocketAddr,
    remote: SocketAddr,
    limits: ConnectionLimits,
    clock: Arc<Clock>,
    endpoint: Arc<E>,
    stop: watch::Receiver<bool>,
    _held: Held,
}

async fn serve_connection<E: Endpoint + 'static>(conn: Connection<E>) {
    let Connection {
        stream,
        local,
        remote,
        limits,
        clock,
        endpoint,
        mut stop,
        _held,
    } = conn;
    let io = TokioIo::new(Watched {
        stream,
        clock: clock.clone(),
    });
    let service = hyper::service::service_fn({
        let clock = clock.clone();
        move |req: hyper::Request<Incoming>| {
            // hyper calls the service once the head is parsed: from here the request is in
            // flight until its response body is dropped.
            let mut in_flight = clock.request_started();
            let body_deadline = Instant::now() + limits.body_timeout;
            let endpoint = endpoint.clone();
            async move {
                let has_body = !req.body().is_end_stream();
                let mut req = poem::Request::from((
                    req,
                    LocalAddr(local.into()),
                    RemoteAddr(remote.into()),
                    Scheme::HTTP,
                ));
                if has_body {
                    let body = BoxBody::from(req.take_body());
                    req.set_body(poem::Body::from(BoxBody::new(Deadline {
                        body,
                        deadline: Box::pin(tokio::time::sleep_until(body_deadline)),
                        timeout: limits.body_timeout,
                    })));
                }
                let resp: hyper::Response<BoxBody<Bytes, io::Error>> =
                    endpoint.get_response(req).await.into();
                in_flight.responding();
                Ok::<_, Infallible>(resp.map(|body| Tracked {
                    body,
                    _in_flight: in_flight,
                }))
            }
        }
    });

    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The watchdog below times request heads; hyper's timer would also cut idle connections.
    builder.http1().header_read_timeout(None);
    builder
        .http2()
        .max_pending_accept_reset_streams(H2_MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_header_list_size(H2_MAX_HEADER_LIST_SIZE);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let expired = clock.expired();
    tokio::pin!(expired);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(remote = %remote, "connection ended: {e}");
                }
                return;
            }
            why = &mut expired => {
                // Dropping the connection closes the socket.
                let reason = match why {
                    Expiry::HeaderRead => "no complete request head in time",
                    Expiry::Write => "the response was not taken in time",
                    Expiry::Idle => "idle too long",
                    Expiry::Evicted => "the server is full and this connection was the idlest",
                };
                tracing::debug!(remote = %remote, "closing the connection: {reason}");
                return;
            }
            _ = stop.wait_for(|stop| *stop), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Why a connection's time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    HeaderRead,
    Write,
    Idle,
    /// Closed to free a slot for a new connection.
    Evicted,
}

/// One connection's deadlines, moved by its reads, writes and requests.
struct Clock {
    limits: ConnectionLimits,
    state: Mutex<ClockState>,
    /// Wakes `expired` at once when the connection is evicted.
    evicted: Notify,
}

struct ClockState {
    /// Requests whose head is parsed and whose response body is not yet dropped.
    in_flight: usize,
    /// The header or idle deadline; None while a request is in flight.
    deadline: Option<(Instant, Expiry)>,
    /// Responses returned by the handler whose bodies hyper still holds.
    responding: usize,
    /// Since when some response has not been handed to the socket completely.
    unwritten_since: Option<Instant>,
    evicted: bool,
}

impl Clock {
    fn new(limits: ConnectionLimits) -> Clock {
        Clock {
            limits,
            state: Mutex::new(ClockState {
                in_flight: 0,
                deadline: Some((
                    Instant::now() + limits.header_read_timeout,
                    Expiry::HeaderRead,
                )),
                responding: 0,
                unwritten_since: None,
                evicted: false,
            }),
            evicted: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ClockState> {
        lock(&self.state)
    }

    /// Bytes arrived. On an idle connection they start the next request head, which now has
    /// `header_read_timeout` to complete; otherwise they change nothing.
    fn bytes_read(&self) {
        let mut state = self.lock();
        if state.in_flight == 0 && matches!(state.deadline, Some((_, Expiry::Idle))) {
            state.deadline = Some((
                Instant::now() + self.limits.header_read_timeout,
                Expiry::HeaderRead,
            ));
        }
    }

    /// hyper's write buffer is empty: every response whose body is done has reached the
    /// socket.
    fn flushed(&self) {
        let mut state = self.lock();
        if state.responding == 0 {
            state.unwritten_since = None;
        }
    }

    /// A request head was parsed: no header or idle deadline until the returned guard is
    /// dropped.
    fn request_started(self: &Arc<Self>) -> InFlight {
        let mut state = self.lock();
        state.in_flight += 1;
        state.deadline = None;
        InFlight {
            clock: self.clone(),
            responding: false,
        }
    }

    /// Since when the connection has been idle (kept alive, nothing in flight, nothing left
    /// to write); None otherwise.
    fn idle_since(&self) -> Option<Instant> {
        self.idle_since_in(&self.lock())
    }

    fn idle_since_in(&self, state: &ClockState) -> Option<Instant> {
        match state.deadline {
            Some((at, Expiry::Idle)) if state.unwritten_since.is_none() && !state.evicted => {
                Some(at - self.limits.idle_timeout)
            }
            _ => None,
        }
    }

    /// Closes the connection if it is still idle; says whether it did.
    fn close_if_idle(&self) -> bool {
        {
            let mut state = self.lock();
            if self.idle_since_in(&state).is_none() {
                return false;
            }
            state.evicted = true;
        }
        self.evicted.notify_one();
        true
    }

    /// The deadline that passed, if one did.
    fn passed(&self, now: Instant) -> Option<Expiry> {
        let state = self.lock();
        if state.evicted {
            return Some(Expiry::Evicted);
        }
        if let Some(since) = state.unwritten_since
            && since + self.limits.write_timeout <= now
        {
            return Some(Expiry::Write);
        }
        match state.deadline {
            Some((at, why)) if at <= now => Some(why),
            _ => None,
        }
    }

    /// Completes when a deadline passes or the connection is evicted. Deadlines are looked
    /// at every tick instead of waking this future on every change: a request then costs no
    /// extra wake-up or timer, and a timeout is enforced at most one tick late.
    async fn expired(&self) -> Expiry {
        let tick = self.limits.tick();
        loop {
            if let Some(why) = self.passed(Instant::now()) {
                return why;
            }
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                () = self.evicted.notified() => {}
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Marks one request in flight while alive, and its response being written once the handler
/// returned it.
struct InFlight {
    clock: Arc<Clock>,
    responding: bool,
}

impl InFlight {
    /// The handler returned the response: it must now reach the socket within the write
    /// timeout.
    fn responding(&mut self) {
        let mut state = self.clock.lock();
        state.responding += 1;
        state.unwritten_since.get_or_insert_with(Instant::now);
        self.responding = true;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.clock.lock();
        if self.responding {
            state.responding -= 1;
        }
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.deadline = Some((
                Instant::now() + self.clock.limits.idle_timeout,
                Expiry::Idle,
            ));
        }
    }
}

/// The socket, reporting reads and completed flushes to the connection's clock.
struct Watched {
    stream: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    /// hyper flushes the socket only once its own write buffer is empty.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_flush(cx);
        if let Poll::Ready(Ok(())) = polled {
            self.clock.flushed();
        }
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A request body that fails with [`BodyTimedOut`] once its deadline has passed. The timer
/// only matters while someone reads: a body nobody reads is never waited for.
struct Deadline {
    body: BoxBody<Bytes, io::Error>,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl Body for Deadline {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                BodyTimedOut(self.timeout),
            )))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A response body that keeps its request in flight until hyper drops it (sent or abandoned).
struct Tracked {
    body: BoxBody<Bytes, io::Error>,
    _in_flight: InFlight,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The pause after a failed accept: 10 ms, doubling up to 1 s, back to 10 ms after a success.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    /// The pause to take now; the next one is twice as long, up to `MAX`.
    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (delay * 2).min(Self::MAX);
        delay
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: Self::FIRST }
    }
}

/// Calls `accept` until it succeeds, pausing after each error as `backoff` says (one warning
/// per pause), and resets `backoff` on success.
async fn accept_with_backoff<T, F, Fut>(mut accept: F, backoff: &mut Backoff) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    loop {
        match accept().await {
            Ok(accepted) => {
                backoff.reset();
                return accepted;
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    error = %e,
                    retry_in_ms = delay.as_millis() as u64,
                    "cannot accept connections; pausing"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn admit_all() -> Admission {
        Admission {
            exempt: TrustedProxies::default(),
            refusal: Bytes::from_static(b"HTTP/1.1 429 Too Many Requests\r\n\r\n"),
        }
    }

    #[tokio::test]
    async fn a_client_that_does_not_take_its_response_is_cut_after_the_write_timeout() {
        // More than the socket buffers on both sides can hold, so the server must wait on
        // the client to write it all.
        const SIZE: usize = 32 * 1024 * 1024;
        let limits = ConnectionLimits {
            write_timeout: ms(500),
            idle_timeout: Duration::from_secs(60),
            ..ConnectionLimits::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let big = poem::endpoint::make_sync(|_| vec![b'x'; SIZE]);
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            big,
            stop.clone().cancelled_owned(),
            ms(100),
            limits,
            admit_all(),
        ));

        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut client = socket.connect(addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
        // Read nothing for well past the write timeout, then everything there is.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut received = 0;
        let mut buf = vec![0u8; 64 * 1024];
        let ended = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                match client.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => received += n,
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "the server closed the connection");
        assert!(
            received < SIZE,
            "the response was cut short: {received} of {SIZE} bytes"
        );
        stop.cancel();
        server.await.unwrap().unwrap();
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_ipv4_ones_by_address() {
        let key = |s: &str| ClientKey::of(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        // How a dual-stack socket reports an IPv4 peer.
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
    }

    #[test]
    fn a_client_is_admitted_up_to_its_cap_and_again_once_a_connection_closes() {
        let clients = Arc::new(Clients::new(2, TrustedProxies::default()));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let first = clients.admit(ip).expect("first");
        let _second = clients.admit(ip).expect("second");
        assert!(clients.admit(ip).is_none(), "the third is over the cap");
        assert!(clients.admit("192.0.2.2".parse().unwrap()).is_some());
        drop(first);
        assert!(clients.admit(ip).is_some(), "a closed one frees its place");
    }

    #[test]
    fn trusted_proxies_are_admitted_beyond_the_cap() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let clients = Arc::new(Clients::new(1, proxies));
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let held: Vec<_> = (0..5).map(|_| clients.admit(proxy).unwrap()).collect();
        assert_eq!(held.len(), 5);
        assert!(lock(&clients.open).is_empty(), "proxies are not counted");
    }

    #[test]
    fn backoff_doubles_from_10_ms_up_to_1_s() {
        let mut backoff = Backoff::default();
        let delays: Vec<Duration> = (0..10).map(|_| backoff.next_delay()).collect();
        assert_eq!(
            delays,
            [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000].map(ms)
        );
    }

    #[test]
    fn backoff_starts_over_after_a_reset() {
        let mut backoff = Backoff::default();
        for _ in 0..20 {
            backoff.next_delay();
        }
        backoff.reset();
        assert_eq!(backoff.next_delay(), ms(10));
        assert_eq!(backoff.next_delay(), ms(20));
    }

    #[tokio::test]
    async fn accept_retries_after_errors_and_a_success_resets_the_backoff() {
        let mut backoff = Backoff::default();
        let mut calls = 0;
        let accepted = accept_with_backoff(
            || {
                calls += 1;
                let n = calls;
                async move {
                    if n <= 3 {
                        // EMFILE on Linux: what the review hit.
                        Err(io::Error::from_raw_os_error(24))
                    } else {
                        Ok(n)
                    }
                }
            },
            &mut backoff,
        )
        .await;
        assert_eq!(accepted, 4);
        assert_eq!(calls, 4, "one call per error, then the success");
        assert_eq!(backoff.next_delay(), ms(10), "the success reset the pause");
    }

    #[tokio::test]
    async fn accept_pauses_longer_after_each_consecutive_error() {
        // Three errors take the pauses 10, 20 and 40 ms; the next one would be 80 ms.
        let mut backoff = Backoff::default();
        let mut calls = 0;
        let fourth_call = Notify::new();
        tokio::select! {
            _ = accept_with_backoff(
                || {
                    calls += 1;
                    let n = calls;
                    if n == 4 {
                        fourth_call.notify_one();
                    }
                    async move {
                        if n <= 3 {
                            Err(io::Error::from_raw_os_error(24))
                        } else {
                            // A listener with nothing to hand out yet.
                            std::future::pending::<io::Result<()>>().await
                        }
                    }
                },
                &mut backoff,
            ) => unreachable!("the fourth accept never completes"),
            () = fourth_call.notified() => {}
        }
        assert_eq!(calls, 4);
        assert_eq!(backoff.next_delay(), ms(80));
    }
}

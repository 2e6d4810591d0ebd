//! Serving HTTP connections so that slow or idle clients cannot hold the server.
//!
//! `poem::Server` accepts as fast as the kernel hands out connections (and on an accept error
//! such as `EMFILE` retries at once, spinning a core), keeps every connection for as long as the
//! client likes, and builds hyper without a timer, so hyper's header-read timeout is off. Its
//! `idle_timeout` is reset by any read, so a client dripping one header line every few seconds
//! keeps it alive. This module serves poem endpoints through hyper directly instead, because
//! only there can one see when a request head has been parsed (the service is called) and when
//! its response has gone out (hyper drops the body), which the timeouts need:
//!
//! - **Header-read timeout** ([`ConnectionLimits::header_read_timeout`]): a request head must
//!   be complete this long after the accept (first request) or after the first byte that
//!   follows the previous response (every later request on a kept-alive connection). Sending
//!   more bytes does not extend it. Once the head is parsed the request is in flight and no
//!   timer runs, so a handler may wait on a provider as long as it needs. (hyper's own
//!   header timer is not used: it starts as soon as hyper waits for the next request, so it
//!   would also cut idle kept-alive connections after the header timeout.)
//! - **Idle timeout** ([`ConnectionLimits::idle_timeout`]): a kept-alive connection with
//!   nothing in flight is closed this long after its last response, unless a new request
//!   starts (and then the header timeout applies).
//! - **Connection cap** ([`ConnectionLimits::max_connections`]): at the cap the loop stops
//!   accepting, so new clients wait in the kernel's backlog until a connection closes, rather
//!   than being accepted and dropped.
//! - **Accept back-off**: after an accept error (`EMFILE`, `ENFILE`, `ENOBUFS`, ...) one warning
//!   is logged and the loop pauses, 10 ms at first, doubling up to 1 s, back to 10 ms after the
//!   next success.
//!
//! On shutdown the loop stops accepting, asks every connection to finish what is in flight and
//! close, and drops whatever is still open after the grace period. The timeouts keep running
//! meanwhile, so a slow client cannot hold the stop up.
//!
//! Not limited here: how long a request body takes once its head is in (its size is capped by
//! `api`), and protocol upgrades, which are not offered.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
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
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;

/// HTTP/2 settings `poem::Server` used, kept so that h2c clients see no change.
const H2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
const H2_MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;

/// How long clients may take and how many connections are served at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to send a complete request head, counted from the accept for the first request
    /// and from the first byte after the previous response for later ones.
    pub header_read_timeout: Duration,
    /// Time a kept-alive connection may wait, after its last response, before starting the
    /// next request.
    pub idle_timeout: Duration,
    /// Connections served at once; beyond it new ones wait in the kernel's backlog. At least 1.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            // A request head is a few hundred bytes: 10 s is plenty on any real link.
            header_read_timeout: Duration::from_secs(10),
            // Long enough for a browser or SDK to reuse the connection between calls.
            idle_timeout: Duration::from_secs(60),
            // Leaves descriptors for the database and provider calls only if `ulimit -n` is
            // above this; below it, accept errors are still handled by the back-off.
            max_connections: 1024,
        }
    }
}

/// Serves `endpoint` on `listener` within `limits` until `shutdown` completes, then lets open
/// connections finish for up to `grace` and drops the rest.
pub(crate) async fn serve<E>(
    listener: TcpListener,
    endpoint: E,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
    limits: ConnectionLimits,
) -> io::Result<()>
where
    E: Endpoint + 'static,
{
    let local = listener.local_addr()?;
    let endpoint = Arc::new(endpoint);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut backoff = Backoff::default();
    tokio::pin!(shutdown);

    loop {
        while let Some(done) = connections.try_join_next() {
            report(done);
        }
        // Take a slot before accepting: at the cap, new clients stay in the backlog.
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (stream, remote) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = accept_with_backoff(|| listener.accept(), &mut backoff) => accepted,
        };
        connections.spawn(serve_connection(Connection {
            stream,
            local,
            remote,
            limits,
            endpoint: endpoint.clone(),
            stop: stop_rx.clone(),
            _slot: slot,
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

/// One accepted connection and what serving it needs.
struct Connection<E> {
    stream: TcpStream,
    local: SocketAddr,
    remote: SocketAddr,
    limits: ConnectionLimits,
    endpoint: Arc<E>,
    stop: watch::Receiver<bool>,
    /// Held until the connection is closed; frees a slot for the accept loop.
    _slot: OwnedSemaphorePermit,
}

async fn serve_connection<E: Endpoint + 'static>(conn: Connection<E>) {
    let Connection {
        stream,
        local,
        remote,
        limits,
        endpoint,
        mut stop,
        _slot,
    } = conn;
    let clock = Arc::new(Clock::new(limits));
    let io = TokioIo::new(Watched {
        stream,
        clock: clock.clone(),
    });
    let service = hyper::service::service_fn({
        let clock = clock.clone();
        move |req: hyper::Request<Incoming>| {
            // hyper calls the service once the head is parsed: from here the request is in
            // flight until its response body is dropped.
            let in_flight = clock.request_started();
            let endpoint = endpoint.clone();
            async move {
                let req = poem::Request::from((
                    req,
                    LocalAddr(local.into()),
                    RemoteAddr(remote.into()),
                    Scheme::HTTP,
                ));
                let resp: hyper::Response<BoxBody<Bytes, io::Error>> =
                    endpoint.get_response(req).await.into();
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
                match why {
                    Expiry::HeaderRead => tracing::debug!(
                        remote = %remote,
                        "closing the connection: no complete request head within {:?}",
                        limits.header_read_timeout
                    ),
                    Expiry::Idle => tracing::debug!(
                        remote = %remote,
                        "closing the connection: idle for {:?}",
                        limits.idle_timeout
                    ),
                }
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
    Idle,
}

/// One connection's deadline, moved by its reads and its requests.
struct Clock {
    limits: ConnectionLimits,
    state: Mutex<ClockState>,
}

struct ClockState {
    /// Requests whose head is parsed and whose response body is not yet dropped.
    in_flight: usize,
    /// None while a request is in flight.
    deadline: Option<(Instant, Expiry)>,
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
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ClockState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// A request head was parsed: no deadline until the returned guard is dropped.
    fn request_started(self: &Arc<Self>) -> InFlight {
        let mut state = self.lock();
        state.in_flight += 1;
        state.deadline = None;
        InFlight(self.clone())
    }

    fn request_finished(&self) {
        let mut state = self.lock();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.deadline = Some((Instant::now() + self.limits.idle_timeout, Expiry::Idle));
        }
    }

    /// How often `expired` looks at the deadline: a quarter of the shorter timeout, between
    /// 10 ms and 1 s.
    fn tick(&self) -> Duration {
        (self
            .limits
            .header_read_timeout
            .min(self.limits.idle_timeout)
            / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// Completes when the current deadline passes. The deadline is looked at every tick
    /// instead of waking this future on every change: a request then costs no extra wake-up
    /// or timer, and a timeout is enforced at most one tick late.
    async fn expired(&self) -> Expiry {
        loop {
            if let Some((at, why)) = self.lock().deadline
                && at <= Instant::now()
            {
                return why;
            }
            tokio::time::sleep(self.tick()).await;
        }
    }
}

/// Marks one request in flight while alive.
struct InFlight(Arc<Clock>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// The socket, reporting reads to the connection's clock.
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

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
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
    use tokio::sync::Notify;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
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

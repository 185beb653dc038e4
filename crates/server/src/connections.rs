//! Serving connections, plain HTTP or HTTPS, HTTP/1.1 or HTTP/2, with
//! every connection bounded in time.
//!
//! A key design decision made here is that a connection's clock runs only
//! while it has no request in flight: a connection must bring a whole
//! request head within `header_timeout` of opening (its TLS handshake
//! included) and within `idle_timeout` of its last answer, or it is closed,
//! whatever bytes trickle in meanwhile. The clock lives under TLS and under
//! the protocol, on the socket itself, so one rule covers a handshake never
//! finished, a request line sent a byte at a time and an idle kept-alive
//! connection, on HTTP/1.1 and HTTP/2 alike. A request in flight is bounded
//! by the body's own deadline instead (see `body.rs`).

use std::collections::HashMap;
use std::future::{Future, Ready};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use axum::http::{Request, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::ratelimit::Source;
use crate::AppState;

/// How long a connection may go without a request in flight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// From opening to the first request's head.
    pub(crate) header: Duration,
    /// From an answer to the next request's head.
    pub(crate) idle: Duration,
}

/// What a connection is doing, shared by its socket and its service.
#[derive(Debug)]
struct Activity {
    timeouts: Timeouts,
    state: Mutex<ActivityState>,
}

#[derive(Debug)]
struct ActivityState {
    in_flight: usize,
    /// Since when no request is in flight.
    idle_since: Instant,
    /// Whether a request came at all.
    served: bool,
    /// The socket's reader, waiting: woken when the last request ends, to
    /// set its clock again.
    reader: Option<Waker>,
}

impl Activity {
    fn new(timeouts: Timeouts) -> Self {
        Activity {
            timeouts,
            state: Mutex::new(ActivityState {
                in_flight: 0,
                idle_since: Instant::now(),
                served: false,
                reader: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the connection is to be closed: none while a request is in
    /// flight.
    fn deadline(&self) -> Option<Instant> {
        let state = self.state();
        if state.in_flight > 0 {
            return None;
        }
        let allowed = if state.served {
            self.timeouts.idle
        } else {
            self.timeouts.header
        };
        Some(state.idle_since + allowed)
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        let mut state = self.state();
        state.in_flight += 1;
        state.served = true;
        InFlight(Arc::clone(self))
    }
}

/// A request in flight, from its head to the end of its answer's body.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
            if let Some(reader) = state.reader.take() {
                reader.wake();
            }
        }
    }
}

/// A socket that fails its reads once its connection's clock runs out.
pub(crate) struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
    sleep: Pin<Box<Sleep>>,
    _slot: Slot,
}

/// The connections open now, in all and per source, within their caps.
#[derive(Debug)]
pub(crate) struct Slots {
    max_total: usize,
    max_per_source: usize,
    open: Mutex<(usize, HashMap<Source, usize>)>,
}

/// One open connection's place; given back when the connection ends.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<Slots>,
    source: Source,
}

impl Slots {
    pub(crate) fn new(max_total: usize, max_per_source: usize) -> Arc<Self> {
        Arc::new(Slots {
            max_total,
            max_per_source,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    /// A place for a connection from `source`, or why there is none.
    pub(crate) fn take(self: &Arc<Self>, source: Source) -> Result<Slot, String> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.0 >= self.max_total {
            return Err(format!("{} connections are open, the most allowed", open.0));
        }
        let from = open.1.get(&source).copied().unwrap_or(0);
        if from >= self.max_per_source {
            return Err(format!(
                "{from} connections are open from {source}, the most one source may have"
            ));
        }
        open.0 += 1;
        *open.1.entry(source).or_insert(0) += 1;
        Ok(Slot {
            slots: Arc::clone(self),
            source,
        })
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).0
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.source);
            }
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "no request on this connection in time",
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this
            .activity
            .deadline()
            .is_some_and(|d| Instant::now() >= d)
        {
            return Poll::Ready(Err(timed_out()));
        }
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => {}
            ready => return ready,
        }
        this.activity.state().reader = Some(cx.waker().clone());
        if let Some(deadline) = this.activity.deadline() {
            this.sleep.as_mut().reset(deadline);
            if this.sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(timed_out()));
            }
        }
        Poll::Pending
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A connection's service, counting its requests in flight.
#[derive(Clone)]
pub(crate) struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, B> tower_service::Service<Request<B>> for Tracked<S>
where
    S: tower_service::Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let in_flight = self.activity.begin();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            // The request stays in flight until its answer's body is sent
            // (a stream of live events may last long).
            Ok(response.map(|body| Body::new(Guarded { body, in_flight })))
        })
    }
}

/// An answer's body, holding its request in flight until it ends.
struct Guarded {
    body: Body,
    in_flight: InFlight,
}

impl http_body::Body for Guarded {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl std::fmt::Debug for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let _ = &self.in_flight;
        f.debug_struct("Guarded").finish_non_exhaustive()
    }
}

/// Puts each accepted socket and its service on one clock, and closes a
/// connection over the caps at once.
#[derive(Debug, Clone)]
pub(crate) struct Watchdog {
    timeouts: Timeouts,
    slots: Arc<Slots>,
}

impl<S> axum_server::accept::Accept<TcpStream, S> for Watchdog {
    type Stream = Watched<TcpStream>;
    type Service = Tracked<S>;
    type Future = Ready<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let source = stream
            .peer_addr()
            .map_or(Source(None), |a| Source::of(a.ip()));
        let slot = match self.slots.take(source) {
            Ok(slot) => slot,
            Err(why) => {
                tracing::debug!("Connection refused: {why}.");
                return std::future::ready(Err(io::Error::other(why)));
            }
        };
        let activity = Arc::new(Activity::new(self.timeouts));
        let deadline = Instant::now() + self.timeouts.header;
        std::future::ready(Ok((
            Watched {
                inner: stream,
                activity: Arc::clone(&activity),
                sleep: Box::pin(tokio::time::sleep_until(deadline)),
                _slot: slot,
            },
            Tracked {
                inner: service,
                activity,
            },
        )))
    }
}

/// Streams open at once on one HTTP/2 connection.
const MAX_STREAMS: u32 = 32;

/// Serves `state`'s application on `listener` (HTTPS when `tls` is given,
/// with HTTP/2 offered by ALPN) until `stop` completes, then lets the
/// requests in flight finish for up to ten seconds. Handlers see the
/// peer's address as `ConnectInfo<SocketAddr>`.
pub async fn serve_app(
    state: AppState,
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let timeouts = Timeouts {
        header: state.config.header_timeout,
        idle: state.config.idle_timeout,
    };
    let watchdog = Watchdog {
        timeouts,
        slots: Slots::new(
            state.config.max_connections,
            state.config.max_connections_per_source,
        ),
    };
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        stop.await;
        stopper.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    let app = crate::app(state).into_make_service_with_connect_info::<SocketAddr>();
    let mut server = axum_server::from_tcp(listener)?.handle(handle);
    // Streams one HTTP/2 connection may have open at once: each holds a
    // request's body budget and keeps the connection's idle clock stopped.
    server
        .http_builder()
        .http2()
        .max_concurrent_streams(MAX_STREAMS);
    match tls {
        None => server
            .acceptor(watchdog)
            .serve(app)
            .await
            .with_context(|| format!("serving HTTP on {address}")),
        Some(config) => {
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(
                axum_server::tls_rustls::RustlsConfig::from_config(config),
            )
            .handshake_timeout(timeouts.header)
            .acceptor(watchdog);
            server
                .acceptor(acceptor)
                .serve(app)
                .await
                .with_context(|| format!("serving HTTPS on {address}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_in_all_and_per_source_and_given_back() {
        let slots = Slots::new(3, 2);
        let a = Source::of([192, 0, 2, 1].into());
        let b = Source::of([192, 0, 2, 2].into());
        let first = slots.take(a).unwrap();
        let _second = slots.take(a).unwrap();
        let why = slots.take(a).unwrap_err();
        assert!(why.contains("from 192.0.2.1"), "{why}");
        let _third = slots.take(b).unwrap();
        let why = slots.take(b).unwrap_err();
        assert!(why.starts_with("3 connections are open"), "{why}");
        assert_eq!(slots.open(), 3);
        drop(first);
        assert_eq!(slots.open(), 2);
        assert!(
            slots.take(a).is_ok(),
            "a closed connection gives its place back"
        );
    }
}

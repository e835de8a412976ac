//! Serving an axum [`Router`] to the internet with limits on what a connection may cost.
//!
//! [`WebhookLayer`](crate::middleware::WebhookLayer) bounds what one request costs; the server
//! must bound what a connection costs. Neither `axum::serve` nor hyper's builders time out a
//! client by default: a connection that never finishes its headers, or sends its body a byte a
//! second (slowloris), is held for as long as it likes. [`serve`] runs the router on
//! hyper-util's HTTP/1 + HTTP/2 builder with every limit below set from [`Limits`]:
//!
//! | limit | [`Limits`] field | default | what it costs |
//! |---|---|---|---|
//! | header-read timeout: a request's headers, and a new connection's first byte, must arrive within it | `header_read` | 10 s | an honest client on a very slow link may need longer |
//! | request timeout, body included: answered `408` with a problem document after it | `request` | 30 s | a 1 MiB body needs > 35 KB/s to arrive in time |
//! | connections at once; when all are taken, the one idle the longest is closed to make room | `max_connections` | 1 024 | with every connection busy, new ones wait |
//! | idle timeout: a connection with no request in flight (keep-alive, HTTP/2 with no stream, nothing sent yet) is closed, HTTP/2 with `GOAWAY` | `idle` | 5 s | a sender reconnects for its next delivery after a pause |
//! | connections per client IP address, loopback included | `max_connections_per_client` | 64 | a proxy connecting from one address needs it raised |
//! | HTTP/2 streams per connection | `http2_streams` | 32 | senders multiplexing more wait for a stream |
//! | HTTP/2 keep-alive pings, every `header_read` | `header_read` | 10 s | a ping per idle interval; dead peers are noticed |
//! | body limit | `max_body` | 64 KiB | larger deliveries are refused (413); most vendors send a few KiB (GitHub caps at 25 MB: raise it for GitHub push events) |
//! | buffered-bytes budget | `max_buffered` | 16 MiB | requests beyond it get 503 + `Retry-After`; senders retry |
//!
//! [`serve`] itself enforces `header_read`, `request`, `max_connections`, `idle`,
//! `max_connections_per_client` and `http2_streams`, and sends every answer with
//! `Cache-Control: no-store` (unless the router set its own).
//! `max_body` and `max_buffered` are the webhook layer's settings, kept here so one value holds
//! a deployment's limits: pass them to
//! [`WebhookLayer::max_body_size`](crate::middleware::WebhookLayer::max_body_size) and
//! [`WebhookLayer::max_buffered_bytes`](crate::middleware::WebhookLayer::max_buffered_bytes)
//! when building the router.
//!
//! hyper times out neither an HTTP/2 connection that answers pings but opens no stream nor one
//! that has sent only its preface: [`serve`] counts each connection's requests in flight and
//! closes it after `idle` without one, so such connections cannot keep the slots, and a client
//! that reconnects as soon as it is dropped holds at most `max_connections_per_client` of them.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use axum::{routing::post, Extension, Router};
//! use webhook_guard::middleware::WebhookLayer;
//! use webhook_guard::scheme::StandardWebhooks;
//! use webhook_guard::server::{serve, Limits};
//! use webhook_guard::{Keyring, Secret, Verified, Verifier};
//!
//! async fn handle(Extension(verified): Extension<Verified>) -> String {
//!     format!("verified with key {}", verified.key_id())
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let limits = Limits::default().request(Duration::from_secs(20));
//! let keyring = Keyring::new(Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?);
//! let app = Router::new().route("/webhooks", post(handle)).route_layer(
//!     WebhookLayer::new(Verifier::new(StandardWebhooks, keyring))
//!         .max_body_size(limits.max_body)
//!         .max_buffered_bytes(limits.max_buffered),
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! serve(listener, app, limits, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! # Ok(())
//! # }
//! ```

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::Response;
use axum::Router;
use http::{header, HeaderValue, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use pin_project_lite::pin_project;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::problem::{Kind, Problem};

/// What a connection may cost the server, and the webhook layer's body limits.
///
/// The [`Default`] (also [`Limits::new`]) is what the module's table lists. Change a field with
/// its setter:
///
/// ```
/// use std::time::Duration;
/// use webhook_guard::server::Limits;
///
/// let limits = Limits::new()
///     .header_read(Duration::from_secs(5))
///     .max_connections(256);
/// assert_eq!(limits.request, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// A request's headers, an idle keep-alive connection's next request, and a new
    /// connection's first byte must arrive within this (a connection with no request in flight
    /// is closed sooner when [`idle`](Limits::idle) is shorter); also the HTTP/2 keep-alive ping
    /// interval. Enforced by [`serve`]. Default 10 s.
    pub header_read: Duration,
    /// A whole request, body included, must be answered within this: `408 Request Timeout`
    /// (`application/problem+json`, `Connection: close`) after it. Enforced by [`serve`].
    /// Default 30 s.
    pub request: Duration,
    /// Connections served at once. When all are taken, the connection that has had no request
    /// in flight for the longest is closed (gracefully) to make room; with every connection
    /// busy, a new one waits until one closes. Enforced by [`serve`]; at least 1. Default 1 024.
    pub max_connections: usize,
    /// A connection with no request in flight (idle between keep-alive requests, an HTTP/2
    /// connection that opens no stream, or one that has sent nothing yet) is closed after this:
    /// gracefully (HTTP/2: `GOAWAY`). Enforced by [`serve`]. Default 5 s.
    pub idle: Duration,
    /// Connections one client IP address may hold at once; more from it are closed as soon as
    /// they are accepted. Loopback and private addresses count like any other: behind a proxy
    /// that connects from one address, raise it to [`max_connections`](Limits::max_connections).
    /// Enforced by [`serve`]; at least 1. Default 64.
    pub max_connections_per_client: usize,
    /// Concurrent streams on one HTTP/2 connection. Enforced by [`serve`]. Default 32.
    pub http2_streams: u32,
    /// Largest webhook body, for
    /// [`WebhookLayer::max_body_size`](crate::middleware::WebhookLayer::max_body_size); not
    /// enforced by [`serve`]. Default 64 KiB.
    pub max_body: usize,
    /// Most body bytes all requests may hold at once (503 with `Retry-After` beyond), for
    /// [`WebhookLayer::max_buffered_bytes`](crate::middleware::WebhookLayer::max_buffered_bytes);
    /// not enforced by [`serve`]. Default 16 MiB.
    pub max_buffered: usize,
    /// Threads serving connections, each running its own single-threaded Tokio runtime:
    /// connections are handed to them in turn as they are accepted, and each is then served
    /// wholly on its thread (its requests, the router, a forward upstream), with no hand-off
    /// between threads. They stop when [`serve`] returns, closing the connections still open.
    /// 0 (the default): connections are spawned on the runtime `serve` runs on.
    /// `webhook-guard serve` uses one per CPU (`--workers`).
    pub workers: usize,
}

impl Limits {
    /// The defaults: 10 s to read headers, 30 s per request, 1 024 connections, 5 s idle, 64
    /// connections per client address, 32 HTTP/2 streams per connection, 64 KiB bodies, 16 MiB
    /// of bodies buffered at once.
    pub const fn new() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            request: Duration::from_secs(30),
            max_connections: 1024,
            idle: Duration::from_secs(5),
            max_connections_per_client: 64,
            http2_streams: 32,
            max_body: 64 * 1024,
            max_buffered: 16 * 1024 * 1024,
            workers: 0,
        }
    }

    /// Sets [`header_read`](Limits::header_read).
    #[must_use]
    pub const fn header_read(mut self, timeout: Duration) -> Self {
        self.header_read = timeout;
        self
    }

    /// Sets [`request`](Limits::request).
    #[must_use]
    pub const fn request(mut self, timeout: Duration) -> Self {
        self.request = timeout;
        self
    }

    /// Sets [`max_connections`](Limits::max_connections).
    #[must_use]
    pub const fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// Sets [`idle`](Limits::idle).
    #[must_use]
    pub const fn idle(mut self, timeout: Duration) -> Self {
        self.idle = timeout;
        self
    }

    /// Sets [`max_connections_per_client`](Limits::max_connections_per_client).
    #[must_use]
    pub const fn max_connections_per_client(mut self, connections: usize) -> Self {
        self.max_connections_per_client = connections;
        self
    }

    /// Sets [`http2_streams`](Limits::http2_streams).
    #[must_use]
    pub const fn http2_streams(mut self, streams: u32) -> Self {
        self.http2_streams = streams;
        self
    }

    /// Sets [`max_body`](Limits::max_body).
    #[must_use]
    pub const fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Sets [`max_buffered`](Limits::max_buffered).
    #[must_use]
    pub const fn max_buffered(mut self, bytes: usize) -> Self {
        self.max_buffered = bytes;
        self
    }

    /// Sets [`workers`](Limits::workers).
    #[must_use]
    pub const fn workers(mut self, threads: usize) -> Self {
        self.workers = threads;
        self
    }
}

/// An accepted connection: on the runtime that accepted it, or taken off it for a worker.
enum Accepted {
    Here(TcpStream),
    Moved(std::net::TcpStream),
}

impl Accepted {
    /// The connection on the current runtime's reactor.
    fn register(self) -> std::io::Result<TcpStream> {
        match self {
            Self::Here(stream) => Ok(stream),
            Self::Moved(stream) => TcpStream::from_std(stream),
        }
    }
}

/// The threads of [`Limits::workers`], each running a single-threaded runtime until dropped.
struct Workers {
    handles: Vec<tokio::runtime::Handle>,
    next: usize,
    /// Dropped with `Workers`: each thread's runtime then stops.
    _stop: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Workers {
    fn start(threads: usize) -> std::io::Result<Self> {
        let mut handles = Vec::with_capacity(threads);
        let mut stop = Vec::with_capacity(threads);
        for n in 0..threads {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
            handles.push(runtime.handle().clone());
            stop.push(stopping);
            std::thread::Builder::new()
                .name(format!("webhook-guard-worker-{n}"))
                .spawn(move || {
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                })?;
        }
        Ok(Self {
            handles,
            next: 0,
            _stop: stop,
        })
    }

    /// `stream`, ready to be handed to [`spawn`](Workers::spawn): taken off this runtime's
    /// reactor when a worker will serve it, so its readiness comes from the worker's own (each
    /// event would otherwise wake another thread).
    fn take(&self, stream: TcpStream) -> std::io::Result<Accepted> {
        match self.handles.is_empty() {
            true => Ok(Accepted::Here(stream)),
            false => stream.into_std().map(Accepted::Moved),
        }
    }

    /// Runs `task` on the next worker in turn, or on the current runtime when there is none.
    fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        if self.handles.is_empty() {
            tokio::spawn(task);
        } else {
            self.handles[self.next].spawn(task);
            self.next = (self.next + 1) % self.handles.len();
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves `app` on `listener` over HTTP/1 and HTTP/2 with `limits` until `shutdown` completes.
///
/// Each connection takes one of [`max_connections`](Limits::max_connections) slots. When every
/// slot is taken, the connection that has had no request in flight for the longest is closed
/// (gracefully: HTTP/2 `GOAWAY`, HTTP/1 a close between requests) to make room, and the new one
/// waits for the slot; with every connection busy, it waits for one to finish. A connection
/// from a client address that already holds
/// [`max_connections_per_client`](Limits::max_connections_per_client) is closed at once.
///
/// A connection with no request in flight for [`idle`](Limits::idle) is closed the same
/// graceful way: one idle between keep-alive requests, an HTTP/2 connection that answers pings
/// but opens no stream, one that has sent nothing at all. A request is in flight from the
/// moment hyper hands it to the router until its response has been sent (or abandoned). An idle
/// connection told to close that is still open [`idle`](Limits::idle) later (an HTTP/2 peer
/// that does not answer the `PING` after `GOAWAY`) is dropped.
///
/// A connection that sends no byte within [`header_read`](Limits::header_read) is closed
/// (telling HTTP/1 from HTTP/2 waits for the first bytes, before hyper's HTTP/1 header timer
/// runs), as is an HTTP/1 connection whose headers take longer. A request not answered within
/// [`request`](Limits::request), its body included, gets `408` with an
/// `application/problem+json` document and `Connection: close`. Every answer carries
/// `Cache-Control: no-store` unless the router set a `Cache-Control` of its own.
///
/// Errors accepting a connection are logged (`tracing`, `warn`) and do not stop the server:
/// after one that is not the peer's doing (such as running out of file descriptors) it waits a
/// second before accepting again, as `axum::serve` does.
///
/// When `shutdown` completes, no further connection is accepted, open ones are asked to finish
/// their current requests and close (HTTP/2: `GOAWAY`), and `serve` returns once they have, or
/// after [`request`](Limits::request) at most; connections still open then go on in their
/// tasks until they close or the runtime stops.
///
/// # Errors
///
/// None at present: the `Result` leaves room for errors that should end the server.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let connections = Arc::new(Connections::new(limits.max_connections_per_client));
    // hyper answers a malformed HTTP/1 head itself (400, 414 or 431 with an empty body, no
    // `Content-Type`) before any service sees a request: `Conn::on_parse_error` writes the bare
    // head `role::Server::on_error` picks, and then ends the connection with the parse error.
    // `http1::Builder` offers only limits (`max_buf_size`, `max_headers`, `max_header_size`)
    // and parsing leniencies, no hook for that answer, so it cannot be a problem document
    // without parsing HTTP/1 ahead of hyper, which this server does not do.
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_streams)
        .keep_alive_interval(limits.header_read);
    let builder = Arc::new(builder);
    let mut workers = Workers::start(limits.workers)?;
    let (stopping, _) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    'serving: loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    if is_connection_error(&e) {
                        tracing::debug!(error = %e, "connection not accepted");
                    } else {
                        tracing::warn!(error = %e, "cannot accept connections; retrying in 1 s");
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                            () = &mut shutdown => break,
                        }
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let client = peer.ip().to_canonical();
        if connections.holds_its_share(client) {
            tracing::debug!(%client, "connection closed: the client holds its share of connections");
            continue;
        }
        let permit = match Arc::clone(&slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => loop {
                // Every slot is taken: close the connection idle the longest, then wait for
                // a slot; when a busy one goes idle meanwhile, it is closed in its turn.
                connections.make_room();
                tokio::select! {
                    permit = Arc::clone(&slots).acquire_owned() => {
                        break permit.map_err(std::io::Error::other)?;
                    }
                    () = connections.changed.notified() => {}
                    () = &mut shutdown => break 'serving,
                }
            },
        };
        let admitted = Admitted::new(Arc::clone(&connections), client);
        let service = TowerToHyperService::new(within(
            limits.request,
            app.clone(),
            Arc::clone(&admitted.tracked),
            peer,
        ));
        let builder = Arc::clone(&builder);
        let mut stop = stopping.subscribe();
        let stream = match workers.take(stream) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "connection dropped: cannot hand it to a worker");
                continue;
            }
        };
        workers.spawn(async move {
            let stream = match stream.register() {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::debug!(error = %e, "connection dropped: cannot register it");
                    return;
                }
            };
            let stopped = async move {
                // Also when `serve` is gone without sending: then it stops too.
                let _ = stop.wait_for(|stopping| *stopping).await;
            };
            let mut stopped = std::pin::pin!(stopped);
            let mut activity = admitted.tracked.activity.subscribe();
            let opened = Instant::now();
            // Telling HTTP/1 from HTTP/2 waits for the first bytes, before any HTTP/1 header
            // timeout runs: a client that sends nothing is dropped here.
            let mut byte = [0u8; 1];
            let first = tokio::select! {
                first = tokio::time::timeout(limits.header_read, stream.peek(&mut byte)) => first,
                () = &mut stopped => return,
                () = quiet(&mut activity, limits.idle, opened, true) => return,
            };
            if !matches!(first, Ok(Ok(n)) if n > 0) {
                return;
            }
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = &mut stopped => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
                () = quiet(&mut activity, limits.idle, opened, true) => {
                    admitted.tracked.activity.send_modify(|a| a.closing = true);
                    connection.as_mut().graceful_shutdown();
                    let told = Instant::now();
                    tokio::select! {
                        served = connection.as_mut() => served,
                        () = quiet(&mut activity, limits.idle, told, false) => {
                            tracing::debug!("idle connection dropped: still open after being told to close");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!("connection closed: {e}");
            }
            drop(admitted);
            drop(permit);
        });
    }
    stopping.send_replace(true);
    let _ = tokio::time::timeout(limits.request, stopping.closed()).await;
    drop(workers);
    Ok(())
}

/// Errors that concern one connection only (as `axum::serve` tells them apart).
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// What one connection is doing: written by its requests and the accept loop, watched by its
/// task.
#[derive(Debug, Clone, Copy)]
struct Activity {
    /// Requests handed to the router whose responses are not sent yet.
    in_flight: usize,
    /// When the last request ended, or the connection was accepted.
    idle_since: Instant,
    /// Told to close: idle for too long, or closed to make room for a new connection.
    closing: bool,
}

/// One open connection.
struct Tracked {
    activity: watch::Sender<Activity>,
    /// [`Connections::changed`].
    changed: Arc<Notify>,
}

/// Every open connection: how many each client address holds, and which ones are idle.
struct Connections {
    registry: Mutex<Registry>,
    per_client: usize,
    /// Notified when a request ends or a connection closes, so a new connection waiting for
    /// a slot can close one that became idle.
    changed: Arc<Notify>,
}

#[derive(Default)]
struct Registry {
    next: u64,
    open: HashMap<u64, Arc<Tracked>>,
    per_client: HashMap<IpAddr, usize>,
}

impl Connections {
    fn new(per_client: usize) -> Self {
        Self {
            registry: Mutex::default(),
            per_client: per_client.max(1),
            changed: Arc::new(Notify::new()),
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // The registry is consistent after every statement that writes it.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `client` already holds its share of connections.
    fn holds_its_share(&self, client: IpAddr) -> bool {
        self.registry()
            .per_client
            .get(&client)
            .copied()
            .unwrap_or(0)
            >= self.per_client
    }

    /// Tells the connection idle the longest to close, unless an idle one is already closing
    /// (its slot is about to be free).
    fn make_room(&self) {
        let registry = self.registry();
        let mut oldest: Option<(Instant, &Tracked)> = None;
        for tracked in registry.open.values() {
            let activity = *tracked.activity.borrow();
            if activity.in_flight > 0 {
                continue;
            }
            if activity.closing {
                return;
            }
            if oldest.is_none_or(|(since, _)| activity.idle_since < since) {
                oldest = Some((activity.idle_since, tracked));
            }
        }
        if let Some((_, tracked)) = oldest {
            tracked.activity.send_modify(|a| a.closing = true);
        }
    }
}

/// A connection's place in [`Connections`], given back when dropped.
struct Admitted {
    connections: Arc<Connections>,
    id: u64,
    client: IpAddr,
    tracked: Arc<Tracked>,
}

impl Admitted {
    fn new(connections: Arc<Connections>, client: IpAddr) -> Self {
        let tracked = Arc::new(Tracked {
            activity: watch::Sender::new(Activity {
                in_flight: 0,
                idle_since: Instant::now(),
                closing: false,
            }),
            changed: Arc::clone(&connections.changed),
        });
        let id = {
            let mut registry = connections.registry();
            let id = registry.next;
            registry.next = id.wrapping_add(1);
            registry.open.insert(id, Arc::clone(&tracked));
            *registry.per_client.entry(client).or_insert(0) += 1;
            id
        };
        Self {
            connections,
            id,
            client,
            tracked,
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        {
            let mut registry = self.connections.registry();
            registry.open.remove(&self.id);
            if let Entry::Occupied(mut held) = registry.per_client.entry(self.client) {
                *held.get_mut() -= 1;
                if *held.get() == 0 {
                    held.remove();
                }
            }
        }
        self.connections.changed.notify_one();
    }
}

/// Resolves once the connection has had no request in flight for `idle`, counted from `since`
/// at the earliest; or at once when it is told to close, if `heed_closing`.
async fn quiet(
    activity: &mut watch::Receiver<Activity>,
    idle: Duration,
    since: Instant,
    heed_closing: bool,
) {
    loop {
        let now = *activity.borrow_and_update();
        if heed_closing && now.closing {
            return;
        }
        let changed = if now.in_flight == 0 {
            match now.idle_since.max(since).checked_add(idle) {
                Some(deadline) => tokio::select! {
                    () = tokio::time::sleep_until(deadline) => return,
                    changed = activity.changed() => changed,
                },
                None => activity.changed().await,
            }
        } else {
            activity.changed().await
        };
        if changed.is_err() {
            // The connection's task holds the sender: nothing more will change.
            std::future::pending::<()>().await;
        }
    }
}

/// A request in flight on a connection, from the router's call until its response body is
/// sent or dropped.
struct InFlight(Arc<Tracked>);

impl InFlight {
    fn start(tracked: Arc<Tracked>) -> Self {
        tracked.activity.send_modify(|a| a.in_flight += 1);
        Self(tracked)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.activity.send_modify(|a| {
            a.in_flight = a.in_flight.saturating_sub(1);
            if a.in_flight == 0 {
                a.idle_since = Instant::now();
            }
        });
        self.0.changed.notify_one();
    }
}

pin_project! {
    /// A response body that holds its request's [`InFlight`] until hyper has sent it (and
    /// drops it) or gives it up.
    struct Sending<B> {
        #[pin]
        body: B,
        in_flight: InFlight,
    }
}

impl<B: http_body::Body> http_body::Body for Sending<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// `app` for one connection: answering 408 when a request (its body included) takes longer
/// than `limit`, counting the requests in flight, and adding `Cache-Control: no-store`; each
/// request carries the client's address as axum's `ConnectInfo<SocketAddr>`.
fn within(
    limit: Duration,
    app: Router,
    tracked: Arc<Tracked>,
    peer: std::net::SocketAddr,
) -> impl tower::Service<
    Request<Incoming>,
    Response = Response,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(move |mut request: Request<Incoming>| {
        let app = app.clone();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let in_flight = InFlight::start(Arc::clone(&tracked));
        async move {
            let mut response = match tokio::time::timeout(limit, app.oneshot(request)).await {
                Ok(Ok(response)) => response,
                Err(_) => request_timeout(),
            };
            // Webhook answers and problem documents are for this request only.
            response
                .headers_mut()
                .entry(header::CACHE_CONTROL)
                .or_insert(HeaderValue::from_static("no-store"));
            Ok(response.map(|body| axum::body::Body::new(Sending { body, in_flight })))
        }
    })
}

/// `408 Request Timeout` as a problem document; the connection is closed after it, since the
/// rest of the request may still be on its way.
fn request_timeout() -> Response {
    let mut response = Problem::of(&Kind::REQUEST_TIMEOUT)
        .into_http_response()
        .map(axum::body::Body::new);
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_documented_limits() {
        let limits = Limits::default();
        assert_eq!(limits, Limits::new());
        assert_eq!(limits.header_read, Duration::from_secs(10));
        assert_eq!(limits.request, Duration::from_secs(30));
        assert_eq!(limits.max_connections, 1024);
        assert_eq!(limits.idle, Duration::from_secs(5));
        assert_eq!(limits.max_connections_per_client, 64);
        assert_eq!(limits.http2_streams, 32);
        assert_eq!(limits.max_body, 64 * 1024);
        assert_eq!(limits.max_buffered, 16 * 1024 * 1024);
    }

    #[test]
    fn only_a_refused_reset_or_aborted_connection_is_that_connection_s_error() {
        use std::io::{Error, ErrorKind};
        for kind in [
            ErrorKind::ConnectionRefused,
            ErrorKind::ConnectionAborted,
            ErrorKind::ConnectionReset,
        ] {
            assert!(is_connection_error(&Error::from(kind)), "{kind:?}");
        }
        // Out of file descriptors and the like concern the listener: `serve` waits and retries.
        for kind in [
            ErrorKind::Other,
            ErrorKind::OutOfMemory,
            ErrorKind::PermissionDenied,
        ] {
            assert!(!is_connection_error(&Error::from(kind)), "{kind:?}");
        }
        assert!(
            !is_connection_error(&Error::from_raw_os_error(24)),
            "EMFILE"
        );
    }

    #[tokio::test]
    async fn a_request_over_time_gets_a_408_problem() {
        let response = request_timeout();
        assert_eq!(response.status(), http::StatusCode::REQUEST_TIMEOUT);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(response.headers()[header::CONNECTION], "close");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("a body");
        let problem: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(problem["status"], 408);
        assert_eq!(problem["title"], "Request Timeout");
        assert_eq!(problem["type"], "tag:webhook-guard,2026:request-timeout");
    }
}

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
//! | connections at once | `max_connections` | 1 024 | more wait in the kernel's listen backlog |
//! | HTTP/2 streams per connection | `http2_streams` | 32 | senders multiplexing more wait for a stream |
//! | HTTP/2 keep-alive pings, every `header_read` | `header_read` | 10 s | a ping per idle interval; dead peers are noticed |
//! | body limit | `max_body` | 64 KiB | larger deliveries are refused (413); most vendors send a few KiB (GitHub caps at 25 MB: raise it for GitHub push events) |
//! | buffered-bytes budget | `max_buffered` | 16 MiB | requests beyond it get 503 + `Retry-After`; senders retry |
//!
//! [`serve`] itself enforces `header_read`, `request`, `max_connections` and `http2_streams`.
//! `max_body` and `max_buffered` are the webhook layer's settings, kept here so one value holds
//! a deployment's limits: pass them to
//! [`WebhookLayer::max_body_size`](crate::middleware::WebhookLayer::max_body_size) and
//! [`WebhookLayer::max_buffered_bytes`](crate::middleware::WebhookLayer::max_buffered_bytes)
//! when building the router.
//!
//! An HTTP/2 connection that answers pings but opens no stream is not timed out by hyper; the
//! connection limit bounds how many such connections there can be.
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

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use axum::Router;
use http::{header, HeaderValue, Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

use crate::middleware::problem_response;

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
    /// connection's first byte must arrive within this; also the HTTP/2 keep-alive ping
    /// interval. Enforced by [`serve`]. Default 10 s.
    pub header_read: Duration,
    /// A whole request, body included, must be answered within this: `408 Request Timeout`
    /// (`application/problem+json`, `Connection: close`) after it. Enforced by [`serve`].
    /// Default 30 s.
    pub request: Duration,
    /// Connections served at once; further ones wait in the listen backlog until one closes.
    /// Enforced by [`serve`]; at least 1. Default 1 024.
    pub max_connections: usize,
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
}

impl Limits {
    /// The defaults: 10 s to read headers, 30 s per request, 1 024 connections, 32 HTTP/2
    /// streams per connection, 64 KiB bodies, 16 MiB of bodies buffered at once.
    pub const fn new() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            request: Duration::from_secs(30),
            max_connections: 1024,
            http2_streams: 32,
            max_body: 64 * 1024,
            max_buffered: 16 * 1024 * 1024,
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
}

impl Default for Limits {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves `app` on `listener` over HTTP/1 and HTTP/2 with `limits` until `shutdown` completes.
///
/// Each connection takes one of [`max_connections`](Limits::max_connections) permits before it
/// is accepted. A connection that sends no byte within [`header_read`](Limits::header_read) is
/// closed (telling HTTP/1 from HTTP/2 waits for the first bytes, before hyper's HTTP/1 header
/// timer runs), as is an HTTP/1 connection whose headers take longer. A request not answered
/// within [`request`](Limits::request), its body included, gets `408` with an
/// `application/problem+json` document and `Connection: close`.
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
    let connections = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
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
    let (stopping, _) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A connection is accepted only when it may be served.
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => {
                permit.map_err(std::io::Error::other)?
            }
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    drop(permit);
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
        let (stream, peer) = stream;
        let service = TowerToHyperService::new(within(limits.request, app.clone(), peer));
        let builder = Arc::clone(&builder);
        let mut stop = stopping.subscribe();
        tokio::spawn(async move {
            let stopped = async move {
                // Also when `serve` is gone without sending: then it stops too.
                let _ = stop.wait_for(|stopping| *stopping).await;
            };
            let mut stopped = std::pin::pin!(stopped);
            // Telling HTTP/1 from HTTP/2 waits for the first bytes, before any HTTP/1 header
            // timeout runs: a client that sends nothing is dropped here.
            let mut byte = [0u8; 1];
            let first = tokio::select! {
                first = tokio::time::timeout(limits.header_read, stream.peek(&mut byte)) => first,
                () = &mut stopped => return,
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
            };
            if let Err(e) = served {
                tracing::debug!("connection closed: {e}");
            }
            drop(permit);
        });
    }
    stopping.send_replace(true);
    let _ = tokio::time::timeout(limits.request, stopping.closed()).await;
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

/// `app`, answering 408 when a request (its body included) takes longer than `limit`; each
/// request carries the client's address as axum's `ConnectInfo<SocketAddr>`.
fn within(
    limit: Duration,
    app: Router,
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
        async move {
            match tokio::time::timeout(limit, app.oneshot(request)).await {
                Ok(response) => response,
                Err(_) => Ok(request_timeout()),
            }
        }
    })
}

/// `408 Request Timeout` as a problem document; the connection is closed after it, since the
/// rest of the request may still be on its way.
fn request_timeout() -> Response {
    let problem = serde_json::json!({
        "type": "tag:webhook-guard,2026:request-timeout",
        "title": "Request Timeout",
        "status": 408,
        "detail": "the request took longer than the server allows",
    });
    let mut response =
        problem_response(StatusCode::REQUEST_TIMEOUT, &problem).map(axum::body::Body::new);
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
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
        assert_eq!(limits.http2_streams, 32);
        assert_eq!(limits.max_body, 64 * 1024);
        assert_eq!(limits.max_buffered, 16 * 1024 * 1024);
    }

    #[tokio::test]
    async fn a_request_over_time_gets_a_408_problem() {
        let response = request_timeout();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(response.headers()[header::CONNECTION], "close");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("a body");
        let problem: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(problem["status"], 408);
        assert_eq!(problem["title"], "Request Timeout");
    }
}

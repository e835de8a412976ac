//! A webhook receiver: an axum server whose `POST /webhooks` only sees verified deliveries,
//! served with the limits a server facing the internet needs (README, "Deploying").
//!
//! ```sh
//! cargo run --example receiver                       # 127.0.0.1:3000, fresh secret
//! PORT=8080 WEBHOOK_SECRET=whsec_... cargo run --example receiver   # PORT=0: any free port
//! ```
//!
//! On start it prints the secret it uses and a ready `curl` command with a correctly signed
//! Standard Webhooks delivery (valid for five minutes).
//!
//! The receiver does not rotate its secret. Rotation lives in the management plane: run
//! `cargo run --features cli -- serve --data-dir ./wg-data --bootstrap` (the admin API with the
//! platforms' regenerate endpoints and API keys), or, in your own code, call
//! [`Keyring::regenerate`] or [`Keyring::rotate`] from a task you authenticate yourself.
//!
//! Every connection gets [`LIMITS`]: headers must arrive within 10 s, a whole request within
//! 30 s (a body trickled a byte at a time is cut off, 408), at most 1 024 connections and 32
//! HTTP/2 streams per connection, and the layer holds at most 16 MiB of bodies at once.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Extension, Router};
use bytes::Bytes;
use http::{header, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{Keyring, Secret, Signer, Verified, Verifier};

const SAMPLE_BODY: &str = r#"{"type":"invoice.paid","data":{"id":"in_1","amount":4200}}"#;

/// What a connection may cost the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request's headers (and an idle keep-alive connection's next request) must arrive
    /// within this (HTTP/1).
    pub header_read: Duration,
    /// A whole request, body included, must be answered within this: 408 after it.
    pub request: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// Concurrent streams on one HTTP/2 connection.
    pub http2_streams: u32,
    /// Largest webhook body.
    pub max_body: usize,
    /// Most body bytes all requests may hold at once (503 with `Retry-After` beyond).
    pub max_buffered: usize,
}

/// The limits this receiver runs with.
pub const LIMITS: Limits = Limits {
    header_read: Duration::from_secs(10),
    request: Duration::from_secs(30),
    max_connections: 1024,
    http2_streams: 32,
    max_body: 64 * 1024,
    max_buffered: 16 * 1024 * 1024,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,webhook_guard=debug".into()),
        )
        .init();

    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|e| format!("PORT={p:?} is not a port number: {e}"))?,
        Err(_) => 3000,
    };
    let requested = SocketAddr::from(([127, 0, 0, 1], port));
    // Bound first, so that PORT=0 (any free port) prints the port actually used.
    let listener = TcpListener::bind(requested)
        .await
        .map_err(|e| format!("cannot listen on {requested}: {e} (set PORT to use another port)"))?;
    let addr = listener.local_addr()?;

    let (keyring, shown) = match std::env::var("WEBHOOK_SECRET") {
        Ok(text) => {
            let secret = Secret::from_whsec(&text)
                .map_err(|e| format!("WEBHOOK_SECRET is not a whsec_ secret: {e}"))?;
            (Keyring::new(secret.clone()), (secret, None))
        }
        Err(_) => {
            let (keyring, revealed) = Keyring::generate()?;
            let secret = revealed.secret();
            (keyring, (secret, Some(revealed.into_whsec())))
        }
    };
    let (secret, whsec) = shown;
    match whsec {
        Some(whsec) => println!("signing secret (shown once): {}", &*whsec),
        None => println!("signing secret: from WEBHOOK_SECRET"),
    }
    print_curl(addr, &secret)?;

    let app = app(Verifier::new(StandardWebhooks, keyring), LIMITS);
    println!("listening on http://{addr} (POST /webhooks)");
    serve(listener, app, LIMITS, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// The routes: verified webhooks.
pub fn app(verifier: Verifier, limits: Limits) -> Router {
    Router::new().route("/webhooks", post(receive)).route_layer(
        WebhookLayer::new(verifier)
            .max_body_size(limits.max_body)
            .max_buffered_bytes(limits.max_buffered),
    )
}

/// Serves `app` on `listener` with `limits` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
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
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A connection is accepted only when it may be served.
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => permit.map_err(std::io::Error::other)?,
            () = &mut shutdown => return Ok(()),
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let service = TowerToHyperService::new(within(limits.request, app.clone()));
        let builder = Arc::clone(&builder);
        tokio::spawn(async move {
            // Telling HTTP/1 from HTTP/2 waits for the first bytes, before any HTTP/1 header
            // timeout runs: a client that sends nothing is dropped here.
            let first = tokio::time::timeout(limits.header_read, stream.peek(&mut [0u8; 1])).await;
            if matches!(first, Ok(Ok(n)) if n > 0) {
                if let Err(e) = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!("connection closed: {e}");
                }
            }
            drop(permit);
        });
    }
}

/// `app`, answering 408 when a request (its body included) takes longer than `limit`.
fn within(
    limit: Duration,
    app: Router,
) -> impl tower::Service<
    Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(move |request: Request<hyper::body::Incoming>| {
        let app = app.clone();
        async move {
            match tokio::time::timeout(limit, app.oneshot(request)).await {
                Ok(response) => response,
                Err(_) => Ok((
                    StatusCode::REQUEST_TIMEOUT,
                    [
                        (header::CONTENT_TYPE, "application/problem+json"),
                        (header::CONNECTION, "close"),
                    ],
                    r#"{"title":"Request Timeout","status":408,"detail":"the request took longer than the server allows"}"#,
                )
                    .into_response()),
            }
        }
    })
}

async fn receive(Extension(verified): Extension<Verified>, body: Bytes) -> String {
    tracing::info!(
        key = %verified.key_id(),
        role = ?verified.role(),
        webhook_id = verified.webhook_id(),
        bytes = body.len(),
        "verified delivery"
    );
    format!(
        "verified {} with key {} ({:?})\n",
        verified.webhook_id().unwrap_or("-"),
        verified.key_id(),
        verified.role()
    )
}

fn print_curl(addr: SocketAddr, secret: &Secret) -> Result<(), webhook_guard::SignError> {
    let headers = Signer::new(StandardWebhooks, secret.clone()).sign(SAMPLE_BODY.as_bytes())?;
    let mut cmd = format!("curl -i http://{addr}/webhooks -H 'content-type: application/json'");
    for (name, value) in &headers {
        cmd.push_str(&format!(
            " -H '{}: {}'",
            name,
            value.to_str().unwrap_or_default()
        ));
    }
    cmd.push_str(&format!(" --data-raw '{SAMPLE_BODY}'"));
    println!("try it (valid for 5 minutes):\n{cmd}");
    Ok(())
}

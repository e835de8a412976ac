//! The receiver with hyper 1.x and no axum: `WebhookLayer` around a `tower::service_fn`.
//!
//! ```sh
//! cargo run --example hyper        # 127.0.0.1:3000, PORT overrides
//! ```
//!
//! With the limits a server facing the internet needs (README, "Deploying"): headers within
//! 10 s, a whole request within 30 s, at most 1 024 connections, 16 MiB of bodies held at once.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower::{service_fn, ServiceBuilder};
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::GitHub;
use webhook_guard::{Keyring, Signer, Verified, Verifier};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    let (keyring, revealed) = Keyring::generate()?;
    let secret = revealed.secret();
    println!(
        "GitHub webhook secret (shown once): {}",
        &*revealed.into_hex()
    );
    let body = r#"{"zen":"Keep it logically awesome."}"#;
    let signature = Signer::new(GitHub, secret).sign(body.as_bytes())?;
    println!(
        "try it:\ncurl -i http://{addr}/ -H 'x-hub-signature-256: {}' --data-raw '{body}'",
        signature["x-hub-signature-256"].to_str()?
    );

    let service = ServiceBuilder::new()
        .layer(WebhookLayer::new(Verifier::new(GitHub, keyring)).max_buffered_bytes(16 << 20))
        .service(service_fn(|request: Request<Full<Bytes>>| async move {
            let key = request
                .extensions()
                .get::<Verified>()
                .map(|v| v.key_id().to_string())
                .unwrap_or_default();
            let mut response =
                Response::new(Full::new(Bytes::from(format!("verified with {key}\n"))));
            *response.status_mut() = StatusCode::OK;
            Ok::<_, Infallible>(response)
        }));

    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{addr}");
    let connections = Arc::new(tokio::sync::Semaphore::new(1024));
    loop {
        // Accept only what may be served; the rest waits in the listen backlog.
        let permit = Arc::clone(&connections).acquire_owned().await?;
        let (stream, _) = listener.accept().await?;
        let service = service.clone();
        // The whole request, body included, within 30 s: a trickled body cannot hold it.
        let service = hyper::service::service_fn(move |request| {
            let call = tower::ServiceExt::oneshot(service.clone(), request);
            async move {
                match tokio::time::timeout(Duration::from_secs(30), call).await {
                    Ok(response) => response.map(|r| r.map(http_body_util::Either::Left)),
                    Err(_) => {
                        let mut response = Response::new(http_body_util::Either::Right(Full::new(
                            Bytes::from_static(b"request timeout\n"),
                        )));
                        *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
                        Ok(response)
                    }
                }
            }
        });
        tokio::spawn(async move {
            // Headers (and an idle connection's next request) within 10 s.
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                eprintln!("connection error: {e}");
            }
            drop(permit);
        });
    }
}

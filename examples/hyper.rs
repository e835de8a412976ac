//! The receiver with hyper 1.x and no axum: `WebhookLayer` around a `tower::service_fn`.
//!
//! ```sh
//! cargo run --example hyper        # 127.0.0.1:3000, PORT overrides
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
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
        .layer(WebhookLayer::new(Verifier::new(GitHub, keyring)))
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
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection error: {e}");
            }
        });
    }
}

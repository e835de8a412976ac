//! A webhook receiver: an axum server whose `POST /webhooks` only sees verified deliveries,
//! served with the limits a server facing the internet needs (README, "Deploying").
//!
//! ```sh
//! cargo run --example receiver --features server     # 127.0.0.1:3000, fresh secret
//! PORT=8080 WEBHOOK_SECRET=whsec_... cargo run --example receiver --features server   # PORT=0: any free port
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
//! It is served by [`webhook_guard::server::serve`] with [`LIMITS`], the library's defaults:
//! headers must arrive within 10 s, a whole request within 30 s (a body trickled a byte at a
//! time is cut off, 408), at most 1 024 connections and 32 HTTP/2 streams per connection, and
//! the layer holds at most 16 MiB of bodies at once.

use std::net::SocketAddr;

use axum::routing::post;
use axum::{Extension, Router};
use bytes::Bytes;
use tokio::net::TcpListener;
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::server::{serve, Limits};
use webhook_guard::{Keyring, Secret, Signer, Verified, Verifier};

const SAMPLE_BODY: &str = r#"{"type":"invoice.paid","data":{"id":"in_1","amount":4200}}"#;

/// The limits this receiver runs with: the library's defaults.
pub const LIMITS: Limits = Limits::new();

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

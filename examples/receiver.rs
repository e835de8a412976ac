//! A webhook receiver: an axum server whose `POST /webhooks` only sees verified deliveries.
//!
//! ```sh
//! cargo run --example receiver                       # 127.0.0.1:3000, fresh secret
//! PORT=8080 WEBHOOK_SECRET=whsec_... cargo run --example receiver   # PORT=0: any free port
//! ```
//!
//! On start it prints the secret it uses and a ready `curl` command with a correctly signed
//! Standard Webhooks delivery (valid for five minutes). `POST /rotate` (no body) regenerates the
//! secret with a 60 s grace period and prints the new one and a new curl command, so the
//! rotation story can be tried by hand: old signatures keep working for a minute, then stop.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Extension, Router};
use bytes::Bytes;
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{Keyring, Secret, Signer, Verified, Verifier};

const SAMPLE_BODY: &str = r#"{"type":"invoice.paid","data":{"id":"in_1","amount":4200}}"#;

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
    let listener = tokio::net::TcpListener::bind(requested)
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

    let verifier = Verifier::new(StandardWebhooks, keyring.clone());
    let app = Router::new()
        .route("/webhooks", post(receive))
        .route_layer(WebhookLayer::new(verifier).max_body_size(64 * 1024))
        // Outside the verified routes: an operator action, not a webhook.
        .merge(
            Router::new()
                .route("/rotate", post(rotate))
                .with_state((keyring, addr)),
        );

    println!("listening on http://{addr} (POST /webhooks, POST /rotate)");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
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

async fn rotate(State((keyring, addr)): State<(Keyring, SocketAddr)>) -> String {
    match keyring.regenerate(Duration::from_secs(60)) {
        Ok((revealed, rotation)) => {
            let secret = revealed.secret();
            println!(
                "new signing secret (shown once): {}",
                &*revealed.into_whsec()
            );
            if let Err(e) = print_curl(addr, &secret) {
                eprintln!("cannot sign the sample: {e}");
            }
            format!(
                "rotated to {}; {} stays valid until {}\n",
                rotation.new_key,
                rotation.old_key,
                rotation
                    .old_expires_at
                    .map_or("now".into(), |t| t.to_rfc3339())
            )
        }
        Err(e) => format!("rotation refused: {e}\n"),
    }
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

//! A webhook receiver on actix-web: `POST /guarded` is wrapped in the `WebhookGuard`
//! middleware, `POST /extracted` takes the `VerifiedJson` extractor; both verify through the
//! same `WebhookLayer`, with its limits, rejections and handshakes.
//!
//! ```sh
//! cargo run --example actix --features actix     # 127.0.0.1:3000, fresh secret
//! PORT=8080 WEBHOOK_SECRET=whsec_... cargo run --example actix --features actix
//! ```
//!
//! On start it prints the secret it uses and a ready `curl` command per route with a correctly
//! signed Standard Webhooks delivery (valid for five minutes).
//!
//! actix-web's `HttpServer` has its own connection limits (`client_request_timeout`,
//! `client_disconnect_timeout`, `max_connections`); set them as README's "Deploying" explains
//! for hyper.

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;
use webhook_guard::actix::{VerifiedJson, WebhookGuard};
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{Keyring, Secret, Signer, Verified, Verifier};

const SAMPLE_BODY: &str = r#"{"type":"invoice.paid","data":{"id":"in_1","amount":4200}}"#;

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
}

/// Behind the middleware: the verification is in the request's extensions, the body is the
/// verified bytes.
async fn guarded(verified: web::ReqData<Verified>, body: String) -> HttpResponse {
    tracing::info!(key = %verified.key_id(), bytes = body.len(), "verified delivery");
    HttpResponse::Ok().body(format!(
        "verified {} with key {}\n",
        verified.webhook_id().unwrap_or("-"),
        verified.key_id()
    ))
}

/// With the extractor: verified, then deserialized from the exact verified bytes.
async fn extracted(VerifiedJson(event, verified): VerifiedJson<Event>) -> String {
    tracing::info!(key = %verified.key_id(), kind = event.kind, "verified event");
    format!("verified {} with key {}\n", event.kind, verified.key_id())
}

#[actix_web::main]
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
    let (keyring, secret) = match std::env::var("WEBHOOK_SECRET") {
        Ok(text) => {
            let secret = Secret::from_whsec(&text)
                .map_err(|e| format!("WEBHOOK_SECRET is not a whsec_ secret: {e}"))?;
            println!("signing secret: from WEBHOOK_SECRET");
            (Keyring::new(secret.clone()), secret)
        }
        Err(_) => {
            let (keyring, revealed) = Keyring::generate()?;
            let secret = revealed.secret();
            println!("signing secret (shown once): {}", &*revealed.into_whsec());
            (keyring, secret)
        }
    };

    // One layer for both routes: one keyring, one body limit, one budget of buffered bytes.
    let max_body = 512 * 1024;
    let layer = WebhookLayer::new(Verifier::new(StandardWebhooks, keyring))
        .max_body_size(max_body)
        .max_buffered_bytes(16 * 1024 * 1024);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(layer.clone()))
            // `String` behind the middleware: actix's own limit (256 KiB unless set) must not
            // refuse what the layer verified.
            .app_data(web::PayloadConfig::new(max_body))
            .route("/extracted", web::post().to(extracted))
            .service(
                web::resource("/guarded")
                    .wrap(WebhookGuard::new(layer.clone()))
                    .route(web::post().to(guarded)),
            )
    })
    .client_request_timeout(Duration::from_secs(30))
    .max_connections(1024)
    .bind(("127.0.0.1", port))
    .map_err(|e| {
        format!("cannot listen on 127.0.0.1:{port}: {e} (set PORT to use another port)")
    })?;
    let addr = server.addrs()[0];
    for path in ["/guarded", "/extracted"] {
        print_curl(addr, path, &secret)?;
    }
    println!("listening on http://{addr} (POST /guarded, POST /extracted)");
    server.run().await?;
    Ok(())
}

fn print_curl(
    addr: SocketAddr,
    path: &str,
    secret: &Secret,
) -> Result<(), webhook_guard::SignError> {
    let headers = Signer::new(StandardWebhooks, secret.clone()).sign(SAMPLE_BODY.as_bytes())?;
    let mut cmd = format!("curl -i http://{addr}{path} -H 'content-type: application/json'");
    for (name, value) in &headers {
        cmd.push_str(&format!(
            " -H '{}: {}'",
            name,
            value.to_str().unwrap_or_default()
        ));
    }
    cmd.push_str(&format!(" --data-raw '{SAMPLE_BODY}'"));
    println!("try it on {path} (valid for 5 minutes):\n{cmd}");
    Ok(())
}

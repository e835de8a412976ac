//! Rotation under load, end to end: an axum server on a free loopback port, a pool of
//! keep-alive clients sending signed deliveries continuously, and the keyring rotating every few
//! milliseconds meanwhile.
//!
//! - With a grace period: zero false rejections over at least 100 000 deliveries.
//! - With grace 0: zero acceptances of a secret after the `rotate` call that retired it
//!   returned.
//!
//! Bounded in count and time; the server and every task stop at the end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::routing::post;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{Keyring, Secret, Signer, Verifier};

const CLIENTS: usize = 8;
const GRACE_DELIVERIES: u64 = 100_000;
const GRACE_ZERO_DELIVERIES: u64 = 20_000;
const TIME_LIMIT: Duration = Duration::from_secs(240);

/// The secret senders should use now, with its generation number.
struct Published {
    generation: u64,
    secret: Secret,
}

fn secret_for(generation: u64) -> Secret {
    Secret::from_bytes(format!("load-test-secret-{generation:08}")).unwrap()
}

async fn serve(keyring: Keyring) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route("/webhooks", post(|| async { "ok" }))
        .route_layer(WebhookLayer::new(Verifier::new(StandardWebhooks, keyring)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, server)
}

/// Sends one signed delivery on a keep-alive connection; returns the status.
async fn deliver(stream: &mut TcpStream, buf: &mut Vec<u8>, secret: &Secret, n: u64) -> u16 {
    let body = format!("{{\"delivery\":{n}}}");
    let headers = Signer::new(StandardWebhooks, secret.clone())
        .sign_at(body.as_bytes(), &format!("msg_{n}"), chrono::Utc::now())
        .unwrap();
    let mut request = format!(
        "POST /webhooks HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in &headers {
        request.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(stream, buf).await
}

/// Reads one HTTP/1.1 response with a content-length body; returns its status.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> u16 {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end])
                .unwrap()
                .to_ascii_lowercase();
            let status: u16 = head[9..12].parse().unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "connection closed mid-response");
                buf.extend_from_slice(&chunk[..n]);
            }
            return status;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a response");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_with_grace_never_rejects_a_legitimate_delivery() {
    // Rotating every 5 ms with a 3 s grace keeps ~600 keys live.
    let keyring = Keyring::builder().max_keys(2048).build(secret_for(0));
    let published = Arc::new(ArcSwap::from_pointee(Published {
        generation: 0,
        secret: secret_for(0),
    }));
    let (addr, server) = serve(keyring.clone()).await;
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    let rotator = {
        let (published, stop) = (Arc::clone(&published), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut generation = 0;
            let mut rotations = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(5)).await;
                generation += 1;
                keyring
                    .rotate(secret_for(generation), Duration::from_secs(3))
                    .unwrap();
                // Senders learn of the new secret only once the rotation returned.
                published.store(Arc::new(Published {
                    generation,
                    secret: secret_for(generation),
                }));
                rotations += 1;
            }
            rotations
        })
    };

    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (published, sent, stop) =
            (Arc::clone(&published), Arc::clone(&sent), Arc::clone(&stop));
        clients.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let mut buf = Vec::new();
            let mut rejected = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let n = sent.fetch_add(1, Ordering::Relaxed);
                if n >= GRACE_DELIVERIES || started.elapsed() > TIME_LIMIT {
                    break;
                }
                let current = published.load_full();
                let status = deliver(&mut stream, &mut buf, &current.secret, n).await;
                if status != 200 {
                    rejected.push((n, current.generation, status));
                }
            }
            rejected
        }));
    }
    let mut rejected = Vec::new();
    for client in clients {
        rejected.extend(client.await.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let rotations = rotator.await.unwrap();
    server.abort();

    let delivered = sent.load(Ordering::Relaxed).min(GRACE_DELIVERIES);
    assert!(
        delivered >= GRACE_DELIVERIES,
        "only {delivered} deliveries within {TIME_LIMIT:?}"
    );
    assert!(rotations >= 50, "only {rotations} rotations happened");
    assert!(
        rejected.is_empty(),
        "{} false rejections, first: {:?}",
        rejected.len(),
        &rejected[..rejected.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_with_grace_zero_never_accepts_a_retired_secret() {
    let keyring = Keyring::new(secret_for(0));
    let published = Arc::new(ArcSwap::from_pointee(Published {
        generation: 0,
        secret: secret_for(0),
    }));
    // Every generation up to this one has been retired by a `rotate` call that returned.
    let retired = Arc::new(AtomicU64::new(0));
    let (addr, server) = serve(keyring.clone()).await;
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    let rotator = {
        let (published, retired, stop) = (
            Arc::clone(&published),
            Arc::clone(&retired),
            Arc::clone(&stop),
        );
        tokio::spawn(async move {
            let mut generation = 0;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(3)).await;
                generation += 1;
                keyring
                    .rotate(secret_for(generation), Duration::ZERO)
                    .unwrap();
                retired.store(generation - 1, Ordering::SeqCst);
                published.store(Arc::new(Published {
                    generation,
                    secret: secret_for(generation),
                }));
            }
            generation
        })
    };

    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (published, retired, sent, stop) = (
            Arc::clone(&published),
            Arc::clone(&retired),
            Arc::clone(&sent),
            Arc::clone(&stop),
        );
        clients.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let mut buf = Vec::new();
            let (mut accepted, mut refused, mut violations) = (0u64, 0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let n = sent.fetch_add(1, Ordering::Relaxed);
                if n >= GRACE_ZERO_DELIVERIES || started.elapsed() > TIME_LIMIT {
                    break;
                }
                let current = published.load_full().generation;
                // Half the clients keep using a secret that is (or is about to be) retired.
                let generation = if client % 2 == 0 {
                    current
                } else {
                    current.saturating_sub(1)
                };
                // Read before sending: anything retired by now must be refused.
                let retired_before = retired.load(Ordering::SeqCst);
                let status = deliver(&mut stream, &mut buf, &secret_for(generation), n).await;
                match status {
                    200 if generation <= retired_before && retired_before > 0 => {
                        violations.push((n, generation, retired_before))
                    }
                    200 => accepted += 1,
                    401 => refused += 1,
                    other => panic!("unexpected status {other}"),
                }
            }
            (accepted, refused, violations)
        }));
    }
    let (mut accepted, mut refused, mut violations) = (0, 0, Vec::new());
    for client in clients {
        let (a, r, v) = client.await.unwrap();
        accepted += a;
        refused += r;
        violations.extend(v);
    }
    stop.store(true, Ordering::Relaxed);
    let rotations = rotator.await.unwrap();
    server.abort();

    assert!(rotations >= 20, "only {rotations} rotations happened");
    assert!(
        accepted > 0 && refused > 0,
        "accepted {accepted}, refused {refused}"
    );
    assert!(
        violations.is_empty(),
        "{} acceptances of retired secrets, first: {:?}",
        violations.len(),
        &violations[..violations.len().min(5)]
    );
}

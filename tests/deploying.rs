//! The receiver example's server (`webhook_guard::server::serve` with the example's router), as
//! README "Deploying" describes it, over real loopback connections: it drops a client that never
//! finishes its headers, cuts off a body trickled slower than the request limit allows, and
//! still serves honest deliveries (review finding, issue 15 B6). The example file is compiled in
//! as a module, so the test runs its own code.

#[allow(dead_code)]
#[path = "../examples/receiver.rs"]
mod receiver;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::server::{serve, Limits};
use webhook_guard::{Keyring, Secret, Signer, Verifier};

const SECRET: &str = "deploying secret";

/// Limits short enough for a test; everything else as the example runs.
const LIMITS: Limits = receiver::LIMITS
    .header_read(Duration::from_millis(300))
    .request(Duration::from_millis(800));

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free loopback port");
    let addr = listener.local_addr().expect("bound");
    let keyring = Keyring::new(Secret::from_bytes(SECRET).expect("a secret"));
    let app = receiver::app(Verifier::new(StandardWebhooks, keyring), LIMITS);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, app, LIMITS, async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        stop: Some(stop),
    }
}

/// Reads until the server closes the connection; what it sent, or `None` if it was still open
/// after `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&seen).into_owned())
}

fn signed_request(body: &str) -> String {
    let headers = Signer::new(
        StandardWebhooks,
        Secret::from_bytes(SECRET).expect("a secret"),
    )
    .sign(body.as_bytes())
    .expect("signed");
    let mut request = format!(
        "POST /webhooks HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in &headers {
        let value = value.to_str().expect("ASCII");
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    request
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_dropped() {
    let server = start().await;
    let mut slow = TcpStream::connect(server.addr).await.expect("connects");
    slow.write_all(b"POST /webhooks HTTP/1.1\r\nhost: localhost\r\nx-pad: ")
        .await
        .expect("writes");
    // Closed by the server after the 300 ms header limit, well within 5 s.
    let seen = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(seen.is_some(), "the connection was still open after 5 s");

    // An idle keep-alive connection that sends nothing at all is dropped too.
    let mut idle = TcpStream::connect(server.addr).await.expect("connects");
    let seen = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert_eq!(seen.as_deref(), Some(""), "closed without an answer");
}

#[tokio::test]
async fn a_body_trickled_past_the_request_limit_is_cut_off_with_408() {
    let server = start().await;
    let body = "x".repeat(100);
    let request = signed_request(&body);
    let (head, _) = request.split_at(request.len() - body.len());
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    stream.write_all(head.as_bytes()).await.expect("writes");
    // One byte every 100 ms: 10 s for the body, against an 800 ms request limit.
    let outcome = tokio::time::timeout(Duration::from_secs(5), async {
        let (mut read_half, mut write_half) = stream.split();
        let mut answer = Vec::new();
        let reading = read_half.read_to_end(&mut answer);
        let writing = async {
            for _ in 0..body.len() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if write_half.write_all(b"x").await.is_err() {
                    break;
                }
            }
        };
        tokio::select! {
            _ = reading => {}
            () = writing => {}
        }
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await;
    let answer = outcome.expect("answered within 5 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("application/problem+json"), "{answer:?}");
    assert!(answer.contains("cache-control: no-store\r\n"), "{answer:?}");
}

#[tokio::test]
async fn honest_deliveries_are_served_and_not_cached() {
    let server = start().await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    stream
        .write_all(signed_request(r#"{"type":"ping"}"#).as_bytes())
        .await
        .expect("writes");
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("cache-control: no-store\r\n"), "{answer}");
}

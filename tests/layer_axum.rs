//! `WebhookLayer` in an axum router and behind real HTTP/1.1 servers (axum and plain hyper),
//! reached over TCP with a minimal hand-written client.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::routing::post;
use axum::{Extension, Router};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tower::{service_fn, Layer, ServiceExt};
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::{GitHub, StandardWebhooks};
use webhook_guard::{Clock, KeyId, Keyring, ManualClock, Secret, Signer, Verified, Verifier};

const NOW: i64 = 1_700_000_000;
const SECRET: &str = "axum test secret";
const KEY_ID: &str = "key-axum";
/// Upper bound for anything that touches the network.
const LIMIT: Duration = Duration::from_secs(10);

fn secret(text: &str) -> Secret {
    Secret::from_bytes(text).expect("a non-empty secret")
}

fn keyring(clock: &ManualClock) -> Keyring {
    Keyring::builder()
        .clock(clock.clone())
        .key_id(KeyId::new(KEY_ID))
        .build(secret(SECRET))
}

fn layer(clock: &ManualClock) -> WebhookLayer {
    WebhookLayer::new(Verifier::new(StandardWebhooks, keyring(clock))).max_body_size(64)
}

fn sign(clock: &ManualClock, body: &[u8], id: &str) -> HeaderMap {
    Signer::new(StandardWebhooks, secret(SECRET))
        .sign_at(body, id, clock.now())
        .unwrap()
}

fn forge(clock: &ManualClock, body: &[u8], id: &str) -> HeaderMap {
    Signer::new(StandardWebhooks, secret("someone else's secret"))
        .sign_at(body, id, clock.now())
        .unwrap()
}

async fn handler(Extension(verified): Extension<Verified>, body: Bytes) -> String {
    format!(
        "key={} id={} body={}",
        verified.key_id(),
        verified.webhook_id().unwrap_or("-"),
        String::from_utf8_lossy(&body)
    )
}

fn app_with_layer(clock: &ManualClock) -> Router {
    Router::new()
        .route("/webhooks", post(handler))
        .layer(layer(clock))
}

fn app_with_route_layer(clock: &ManualClock) -> Router {
    Router::new()
        .route("/webhooks", post(handler))
        .route_layer(layer(clock))
}

fn request(path: &str, headers: HeaderMap, body: impl Into<Bytes>) -> Request<Body> {
    let mut request = Request::post(path).body(Body::from(body.into())).unwrap();
    request.headers_mut().extend(headers);
    request
}

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
    let response = app
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    (parts.status, parts.headers, body)
}

fn assert_problem(status: StatusCode, headers: &HeaderMap, body: &[u8], expected: StatusCode) {
    assert_eq!(status, expected, "{}", String::from_utf8_lossy(body));
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    let doc: serde_json::Value = serde_json::from_slice(body).expect("problem+json body");
    assert!(doc["type"]
        .as_str()
        .unwrap()
        .starts_with("tag:webhook-guard,2026:"));
    assert_eq!(doc["status"], expected.as_u16());
}

// ---------------------------------------------------------------------------------------------
// Router, in process
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn router_layer_accepts_signed_delivery() {
    let clock = ManualClock::at_unix(NOW);
    let app = app_with_layer(&clock);
    let body = r#"{"event":"ping"}"#;

    let (status, _, reply) = call(
        &app,
        request("/webhooks", sign(&clock, body.as_bytes(), "msg_1"), body),
    )
    .await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply, format!("key={KEY_ID} id=msg_1 body={body}"));
}

#[tokio::test]
async fn router_layer_rejects_forged_delivery_with_problem_json() {
    let clock = ManualClock::at_unix(NOW);
    let app = app_with_layer(&clock);
    let body = r#"{"event":"ping"}"#;

    let (status, headers, reply) = call(
        &app,
        request("/webhooks", forge(&clock, body.as_bytes(), "msg_1"), body),
    )
    .await;

    assert_problem(status, &headers, &reply, StatusCode::UNAUTHORIZED);
    let doc: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(doc["type"], "tag:webhook-guard,2026:invalid-signature");
    assert_eq!(doc["title"], "Invalid webhook signature");
}

#[tokio::test]
async fn router_layer_verifies_before_routing() {
    // `Router::layer` wraps the fallback too: an unsigned request to an unknown path is
    // refused by the layer, and a signed one reaches the 404 fallback.
    let clock = ManualClock::at_unix(NOW);
    let app = app_with_layer(&clock);

    let (status, headers, reply) = call(&app, request("/elsewhere", HeaderMap::new(), "{}")).await;
    assert_problem(status, &headers, &reply, StatusCode::BAD_REQUEST);

    let (status, _, _) = call(
        &app,
        request("/elsewhere", sign(&clock, b"{}", "msg_1"), "{}"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn route_layer_accepts_and_rejects() {
    let clock = ManualClock::at_unix(NOW);
    let app = app_with_route_layer(&clock);
    let body = "hello";

    let (status, _, reply) = call(
        &app,
        request("/webhooks", sign(&clock, body.as_bytes(), "msg_9"), body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply, format!("key={KEY_ID} id=msg_9 body=hello"));

    let (status, headers, reply) = call(
        &app,
        request("/webhooks", forge(&clock, body.as_bytes(), "msg_9"), body),
    )
    .await;
    assert_problem(status, &headers, &reply, StatusCode::UNAUTHORIZED);

    // Too large for the 64-byte limit.
    let big = "x".repeat(65);
    let (status, headers, reply) = call(
        &app,
        request("/webhooks", sign(&clock, big.as_bytes(), "msg_10"), big),
    )
    .await;
    assert_problem(status, &headers, &reply, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn route_layer_leaves_unmatched_paths_alone() {
    let clock = ManualClock::at_unix(NOW);
    let app = app_with_route_layer(&clock);
    let (status, _, _) = call(&app, request("/elsewhere", HeaderMap::new(), "{}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client over TcpStream (tokio's io-util is not enabled: readiness + try_*)
// ---------------------------------------------------------------------------------------------

struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn write_all(stream: &TcpStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        stream.writable().await?;
        match stream.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn read_to_end(stream: &TcpStream) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        stream.readable().await?;
        match stream.try_read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

fn parse_response(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
    let status = parts.next().unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("header line");
            (name.trim().to_owned(), value.trim().to_owned())
        })
        .collect();
    let rest = &raw[split + 4..];
    let mut response = RawResponse {
        status,
        headers,
        body: Vec::new(),
    };
    response.body = if let Some(len) = response.header("content-length") {
        let len: usize = len.parse().unwrap();
        assert!(rest.len() >= len, "short body");
        rest[..len].to_vec()
    } else if response
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    response
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&rest[..eol]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        rest = &rest[eol + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Builds a request head (HTTP/1.1, `Connection: close`) with `headers` and the body framing
/// given in `framing`, followed by `body` bytes as they go on the wire.
fn raw_request(addr: SocketAddr, headers: &HeaderMap, framing: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!("POST /webhooks HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{}: {}\r\n", name, value.to_str().unwrap()));
    }
    raw.push_str(framing);
    raw.push_str("\r\n");
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    raw
}

fn with_length(addr: SocketAddr, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    raw_request(
        addr,
        headers,
        &format!("Content-Length: {}\r\n", body.len()),
        body,
    )
}

fn chunked(addr: SocketAddr, headers: &HeaderMap, chunks: &[&[u8]]) -> Vec<u8> {
    let mut wire = Vec::new();
    for chunk in chunks {
        wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        wire.extend_from_slice(chunk);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    raw_request(addr, headers, "Transfer-Encoding: chunked\r\n", &wire)
}

/// One request on a fresh connection; the server closes it after answering.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> RawResponse {
    timeout(LIMIT, async {
        let stream = TcpStream::connect(addr).await?;
        write_all(&stream, raw).await?;
        let bytes = read_to_end(&stream).await?;
        io::Result::Ok(parse_response(&bytes))
    })
    .await
    .expect("the exchange timed out")
    .expect("the exchange failed")
}

/// Aborts the server task when the test ends, whether it passes or panics.
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    assert_ne!(addr.port(), 0);
    (listener, addr)
}

// ---------------------------------------------------------------------------------------------
// axum::serve over TCP
// ---------------------------------------------------------------------------------------------

async fn serve_axum(app: Router) -> Server {
    let (listener, addr) = bind().await;
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server { addr, task }
}

#[tokio::test]
async fn axum_server_accepts_signed_and_refuses_oversized() {
    let clock = ManualClock::at_unix(NOW);
    let server = serve_axum(app_with_layer(&clock)).await;
    let addr = server.addr;

    // Signed, with Content-Length.
    let body = br#"{"event":"invoice.paid"}"#;
    let response = exchange(addr, &with_length(addr, &sign(&clock, body, "msg_1"), body)).await;
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(
        response.body,
        format!(
            "key={KEY_ID} id=msg_1 body={}",
            String::from_utf8_lossy(body)
        )
        .as_bytes()
    );

    // Signed, chunked.
    let response = exchange(
        addr,
        &chunked(
            addr,
            &sign(&clock, body, "msg_2"),
            &[&body[..5], &body[5..]],
        ),
    )
    .await;
    assert_eq!(response.status, 200);
    assert!(response.body.starts_with(b"key=key-axum id=msg_2 "));

    // Forged.
    let response = exchange(
        addr,
        &with_length(addr, &forge(&clock, body, "msg_3"), body),
    )
    .await;
    assert_eq!(response.status, 401);
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );

    // Oversized by Content-Length (limit 64), correctly signed.
    let big = vec![b'x'; 200];
    let response = exchange(addr, &with_length(addr, &sign(&clock, &big, "msg_4"), &big)).await;
    assert_eq!(response.status, 413);
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    let doc: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(doc["type"], "tag:webhook-guard,2026:body-too-large");
    assert_eq!(doc["status"], 413);

    // Oversized and chunked: read until it passes the limit.
    let response = exchange(
        addr,
        &chunked(
            addr,
            &sign(&clock, &big, "msg_5"),
            &[&big[..50], &big[50..100], &big[100..]],
        ),
    )
    .await;
    assert_eq!(response.status, 413);

    // The server still works afterwards.
    let response = exchange(
        addr,
        &with_length(addr, &sign(&clock, b"{}", "msg_6"), b"{}"),
    )
    .await;
    assert_eq!(response.status, 200);

    server.task.abort();
}

#[tokio::test]
async fn axum_server_with_graceful_shutdown() {
    let clock = ManualClock::at_unix(NOW);
    let (listener, addr) = bind().await;
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let app = app_with_route_layer(&clock);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                // Poll the std channel without blocking the runtime.
                while stop_rx.try_recv().is_err() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await
            .unwrap();
    });

    let response = exchange(
        addr,
        &with_length(addr, &sign(&clock, b"[]", "msg_1"), b"[]"),
    )
    .await;
    assert_eq!(response.status, 200);

    stop_tx.send(()).unwrap();
    timeout(LIMIT, task)
        .await
        .expect("the server did not shut down")
        .expect("the server task failed");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

// ---------------------------------------------------------------------------------------------
// Plain hyper 1.x server
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn hyper_server_accepts_signed_and_refuses_forged() {
    let clock = ManualClock::at_unix(NOW);
    let verifier = Verifier::new(GitHub, keyring(&clock));
    let service = WebhookLayer::new(verifier)
        .max_body_size(1024)
        .layer(service_fn(|request: Request<Full<Bytes>>| async move {
            let verified = request
                .extensions()
                .get::<Verified>()
                .cloned()
                .expect("Verified in the extensions");
            assert_eq!(
                verified.webhook_id(),
                None,
                "GitHub's delivery id is unsigned"
            );
            // The unsigned delivery id is read from the request itself, for logs.
            let delivery = request.headers()["x-github-delivery"].clone();
            let body = request
                .into_body()
                .collect()
                .await
                .unwrap_or_else(|never| match never {})
                .to_bytes();
            let text = format!(
                "{} {} {}",
                verified.key_id(),
                delivery.to_str().unwrap_or("-"),
                body.len()
            );
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response
                .headers_mut()
                .insert("x-handled", HeaderValue::from_static("1"));
            Ok::<_, Infallible>(response)
        }));

    let (listener, addr) = bind().await;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = TowerToHyperService::new(service.clone());
            // Connections are served one after the other; enough for this test.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    });
    let server = Server { addr, task };

    let body = b"{\"zen\":\"Keep it logically awesome.\"}";
    let signer = Signer::new(GitHub, secret(SECRET));
    let signed = signer.sign_at(body, "gh-delivery-1", clock.now()).unwrap();
    let response = exchange(addr, &with_length(addr, &signed, body)).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-handled"), Some("1"));
    assert_eq!(
        response.body,
        format!("{KEY_ID} gh-delivery-1 {}", body.len()).as_bytes()
    );

    let mut forged = HeaderMap::new();
    forged.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&format!("sha256={}", "ab".repeat(32))).unwrap(),
    );
    let response = exchange(addr, &with_length(addr, &forged, body)).await;
    assert_eq!(response.status, 401);
    assert_eq!(response.header("x-handled"), None);
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    let doc: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(doc["type"], "tag:webhook-guard,2026:invalid-signature");
    assert_eq!(doc["status"], 401);

    drop(server);
}

#[tokio::test]
async fn oversized_chunked_body_on_keep_alive_connection_is_not_reused() {
    // The unread rest of a refused chunked body carries a whole signed request. Whatever the
    // server does with the connection, that request must not be answered.
    let clock = ManualClock::at_unix(NOW);
    let server = serve_axum(app_with_layer(&clock)).await;
    let addr = server.addr;

    let inner_body = b"{}";
    // Keep-alive for the smuggled one too: no `Connection: close`.
    let smuggled = String::from_utf8(with_length(
        addr,
        &sign(&clock, inner_body, "msg_smuggled"),
        inner_body,
    ))
    .unwrap()
    .replace("Connection: close\r\n", "")
    .into_bytes();
    let padding = [b'p'; 100];
    let mut wire = Vec::new();
    for chunk in [&padding[..], &smuggled[..]] {
        wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        wire.extend_from_slice(chunk);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    let outer_headers = sign(&clock, b"irrelevant", "msg_outer");
    let raw = raw_request(
        addr,
        &outer_headers,
        "Transfer-Encoding: chunked\r\n",
        &wire,
    );
    let raw = String::from_utf8(raw)
        .unwrap()
        .replacen("Connection: close\r\n", "", 1)
        .into_bytes();

    let bytes = timeout(LIMIT, async {
        let stream = TcpStream::connect(addr).await?;
        write_all(&stream, &raw).await?;
        read_to_end(&stream).await
    })
    .await
    .expect("the server kept the connection open after refusing an unread body")
    .expect("read failed");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
    assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{text}");
    assert!(!text.contains("msg_smuggled"), "{text}");
}

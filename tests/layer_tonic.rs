//! `WebhookLayer` in front of a tonic server (`Server::builder().layer(..)`), reached over
//! HTTP/2 on TCP: a signed request reaches the service with its `Verified`, a forged or unsigned
//! one is refused with the layer's problem+json before any service sees it.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{Clock, KeyId, Keyring, ManualClock, Secret, Signer, Verified, Verifier};

const NOW: i64 = 1_700_000_000;
const SECRET: &str = "tonic test secret";
const KEY_ID: &str = "key-tonic";
/// Upper bound for anything that touches the network.
const LIMIT: Duration = Duration::from_secs(10);
/// A gRPC message: compression flag 0, length 5, then the message.
const MESSAGE: &[u8] = b"\x00\x00\x00\x00\x05hello";
const PATH: &str = "/webhooks.Receiver/Deliver";

fn secret(text: &str) -> Secret {
    Secret::from_bytes(text).expect("a non-empty secret")
}

/// A gRPC service written by hand (no codegen): answers OK, with the key that verified the call
/// in a header and the request's body echoed back.
#[derive(Clone)]
struct Receiver;

impl NamedService for Receiver {
    const NAME: &'static str = "webhooks.Receiver";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tower::Service<Request<tonic::body::Body>> for Receiver {
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        let key = request
            .extensions()
            .get::<Verified>()
            .map_or_else(|| "unverified".to_owned(), |v| v.key_id().to_string());
        Box::pin(async move {
            let body = match request.into_body().collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => Bytes::from_static(b"unreadable"),
            };
            let response = Response::builder()
                .header(header::CONTENT_TYPE, "application/grpc")
                .header("grpc-status", "0")
                .header("x-verified-key", key)
                .body(tonic::body::Body::new(Full::new(body)))
                .expect("a valid response");
            Ok(response)
        })
    }
}

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        timeout(LIMIT, self.server)
            .await
            .expect("server stops in time")
            .expect("server task")
            .expect("server ran without error");
    }
}

async fn serve(layer: WebhookLayer) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = Server::builder()
        .layer(layer)
        .add_service(Receiver)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
            let _ = stopped.await;
        });
    Running {
        addr,
        stop,
        server: tokio::spawn(server),
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// One HTTP/2 request as a gRPC client sends it: prior knowledge, `te: trailers`.
async fn call(addr: SocketAddr, headers: &HeaderMap, body: &'static [u8]) -> Answer {
    let exchange = async {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut client = client.ready().await.expect("client ready");
        let mut request = Request::post(format!("http://{addr}{PATH}"))
            .header(header::CONTENT_TYPE, "application/grpc")
            .header(header::TE, "trailers")
            .body(())
            .expect("a valid request");
        request.headers_mut().extend(headers.clone());
        let (response, mut stream) = client.send_request(request, false).expect("sent");
        stream
            .send_data(Bytes::from_static(body), true)
            .expect("body sent");
        let (parts, mut received) = response.await.expect("a response").into_parts();
        let mut body = Vec::new();
        while let Some(chunk) = received.data().await {
            let chunk = chunk.expect("response body");
            let _ = received.flow_control().release_capacity(chunk.len());
            body.extend_from_slice(&chunk);
        }
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: body.into(),
        }
    };
    timeout(LIMIT, exchange).await.expect("answered in time")
}

fn layer(clock: &ManualClock) -> WebhookLayer {
    let keyring = Keyring::builder()
        .clock(clock.clone())
        .key_id(KeyId::new(KEY_ID))
        .build(secret(SECRET));
    WebhookLayer::new(Verifier::new(StandardWebhooks, keyring)).max_body_size(1024)
}

fn sign_with(clock: &ManualClock, key: &str, body: &[u8]) -> HeaderMap {
    Signer::new(StandardWebhooks, secret(key))
        .sign_at(body, "msg_tonic", clock.now())
        .expect("signed")
}

fn assert_problem(answer: &Answer, status: StatusCode, kind: &str) {
    assert_eq!(answer.status, status);
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert!(answer.headers.get("x-verified-key").is_none());
    let problem: serde_json::Value = serde_json::from_slice(&answer.body).expect("problem+json");
    assert_eq!(problem["type"], format!("tag:webhook-guard,2026:{kind}"));
    assert_eq!(problem["status"], status.as_u16());
}

#[tokio::test]
async fn tonic_server_with_layer_passes_signed_request_to_the_service() {
    let clock = ManualClock::at_unix(NOW);
    let running = serve(layer(&clock)).await;

    let answer = call(running.addr, &sign_with(&clock, SECRET, MESSAGE), MESSAGE).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["grpc-status"], "0");
    assert_eq!(answer.headers["x-verified-key"], KEY_ID);
    assert_eq!(answer.body, MESSAGE);
    running.stop().await;
}

#[tokio::test]
async fn tonic_server_with_layer_refuses_forged_request_with_problem_json() {
    let clock = ManualClock::at_unix(NOW);
    let running = serve(layer(&clock)).await;

    let forged = sign_with(&clock, "someone else's secret", MESSAGE);
    let answer = call(running.addr, &forged, MESSAGE).await;
    assert_problem(&answer, StatusCode::UNAUTHORIZED, "invalid-signature");

    let answer = call(running.addr, &HeaderMap::new(), MESSAGE).await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "missing-header");
    running.stop().await;
}

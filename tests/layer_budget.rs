//! What one layer spends across requests (review findings, issue 15 B): the bytes of bodies
//! buffered at once are bounded by a shared budget (503 with `Retry-After` beyond it), and the
//! MAC work of one large body is done a slice per poll, so other requests on the same worker
//! go on.

use std::convert::Infallible;
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use tokio::sync::mpsc;
use tower::{service_fn, Layer, Service, ServiceExt};
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::GitHub;
use webhook_guard::{Keyring, ManualClock, Secret, Signer, Verifier};

const NOW: i64 = 1_700_000_000;

fn secret(text: &str) -> Secret {
    Secret::from_bytes(text).expect("a non-empty secret")
}

fn signed(key: &str, body: &[u8]) -> HeaderMap {
    let at = chrono::DateTime::from_timestamp(NOW, 0).expect("a valid time");
    Signer::new(GitHub, secret(key))
        .sign_at(body, "", at)
        .expect("a GitHub signature")
}

fn layer(budget: usize) -> WebhookLayer {
    let keyring = Keyring::builder()
        .clock(ManualClock::at_unix(NOW))
        .build(secret("budget secret"));
    WebhookLayer::new(Verifier::new(GitHub, keyring))
        .max_body_size(1000)
        .max_buffered_bytes(budget)
}

/// A body the test feeds frame by frame, announcing `length` (or nothing).
struct Fed {
    frames: mpsc::Receiver<Bytes>,
    length: Option<u64>,
}

impl Body for Fed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.frames
            .poll_recv(cx)
            .map(|frame| frame.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn size_hint(&self) -> SizeHint {
        self.length
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

type Answer = tokio::task::JoinHandle<(StatusCode, HeaderMap, Bytes)>;

/// Starts a request through `layer` whose body arrives as the test sends it.
fn start(
    layer: &WebhookLayer,
    headers: HeaderMap,
    length: Option<u64>,
) -> (mpsc::Sender<Bytes>, Answer) {
    let (sender, frames) = mpsc::channel(1);
    let mut request = Request::post("/hooks")
        .body(Fed { frames, length })
        .expect("a valid request");
    *request.headers_mut() = headers;
    if let Some(length) = length {
        request
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    let service = layer
        .clone()
        .layer(service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        }));
    let answer = tokio::spawn(async move {
        let response = service
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .unwrap_or_else(|never| match never {})
            .to_bytes();
        (parts.status, parts.headers, body)
    });
    (sender, answer)
}

/// Sends a frame and returns once the layer has taken it (channel capacity 1).
async fn feed(sender: &mpsc::Sender<Bytes>, frame: Vec<u8>) {
    sender
        .send(Bytes::from(frame))
        .await
        .expect("the layer reads");
    drop(sender.reserve().await.expect("the layer reads"));
}

fn assert_over_capacity(status: StatusCode, headers: &HeaderMap, body: &[u8]) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "2");
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    let doc: serde_json::Value = serde_json::from_slice(body).expect("JSON");
    assert_eq!(doc["type"], "tag:webhook-guard,2026:over-capacity");
    assert_eq!(doc["status"], 503);
}

#[tokio::test]
async fn an_announced_body_that_does_not_fit_the_budget_is_refused_before_it_is_read() {
    let layer = layer(1000);
    let held_body = vec![b'a'; 800];
    let (held, first) = start(&layer, signed("budget secret", &held_body), Some(800));
    feed(&held, held_body[..100].to_vec()).await;

    // 800 reserved: 201 more do not fit, 200 do.
    let (_, refused) = start(&layer, signed("budget secret", &[b'b'; 201]), Some(201));
    let (status, headers, body) = refused.await.expect("answered");
    assert_over_capacity(status, &headers, &body);
    let small = vec![b'c'; 200];
    let (fits, second) = start(&layer, signed("budget secret", &small), Some(200));
    feed(&fits, small).await;
    drop(fits);
    assert_eq!(second.await.expect("answered").0, StatusCode::OK);

    // When the held request is done, its share is free again.
    feed(&held, held_body[100..].to_vec()).await;
    drop(held);
    assert_eq!(first.await.expect("answered").0, StatusCode::OK);
    let again = vec![b'b'; 900];
    let (sender, answer) = start(&layer, signed("budget secret", &again), Some(900));
    feed(&sender, again).await;
    drop(sender);
    assert_eq!(answer.await.expect("answered").0, StatusCode::OK);
}

/// A body without `Content-Length` reserves frame by frame, and is refused at the frame that
/// does not fit.
#[tokio::test]
async fn an_unannounced_body_is_refused_at_the_frame_that_does_not_fit() {
    let layer = layer(1000);
    let (held, first) = start(&layer, signed("budget secret", &[b'a'; 600]), Some(600));
    feed(&held, vec![b'a'; 10]).await;

    let chunked = vec![b'z'; 500];
    let (sender, answer) = start(&layer, signed("budget secret", &chunked), None);
    feed(&sender, chunked[..400].to_vec()).await;
    let _ = sender.send(Bytes::from(chunked[400..].to_vec())).await;
    let (status, headers, body) = answer.await.expect("answered");
    assert_over_capacity(status, &headers, &body);

    // The refused request gave back what it held: the held one can finish.
    feed(&held, vec![b'a'; 590]).await;
    drop(held);
    assert_eq!(first.await.expect("answered").0, StatusCode::OK);
}

/// Review finding: the MAC loop ran every key over a whole frame in one poll (8 keys, 1 MiB:
/// ~5 ms without yielding). It now yields after a slice of MAC work, and still verifies.
#[test]
fn one_large_frame_is_maced_over_many_polls_and_verifies() {
    let clock = ManualClock::at_unix(NOW);
    let keyring = Keyring::builder()
        .clock(clock.clone())
        .build(secret("key7"));
    for i in (0..7).rev() {
        keyring
            .rotate(secret(&format!("key{i}")), Duration::from_secs(3600))
            .expect("eight keys fit");
    }
    let body = vec![b'x'; 1024 * 1024];
    let mut request = Request::post("/hooks")
        .body(Full::new(Bytes::from(body.clone())))
        .expect("a valid request");
    // Signed with the last key, so every key is MACed over the whole body.
    *request.headers_mut() = signed("key7", &body);
    let mut service = WebhookLayer::new(Verifier::new(GitHub, keyring))
        .max_body_size(2 * 1024 * 1024)
        .layer(service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        }));
    let mut future = pin!(service.call(request));
    let mut cx = Context::from_waker(Waker::noop());
    let mut pending = 0;
    let response = loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(response) => break response.unwrap_or_else(|never| match never {}),
            Poll::Pending => pending += 1,
        }
        assert!(pending < 10_000, "never finished");
    };
    assert_eq!(response.status(), StatusCode::OK);
    // 8 MiB of MAC work in slices of at most 32 KiB: at least 255 yields.
    assert!(pending >= 255, "{pending} yields");
}

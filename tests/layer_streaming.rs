//! The layer MACs the body frame by frame as it arrives (schemes that sign the body as is).
//! These tests feed the body through a channel so the keyring and the clock can change while
//! the upload is in progress, and check that streaming keeps the guarantees of verifying the
//! whole body at the end: a rotation never refuses a delivery the keys accept, a secret
//! invalidated at once is refused even for an upload that started before.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use tokio::sync::mpsc;
use tower::{service_fn, Layer, ServiceExt};
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::{GitHub, Linear, Scheme, StandardWebhooks};
use webhook_guard::{Clock, KeyId, Keyring, ManualClock, Secret, Signer, Verified, Verifier};

const NOW: i64 = 1_700_000_000;

/// A request body whose frames the test sends one at a time.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|frame| frame.map(|bytes| Ok(Frame::data(bytes))))
    }
}

struct Upload {
    frames: mpsc::Sender<Bytes>,
    answer: tokio::task::JoinHandle<(StatusCode, String)>,
}

impl Upload {
    /// Starts a request through a layer around `verifier`; the inner service answers with the
    /// id of the key that verified it.
    fn start(verifier: Verifier, headers: HeaderMap) -> Self {
        Self::through(
            WebhookLayer::new(verifier).detailed_rejections(true),
            headers,
        )
    }

    fn through(layer: WebhookLayer, headers: HeaderMap) -> Self {
        let (frames, receiver) = mpsc::channel(1);
        let mut request = Request::post("/hooks").body(ChannelBody(receiver)).unwrap();
        request.headers_mut().extend(headers);
        let inner = service_fn(|request: Request<Full<Bytes>>| async move {
            let key = request
                .extensions()
                .get::<Verified>()
                .unwrap()
                .key_id()
                .clone();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(key.to_string()))))
        });
        let service = layer.layer(inner);
        let answer = tokio::spawn(async move {
            let response = service.oneshot(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8(body.to_vec()).unwrap())
        });
        Self { frames, answer }
    }

    /// Sends one frame and returns once the layer has taken it.
    async fn send(&self, frame: &'static [u8]) {
        self.frames.send(Bytes::from_static(frame)).await.unwrap();
        // Capacity 1: a free slot means the layer received the frame.
        drop(self.frames.reserve().await.unwrap());
    }

    async fn finish(self) -> (StatusCode, String) {
        drop(self.frames);
        self.answer.await.unwrap()
    }

    /// Sends the frames of `BODY` after the first and waits for the answer.
    async fn finish_body(self) -> (StatusCode, String) {
        self.send(BODY[1]).await;
        self.send(BODY[2]).await;
        self.finish().await
    }
}

const BODY: [&[u8]; 3] = [b"{\"event\":", b"\"invoice.paid\",", b"\"amount\":4200}"];

fn body() -> Vec<u8> {
    BODY.concat()
}

fn secret(text: &str) -> Secret {
    Secret::from_bytes(text).unwrap()
}

fn keyring(clock: &ManualClock) -> Keyring {
    Keyring::builder()
        .clock(clock.clone())
        .key_id(KeyId::new("old"))
        .build(secret("old secret"))
}

fn signed(scheme: impl Scheme + 'static, key: &str, clock: &ManualClock) -> HeaderMap {
    Signer::new(scheme, secret(key))
        .sign_at(&body(), "msg_1", clock.now())
        .unwrap()
}

#[tokio::test]
async fn a_body_in_frames_verifies() {
    let clock = ManualClock::at_unix(NOW);
    let keyring = keyring(&clock);
    let upload = Upload::start(
        Verifier::new(StandardWebhooks, keyring),
        signed(StandardWebhooks, "old secret", &clock),
    );
    for frame in BODY {
        upload.send(frame).await;
    }
    assert_eq!(upload.finish().await, (StatusCode::OK, "old".to_owned()));
}

#[tokio::test]
async fn a_forged_body_in_frames_is_refused() {
    let clock = ManualClock::at_unix(NOW);
    let upload = Upload::start(
        Verifier::new(StandardWebhooks, keyring(&clock)),
        signed(StandardWebhooks, "old secret", &clock),
    );
    upload.send(BODY[0]).await;
    upload.send(b"\"refund\",").await;
    upload.send(BODY[2]).await;
    let (status, detail) = upload.finish().await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(detail.contains("no signature matched"), "{detail}");
}

/// Uploads `BODY` signed with `signed_with` to a keyring holding "old secret" (id `old`),
/// rotating to "new secret" (id `new`) with `grace` after the first frame.
async fn rotate_during_upload(
    scheme: impl Scheme + Copy + 'static,
    signed_with: &str,
    grace: Duration,
) -> (StatusCode, String) {
    let clock = ManualClock::at_unix(NOW);
    let keyring = keyring(&clock);
    let upload = Upload::start(
        Verifier::new(scheme, keyring.clone()),
        signed(scheme, signed_with, &clock),
    );
    upload.send(BODY[0]).await;
    keyring
        .rotate_with_id(KeyId::new("new"), secret("new secret"), grace)
        .unwrap();
    upload.finish_body().await
}

#[tokio::test]
async fn a_rotation_with_grace_during_the_upload_accepts_the_old_key() {
    let answer = rotate_during_upload(GitHub, "old secret", Duration::from_secs(600)).await;
    assert_eq!(answer, (StatusCode::OK, "old".to_owned()));
}

#[tokio::test]
async fn a_key_added_during_the_upload_is_tried_too() {
    // The sender already signs with a secret the receiver installs only while the body is on
    // its way: the MACs started with the old key set, so the delivery is checked again whole.
    let answer =
        rotate_during_upload(StandardWebhooks, "new secret", Duration::from_secs(600)).await;
    assert_eq!(answer, (StatusCode::OK, "new".to_owned()));
}

#[tokio::test]
async fn a_secret_invalidated_during_the_upload_is_refused() {
    let (status, _) = rotate_during_upload(StandardWebhooks, "old secret", Duration::ZERO).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn without_streaming_the_body_is_read_before_the_headers_are_judged() {
    let clock = ManualClock::at_unix(NOW);
    let mut headers = signed(StandardWebhooks, "old secret", &clock);
    headers.remove("webhook-timestamp");
    let layer = WebhookLayer::new(Verifier::new(StandardWebhooks, keyring(&clock)));
    let upload = Upload::through(layer.stream_from(None).detailed_rejections(true), headers);
    upload.send(BODY[0]).await;
    tokio::task::yield_now().await;
    assert!(
        !upload.answer.is_finished(),
        "answered before the body was read"
    );
    let (status, detail) = upload.finish_body().await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        detail.contains("missing header webhook-timestamp"),
        "{detail}"
    );
}

#[tokio::test]
async fn headers_are_refused_before_the_body_is_read() {
    let clock = ManualClock::at_unix(NOW);
    let mut headers = signed(StandardWebhooks, "old secret", &clock);
    headers.remove("webhook-timestamp");
    let upload = Upload::start(Verifier::new(StandardWebhooks, keyring(&clock)), headers);
    // No frame is sent and the body stays open: the answer comes from the headers alone.
    let (status, detail) = upload.answer.await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        detail.contains("missing header webhook-timestamp"),
        "{detail}"
    );
    drop(upload.frames);
}

#[tokio::test]
async fn a_slow_upload_does_not_stretch_the_timestamp_tolerance() {
    // Fresh when the headers arrive, stale when the body is complete: refused, as verifying
    // the whole body at the end would.
    let clock = ManualClock::at_unix(NOW);
    let upload = Upload::start(
        Verifier::new(StandardWebhooks, keyring(&clock)),
        signed(StandardWebhooks, "old secret", &clock),
    );
    upload.send(BODY[0]).await;
    clock.advance(Duration::from_secs(3600));
    let (status, detail) = upload.finish_body().await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(detail.contains("3600s old"), "{detail}");
}

#[tokio::test]
async fn a_grace_period_that_ends_during_the_upload_refuses_the_old_key() {
    let clock = ManualClock::at_unix(NOW);
    let keyring = keyring(&clock);
    keyring
        .rotate_with_id(
            KeyId::new("new"),
            secret("new secret"),
            Duration::from_secs(60),
        )
        .unwrap();
    let upload = Upload::start(
        Verifier::new(GitHub, keyring.clone()),
        signed(GitHub, "old secret", &clock),
    );
    upload.send(BODY[0]).await;
    clock.advance(Duration::from_secs(61));
    let (status, detail) = upload.finish_body().await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(detail.contains("against 1 live key"), "{detail}");
}

#[tokio::test]
async fn a_scheme_that_reads_the_body_is_verified_whole() {
    // Linear's timestamp is in the JSON body: no streaming, same result.
    let clock = ManualClock::at_unix(NOW);
    let millis = NOW * 1000;
    let body = format!(r#"{{"action":"create","webhookTimestamp":{millis}}}"#);
    let headers = Signer::new(Linear, secret("old secret"))
        .sign_at(body.as_bytes(), "msg_1", clock.now())
        .unwrap();
    let upload = Upload::start(Verifier::new(Linear, keyring(&clock)), headers);
    let body: &'static [u8] = Box::leak(body.into_bytes().into_boxed_slice());
    let (first, rest) = body.split_at(10);
    upload.send(first).await;
    upload.send(rest).await;
    assert_eq!(upload.finish().await, (StatusCode::OK, "old".to_owned()));
}

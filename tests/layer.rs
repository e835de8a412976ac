//! `WebhookLayer` driven directly with tower: what reaches the inner service, and what the
//! sender gets back when a delivery is refused.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, Service, ServiceExt};
use webhook_guard::middleware::{Rejection, WebhookLayer};
use webhook_guard::scheme::{GitHub, Scheme, StandardWebhooks};
use webhook_guard::{
    Clock, KeyId, KeyRole, Keyring, ManualClock, Secret, Signer, Verified, Verifier, VerifyError,
};

const NOW: i64 = 1_700_000_000;
const SECRET: &str = "It's a Secret to Everybody";
const KEY_ID: &str = "key-2026-01";

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// A keyring on a manual clock, with a signer for the same secret.
struct Fixture {
    clock: ManualClock,
    keyring: Keyring,
    signer: Signer,
}

impl Fixture {
    fn new(scheme: impl Scheme + Copy) -> Self {
        let clock = ManualClock::at_unix(NOW);
        let keyring = Keyring::builder()
            .clock(clock.clone())
            .key_id(KeyId::new(KEY_ID))
            .build(secret(SECRET));
        let signer = Signer::new(scheme, secret(SECRET)).clock(clock.clone());
        Self {
            clock,
            keyring,
            signer,
        }
    }

    fn verifier(&self, scheme: impl Scheme) -> Verifier {
        Verifier::new(scheme, self.keyring.clone())
    }

    /// Headers for `body` signed now with webhook id `id`.
    fn sign(&self, body: &[u8], id: &str) -> HeaderMap {
        self.signer
            .sign_at(body, id, self.clock.now())
            .expect("signing never fails for a plain id")
    }
}

fn secret(text: &str) -> Secret {
    Secret::from_bytes(text).expect("a non-empty secret")
}

/// What the inner service received.
#[derive(Debug, Clone)]
struct Seen {
    body: Bytes,
    verified: Option<Verified>,
}

/// An inner `service_fn` that records every request it is given and answers 200.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    fn service(
        &self,
    ) -> impl Service<
        Request<Full<Bytes>>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl Send,
    > + Clone
           + Send {
        let seen = Arc::clone(&self.seen);
        service_fn(move |request: Request<Full<Bytes>>| {
            let seen = Arc::clone(&seen);
            async move {
                let (parts, body) = request.into_parts();
                let body = body
                    .collect()
                    .await
                    .unwrap_or_else(|never| match never {})
                    .to_bytes();
                seen.lock().unwrap().push(Seen {
                    body,
                    verified: parts.extensions.get::<Verified>().cloned(),
                });
                let mut response = Response::new(Full::new(Bytes::from_static(b"inner says ok")));
                response
                    .headers_mut()
                    .insert("x-inner", HeaderValue::from_static("yes"));
                Ok::<_, Infallible>(response)
            }
        })
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A request body delivered chunk by chunk, without a size hint (as a chunked body would be),
/// optionally answering `Pending` before each frame, that counts the frames it hands out and
/// can be told to panic if it is polled at all.
struct TestBody {
    chunks: VecDeque<Result<Bytes, io::Error>>,
    delivered: Arc<AtomicUsize>,
    polled: Arc<AtomicBool>,
    must_not_be_polled: bool,
    yield_first: bool,
    hint: SizeHint,
}

impl TestBody {
    fn chunks<I, C>(chunks: I) -> Self
    where
        I: IntoIterator<Item = C>,
        C: Into<Bytes>,
    {
        Self::results(chunks.into_iter().map(|c| Ok(c.into())))
    }

    fn results(chunks: impl IntoIterator<Item = Result<Bytes, io::Error>>) -> Self {
        Self {
            chunks: chunks.into_iter().collect(),
            delivered: Arc::default(),
            polled: Arc::default(),
            must_not_be_polled: false,
            yield_first: false,
            hint: SizeHint::default(),
        }
    }

    /// A body that panics when polled: proof that a request was refused unread.
    fn untouchable(hint: SizeHint) -> Self {
        Self {
            must_not_be_polled: true,
            hint,
            ..Self::chunks([Bytes::from(vec![b'x'; 4096])])
        }
    }

    /// Answer `Pending` (and wake at once) before every frame, like a slow network.
    fn slow(mut self) -> Self {
        self.yield_first = true;
        self
    }
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        this.polled.store(true, Ordering::SeqCst);
        assert!(
            !this.must_not_be_polled,
            "the body was polled although the request should have been refused unread"
        );
        if this.yield_first && !this.chunks.is_empty() {
            this.yield_first = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match this.chunks.pop_front() {
            Some(chunk) => {
                this.yield_first = true;
                this.delivered.fetch_add(1, Ordering::SeqCst);
                Poll::Ready(Some(chunk.map(Frame::data)))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.must_not_be_polled && self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

/// A response, read in full.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    async fn read(response: Response<impl Body<Data = Bytes, Error = Infallible>>) -> Self {
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .unwrap_or_else(|never| match never {})
            .to_bytes();
        Self {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// Checks that this is the default RFC 9457 rejection and returns its `detail`.
    fn problem(&self, status: StatusCode, kind: &str, title: &str) -> String {
        assert_eq!(self.status, status, "body: {:?}", self.body);
        assert_eq!(
            self.headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"application/problem+json"[..])
        );
        assert!(self.headers.get("x-inner").is_none());
        let doc: serde_json::Value =
            serde_json::from_slice(&self.body).expect("the problem document is JSON");
        let object = doc.as_object().expect("the problem document is an object");
        let mut keys: Vec<_> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["detail", "status", "title", "type"]);
        let ty = doc["type"].as_str().expect("type is a string");
        assert!(ty.starts_with("tag:webhook-guard,2026:"), "{ty}");
        assert_eq!(ty, format!("tag:webhook-guard,2026:{kind}"));
        assert_eq!(doc["title"], title);
        assert_eq!(doc["status"], status.as_u16());
        doc["detail"]
            .as_str()
            .expect("detail is a string")
            .to_owned()
    }
}

fn request<B>(headers: HeaderMap, body: B) -> Request<B> {
    let mut request = Request::post("/webhooks").body(body).unwrap();
    request.headers_mut().extend(headers);
    request
}

/// Sends one request through `layer` around a fresh recorder.
async fn send<B>(layer: &WebhookLayer, recorder: &Recorder, request: Request<B>) -> Answer
where
    B: Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let response = layer
        .layer(recorder.service())
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    Answer::read(response).await
}

// ---------------------------------------------------------------------------------------------
// Accepted deliveries
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn accepted_delivery_reaches_inner_service_with_same_bytes_and_verified() {
    let fx = Fixture::new(StandardWebhooks);
    let layer = WebhookLayer::new(fx.verifier(StandardWebhooks)).detailed_rejections(true);
    let recorder = Recorder::default();
    let body = Bytes::from_static(br#"{"type":"invoice.paid","amount":4200}"#);
    let headers = fx.sign(&body, "msg_2Lx7");

    let answer = send(&layer, &recorder, request(headers, Full::new(body.clone()))).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "inner says ok");
    assert_eq!(answer.headers["x-inner"], "yes");
    let seen = recorder.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, body);
    let verified = seen[0]
        .verified
        .as_ref()
        .expect("Verified in the extensions");
    assert_eq!(verified.key_id().as_str(), KEY_ID);
    assert_eq!(verified.webhook_id(), Some("msg_2Lx7"));
    assert_eq!(verified.role(), KeyRole::Current);
    assert_eq!(verified.timestamp().map(|t| t.timestamp()), Some(NOW));
}

#[tokio::test]
async fn accepted_with_grace_key_after_rotation_reports_grace_role() {
    let fx = Fixture::new(StandardWebhooks);
    let layer = WebhookLayer::new(fx.verifier(StandardWebhooks)).detailed_rejections(true);
    fx.keyring
        .rotate_with_id(
            KeyId::new("key-2026-02"),
            secret("the new secret"),
            Duration::from_secs(600),
        )
        .unwrap();
    let recorder = Recorder::default();

    // The sender still signs with the old secret.
    let old = fx.sign(b"{}", "msg_old");
    let answer = send(
        &layer,
        &recorder,
        request(old, Full::new(Bytes::from("{}"))),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);

    // And then switches.
    let new = Signer::new(StandardWebhooks, secret("the new secret"))
        .sign_at(b"{}", "msg_new", fx.clock.now())
        .unwrap();
    let answer = send(
        &layer,
        &recorder,
        request(new, Full::new(Bytes::from("{}"))),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);

    let seen = recorder.seen();
    let roles: Vec<_> = seen
        .iter()
        .map(|s| {
            let v = s.verified.as_ref().unwrap();
            (v.key_id().as_str().to_owned(), v.role(), v.webhook_id())
        })
        .map(|(k, r, id)| (k, r, id.map(str::to_owned)))
        .collect();
    assert_eq!(
        roles,
        [
            (
                KEY_ID.to_owned(),
                KeyRole::Grace,
                Some("msg_old".to_owned())
            ),
            (
                "key-2026-02".to_owned(),
                KeyRole::Current,
                Some("msg_new".to_owned())
            ),
        ]
    );
}

#[tokio::test]
async fn non_utf8_body_is_verified_and_passed_on_unchanged() {
    let fx = Fixture::new(GitHub);
    let layer = WebhookLayer::new(fx.verifier(GitHub)).detailed_rejections(true);
    let recorder = Recorder::default();
    let body = Bytes::from_static(&[0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, b'\n', 0xed, 0xa0, 0x80]);
    assert!(std::str::from_utf8(&body).is_err());
    let headers = fx.sign(&body, "72d3162e-cc78-11e3-81ab-4c9367dc0958");

    let answer = send(&layer, &recorder, request(headers, Full::new(body.clone()))).await;

    assert_eq!(answer.status, StatusCode::OK);
    let seen = recorder.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, body);
    let verified = seen[0].verified.as_ref().unwrap();
    assert_eq!(verified.key_id().as_str(), KEY_ID);
    assert_eq!(
        verified.webhook_id(),
        None,
        "GitHub's X-GitHub-Delivery is not signed, so not reported as verified"
    );
    assert_eq!(verified.timestamp(), None, "GitHub signs no timestamp");
}

#[tokio::test]
async fn github_reference_vector_is_accepted() {
    // The vector from GitHub's "Validating webhook deliveries" page, with no Signer involved.
    let keyring = Keyring::new(secret(SECRET));
    let layer = WebhookLayer::new(Verifier::new(GitHub, keyring));
    let recorder = Recorder::default();
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-hub-signature-256",
        HeaderValue::from_static(
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        ),
    );
    let answer = send(
        &layer,
        &recorder,
        request(headers, Full::new(Bytes::from("Hello, World!"))),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(recorder.seen()[0].body, "Hello, World!");
}

// ---------------------------------------------------------------------------------------------
// 401: authentication failures
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_secret_is_401_problem_and_inner_not_called() {
    let fx = Fixture::new(GitHub);
    let layer = WebhookLayer::new(fx.verifier(GitHub)).detailed_rejections(true);
    let recorder = Recorder::default();
    let body = Bytes::from_static(b"{\"action\":\"opened\"}");
    let forged = Signer::new(GitHub, secret("not the secret"))
        .sign_at(&body, "d1", fx.clock.now())
        .unwrap();

    let answer = send(&layer, &recorder, request(forged, Full::new(body))).await;

    let detail = answer.problem(
        StatusCode::UNAUTHORIZED,
        "invalid-signature",
        "Invalid webhook signature",
    );
    assert_eq!(
        detail,
        "no signature matched: 1 signature(s) checked against 1 live key(s)"
    );
    assert!(
        !detail.contains(SECRET),
        "the detail never quotes the secret"
    );
    assert!(recorder.seen().is_empty(), "inner service was called");
}

#[tokio::test]
async fn tampered_body_is_401_and_inner_not_called() {
    let fx = Fixture::new(StandardWebhooks);
    let layer = WebhookLayer::new(fx.verifier(StandardWebhooks)).detailed_rejections(true);
    let recorder = Recorder::default();
    let headers = fx.sign(br#"{"amount":1}"#, "msg_1");

    let answer = send(
        &layer,
        &recorder,
        request(headers, Full::new(Bytes::from(r#"{"amount":1000}"#))),
    )
    .await;

    let detail = answer.problem(
        StatusCode::UNAUTHORIZED,
        "invalid-signature",
        "Invalid webhook signature",
    );
    assert!(detail.contains("no signature matched"), "{detail}");
    assert!(recorder.seen().is_empty());
}

#[tokio::test]
async fn truncated_signature_is_401_with_length_reason() {
    let fx = Fixture::new(GitHub);
    let layer = WebhookLayer::new(fx.verifier(GitHub)).detailed_rejections(true);
    let recorder = Recorder::default();
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-hub-signature-256",
        HeaderValue::from_static("sha256=757107ea0eb2509f"),
    );

    let answer = send(
        &layer,
        &recorder,
        request(headers, Full::new(Bytes::from("Hello, World!"))),
    )
    .await;

    let detail = answer.problem(
        StatusCode::UNAUTHORIZED,
        "invalid-signature",
        "Invalid webhook signature",
    );
    assert_eq!(detail, "signature is 8 bytes, but the MAC is 32 bytes");
    assert!(recorder.seen().is_empty());
}

#[tokio::test]
async fn stale_timestamp_is_401_with_skew_in_seconds() {
    let fx = Fixture::new(StandardWebhooks);
    let layer = WebhookLayer::new(fx.verifier(StandardWebhooks)).detailed_rejections(true);
    let recorder = Recorder::default();
    // Signed correctly, ten minutes ago; delivered now.
    let headers = fx
        .signer
        .sign_at(b"{}", "msg_1", fx.clock.now() - Duration::from_secs(600))
        .unwrap();

    let answer = send(
        &layer,
        &recorder,
        request(headers, Full::new(Bytes::from("{}"))),
    )
    .await;

    let detail = answer.problem(
        StatusCode::UNAUTHORIZED,
        "timestamp-out-of-tolerance",
        "Webhook timestamp out of tolerance",
    );
    assert_eq!(detail, "timestamp is 600s old, beyond the 300s tolerance");
    assert!(recorder.seen().is_empty());
}

#[tokio::test]
async fn future_timestamp_is_401_with_skew_in_seconds() {
    let fx = Fixture::new(StandardWebhooks);
    let layer = WebhookLayer::new(
        fx.verifier(StandardWebhooks)
            .tolerance(Duration::from_secs(60)),
    )
    .detailed_rejections(true);
    let recorder = Recorder::default();
    let headers = fx
        .signer
        .sign_at(b"{}", "msg_1", fx.clock.now() + Duration::from_secs(61))
        .unwrap();

    let answer = send(
        &layer,
        &recorder,
        request(headers, Full::new(Bytes::from("{}"))),
    )
    .await;

    let detail = answer.problem(
        StatusCode::UNAUTHORIZED,
        "timestamp-out-of-tolerance",
        "Webhook timestamp out of tolerance",
    );
    assert_eq!(
        detail,
        "timestamp is 61s in the future, beyond the 60s tolerance"
    );
    assert!(recorder.seen().is_empty());
}

#[tokio::test]
async fn timestamp_is_checked_when_the_request_arrives() {
    // Signed at NOW and held for 301 s by a slow queue: refused although the bytes are intact.
    let fx = Fixture::new(StandardWebhooks);
    let layer = WebhookLayer::new(fx.verifier(StandardWebhooks)).detailed_rejections(true);
    let recorder = Recorder::default();
    let headers = fx.sign(b"{}", "msg_1");
    fx.clock.advance(Duration::from_secs(300));
    let answer = send(
        &layer,
        &recorder,
        request(headers.clone(), Full::new(Bytes::from("{}"))),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "exactly at the tolerance");
    fx.clock.advance(Duration::from_secs(1));
    let answer = send(
        &layer,
        &recorder,
        request(headers, Full::new(Bytes::from("{}"))),
    )
    .await;
    let detail = answer.problem(
        StatusCode::UNAUTHORIZED,
        "timestamp-out-of-tolerance",
        "Webhook timestamp out of tolerance",
    );
    assert!(detail.contains("301s old"), "{detail}");
    assert_eq!(recorder.seen().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 400: malformed requests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn missing_signature_header_is_400() {
    let fx = Fixture::new(GitHub);
    let layer = WebhookLayer::new(fx.verifier(GitHub)).detailed_rejections(true);
    let recorder = Recorder::default();

    let answer = send(
        &layer,
        &recorder,
        request(HeaderMap::new(), Full::new(Bytes::from("{}"))),
    )
    .await;

    let detail = answer.problem(
        StatusCode::BAD_REQUEST,
        "missing-header",
        "Missing webhook header",
    );
    assert_eq!(detail, "missing header x-hub-signature-256");
    assert!(recorder.seen().is_empty());
}

#[tokio::test]
async fn missing_standard_webhooks_id_is_400() {
    let fx = Fixture::new(StandardWebhooks);
    let layer = WebhookLayer::new(fx.verifier(StandardWebhooks)).detailed_rejections(true);
    let recorder = Recorder::default();
    let mut headers = fx.sign(b"{}", "msg_1");
    headers.remove("webhook-id");

    let answer = send(
        &layer,
        &recorder,
        request(headers, Full::new(Bytes::from("{}"))),
    )
    .await;

    let detail = answer.problem(
        StatusCode::BAD_REQUEST,
        "missing-header",
        "Missing webhook header",
    );
    assert_eq!(detail, "missing header webhook-id");
    assert!(recorder.seen().is_empty());
}

#[tokio::test]
async fn duplicated_signature_header_is_400_even_if_one_copy_is_valid() {
    let fx = Fixture::new(GitHub);
    let layer = WebhookLayer::new(fx.verifier(GitHub)).detailed_rejections(true);
    let recorder = Recorder::default();
    let body = Bytes::from_static(b"{}");
    let mut headers = fx.sign(&body, "d1");
    headers.append(
        "x-hub-signature-256",
        HeaderValue::from_str(&format!("sha256={}", "00".repeat(32))).unwrap(),
    );
    assert_eq!(headers.get_all("x-hub-signature-256").iter().count(), 2);

    let answer = send(&layer, &recorder, request(headers, Full::new(body))).await;

    let detail = answer.problem(
        StatusCode::BAD_REQUEST,
        "duplicate-header",
        "Duplicated webhook header",
    );
    assert_eq!(detail, "header x-hub-signature-256 appears more than once");
    assert!(recorder.seen().is_empty());
}

#[tokio::test]
async fn non_hex_signature_is_400_malformed() {
    let fx = Fixture::new(GitHub);
    let layer = WebhookLayer::new(fx.verifier(GitHub)).detailed_rejections(true);
    let recorder = Recorder::default();
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&format!("sha256={}", "zz".repeat(32))).unwrap(),
    );

    let answer = send(
        &layer,
        &recorder,
        request(headers, Full::new(Bytes::from("{}"))),
    )
    .await;

    let detail = answer.problem(
        StatusCode::BAD_REQUEST,
        "malformed-header",
        "Malformed webhook header",
    );
    assert_eq!(
        detail,
        "malformed header x-hub-signature-256: signature is not valid hex or is too long"
    );
    assert!(recorder.seen().is_empty());
}

#[tokio::test]
async fn wrong_prefix_is_400_malformed() {
    let fx = Fixture::new(GitHub);
    let layer = WebhookLayer::new(fx.verifier(GitHub)).detailed_rejections(true);
    let recorder = Recorder::default();
    let body = Bytes::from_static(b"{}");
    // A valid SHA-256 signature, under the legacy SHA-1 prefix.
    let signed = fx.sign(&body, "");
    let value = signed["x-hub-signature-256"].to_str().unwrap().to_owned();
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&value.replacen("sha256=", "sha1=", 1)).unwrap(),
    );

    let answer = send(&layer, &recorder, request(headers, Full::new(body))).await;

    let detail = answer.problem(
        StatusCode::BAD_REQUEST,
        "malformed-header",
        "Malformed webhook header",
    );
    assert_eq!(
        detail,
        "malformed header x-hub-signature-256: does not start with \"sha256=\""
    );
    assert!(recorder.seen().is_empty());
}

#[tokio::test]
async fn non_numeric_timestamp_is_400_malformed() {
    let fx = Fixture::new(StandardWebhooks);
    let layer = WebhookLayer::new(fx.verifier(StandardWebhooks)).detailed_rejections(true);
    let recorder = Recorder::default();
    let mut headers = fx.sign(b"{}", "msg_1");
    headers.insert("webhook-timestamp", HeaderValue::from_static("-1700000000"));

    let answer = send(
        &layer,
        &recorder,
        request(headers, Full::new(Bytes::from("{}"))),
    )
    .await;

    let detail = answer.problem(
        StatusCode::BAD_REQUEST,
        "malformed-header",
        "Malformed webhook header",
    );
    assert!(
        detail.starts_with("malformed header webhook-timestamp"),
        "{detail}"
    );
    assert!(recorder.seen().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 413: body limits
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn content_length_over_limit_is_413_before_reading_the_body() {
    let fx = Fixture::new(GitHub);
    let layer = WebhookLayer::new(fx.verifier(GitHub))
        .detailed_rejections(true)
        .max_body_size(16);
    let recorder = Recorder::default();
    let body = TestBody::untouchable(SizeHint::default());
    let polled = Arc::clone(&body.polled);
    let mut headers = fx.sign(&[b'x'; 4096], "d1");
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("4096"));

    let answer = send(&layer, &recorder, request(headers, body)).await;

    let detail = answer.problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "Body too large",
    );
    assert_eq!(detail, "body is larger than the 16-byte limit");
    assert!(!polled.load(Ordering::SeqCst), "the body was read");
    assert!(recorder.seen().is_empty());
}

#[tokio::test]
async fn content_length_one_over_limit_is_413_unread() {
    let fx = Fixture::new(GitHub);
    let layer = WebhookLayer::new(fx.verifier(GitHub))
        .detailed_rejections(true)
        .max_body_size(16);
    let recorder = Recorder::default();
    let body = TestBody::untouchable(SizeHint::default());
    let polled = Arc::clone(&body.polled);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("17"));

    // No signature either: the size is checked first, so the answer is 413, not 400.
    let answer = send(&layer, &recorder, request(headers, body)).await;

    answer.problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "Body too large",
    );
    assert!(!polled.load(Ordering::SeqCst));
    assert!(recorder.seen().is_empty());
}

#[tokio::test]
async fn size_hint_over_limit_is_413_before_reading_the_body() {
    let fx = Fixture::new(GitHub);
    let layer = WebhookLayer::new(fx.verifier(GitHub))
        .detailed_rejections(true)
        .max_body_size(16);
    let recorder = Recorder::default();
    let body = TestBody::untouchable(SizeHint::with_exact(4096));
    let polled = Arc::clone(&body.polled);
    let headers = fx.sign(&[b'x'; 4096], "d1");

    let answer = send(&layer, &recorder, request(headers, body)).await;

    answer.problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "Body too large",
    );
    assert!(!polled.load(Ordering::SeqCst));
    assert!(recorder.seen().is_empty());
}

#[tokio::test]
async fn streamed_body_without_length_over_limit_is_413_and_reading_stops() {
    let fx = Fixture::new(GitHub);
    let layer = WebhookLayer::new(fx.verifier(GitHub))
        .detailed_rejections(true)
        .max_body_size(16);
    let recorder = Recorder::default();
    let chunks = ["aaaaaa", "bbbbbb", "cccccc", "dddddd", "eeeeee"];
    let whole = chunks.concat();
    let body = TestBody::chunks(chunks).slow();
    let delivered = Arc::clone(&body.delivered);
    // Correctly signed: the size alone is the reason.
    let headers = fx.sign(whole.as_bytes(), "d1");
    assert!(!headers.contains_key(header::CONTENT_LENGTH));

    let answer = send(&layer, &recorder, request(headers, body)).await;

    let detail = answer.problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "Body too large",
    );
    assert_eq!(detail, "body is larger than the 16-byte limit");
    // 6 + 6 fit, the third chunk passes 16: nothing after it is read.
    assert_eq!(delivered.load(Ordering::SeqCst), 3);
    assert!(recorder.seen().is_empty());
}

#[tokio::test]
async fn streamed_body_one_byte_over_limit_is_413() {
    let fx = Fixture::new(GitHub);
    let layer = WebhookLayer::new(fx.verifier(GitHub))
        .detailed_rejections(true)
        .max_body_size(16);
    let recorder = Recorder::default();
    let body = TestBody::chunks(["0123456789", "abcdefg"]);
    let headers = fx.sign(b"0123456789abcdefg", "d1");

    let answer = send(&layer, &recorder, request(headers, body)).await;

    answer.problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "Body too large",
    );
    assert!(recorder.seen().is_empty());
}

#[tokio::test]
async fn body_exactly_at_limit_is_accepted() {
    let fx = Fixture::new(GitHub);
    let layer = WebhookLayer::new(fx.verifier(GitHub))
        .detailed_rejections(true)
        .max_body_size(16);
    let payload = b"0123456789abcdef";
    assert_eq!(payload.len(), 16);

    // Declared with Content-Length.
    let recorder = Recorder::default();
    let mut headers = fx.sign(payload, "d1");
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("16"));
    let answer = send(
        &layer,
        &recorder,
        request(headers, Full::new(Bytes::from_static(payload))),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(recorder.seen()[0].body, &payload[..]);

    // Streamed in pieces without a length.
    let recorder = Recorder::default();
    let headers = fx.sign(payload, "d2");
    let body = TestBody::chunks(["0123", "456789ab", "cdef"]).slow();
    let answer = send(&layer, &recorder, request(headers, body)).await;
    assert_eq!(answer.status, StatusCode::OK);
    let seen = recorder.seen();
    assert_eq!(seen[0].body, &payload[..]);
    assert!(seen[0].verified.is_some());
}

#[tokio::test]
async fn empty_body_is_verified() {
    let fx = Fixture::new(GitHub);
    let layer = WebhookLayer::new(fx.verifier(GitHub))
        .detailed_rejections(true)
        .max_body_size(0);
    let recorder = Recorder::default();
    let headers = fx.sign(b"", "d1");
    let answer = send(&layer, &recorder, request(headers, Full::new(Bytes::new()))).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(recorder.seen()[0].body, "");
}

// ---------------------------------------------------------------------------------------------
// 400: unreadable body
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn body_read_error_is_400_body_unreadable() {
    let fx = Fixture::new(GitHub);
    let layer = WebhookLayer::new(fx.verifier(GitHub)).detailed_rejections(true);
    let recorder = Recorder::default();
    let headers = fx.sign(b"{\"partial\":", "d1");
    let body = TestBody::results([
        Ok(Bytes::from_static(b"{\"partial\":")),
        Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "peer hung up mid-body",
        )),
        Ok(Bytes::from_static(b"never read")),
    ])
    .slow();

    let answer = send(&layer, &recorder, request(headers, body)).await;

    let detail = answer.problem(
        StatusCode::BAD_REQUEST,
        "body-unreadable",
        "Webhook body unreadable",
    );
    assert_eq!(detail, "body could not be read");
    assert!(recorder.seen().is_empty());
}

// ---------------------------------------------------------------------------------------------
// on_rejection
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn on_rejection_replaces_the_response() {
    let fx = Fixture::new(GitHub);
    let rejections = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&rejections);
    let layer = WebhookLayer::new(fx.verifier(GitHub))
        .detailed_rejections(true)
        .max_body_size(16)
        .on_rejection(move |rejection: Rejection| {
            let status = rejection.status();
            log.lock().unwrap().push(rejection);
            let mut response = Response::new(Full::new(Bytes::from_static(b"go away")));
            *response.status_mut() = if status == StatusCode::UNAUTHORIZED {
                StatusCode::NOT_FOUND
            } else {
                status
            };
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            response
        });
    let recorder = Recorder::default();

    // Forged.
    let forged = Signer::new(GitHub, secret("not the secret"))
        .sign_at(b"{}", "d1", fx.clock.now())
        .unwrap();
    let answer = send(
        &layer,
        &recorder,
        request(forged, Full::new(Bytes::from("{}"))),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.headers[header::CONTENT_TYPE], "text/plain");
    assert_eq!(answer.body, "go away");

    // Too large by Content-Length, unread.
    let body = TestBody::untouchable(SizeHint::default());
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("100"));
    let answer = send(&layer, &recorder, request(headers, body)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.body, "go away");

    // A valid delivery does not call it.
    let headers = fx.sign(b"{}", "d2");
    let answer = send(
        &layer,
        &recorder,
        request(headers, Full::new(Bytes::from("{}"))),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "inner says ok");

    assert_eq!(
        *rejections.lock().unwrap(),
        [
            Rejection::Verify(VerifyError::NoMatch {
                signatures: 1,
                keys: 1
            }),
            Rejection::BodyTooLarge { limit: 16 },
        ]
    );
    assert_eq!(recorder.seen().len(), 1);
}

#[tokio::test]
async fn builder_order_does_not_matter_and_clones_keep_settings() {
    let fx = Fixture::new(GitHub);
    let a = WebhookLayer::new(fx.verifier(GitHub))
        .detailed_rejections(true)
        .on_rejection(|r| {
            let mut response = Response::new(Full::new(Bytes::from(r.kind())));
            *response.status_mut() = r.status();
            response
        })
        .max_body_size(16);
    // Builder methods on a clone must not change the original (its config is shared).
    let b = a.clone().max_body_size(1024);
    let recorder = Recorder::default();
    let payload = [b'x'; 100];

    let answer = send(
        &a,
        &recorder,
        request(
            fx.sign(&payload, "d1"),
            Full::new(Bytes::copy_from_slice(&payload)),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.body, "body-too-large");

    let answer = send(
        &b,
        &recorder,
        request(
            fx.sign(&payload, "d2"),
            Full::new(Bytes::copy_from_slice(&payload)),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);

    let answer = send(
        &b,
        &recorder,
        request(
            HeaderMap::new(),
            Full::new(Bytes::copy_from_slice(&payload)),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.body, "missing-header",
        "on_rejection kept by the clone"
    );
}

// ---------------------------------------------------------------------------------------------
// Service contract: poll_ready, then call, repeatedly on the same instance
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sequential_calls_on_one_service_instance() {
    let fx = Fixture::new(StandardWebhooks);
    let recorder = Recorder::default();
    let mut service = WebhookLayer::new(fx.verifier(StandardWebhooks))
        .detailed_rejections(true)
        .layer(recorder.service());

    for i in 0..5 {
        let body = format!("{{\"n\":{i}}}");
        let headers = if i == 2 {
            Signer::new(StandardWebhooks, secret("forged"))
                .sign_at(body.as_bytes(), "msg_forged", fx.clock.now())
                .unwrap()
        } else {
            fx.sign(body.as_bytes(), &format!("msg_{i}"))
        };
        let response = ServiceExt::<Request<Full<Bytes>>>::ready(&mut service)
            .await
            .unwrap_or_else(|never| match never {})
            .call(request(headers, Full::new(Bytes::from(body))))
            .await
            .unwrap_or_else(|never| match never {});
        let expected = if i == 2 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        assert_eq!(response.status(), expected, "call {i}");
    }

    let ids: Vec<_> = recorder
        .seen()
        .iter()
        .map(|s| {
            s.verified
                .as_ref()
                .unwrap()
                .webhook_id()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["msg_0", "msg_1", "msg_3", "msg_4"]);
}

/// An inner service that, like a buffer or rate limiter, may only be called after `poll_ready`
/// on the same instance; a clone starts unready.
struct ReadyTracking {
    ready: bool,
    polls: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
}

impl Clone for ReadyTracking {
    fn clone(&self) -> Self {
        Self {
            ready: false,
            polls: Arc::clone(&self.polls),
            calls: Arc::clone(&self.calls),
        }
    }
}

impl Service<Request<Full<Bytes>>> for ReadyTracking {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        assert!(self.ready, "called an instance that was not driven ready");
        assert!(request.extensions().get::<Verified>().is_some());
        self.ready = false;
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(Response::new(Full::new(Bytes::from(format!(
            "call {n}"
        ))))))
    }
}

#[tokio::test]
async fn the_instance_driven_ready_is_the_one_called() {
    let fx = Fixture::new(GitHub);
    let inner = ReadyTracking {
        ready: false,
        polls: Arc::default(),
        calls: Arc::default(),
    };
    let polls = Arc::clone(&inner.polls);
    let calls = Arc::clone(&inner.calls);
    let mut service = WebhookLayer::new(fx.verifier(GitHub))
        .detailed_rejections(true)
        .layer(inner);

    for i in 0..3 {
        let body = format!("delivery {i}");
        let headers = fx.sign(body.as_bytes(), "d");
        let response = ServiceExt::<Request<Full<Bytes>>>::ready(&mut service)
            .await
            .unwrap()
            .call(request(headers, Full::new(Bytes::from(body))))
            .await
            .unwrap();
        let answer = Answer::read(response).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body, format!("call {i}"));
    }
    assert_eq!(polls.load(Ordering::SeqCst), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(!service.get_ref().ready, "the ready instance was moved out");
}

#[tokio::test]
async fn responses_can_complete_out_of_order() {
    // Two calls in flight at once from one instance: the second completes first.
    let fx = Fixture::new(GitHub);
    let recorder = Recorder::default();
    let mut service = WebhookLayer::new(fx.verifier(GitHub))
        .detailed_rejections(true)
        .layer(recorder.service());

    let first_body = TestBody::chunks(["first ", "delivery"]).slow();
    let first_headers = fx.sign(b"first delivery", "d1");
    let second_headers = fx.sign(b"second", "d2");

    ServiceExt::<Request<TestBody>>::ready(&mut service)
        .await
        .unwrap();
    let first = service.call(request(first_headers, first_body));
    ServiceExt::<Request<TestBody>>::ready(&mut service)
        .await
        .unwrap();
    let second = service.call(request(second_headers, TestBody::chunks(["second"])));

    let second = second.await.unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    let first = first.await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let bodies: Vec<_> = recorder.seen().into_iter().map(|s| s.body).collect();
    assert_eq!(bodies, ["second", "first delivery"]);
}

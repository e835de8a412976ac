//! The axum extractors `VerifiedBytes` and `VerifiedJson` on routes without the layer: they
//! accept and refuse what the layer does, with the layer's own answers, and never verify twice.

mod framework_support;

use framework_support::*;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRef;
use axum::routing::post;
use axum::{Extension, Router};
use bytes::Bytes;
use http::{header, HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde::Deserialize;
use tower::ServiceExt;
use webhook_guard::extract::{VerifiedBytes, VerifiedJson};
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::{Delivery, Scheme, Signature, StandardWebhooks, Twitch};
use webhook_guard::{
    Clock, Keyring, ManualClock, SignError, Signer, Verified, Verifier, VerifyError,
};

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    data: Payment,
}

#[derive(Debug, Deserialize)]
struct Payment {
    amount: u64,
}

async fn typed(VerifiedJson(event, verified): VerifiedJson<Event>) -> String {
    format!(
        "{} {} key={} id={}",
        event.kind,
        event.data.amount,
        verified.key_id(),
        verified.webhook_id().unwrap_or("-")
    )
}

async fn raw(VerifiedBytes(body, verified): VerifiedBytes) -> String {
    format!(
        "key={} body={}",
        verified.key_id(),
        String::from_utf8_lossy(&body)
    )
}

/// The extractor alone: no layer anywhere on the router.
fn extractor_app(layer: WebhookLayer) -> Router {
    Router::new()
        .route("/webhooks", post(typed))
        .route("/raw", post(raw))
        .with_state(layer)
}

/// The same layer as middleware, for comparing answers.
fn layer_app(layer: WebhookLayer) -> Router {
    async fn plain(Extension(_): Extension<Verified>) -> &'static str {
        "layer handler"
    }
    Router::new()
        .route("/webhooks", post(plain))
        .route_layer(layer)
}

fn request(path: &str, headers: &HeaderMap, body: impl Into<Bytes>) -> Request<Body> {
    let mut request = Request::post(path).body(Body::from(body.into())).unwrap();
    request.headers_mut().extend(headers.clone());
    request
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn problem(&self) -> serde_json::Value {
        assert_eq!(
            self.headers[header::CONTENT_TYPE],
            "application/problem+json"
        );
        serde_json::from_slice(&self.body).expect("a problem document")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn call(app: &Router, request: Request<Body>) -> Answer {
    let response = app
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Sends the same request to the extractor and to the layer: both must answer alike, with the
/// problem `type` given. Returns the extractor's answer.
async fn refused_like_the_layer(
    layer: WebhookLayer,
    headers: &HeaderMap,
    body: &'static str,
    status: StatusCode,
    kind: &str,
) -> Answer {
    let by_extractor = call(
        &extractor_app(layer.clone()),
        request("/webhooks", headers, body),
    )
    .await;
    let by_layer = call(&layer_app(layer), request("/webhooks", headers, body)).await;
    assert_eq!(by_extractor.status, status, "{}", by_extractor.text());
    assert_eq!(
        by_extractor.problem()["type"],
        format!("tag:webhook-guard,2026:{kind}")
    );
    assert_eq!(by_extractor.problem()["status"], status.as_u16());
    assert_eq!(by_layer.status, by_extractor.status);
    assert_eq!(by_layer.problem(), by_extractor.problem());
    by_extractor
}

const EVENT: &str = r#"{"type":"payment.created","data":{"amount":42}}"#;

#[tokio::test]
async fn json_extractor_without_layer_accepts_signed_delivery() {
    let clock = ManualClock::at_unix(NOW);
    let app = extractor_app(layer_for(keyring(&clock)));

    let answer = call(
        &app,
        request("/webhooks", &sign(&clock, EVENT.as_bytes(), "msg_1"), EVENT),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.text(),
        format!("payment.created 42 key={KEY_ID} id=msg_1")
    );
}

#[tokio::test]
async fn bytes_extractor_passes_the_exact_signed_bytes() {
    let clock = ManualClock::at_unix(NOW);
    let app = extractor_app(layer_for(keyring(&clock)));
    // Not canonical JSON, not even UTF-8: the bytes are passed on as signed.
    let body: &[u8] = b"{ \"a\" :\t1 }\xff\n";

    let answer = call(&app, request("/raw", &sign(&clock, body, "msg_1"), body)).await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let mut expected = format!("key={KEY_ID} body=").into_bytes();
    expected.extend_from_slice(String::from_utf8_lossy(body).as_bytes());
    assert_eq!(answer.body, expected);
}

#[tokio::test]
async fn extractor_takes_the_layer_from_a_larger_state() {
    #[derive(Clone)]
    struct AppState {
        webhooks: WebhookLayer,
        greeting: &'static str,
    }
    impl FromRef<AppState> for WebhookLayer {
        fn from_ref(state: &AppState) -> Self {
            state.webhooks.clone()
        }
    }
    async fn handler(
        axum::extract::State(state): axum::extract::State<AppState>,
        VerifiedBytes(body, _): VerifiedBytes,
    ) -> String {
        format!("{} {}", state.greeting, body.len())
    }
    let clock = ManualClock::at_unix(NOW);
    let app = Router::new()
        .route("/webhooks", post(handler))
        .with_state(AppState {
            webhooks: layer_for(keyring(&clock)),
            greeting: "hello",
        });

    let answer = call(
        &app,
        request("/webhooks", &sign(&clock, EVENT.as_bytes(), "msg_1"), EVENT),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.text(), format!("hello {}", EVENT.len()));

    let answer = call(
        &app,
        request("/webhooks", &sign(&clock, b"other", "msg_1"), EVENT),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn extractor_refuses_tampered_body_with_the_layers_401() {
    let clock = ManualClock::at_unix(NOW);
    let headers = sign(&clock, EVENT.as_bytes(), "msg_1");
    let tampered = r#"{"type":"payment.created","data":{"amount":43}}"#;

    refused_like_the_layer(
        layer_for(keyring(&clock)),
        &headers,
        tampered,
        StatusCode::UNAUTHORIZED,
        "invalid-signature",
    )
    .await;
}

#[tokio::test]
async fn extractor_refuses_oversized_body_with_the_layers_413() {
    let clock = ManualClock::at_unix(NOW);
    let big: &'static str = "x".repeat(LIMIT + 1).leak();
    let headers = sign(&clock, big.as_bytes(), "msg_1");

    refused_like_the_layer(
        layer_for(keyring(&clock)),
        &headers,
        big,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
    )
    .await;
}

#[tokio::test]
async fn extractor_refuses_missing_header_with_the_layers_400() {
    let clock = ManualClock::at_unix(NOW);
    let mut headers = sign(&clock, EVENT.as_bytes(), "msg_1");
    headers.remove("webhook-signature");

    refused_like_the_layer(
        layer_for(keyring(&clock)),
        &headers,
        EVENT,
        StatusCode::BAD_REQUEST,
        "missing-header",
    )
    .await;
}

#[tokio::test]
async fn extractor_refuses_stale_timestamp_with_the_layers_401() {
    let clock = ManualClock::at_unix(NOW);
    let headers = sign(&clock, EVENT.as_bytes(), "msg_1");
    let keyring = keyring(&clock);
    clock.advance(Duration::from_secs(301));

    refused_like_the_layer(
        layer_for(keyring),
        &headers,
        EVENT,
        StatusCode::UNAUTHORIZED,
        "timestamp-out-of-tolerance",
    )
    .await;
}

#[tokio::test]
async fn extractor_accepts_old_and_new_secret_during_grace_then_only_new() {
    let clock = ManualClock::at_unix(NOW);
    let keyring = keyring(&clock);
    let app = extractor_app(layer_for(keyring.clone()));
    let rotation = keyring
        .rotate(secret(NEW_SECRET), Duration::from_secs(600))
        .expect("rotated");
    let new_id = keyring.current_id();
    assert_eq!(rotation.old_key.to_string(), KEY_ID);

    // During the grace period, both secrets verify; each delivery names its key.
    clock.advance(Duration::from_secs(599));
    for (key, id) in [
        (SECRET, KEY_ID.to_owned()),
        (NEW_SECRET, new_id.to_string()),
    ] {
        let headers = sign_with(&clock, key, EVENT.as_bytes(), "msg_grace");
        let answer = call(&app, request("/webhooks", &headers, EVENT)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(
            answer.text(),
            format!("payment.created 42 key={id} id=msg_grace")
        );
    }

    // After it, the old secret is refused, as the layer refuses it; the new one still verifies.
    clock.advance(Duration::from_secs(2));
    let old = sign_with(&clock, SECRET, EVENT.as_bytes(), "msg_late");
    refused_like_the_layer(
        layer_for(keyring.clone()),
        &old,
        EVENT,
        StatusCode::UNAUTHORIZED,
        "invalid-signature",
    )
    .await;
    let answer = call(&app, request("/webhooks", &old, EVENT)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let new = sign_with(&clock, NEW_SECRET, EVENT.as_bytes(), "msg_late");
    let answer = call(&app, request("/webhooks", &new, EVENT)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

#[tokio::test]
async fn json_error_answers_400_invalid_json_naming_the_path() {
    let clock = ManualClock::at_unix(NOW);
    let app = extractor_app(layer_for(keyring(&clock)));
    let body = r#"{"type":"payment.created","data":{"amount":"SECRET-ISH-VALUE-"}}"#;

    let answer = call(
        &app,
        request("/webhooks", &sign(&clock, body.as_bytes(), "msg_1"), body),
    )
    .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    let problem = answer.problem();
    assert_eq!(problem["type"], "tag:webhook-guard,2026:invalid-json");
    assert_eq!(problem["status"], 400);
    assert!(problem["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(problem["path"], "data.amount");
    let detail = problem["detail"].as_str().expect("a detail");
    assert!(detail.contains("data.amount"), "{detail}");
    assert!(detail.contains("expected u64"), "{detail}");
}

#[tokio::test]
async fn json_error_names_the_whole_body_for_syntax_and_trailing_bytes() {
    let clock = ManualClock::at_unix(NOW);
    let app = extractor_app(layer_for(keyring(&clock)));

    for body in [
        r#"{"type":"payment.created""#,
        r#"{"type":"x","data":{"amount":1}} {}"#,
    ] {
        let answer = call(
            &app,
            request("/webhooks", &sign(&clock, body.as_bytes(), "msg_1"), body),
        )
        .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        let problem = answer.problem();
        assert_eq!(problem["type"], "tag:webhook-guard,2026:invalid-json");
        assert!(problem["path"].is_string(), "{problem}");
    }

    // A missing field is named by the object that lacks it.
    let body = r#"{"type":"payment.created","data":{}}"#;
    let answer = call(
        &app,
        request("/webhooks", &sign(&clock, body.as_bytes(), "msg_1"), body),
    )
    .await;
    let problem = answer.problem();
    assert_eq!(problem["path"], "data");
    assert!(problem["detail"]
        .as_str()
        .is_some_and(|d| d.contains("missing field `amount`")));
}

#[tokio::test]
async fn json_error_after_a_forged_signature_is_the_layers_401() {
    // Verification comes first: a forged body is never parsed.
    let clock = ManualClock::at_unix(NOW);
    let body = r#"not json at all"#;
    let forged = sign_with(&clock, "someone else's secret", body.as_bytes(), "msg_1");

    refused_like_the_layer(
        layer_for(keyring(&clock)),
        &forged,
        body,
        StatusCode::UNAUTHORIZED,
        "invalid-signature",
    )
    .await;
}

#[tokio::test]
async fn extractor_answers_a_signed_handshake_like_the_layer() {
    // Twitch confirms a subscription with a signed message whose challenge must be echoed; the
    // layer answers it, and so does the extractor, without calling the handler.
    let clock = ManualClock::at_unix(NOW);
    let keyring = Keyring::builder()
        .clock(clock.clone())
        .build(secret(SECRET));
    let layer = WebhookLayer::new(Verifier::new(Twitch, keyring));
    let body =
        r#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"f1c2a387"}}"#;
    let mut headers = Signer::new(Twitch, secret(SECRET))
        .sign_at(body.as_bytes(), "e76c6bd4", clock.now())
        .expect("signed");
    headers.insert(
        "twitch-eventsub-message-type",
        "webhook_callback_verification".parse().unwrap(),
    );

    let by_extractor = call(
        &extractor_app(layer.clone()),
        request("/webhooks", &headers, body),
    )
    .await;
    let by_layer = call(
        &layer_app(layer.clone()),
        request("/webhooks", &headers, body),
    )
    .await;

    assert_eq!(by_extractor.status, StatusCode::OK);
    assert_eq!(by_extractor.text(), "pogchamp-kappa-360noscope-vohiyo");
    assert_eq!(
        by_extractor.headers[header::CONTENT_TYPE],
        by_layer.headers[header::CONTENT_TYPE]
    );
    assert_eq!(by_extractor.body, by_layer.body);

    // The same challenge with a forged signature is refused, not echoed.
    let forged = {
        let mut h = Signer::new(Twitch, secret("not the subscription's secret"))
            .sign_at(body.as_bytes(), "e76c6bd4", clock.now())
            .expect("signed");
        h.insert(
            "twitch-eventsub-message-type",
            "webhook_callback_verification".parse().unwrap(),
        );
        h
    };
    let answer = call(&extractor_app(layer), request("/webhooks", &forged, body)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

/// Standard Webhooks, counting how often a delivery's headers are parsed: once per verification.
#[derive(Debug, Clone, Default)]
struct Counted(Arc<AtomicUsize>);

impl Scheme for Counted {
    fn name(&self) -> &'static str {
        "counted"
    }
    fn parse<'h>(
        &self,
        headers: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        StandardWebhooks.parse(headers, delivery)
    }
    fn signed_content(&self, delivery: &Delivery<'_>, body: &[u8], out: &mut dyn FnMut(&[u8])) {
        StandardWebhooks.signed_content(delivery, body, out)
    }
    fn signature_headers(
        &self,
        delivery: &Delivery<'_>,
        signatures: &[Signature<'_>],
        headers: &mut HeaderMap,
    ) -> Result<(), SignError> {
        StandardWebhooks.signature_headers(delivery, signatures, headers)
    }
}

#[tokio::test]
async fn extractor_behind_the_layer_does_not_verify_twice() {
    let clock = ManualClock::at_unix(NOW);
    let parses = Counted::default();
    let layer = WebhookLayer::new(Verifier::new(parses.clone(), keyring(&clock)));
    let headers = sign(&clock, EVENT.as_bytes(), "msg_1");

    // The extractor alone verifies once.
    let alone = extractor_app(layer.clone());
    let answer = call(&alone, request("/webhooks", &headers, EVENT)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(parses.0.swap(0, Ordering::SeqCst), 1);

    // Behind the layer, the layer verifies and the extractor reads what it passed on.
    let behind = Router::new()
        .route("/webhooks", post(typed))
        .route_layer(layer.clone())
        .with_state(layer);
    let answer = call(&behind, request("/webhooks", &headers, EVENT)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.text(),
        format!("payment.created 42 key={KEY_ID} id=msg_1")
    );
    assert_eq!(parses.0.swap(0, Ordering::SeqCst), 1);

    // A forged delivery is still refused there, by the layer, once.
    let forged = sign_with(&clock, "someone else's secret", EVENT.as_bytes(), "msg_1");
    let answer = call(&behind, request("/webhooks", &forged, EVENT)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(parses.0.swap(0, Ordering::SeqCst), 1);
}

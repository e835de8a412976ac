//! What rejections tell outsiders (review finding, issue 15 D): by default one sentence per
//! problem type, nothing that changes with the key count, the server's clock or the MAC's
//! length; the specific text only when asked for. The logs: `tests/rejection_log.rs`.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, ServiceExt};
use webhook_guard::middleware::{Rejection, WebhookLayer};
use webhook_guard::scheme::{GitHub, StandardWebhooks};
use webhook_guard::{
    Clock, HeaderProblem, Keyring, ManualClock, Secret, Signer, Verifier, VerifyError,
};

const NOW: i64 = 1_700_000_000;
const SECRET: &str = "quiet rejections secret";

fn secret(text: &str) -> Secret {
    Secret::from_bytes(text).expect("a non-empty secret")
}

async fn answer(
    layer: &WebhookLayer,
    headers: HeaderMap,
    body: &'static [u8],
) -> (StatusCode, serde_json::Value) {
    let inner = service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    let mut request = Request::post("/webhooks")
        .body(Full::new(Bytes::from_static(body)))
        .expect("a valid request");
    request.headers_mut().extend(headers);
    let response = layer
        .clone()
        .layer(inner)
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|never| match never {})
        .to_bytes();
    let doc = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, doc)
}

fn forged_github() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&format!("sha256={}", "ab".repeat(32))).expect("ASCII"),
    );
    headers
}

/// Review finding: "…checked against 8 live key(s)" told outsiders the key count, so a rotation
/// in its grace period showed. The default detail is the same with one key and with two.
#[tokio::test]
async fn the_default_detail_does_not_change_with_a_rotation() {
    let clock = ManualClock::at_unix(NOW);
    let keyring = Keyring::builder()
        .clock(clock.clone())
        .build(secret(SECRET));
    let layer = WebhookLayer::new(Verifier::new(GitHub, keyring.clone()));
    let (status, before) = answer(&layer, forged_github(), b"{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    keyring
        .rotate(secret("next secret"), Duration::from_secs(600))
        .expect("a rotation with grace");
    let (_, during) = answer(&layer, forged_github(), b"{}").await;
    assert_eq!(before, during);
    assert_eq!(during["detail"], "no signature in the request matches");

    // Asked for, the specific text names the count, as before.
    let detailed = layer.detailed_rejections(true);
    let (_, doc) = answer(&detailed, forged_github(), b"{}").await;
    let detail = doc["detail"].as_str().expect("a detail");
    assert!(detail.contains("2 live key(s)"), "{detail}");
}

/// Neither the server's clock, the tolerance nor the MAC's length by default.
#[tokio::test]
async fn the_default_detail_tells_no_clock_tolerance_or_length() {
    let clock = ManualClock::at_unix(NOW);
    let keyring = Keyring::builder()
        .clock(clock.clone())
        .build(secret(SECRET));
    let layer = WebhookLayer::new(Verifier::new(StandardWebhooks, keyring));
    let stale = Signer::new(StandardWebhooks, secret(SECRET))
        .sign_at(b"{}", "msg_1", clock.now() - chrono::Duration::seconds(600))
        .expect("signed");
    let (status, doc) = answer(&layer, stale, b"{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        doc["detail"],
        "the signed timestamp is outside the window the receiver accepts"
    );

    let github = WebhookLayer::new(Verifier::new(
        GitHub,
        Keyring::builder().clock(clock).build(secret(SECRET)),
    ));
    let mut short = HeaderMap::new();
    short.insert(
        "x-hub-signature-256",
        HeaderValue::from_static("sha256=abcd"),
    );
    let (status, doc) = answer(&github, short, b"{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let detail = doc["detail"].as_str().expect("a detail");
    assert!(!detail.contains(|c: char| c.is_ascii_digit()), "{detail}");
}

#[test]
fn every_kind_has_its_own_generic_detail() {
    let name = http::HeaderName::from_static("x-signature");
    let rejections = [
        Rejection::Verify(VerifyError::MissingHeader { name: name.clone() }),
        Rejection::Verify(VerifyError::DuplicateHeader { name: name.clone() }),
        Rejection::Verify(VerifyError::MalformedHeader {
            name,
            problem: HeaderProblem::NotAscii,
        }),
        Rejection::Verify(VerifyError::UrlRequired { scheme: "square" }),
        Rejection::Verify(VerifyError::Misconfigured { problem: "test" }),
        Rejection::Verify(VerifyError::MalformedBody {
            field: "webhookTimestamp",
        }),
        Rejection::Verify(VerifyError::TimestampTooOld {
            age: Duration::from_secs(301),
            tolerance: Duration::from_secs(300),
        }),
        Rejection::Verify(VerifyError::NoMatch {
            signatures: 1,
            keys: 2,
        }),
        Rejection::BodyTooLarge { limit: 1234 },
        Rejection::OverCapacity {
            max: 4096,
            retry_after: 2,
        },
        Rejection::BodyRead {
            reason: "reset".into(),
        },
        Rejection::UnknownProject { id: None },
        Rejection::DuplicateInProgress { retry_after: 3 },
        Rejection::ReplayGuardUnavailable { retry_after: 5 },
    ];
    let kinds: Vec<&str> = rejections.iter().map(Rejection::kind).collect();
    assert_eq!(kinds, Rejection::KINDS);
    let mut details: Vec<&str> = rejections.iter().map(Rejection::generic_detail).collect();
    details.sort_unstable();
    details.dedup();
    assert_eq!(details.len(), rejections.len());
    for rejection in &rejections {
        assert_eq!(rejection.problem()["detail"], rejection.generic_detail());
        assert_eq!(
            rejection.detailed_problem()["detail"],
            rejection.to_string()
        );
        assert!(!rejection
            .generic_detail()
            .contains(|c: char| c.is_ascii_digit()));
    }
}

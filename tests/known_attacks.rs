//! Regression tests for failures published against other webhook verifiers. Each test names the
//! advisory it guards against and shows this crate refusing the same input.
//!
//! | advisory | peer failure | here |
//! |---|---|---|
//! | CVE-2024-21491 (svix) | signatures of another length compared as equal; an empty `v1,` accepted | malformed (400), never accepted |
//! | CVE-2023-50728 (@octokit/webhooks) | a signature of the wrong length crashed the process | refused cleanly for every built-in scheme and length |
//! | GHSA-q9g3-q6fj-hc2x | signed timestamp not checked, so old deliveries replay | `TimestampTooOld` |
//! | CVE-2024-40634 (Argo CD) | webhook body read without a bound before verification | 413 after at most the limit (plus one frame) is read |
//! | empty secret | an empty HMAC key makes signatures forgeable by anyone | refused when the secret is built |
//! | unknown versions | a non-`v1` entry (`v0`, `v1a`, `v2`) taken as a signature | ignored; only `v1` verifies |

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{header, HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, ServiceExt};
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::MAX_SIGNATURE_LEN;
use webhook_guard::scheme::{
    Custom, GitHub, Scheme, Shopify, Slack, StandardWebhooks, Stripe, TimestampUnit,
};
use webhook_guard::{
    HeaderProblem, Keyring, ManualClock, Secret, SecretError, Signer, Verifier, VerifyError,
};

const NOW: i64 = 1_700_000_000;
const SECRET: &str = "It's a Secret to Everybody";
const BODY: &[u8] = br#"{"type":"ping"}"#;
const ID: &str = "msg_2Lh7dOV3xGJy";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn secret() -> Secret {
    Secret::from_bytes(SECRET).expect("a non-empty secret")
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(NOW, 0).expect("a valid time")
}

fn keyring() -> Keyring {
    Keyring::builder()
        .clock(ManualClock::at_unix(NOW))
        .build(secret())
}

fn verifier(scheme: impl Scheme) -> Verifier {
    Verifier::new(scheme, keyring())
}

fn sign_at(scheme: impl Scheme, body: &[u8], at: i64) -> HeaderMap {
    let at = DateTime::from_timestamp(at, 0).expect("a valid time");
    Signer::new(scheme, secret())
        .sign_at(body, ID, at)
        .expect("signing with a plain id never fails")
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("a valid header value")
}

fn text(headers: &HeaderMap, name: &str) -> String {
    headers[name].to_str().expect("ASCII").to_owned()
}

/// The correct Standard Webhooks `v1` signature (base64) for `BODY` at `NOW`.
fn standard_sig() -> String {
    let headers = sign_at(StandardWebhooks, BODY, NOW);
    text(&headers, "webhook-signature")
        .strip_prefix("v1,")
        .expect("one v1 signature")
        .to_owned()
}

/// The correct Stripe `v1` signature (hex) for `BODY` at `NOW`.
fn stripe_sig() -> String {
    let headers = sign_at(Stripe, BODY, NOW);
    let header = text(&headers, "stripe-signature");
    header.split_once(",v1=").expect("t=…,v1=…").1.to_owned()
}

fn standard_headers(signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", value(ID));
    headers.insert("webhook-timestamp", value(&NOW.to_string()));
    headers.insert("webhook-signature", value(signature));
    headers
}

fn stripe_headers(signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("stripe-signature", value(signature));
    headers
}

/// Counts calls to the inner service.
fn inner(
    calls: &Arc<AtomicUsize>,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    let calls = Arc::clone(calls);
    service_fn(move |_: Request<Full<Bytes>>| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok")))) }
    })
}

/// Sends `request` through `layer` and checks a problem+json rejection with `status` and
/// problem type `…:{kind}`, with the inner service never called.
async fn expect_rejection<B>(layer: &WebhookLayer, request: Request<B>, status: u16, kind: &str)
where
    B: Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let calls = Arc::new(AtomicUsize::new(0));
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        layer.layer(inner(&calls)).oneshot(request),
    )
    .await
    .expect("the layer answers in bounded time")
    .unwrap_or_else(|never| match never {});
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .unwrap_or_else(|never| match never {})
        .to_bytes();
    assert_eq!(parts.status.as_u16(), status, "body: {body:?}");
    assert_eq!(
        parts.headers[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let doc: serde_json::Value = serde_json::from_slice(&body).expect("problem JSON");
    assert_eq!(doc["status"], status);
    assert_eq!(doc["type"], format!("tag:webhook-guard,2026:{kind}"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the inner service was called"
    );
}

fn request(headers: HeaderMap, body: &'static [u8]) -> Request<Full<Bytes>> {
    let mut request = Request::post("/webhooks")
        .body(Full::new(Bytes::from_static(body)))
        .expect("a valid request");
    request.headers_mut().extend(headers);
    request
}

fn malformed(name: &'static str, problem: HeaderProblem) -> VerifyError {
    VerifyError::MalformedHeader {
        name: HeaderName::from_static(name),
        problem,
    }
}

// ---------------------------------------------------------------------------------------------
// CVE-2024-21491 (svix): an empty or shorter signature accepted
// ---------------------------------------------------------------------------------------------

/// CVE-2024-21491: svix (before 1.17.0 in Rust) compared signatures of different lengths as
/// equal, so `v1,` with no data, or any prefix of a valid signature, passed.
#[tokio::test]
async fn cve_2024_21491_svix_empty_v1_signature_is_malformed_never_accepted() {
    let verifier = verifier(StandardWebhooks);
    for empty in ["v1,", "v1, ", "v1,  v1,"] {
        assert_eq!(
            verifier.verify(&standard_headers(empty), BODY),
            Err(malformed(
                "webhook-signature",
                HeaderProblem::EmptySignature
            )),
            "{empty:?}"
        );
    }
    let layer = WebhookLayer::new(verifier.clone());
    expect_rejection(
        &layer,
        request(standard_headers("v1,"), BODY),
        400,
        "malformed-header",
    )
    .await;

    // Nor a padding-only or too-short base64 signature.
    for short in ["v1,=", "v1,==", "v1,A", "v1,AA", "v1,AA=="] {
        let outcome = verifier.verify(&standard_headers(short), BODY);
        assert!(outcome.is_err(), "{short:?} accepted");
    }
}

/// CVE-2024-21491, the general form: every strict prefix of the correct MAC is refused, both
/// as a prefix of the base64 text and as a prefix of the decoded bytes.
#[test]
fn cve_2024_21491_svix_every_truncation_of_a_valid_signature_is_refused() {
    let verifier = verifier(StandardWebhooks);
    let sig = standard_sig();
    assert!(verifier
        .verify(&standard_headers(&format!("v1,{sig}")), BODY)
        .is_ok());
    for cut in 1..sig.len() {
        if sig[..cut] == *sig.trim_end_matches('=') {
            continue; // the whole signature without its padding, which is optional
        }
        let header = format!("v1,{}", &sig[..cut]);
        assert!(
            verifier.verify(&standard_headers(&header), BODY).is_err(),
            "text prefix of {cut} chars accepted"
        );
    }
    let mac = B64.decode(&sig).expect("base64");
    assert_eq!(mac.len(), 32);
    for len in 1..32 {
        let header = format!("v1,{}", B64.encode(&mac[..len]));
        assert_eq!(
            verifier.verify(&standard_headers(&header), BODY),
            Err(VerifyError::SignatureLength { len, expected: 32 }),
            "byte prefix of {len} bytes"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// CVE-2023-50728 (@octokit/webhooks): a wrong-length signature crashed the server
// ---------------------------------------------------------------------------------------------

/// The headers of `scheme` (by name) carrying `sig` as its signature, otherwise well formed.
fn headers_with_signature(scheme: &str, sig: &[u8]) -> HeaderMap {
    let hex = hex::encode(sig);
    let b64 = B64.encode(sig);
    let mut headers = HeaderMap::new();
    match scheme {
        "github" => {
            headers.insert("x-hub-signature-256", value(&format!("sha256={hex}")));
        }
        "stripe" => {
            headers.insert("stripe-signature", value(&format!("t={NOW},v1={hex}")));
        }
        "standard-webhooks" => headers = standard_headers(&format!("v1,{b64}")),
        "shopify" => {
            headers.insert("x-shopify-hmac-sha256", value(&b64));
        }
        "slack" => {
            headers.insert("x-slack-signature", value(&format!("v0={hex}")));
            headers.insert("x-slack-request-timestamp", value(&NOW.to_string()));
        }
        other => unreachable!("{other}"),
    }
    headers
}

fn all_schemes() -> Vec<(&'static str, Verifier)> {
    vec![
        ("github", verifier(GitHub)),
        ("stripe", verifier(Stripe)),
        ("standard-webhooks", verifier(StandardWebhooks)),
        ("shopify", verifier(Shopify)),
        ("slack", verifier(Slack)),
    ]
}

/// CVE-2023-50728: @octokit/webhooks passed signatures of another length to `timingSafeEqual`,
/// which throws, crashing the server. Every length from 0 to 1000 bytes is refused with an
/// error, for each built-in scheme, and none panics.
#[test]
fn cve_2023_50728_octokit_wrong_length_signature_is_refused_without_crashing() {
    for (name, verifier) in all_schemes() {
        // Control: the right signature verifies.
        let signer = Signer::new(scheme(name), secret());
        let good = signer.sign_at(BODY, ID, now()).expect("signed");
        assert!(verifier.verify(&good, BODY).is_ok(), "{name}: control");

        for len in (0..=80).chain([127, 128, 500, 1000]) {
            let sig = vec![0xa5; len];
            let outcome = verifier.verify(&headers_with_signature(name, &sig), BODY);
            let err = outcome.expect_err("a forged signature was accepted");
            match len {
                0 => assert!(
                    matches!(
                        err,
                        VerifyError::MalformedHeader {
                            problem: HeaderProblem::EmptySignature,
                            ..
                        }
                    ),
                    "{name} len 0: {err:?}"
                ),
                32 => assert!(
                    matches!(err, VerifyError::NoMatch { .. }),
                    "{name} len 32: {err:?}"
                ),
                1..=MAX_SIGNATURE_LEN => assert_eq!(
                    err,
                    VerifyError::SignatureLength { len, expected: 32 },
                    "{name} len {len}"
                ),
                _ => assert!(
                    matches!(
                        err,
                        VerifyError::MalformedHeader {
                            problem: HeaderProblem::BadEncoding { .. },
                            ..
                        }
                    ),
                    "{name} len {len}: {err:?}"
                ),
            }
        }
    }
}

/// A built-in scheme by name, or a custom one with a signed seconds timestamp header.
fn scheme(name: &str) -> Box<dyn Scheme> {
    match name {
        "custom" => Box::new(
            Custom::new("x-signature")
                .and_then(|c| c.timestamp_header("x-timestamp", TimestampUnit::Seconds))
                .expect("valid header names")
                .template(webhook_guard::scheme::Template::parse("{timestamp}.{body}").unwrap())
                .expect("the template signs the timestamp"),
        ),
        "github" => Box::new(GitHub),
        "stripe" => Box::new(Stripe),
        "standard-webhooks" => Box::new(StandardWebhooks),
        "shopify" => Box::new(Shopify),
        "slack" => Box::new(Slack),
        other => unreachable!("{other}"),
    }
}

/// CVE-2023-50728 through the layer: a clean 400 or 401 problem response, never a crash.
#[tokio::test]
async fn cve_2023_50728_octokit_wrong_length_through_the_layer_is_a_clean_rejection() {
    for (name, verifier) in all_schemes() {
        let layer = WebhookLayer::new(verifier);
        for (len, status, kind) in [
            (0, 400, "malformed-header"),
            (1, 401, "invalid-signature"),
            (20, 401, "invalid-signature"),
            (31, 401, "invalid-signature"),
            (33, 401, "invalid-signature"),
            (MAX_SIGNATURE_LEN, 401, "invalid-signature"),
            (MAX_SIGNATURE_LEN + 1, 400, "malformed-header"),
            (1000, 400, "malformed-header"),
        ] {
            let headers = headers_with_signature(name, &vec![0x5a; len]);
            expect_rejection(&layer, request(headers, BODY), status, kind).await;
        }
    }
}

/// CVE-2023-50728, the hex variant: an odd number of hex digits is malformed, not a crash.
#[test]
fn cve_2023_50728_octokit_odd_length_hex_is_malformed() {
    for (name, verifier) in all_schemes() {
        let mut headers = HeaderMap::new();
        match name {
            "github" => {
                headers.insert(
                    "x-hub-signature-256",
                    value(&format!("sha256={}", "a".repeat(63))),
                );
            }
            "stripe" => {
                headers.insert(
                    "stripe-signature",
                    value(&format!("t={NOW},v1={}", "a".repeat(63))),
                );
            }
            "slack" => {
                headers.insert(
                    "x-slack-signature",
                    value(&format!("v0={}", "a".repeat(63))),
                );
                headers.insert("x-slack-request-timestamp", value(&NOW.to_string()));
            }
            _ => continue, // base64 schemes
        }
        let err = verifier.verify(&headers, BODY).expect_err("accepted");
        assert!(err.is_malformed(), "{name}: {err:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// GHSA-q9g3-q6fj-hc2x: the signed timestamp was not checked
// ---------------------------------------------------------------------------------------------

/// GHSA-q9g3-q6fj-hc2x: a verifier that checks the MAC but not the signed timestamp lets a
/// captured delivery be replayed forever. A correctly signed delivery older than the tolerance
/// is refused with `TimestampTooOld`, for every scheme that signs a timestamp.
#[tokio::test]
async fn ghsa_q9g3_q6fj_hc2x_correctly_signed_old_delivery_is_refused() {
    for name in ["standard-webhooks", "stripe", "slack", "custom"] {
        let verifier = verifier(scheme(name));
        // Control: inside the tolerance it verifies.
        let fresh = sign_at(scheme(name), BODY, NOW - 299);
        assert!(verifier.verify(&fresh, BODY).is_ok(), "{name}: control");

        for age in [301_i64, 3600, 86_400 * 365, NOW] {
            let old = sign_at(scheme(name), BODY, NOW - age);
            assert_eq!(
                verifier.verify(&old, BODY),
                Err(VerifyError::TimestampTooOld {
                    age: Duration::from_secs(age.unsigned_abs()),
                    tolerance: Duration::from_secs(300),
                }),
                "{name}: {age} s old"
            );
        }
        let old = sign_at(scheme(name), BODY, NOW - 301);
        let layer = WebhookLayer::new(verifier);
        expect_rejection(
            &layer,
            request(old, BODY),
            401,
            "timestamp-out-of-tolerance",
        )
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// CVE-2024-40634 (Argo CD): unbounded body read before verification
// ---------------------------------------------------------------------------------------------

const CHUNK: usize = 1024;

/// A body that never ends (no size hint, as a chunked upload), counting the bytes it hands out.
struct Endless {
    polled: Arc<AtomicUsize>,
}

impl Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.polled.fetch_add(CHUNK, Ordering::SeqCst);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'{'; CHUNK])))))
    }
}

/// CVE-2024-40634: Argo CD read webhook bodies without a limit before checking them, so one
/// request could exhaust memory. An endless body is refused with 413 after at most the limit
/// plus one frame has been read; a declared over-limit `Content-Length` is refused unread.
#[tokio::test]
async fn cve_2024_40634_argo_cd_endless_body_is_413_after_at_most_the_limit() {
    let limit = 64 * 1024;
    let layer = WebhookLayer::new(verifier(StandardWebhooks)).max_body_size(limit);

    let polled = Arc::new(AtomicUsize::new(0));
    let mut request = Request::post("/webhooks")
        .body(Endless {
            polled: Arc::clone(&polled),
        })
        .expect("a request");
    request
        .headers_mut()
        .extend(sign_at(StandardWebhooks, BODY, NOW));
    expect_rejection(&layer, request, 413, "body-too-large").await;
    let read = polled.load(Ordering::SeqCst);
    assert!(read > limit, "stopped before the limit: {read}");
    assert!(
        read <= limit + CHUNK,
        "read {read} bytes for a {limit}-byte limit"
    );

    // Declared too large: nothing is read at all.
    let polled = Arc::new(AtomicUsize::new(0));
    let mut request = Request::post("/webhooks")
        .header(header::CONTENT_LENGTH, "10000000000")
        .body(Endless {
            polled: Arc::clone(&polled),
        })
        .expect("a request");
    request
        .headers_mut()
        .extend(sign_at(StandardWebhooks, BODY, NOW));
    expect_rejection(&layer, request, 413, "body-too-large").await;
    assert_eq!(polled.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------------------------
// Empty secret
// ---------------------------------------------------------------------------------------------

/// An empty HMAC key is public knowledge: anyone could sign. Misconfiguration (an unset
/// environment variable, `whsec_` with nothing after it) must fail when the secret is built.
#[test]
fn empty_secret_is_refused_in_every_form() {
    assert_eq!(Secret::from_bytes("").unwrap_err(), SecretError::Empty);
    assert_eq!(Secret::from_bytes(b"").unwrap_err(), SecretError::Empty);
    assert_eq!(Secret::from_hex("").unwrap_err(), SecretError::Empty);
    assert_eq!(Secret::from_hex("   ").unwrap_err(), SecretError::Empty);
    assert_eq!(Secret::from_base64("").unwrap_err(), SecretError::Empty);
    assert_eq!(
        Secret::from_whsec("whsec_").unwrap_err(),
        SecretError::Empty
    );
    assert_eq!(
        Secret::from_whsec(" whsec_ ").unwrap_err(),
        SecretError::Empty
    );
    assert_eq!(Stripe::secret("").unwrap_err(), SecretError::Empty);
    assert_eq!(Stripe::secret("  ").unwrap_err(), SecretError::Empty);
    assert!(Secret::from_whsec("").is_err());
    assert!(Secret::from_base64("=").is_err());
}

// ---------------------------------------------------------------------------------------------
// Unknown signature versions
// ---------------------------------------------------------------------------------------------

/// Stripe's libraries verify `v1` only; a `v0` entry (test-mode legacy) or an unknown scheme
/// must not be taken as a signature, even when it carries the correct `v1` MAC.
#[tokio::test]
async fn stripe_v0_or_unknown_version_only_is_refused() {
    let verifier = verifier(Stripe);
    let sig = stripe_sig();
    assert!(verifier
        .verify(&stripe_headers(&format!("t={NOW},v1={sig}")), BODY)
        .is_ok());
    for header in [
        format!("t={NOW},v0={sig}"),
        format!("t={NOW},v2={sig}"),
        format!("t={NOW},V1={sig}"),
        format!("t={NOW},v1a={sig}"),
    ] {
        assert_eq!(
            verifier.verify(&stripe_headers(&header), BODY),
            Err(malformed(
                "stripe-signature",
                HeaderProblem::NoSignature { version: "v1" }
            )),
            "{header}"
        );
    }
    // A correct v0 beside a wrong v1 is still refused: v0 is never a fallback.
    let header = format!("t={NOW},v0={sig},v1={}", "00".repeat(32));
    assert!(matches!(
        verifier.verify(&stripe_headers(&header), BODY),
        Err(VerifyError::NoMatch { signatures: 1, .. })
    ));
    let layer = WebhookLayer::new(verifier);
    expect_rejection(
        &layer,
        request(stripe_headers(&format!("t={NOW},v0={sig}")), BODY),
        400,
        "malformed-header",
    )
    .await;
}

/// Standard Webhooks: unknown versions (`v2`, `v0`) are skipped; a header with only those is
/// refused, even when the entry holds the correct `v1` MAC. A `v1a` (Ed25519) entry is checked
/// only against public keys (feature `ed25519`), never as a MAC.
#[tokio::test]
async fn standard_webhooks_v1a_only_or_v2_only_is_refused() {
    let verifier = verifier(StandardWebhooks);
    let sig = standard_sig();
    for header in [format!("v1a,{sig}"), format!("v1a,{sig} v2,{sig}")] {
        let err = verifier
            .verify(&standard_headers(&header), BODY)
            .unwrap_err();
        if cfg!(feature = "ed25519") {
            assert!(
                matches!(err, VerifyError::NoMatch { .. }),
                "{header}: {err:?}"
            );
        } else {
            assert_eq!(
                err,
                malformed(
                    "webhook-signature",
                    HeaderProblem::NoSignature { version: "v1" }
                ),
                "{header}"
            );
        }
    }
    for header in [format!("v2,{sig}"), format!("v0,{sig}")] {
        assert_eq!(
            verifier.verify(&standard_headers(&header), BODY),
            Err(malformed(
                "webhook-signature",
                HeaderProblem::NoSignature { version: "v1" }
            )),
            "{header}"
        );
    }
    // A correct v1a beside a wrong v1 is still refused.
    let wrong = B64.encode([0u8; 32]);
    assert!(matches!(
        verifier.verify(&standard_headers(&format!("v1a,{sig} v1,{wrong}")), BODY),
        Err(VerifyError::NoMatch { .. })
    ));
    let layer = WebhookLayer::new(verifier);
    expect_rejection(
        &layer,
        request(standard_headers(&format!("v2,{sig}")), BODY),
        400,
        "malformed-header",
    )
    .await;
    let (status, kind) = if cfg!(feature = "ed25519") {
        (401, "invalid-signature")
    } else {
        (400, "malformed-header")
    };
    expect_rejection(
        &layer,
        request(standard_headers(&format!("v1a,{sig}")), BODY),
        status,
        kind,
    )
    .await;
}

/// `v1a,<anything>` beside a valid `v1` verifies, by the `v1` entry only.
#[test]
fn standard_webhooks_v1a_beside_valid_v1_verifies_by_v1() {
    let verifier = verifier(StandardWebhooks);
    let sig = standard_sig();
    let ed25519_like = B64.encode([0x42u8; 64]);
    for header in [
        format!("v1a,{ed25519_like} v1,{sig}"),
        format!("v1,{sig} v1a,{ed25519_like}"),
        format!("v1a,not-even-base64!!! v1,{sig}"),
    ] {
        let verified = verifier
            .verify(&standard_headers(&header), BODY)
            .unwrap_or_else(|e| panic!("{header}: {e}"));
        assert_eq!(verified.webhook_id(), Some(ID));
    }
}

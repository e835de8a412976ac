//! Signed fields have one text each: a delivery cannot be replayed under another id or timestamp
//! by writing the same signed bytes differently (review findings, issue 15 C).

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;
use webhook_guard::scheme::{
    Custom, Paddle, Scheme, Slack, StandardWebhooks, Stripe, Template, TemplateError,
    TimestampUnit, Zoom,
};
use webhook_guard::{HeaderProblem, Keyring, Secret, Signer, Verifier, VerifyError};

const NOW: i64 = 1_700_000_000;
const SECRET: &[u8] = b"signed fields secret";
const BODY: &[u8] = br#"{"event":"ping"}"#;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(NOW, 0).expect("a valid time")
}

fn secret() -> Secret {
    Secret::from_bytes(SECRET).expect("a non-empty secret")
}

fn verifier(scheme: impl Scheme) -> Verifier {
    Verifier::new(scheme, Keyring::new(secret()))
}

fn hmac_hex(content: &[u8]) -> String {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(SECRET).expect("any key length");
    mac.update(content);
    hex::encode(mac.finalize().into_bytes())
}

fn custom(template: &str) -> Custom {
    Custom::new("x-signature")
        .and_then(|c| c.timestamp_header("x-timestamp", TimestampUnit::Seconds))
        .and_then(|c| c.id_header("x-id"))
        .expect("valid header names")
        .template(Template::parse(template).expect("a valid template"))
        .expect("every configured header is signed")
}

fn custom_headers(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, text) in [
        ("x-id", id),
        ("x-timestamp", timestamp),
        ("x-signature", signature),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(text).expect("a valid header value"),
        );
    }
    headers
}

fn bad_timestamp(name: &'static str) -> VerifyError {
    VerifyError::MalformedHeader {
        name: HeaderName::from_static(name),
        problem: HeaderProblem::BadTimestamp,
    }
}

/// The reviewer's replay: with `{id}{timestamp}{body}`, a delivery signed for id `evt_10` at
/// `1700000000` verified again as id `evt_1` at `01700000000`. Such a template is refused now,
/// and a leading zero is refused even when the MAC over that very text is right.
#[test]
fn replay_under_another_id_is_refused() {
    assert_eq!(
        Template::parse("{id}{timestamp}{body}"),
        Err(TemplateError::AdjacentPlaceholders {
            first: "id",
            second: "timestamp"
        })
    );

    let scheme = || custom("{id}.{timestamp}.{body}");
    let signature = hmac_hex(b"evt_10.1700000000.{\"event\":\"ping\"}");
    let headers = custom_headers("evt_10", "1700000000", &signature);
    let verified = verifier(scheme())
        .verify_at(&headers, BODY, now())
        .expect("the delivery as signed verifies");
    assert_eq!(verified.webhook_id(), Some("evt_10"));

    // The same number written with a leading zero, MACed correctly over that text: refused
    // before any key is tried.
    let signature = hmac_hex(b"evt_1.01700000000.{\"event\":\"ping\"}");
    let headers = custom_headers("evt_1", "01700000000", &signature);
    assert_eq!(
        verifier(scheme()).verify_at(&headers, BODY, now()),
        Err(bad_timestamp("x-timestamp"))
    );
}

#[test]
fn adjacent_placeholders_are_refused_except_timestamp_beside_body() {
    for (template, first, second) in [
        ("{id}{timestamp}.{body}", "id", "timestamp"),
        ("{timestamp}{id}.{body}", "timestamp", "id"),
        ("{id}{body}", "id", "body"),
        ("{body}{id}", "body", "id"),
        ("v1:{timestamp}{timestamp}:{body}", "timestamp", "timestamp"),
        ("{id}{id}.{body}", "id", "id"),
    ] {
        assert_eq!(
            Template::parse(template),
            Err(TemplateError::AdjacentPlaceholders { first, second }),
            "{template}"
        );
    }
    let refused = Template::parse("{id}{body}").expect_err("adjacent");
    assert_eq!(
        refused.to_string(),
        "{id} is followed directly by {body}; put a separator between them"
    );
    // A canonical timestamp moved across the body boundary changes tenfold: allowed (it is
    // Discord's and SendGrid's layout), as are placeholders with any literal between them.
    for fine in [
        "{timestamp}{body}",
        "{body}{timestamp}",
        "{id}:{timestamp}.{body}",
        "{{{id}}}{{{timestamp}}}{body}",
    ] {
        assert!(Template::parse(fine).is_ok(), "{fine}");
    }
}

fn custom_millis() -> Custom {
    Custom::new("x-signature")
        .and_then(|c| c.timestamp_header("x-timestamp", TimestampUnit::Milliseconds))
        .expect("valid header names")
        .template(Template::parse("{timestamp}.{body}").expect("a valid template"))
        .expect("the timestamp is signed")
}

/// Every scheme that reads integer seconds or milliseconds refuses a leading zero in them.
#[test]
fn integer_timestamps_with_leading_zeros_are_refused_in_every_scheme() {
    type Make = fn() -> Box<dyn Scheme>;
    let schemes: [(Make, &'static str, &str); 7] = [
        (
            || Box::new(StandardWebhooks),
            "webhook-timestamp",
            "1700000000",
        ),
        (|| Box::new(Stripe), "stripe-signature", "1700000000"),
        (
            || Box::new(Slack),
            "x-slack-request-timestamp",
            "1700000000",
        ),
        (|| Box::new(Zoom), "x-zm-request-timestamp", "1700000000"),
        (|| Box::new(Paddle), "paddle-signature", "1700000000"),
        (
            || Box::new(custom("{id}.{timestamp}.{body}")),
            "x-timestamp",
            "1700000000",
        ),
        (|| Box::new(custom_millis()), "x-timestamp", "1700000000000"),
    ];
    for (make, header, text) in schemes {
        let verifier = verifier(make());
        let name = verifier.scheme().name();
        let mut headers = Signer::new(make(), secret())
            .sign_at(BODY, "evt_1", now())
            .expect("signing succeeds");
        assert!(
            verifier.verify_at(&headers, BODY, now()).is_ok(),
            "{name}: the canonical delivery verifies"
        );
        let original = headers[header].to_str().expect("ASCII").to_owned();
        assert!(original.contains(text), "{name}: {original}");
        let padded = original.replacen(text, &format!("0{text}"), 1);
        headers.insert(
            HeaderName::from_static(header),
            HeaderValue::from_str(&padded).expect("a valid header value"),
        );
        assert_eq!(
            verifier.verify_at(&headers, BODY, now()),
            Err(bad_timestamp(header)),
            "{name}: {padded}"
        );
    }
}

mod twitch {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use bytes::Bytes;
    use http::{Request, Response, StatusCode};
    use http_body_util::{BodyExt, Full};
    use tower::{service_fn, Layer, ServiceExt};
    use webhook_guard::middleware::WebhookLayer;
    use webhook_guard::scheme::Twitch;
    use webhook_guard::ManualClock;

    use super::*;

    const CHALLENGE: &[u8] =
        br#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"type":"channel.follow"}}"#;
    const EVENT: &[u8] =
        br#"{"subscription":{"type":"channel.follow"},"event":{"user_id":"1337"}}"#;
    const TYPE: &str = "twitch-eventsub-message-type";

    /// Sends `body`, signed, with the type header set to `kind` (removed for `None`); returns
    /// the status, the response's headers and body, and whether the handler ran.
    async fn send(
        body: &'static [u8],
        kind: Option<&'static str>,
    ) -> (StatusCode, HeaderMap, Bytes, bool) {
        let keyring = Keyring::builder()
            .clock(ManualClock::at_unix(NOW))
            .build(secret());
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let service = WebhookLayer::new(Verifier::new(Twitch, keyring)).layer(service_fn(
            move |_: Request<Full<Bytes>>| {
                counted.fetch_add(1, Ordering::SeqCst);
                async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"handled"))))
                }
            },
        ));
        let mut headers = Signer::new(Twitch, secret())
            .sign_at(body, "msg-1", now())
            .expect("signed");
        match kind {
            Some(kind) => headers.insert(TYPE, HeaderValue::from_static(kind)),
            None => headers.remove(TYPE),
        };
        let mut request = Request::post("/eventsub")
            .body(Full::new(Bytes::from_static(body)))
            .expect("a valid request");
        *request.headers_mut() = headers;
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
        (
            parts.status,
            parts.headers,
            body,
            calls.load(Ordering::SeqCst) == 1,
        )
    }

    #[tokio::test]
    async fn the_signer_names_the_type_its_body_has() {
        for (body, kind) in [
            (CHALLENGE, "webhook_callback_verification"),
            (EVENT, "notification"),
        ] {
            let headers = Signer::new(Twitch, secret())
                .sign_at(body, "msg-1", now())
                .expect("signed");
            assert_eq!(headers[TYPE], kind);
        }
    }

    /// The challenge is echoed with nosniff and no-store, whatever the type header says, as long
    /// as it does not contradict the body.
    #[tokio::test]
    async fn a_signed_challenge_is_echoed_with_nosniff_and_no_store() {
        for kind in [Some("webhook_callback_verification"), None] {
            let (status, headers, body, handled) = send(CHALLENGE, kind).await;
            assert_eq!(status, StatusCode::OK, "{kind:?}");
            assert_eq!(body, "pogchamp-kappa-360noscope-vohiyo");
            assert_eq!(headers["content-type"], "text/plain");
            assert_eq!(headers["x-content-type-options"], "nosniff");
            assert_eq!(headers["cache-control"], "no-store");
            assert!(!handled);
        }
    }

    /// Review finding: the unsigned type header chose the handshake, so a signed verification
    /// message replayed as `notification` reached the handler. Now it is refused, and so is an
    /// event sent as a verification.
    #[tokio::test]
    async fn a_type_header_that_contradicts_the_signed_body_is_refused() {
        for (body, kind) in [
            (CHALLENGE, "notification"),
            (CHALLENGE, "revocation"),
            (EVENT, "webhook_callback_verification"),
        ] {
            let (status, headers, problem, handled) = send(body, Some(kind)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{kind}");
            assert_eq!(headers["content-type"], "application/problem+json");
            let doc: serde_json::Value = serde_json::from_slice(&problem).expect("JSON");
            assert_eq!(doc["type"], "tag:webhook-guard,2026:malformed-header");
            assert!(!handled, "{kind}: the handler ran");
        }
        // An event with its own type, or none, is passed on.
        for kind in [Some("notification"), Some("revocation"), None] {
            let (status, _, body, handled) = send(EVENT, kind).await;
            assert_eq!(
                (status, &body[..]),
                (StatusCode::OK, &b"handled"[..]),
                "{kind:?}"
            );
            assert!(handled);
        }
    }
}

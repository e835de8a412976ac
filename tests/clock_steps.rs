//! A wall clock that steps back (an NTP correction, a VM restored from a snapshot) must not
//! revive a grace key that already expired but was not pruned yet: on the clock-driven paths
//! (`verify`, `verify_request`, the layer, `keys()`) a keyring judges keys at the latest
//! instant it has seen. `verify_at` keeps its explicit-time meaning (issue 12, item 4).

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{service_fn, Layer, ServiceExt};
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{Clock, KeyRole, Keyring, ManualClock, Secret, Signer, Verifier, VerifyError};

const BODY: &[u8] = br#"{"type":"invoice.paid"}"#;

fn secret(text: &str) -> Secret {
    Secret::from_bytes(text).expect("a non-empty secret")
}

struct Fixture {
    clock: ManualClock,
    keyring: Keyring,
    verifier: Verifier,
}

/// `old` current, then rotated to `new` with a 60 s grace period.
fn rotated() -> Fixture {
    let clock = ManualClock::at_unix(1_700_000_000);
    let keyring = Keyring::builder().clock(clock.clone()).build(secret("old"));
    keyring
        .rotate(secret("new"), Duration::from_secs(60))
        .expect("a rotation with grace");
    let verifier = Verifier::new(StandardWebhooks, keyring.clone());
    Fixture {
        clock,
        keyring,
        verifier,
    }
}

fn signed_by_old(clock: &ManualClock) -> http::HeaderMap {
    Signer::new(StandardWebhooks, secret("old"))
        .sign_at(BODY, "msg_1", clock.now())
        .expect("signed")
}

#[test]
fn a_clock_stepping_back_does_not_revive_an_expired_grace_key() {
    let f = rotated();
    assert_eq!(
        f.verifier
            .verify(&signed_by_old(&f.clock), BODY)
            .map(|v| v.role()),
        Ok(KeyRole::Grace)
    );
    // Expired, and seen expired.
    f.clock.advance(Duration::from_secs(61));
    let refused = Err(VerifyError::NoMatch {
        signatures: 1,
        keys: 1,
    });
    assert_eq!(f.verifier.verify(&signed_by_old(&f.clock), BODY), refused);
    assert_eq!(f.keyring.keys().len(), 1);

    // The clock steps back 30 s, into what was the grace period: still refused, still gone.
    f.clock.rewind(Duration::from_secs(30));
    assert_eq!(f.verifier.verify(&signed_by_old(&f.clock), BODY), refused);
    assert_eq!(f.keyring.keys().len(), 1);
    // The current key verifies as ever.
    let by_new = Signer::new(StandardWebhooks, secret("new"))
        .sign_at(BODY, "msg_2", f.clock.now())
        .expect("signed");
    assert_eq!(
        f.verifier.verify(&by_new, BODY).map(|v| v.role()),
        Ok(KeyRole::Current)
    );

    // verify_at judges at the instant it is given: 30 s after the rotation, the old key was
    // live, and an explicit time says so.
    let at = f.clock.now();
    assert_eq!(
        f.verifier
            .verify_at(&signed_by_old(&f.clock), BODY, at)
            .map(|v| v.role()),
        Ok(KeyRole::Grace)
    );
}

/// A step back before the key was ever seen expired changes nothing: it is still live then.
#[test]
fn a_clock_stepping_back_within_the_grace_period_keeps_the_key() {
    let f = rotated();
    f.clock.advance(Duration::from_secs(50));
    assert!(f.verifier.verify(&signed_by_old(&f.clock), BODY).is_ok());
    f.clock.rewind(Duration::from_secs(40));
    assert!(f.verifier.verify(&signed_by_old(&f.clock), BODY).is_ok());
    assert_eq!(f.keyring.keys().len(), 2);
}

/// A grace period given after the clock stepped back counts from the latest instant seen, so
/// it lasts as long as asked for rather than ending early.
#[test]
fn a_rotation_after_a_step_back_gives_the_whole_grace_period() {
    let f = rotated();
    f.clock.advance(Duration::from_secs(120));
    assert!(f.verifier.verify(&signed_by_old(&f.clock), BODY).is_err());
    f.clock.rewind(Duration::from_secs(100));
    let latest = f.clock.now() + chrono::Duration::seconds(100);
    let rotation = f
        .keyring
        .rotate(secret("newer"), Duration::from_secs(60))
        .expect("a rotation with grace");
    assert_eq!(
        rotation.old_expires_at,
        Some(latest + chrono::Duration::seconds(60))
    );
}

#[tokio::test]
async fn the_layer_does_not_revive_an_expired_grace_key_either() {
    let f = rotated();
    let service =
        WebhookLayer::new(f.verifier.clone()).layer(service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        }));
    let send = |headers: http::HeaderMap| {
        let mut request = Request::post("/hooks")
            .body(Full::new(Bytes::from_static(BODY)))
            .expect("a valid request");
        *request.headers_mut() = headers;
        service.clone().oneshot(request)
    };
    f.clock.advance(Duration::from_secs(61));
    let response = send(signed_by_old(&f.clock))
        .await
        .unwrap_or_else(|never| match never {});
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    f.clock.rewind(Duration::from_secs(30));
    let response = send(signed_by_old(&f.clock))
        .await
        .unwrap_or_else(|never| match never {});
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

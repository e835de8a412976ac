//! Senders that rotate without breaking receivers: `Signer::from_keyring` signs with every live
//! key during the sender's grace period, so a receiver moves from the old secret to the new one
//! on its own schedule without a single failed delivery.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{service_fn, Layer, ServiceExt};
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::{GitHub, Paddle, Scheme, StandardWebhooks, Stripe};
use webhook_guard::{Clock, KeyRole, Keyring, ManualClock, Secret, Signer, Verifier};

/// Sends one delivery through a receiver's layer; returns the status.
async fn deliver(signer: &Signer, receiver: &Verifier, clock: &ManualClock, n: u32) -> StatusCode {
    let body = Bytes::from(format!("{{\"n\":{n}}}"));
    let headers = signer
        .sign_at(&body, &format!("msg_{n}"), clock.now())
        .unwrap();
    let mut request = Request::post("/webhooks").body(Full::new(body)).unwrap();
    *request.headers_mut() = headers;
    let inner = service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
    });
    WebhookLayer::new(receiver.clone())
        .layer(inner)
        .oneshot(request)
        .await
        .unwrap()
        .status()
}

async fn rotation_story(scheme: fn() -> Box<dyn Scheme>) {
    let clock = ManualClock::at_unix(1_700_000_000);
    let old = Secret::from_bytes("old endpoint secret").unwrap();
    let new = Secret::from_bytes("new endpoint secret").unwrap();
    let sender = Keyring::builder().clock(clock.clone()).build(old.clone());
    let signer = Signer::from_keyring(scheme(), sender.clone());
    let receiver_keys = Keyring::builder().clock(clock.clone()).build(old.clone());
    let receiver =
        Verifier::new(scheme(), receiver_keys.clone()).tolerance(Duration::from_secs(300));

    let mut n = 0;
    let mut send = async |signer: &Signer, receiver: &Verifier| {
        n += 1;
        deliver(signer, receiver, &clock, n).await
    };
    assert_eq!(send(&signer, &receiver).await, StatusCode::OK);

    // The platform regenerates its secret with a one-hour grace period and shows the new one.
    let rotation = sender
        .rotate(new.clone(), Duration::from_secs(3600))
        .unwrap();
    // The receiver has not been told yet: deliveries carry both signatures and still verify.
    for _ in 0..3 {
        clock.advance(Duration::from_secs(60));
        assert_eq!(send(&signer, &receiver).await, StatusCode::OK);
    }
    // The receiver switches to the new secret (keeping the old one briefly, as is prudent).
    receiver_keys
        .rotate(new.clone(), Duration::from_secs(600))
        .unwrap();
    for _ in 0..3 {
        clock.advance(Duration::from_secs(60));
        assert_eq!(send(&signer, &receiver).await, StatusCode::OK);
    }
    // The sender's grace period ends: only the new signature is sent from then on.
    clock.set(rotation.old_expires_at.unwrap());
    let headers = signer.sign_at(b"{}", "msg_last", clock.now()).unwrap();
    let verified = receiver.verify(&headers, b"{}").unwrap();
    assert_eq!(verified.role(), KeyRole::Current);
    assert_eq!(send(&signer, &receiver).await, StatusCode::OK);
    // A receiver that never switched is refused now: the old secret is gone.
    let stale = Verifier::new(scheme(), Keyring::builder().clock(clock.clone()).build(old));
    assert_eq!(send(&signer, &stale).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn standard_webhooks_rotation_without_a_failed_delivery() {
    rotation_story(|| Box::new(StandardWebhooks)).await;
}

#[tokio::test]
async fn stripe_rotation_without_a_failed_delivery() {
    rotation_story(|| Box::new(Stripe)).await;
}

#[tokio::test]
async fn paddle_rotation_without_a_failed_delivery() {
    rotation_story(|| Box::new(Paddle)).await;
}

#[test]
fn one_signature_per_live_key_current_first() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let sender = Keyring::builder()
        .clock(clock.clone())
        .build(Secret::from_bytes("a").unwrap());
    sender
        .rotate(Secret::from_bytes("b").unwrap(), Duration::from_secs(600))
        .unwrap();
    sender
        .rotate(Secret::from_bytes("c").unwrap(), Duration::from_secs(60))
        .unwrap();
    let signer = Signer::from_keyring(Stripe, sender.clone());
    let header = signer.sign_at(b"x", "", clock.now()).unwrap()["stripe-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    let only = |secret: &str| {
        Signer::new(Stripe, Secret::from_bytes(secret).unwrap())
            .sign_at(b"x", "", clock.now())
            .unwrap()["stripe-signature"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let v1 = |h: String| h.split_once(",v1=").unwrap().1.to_owned();
    assert_eq!(
        header,
        format!(
            "t=1700000000,v1={},v1={},v1={}",
            v1(only("c")),
            v1(only("b")),
            v1(only("a"))
        )
    );
    // Single-signature schemes carry the current key's.
    let github = Signer::from_keyring(GitHub, sender.clone())
        .sign(b"x")
        .unwrap();
    let current = Signer::new(GitHub, Secret::from_bytes("c").unwrap())
        .sign(b"x")
        .unwrap();
    assert_eq!(
        github["x-hub-signature-256"],
        current["x-hub-signature-256"]
    );
    // Keys drop out as their grace ends.
    clock.advance(Duration::from_secs(61));
    let header = signer.sign_at(b"x", "", clock.now()).unwrap()["stripe-signature"]
        .to_str()
        .unwrap()
        .matches(",v1=")
        .count();
    assert_eq!(header, 2);
}

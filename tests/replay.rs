//! Replay protection through `WebhookLayer` with the memory guard: each delivery is handled
//! once; failures, panics and dropped requests give it back; forged deliveries never touch the
//! guard; what identifies a delivery per scheme; the outage policy.

mod replay_support;

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use replay_support::scenarios::{Fixture, BODY};
use replay_support::{request, send, Capture, Handler};
use webhook_guard::middleware::{ProjectSelector, WebhookLayer};
use webhook_guard::replay::{
    Claim, DeliveryKey, GuardError, GuardFuture, MemoryGuard, Outage, ReplayGuard,
    ReplayProtection, Token,
};
use webhook_guard::scheme::{GitHub, Twitch};
use webhook_guard::{Clock, Keyring, ManualClock, ProjectId, Projects, Secret, Signer, Verifier};

fn secret() -> Secret {
    Secret::from_bytes("It's a Secret to Everybody").unwrap()
}

fn memory() -> ReplayProtection {
    ReplayProtection::new(MemoryGuard::new(10_000))
}

#[tokio::test]
async fn the_same_delivery_twice_is_handled_once() {
    let fx = Fixture::new();
    let handler = Handler::default();
    let service = handler.wrap(&fx.layer(memory()));
    let headers = fx.sign("msg_1");

    let first = send(&service, request("/", &headers, BODY, None)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body, "handled");
    assert!(!first.is_duplicate());

    let second = send(&service, request("/", &headers, BODY, None)).await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(second.is_duplicate());
    assert_eq!(second.body, "");
    assert_eq!(handler.calls(), 1);
}

#[tokio::test]
async fn a_retry_signed_again_after_a_500_is_handled_then_its_copies_are_duplicates() {
    let fx = Fixture::new();
    let handler = Handler::default();
    let service = handler.wrap(&fx.layer(memory()));

    let first = send(&service, request("/", &fx.sign("msg_1"), BODY, Some("500"))).await;
    assert_eq!(first.status, StatusCode::INTERNAL_SERVER_ERROR);

    // The sender retries later: same id, a new timestamp and signature.
    fx.clock.advance(Duration::from_secs(30));
    let retry = fx.sign("msg_1");
    let second = send(&service, request("/", &retry, BODY, None)).await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(!second.is_duplicate());

    fx.clock.advance(Duration::from_secs(30));
    let third = send(&service, request("/", &fx.sign("msg_1"), BODY, None)).await;
    assert!(third.is_duplicate());
    assert_eq!(handler.calls(), 2);
}

#[tokio::test]
async fn two_copies_at_once_one_is_handled_the_other_gets_409_with_retry_after() {
    let fx = Fixture::new();
    let handler = Handler::default();
    let service = handler.wrap(&fx.layer(memory()));
    let headers = fx.sign("msg_1");

    let first = tokio::spawn({
        let service = service.clone();
        let request = request("/", &headers, BODY, Some("wait"));
        async move { send(&service, request).await }
    });
    while handler.calls() == 0 {
        tokio::task::yield_now().await;
    }
    let second = send(&service, request("/", &headers, BODY, None)).await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(second.problem(), "duplicate-in-progress");
    assert_eq!(second.headers["content-type"], "application/problem+json");
    let retry_after: u64 = second.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");

    handler.open();
    assert_eq!(first.await.unwrap().status, StatusCode::OK);
    assert!(send(&service, request("/", &headers, BODY, None))
        .await
        .is_duplicate());
    assert_eq!(handler.calls(), 1);
}

#[tokio::test]
async fn the_same_id_under_another_project_or_scheme_is_another_delivery() {
    let fx = Fixture::new();
    let guard: Arc<dyn ReplayGuard> = Arc::new(MemoryGuard::new(10_000));
    let protection = ReplayProtection::shared(Arc::clone(&guard));

    // Two projects, one guard.
    let projects = Projects::new();
    for id in ["prj_a", "prj_b"] {
        projects.insert(ProjectId::parse(id).unwrap(), fx.verifier.clone());
    }
    let handler = Handler::default();
    let layer = WebhookLayer::for_projects(projects, ProjectSelector::path_after("/webhooks/"))
        .replay_protection(protection.clone());
    let service = handler.wrap(&layer);
    let headers = fx.sign("msg_1");
    for path in ["/webhooks/prj_a", "/webhooks/prj_b"] {
        let answer = send(&service, request(path, &headers, BODY, None)).await;
        assert!(!answer.is_duplicate(), "{path}");
    }
    assert!(
        send(&service, request("/webhooks/prj_b", &headers, BODY, None))
            .await
            .is_duplicate()
    );
    assert_eq!(handler.calls(), 2);

    // Another scheme that signs an id, same id, same guard and namespace.
    let twitch = Verifier::new(
        Twitch,
        Keyring::builder().clock(fx.clock.clone()).build(secret()),
    );
    let twitch_headers = Signer::new(Twitch, secret())
        .sign_at(BODY, "msg_1", fx.clock.now())
        .unwrap();
    let handler = Handler::default();
    let service = handler.wrap(&WebhookLayer::new(twitch).replay_protection(protection.clone()));
    assert!(!send(&service, request("/", &twitch_headers, BODY, None))
        .await
        .is_duplicate());
    let service = handler.wrap(&fx.layer(protection));
    assert!(!send(&service, request("/", &headers, BODY, None))
        .await
        .is_duplicate());
    assert_eq!(handler.calls(), 2);

    // A namespace keeps receivers apart too.
    let service = handler.wrap(&fx.layer(ReplayProtection::shared(guard).namespace("staging")));
    assert!(!send(&service, request("/", &headers, BODY, None))
        .await
        .is_duplicate());
}

#[tokio::test]
async fn two_layers_sharing_one_memory_guard_handle_each_delivery_once() {
    let guard: Arc<dyn ReplayGuard> = Arc::new(MemoryGuard::new(10_000));
    let protection = || ReplayProtection::shared(Arc::clone(&guard));
    replay_support::scenarios::two_instances_handle_each_delivery_once(protection(), protection())
        .await;
}

#[tokio::test]
async fn a_github_delivery_with_another_delivery_header_is_the_same_delivery() {
    let keyring = Keyring::new(secret());
    let handler = Handler::default();
    let layer = WebhookLayer::new(Verifier::new(GitHub, keyring)).replay_protection(memory());
    let service = handler.wrap(&layer);
    let mut headers = Signer::new(GitHub, secret()).sign(BODY).unwrap();
    headers.insert(
        "x-github-delivery",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958".parse().unwrap(),
    );
    assert!(!send(&service, request("/", &headers, BODY, None))
        .await
        .is_duplicate());
    headers.insert("x-github-delivery", "a-new-unsigned-id".parse().unwrap());
    let again = send(&service, request("/", &headers, BODY, None)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.is_duplicate());
    assert_eq!(handler.calls(), 1);
}

#[cfg(feature = "ecdsa")]
#[tokio::test]
async fn a_sendgrid_delivery_with_a_malleated_or_repadded_signature_is_the_same_delivery() {
    use base64::Engine;
    use p256::ecdsa::Signature;
    use webhook_guard::scheme::SendGrid;
    use webhook_guard::PublicKey;

    // sendgrid-nodejs packages/eventwebhook/src/eventwebhook.spec.js
    const KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
    const SIGNATURE: &str = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=";
    const TIMESTAMP: &str = "1588788367";
    let body = br#"{"category":"example_payload","event":"test_event","message_id":"message_id"}"#;

    let b64 = base64::engine::general_purpose::STANDARD;
    let der = b64.decode(SIGNATURE).unwrap();
    let signature = Signature::from_der(&der).unwrap();
    // The other S of the same signature: (r, n - s).
    let (r, s) = signature.split_scalars();
    let flipped = Signature::from_scalars(r.to_bytes(), (-s).to_bytes()).unwrap();
    let malleated = b64.encode(flipped.to_der().as_bytes());
    assert_ne!(malleated, SIGNATURE);

    let clock = ManualClock::at_unix(1_588_788_367);
    let keyring = Keyring::builder()
        .clock(clock)
        .build(PublicKey::p256_der_base64(KEY).unwrap());
    let handler = Handler::default();
    let layer = WebhookLayer::new(Verifier::new(SendGrid, keyring)).replay_protection(memory());
    let service = handler.wrap(&layer);
    let headers = |signature: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-twilio-email-event-webhook-signature",
            signature.parse().unwrap(),
        );
        headers.insert(
            "x-twilio-email-event-webhook-timestamp",
            TIMESTAMP.parse().unwrap(),
        );
        headers
    };

    let first = send(&service, request("/", &headers(SIGNATURE), body, None)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(!first.is_duplicate());
    for other in [malleated.as_str(), SIGNATURE.trim_end_matches('=')] {
        let again = send(&service, request("/", &headers(other), body, None)).await;
        assert_eq!(again.status, StatusCode::OK, "{other}: {}", again.body);
        assert!(again.is_duplicate(), "{other}");
    }
    assert_eq!(handler.calls(), 1);
}

#[tokio::test]
async fn a_forged_delivery_with_a_valid_looking_id_reserves_nothing() {
    let fx = Fixture::new();
    let guard = Arc::new(MemoryGuard::new(10_000));
    let handler = Handler::default();
    let service = handler.wrap(&fx.layer(ReplayProtection::shared(guard.clone())));
    let genuine = fx.sign("msg_1");
    let mut forged = genuine.clone();
    forged.insert(
        "webhook-signature",
        format!("v1,{}", "A".repeat(44)).parse().unwrap(),
    );

    let refused = send(&service, request("/", &forged, BODY, None)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    // A stale timestamp, validly signed long ago, is refused before the guard too.
    let stale = fx
        .signer
        .sign_at(BODY, "msg_1", fx.clock.now() - chrono::Duration::hours(1))
        .unwrap();
    let refused = send(&service, request("/", &stale, BODY, None)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(guard.is_empty());

    let handled = send(&service, request("/", &genuine, BODY, None)).await;
    assert_eq!(handled.status, StatusCode::OK);
    assert!(!handled.is_duplicate());
    assert_eq!(handler.calls(), 1);
}

#[tokio::test]
async fn a_dropped_request_and_a_panicking_handler_give_the_delivery_back() {
    let fx = Fixture::new();
    let handler = Handler::default();
    let service = handler.wrap(&fx.layer(memory()));
    let headers = fx.sign("msg_1");

    // The client goes away while the handler runs: its future is dropped.
    let dropped = tokio::time::timeout(
        Duration::from_millis(50),
        send(&service, request("/", &headers, BODY, Some("hang"))),
    )
    .await;
    assert!(dropped.is_err());
    // The handler panics (the server's task catches it).
    let panicked = tokio::spawn({
        let service = service.clone();
        let request = request("/", &headers, BODY, Some("panic"));
        async move { send(&service, request).await }
    })
    .await;
    assert!(panicked.unwrap_err().is_panic());

    let handled = send(&service, request("/", &headers, BODY, None)).await;
    assert_eq!(handled.status, StatusCode::OK);
    assert!(!handled.is_duplicate());
    assert_eq!(handler.calls(), 3);
}

#[tokio::test]
async fn a_holder_that_never_answers_gives_the_delivery_up_when_its_lease_ends() {
    let fx = Fixture::new();
    let handler = Handler::default();
    let protection = memory().lease(Duration::from_millis(300));
    let service = handler.wrap(&fx.layer(protection));
    let headers = fx.sign("msg_1");

    // Held, never answered, never dropped.
    let _stuck = tokio::spawn({
        let service = service.clone();
        let request = request("/", &headers, BODY, Some("hang"));
        async move { send(&service, request).await }
    });
    while handler.calls() == 0 {
        tokio::task::yield_now().await;
    }
    let during = send(&service, request("/", &headers, BODY, None)).await;
    assert_eq!(during.status, StatusCode::CONFLICT);

    tokio::time::sleep(Duration::from_millis(400)).await;
    let after = send(&service, request("/", &headers, BODY, None)).await;
    assert_eq!(after.status, StatusCode::OK);
    assert!(!after.is_duplicate());
    assert_eq!(handler.calls(), 2);
}

#[tokio::test]
async fn handled_deliveries_are_forgotten_after_the_retention() {
    let fx = Fixture::new();
    let handler = Handler::default();
    let service = handler.wrap(&fx.layer(memory().retention(Duration::from_millis(100))));
    let headers = fx.sign("msg_1");
    assert!(!send(&service, request("/", &headers, BODY, None))
        .await
        .is_duplicate());
    assert!(send(&service, request("/", &headers, BODY, None))
        .await
        .is_duplicate());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!send(&service, request("/", &headers, BODY, None))
        .await
        .is_duplicate());
}

#[tokio::test]
async fn a_full_memory_guard_refuses_new_deliveries_with_503_over_capacity() {
    let fx = Fixture::new();
    let handler = Handler::default();
    let service = handler.wrap(&fx.layer(ReplayProtection::new(MemoryGuard::new(2))));
    for id in ["msg_1", "msg_2"] {
        assert_eq!(
            send(&service, request("/", &fx.sign(id), BODY, None))
                .await
                .status,
            StatusCode::OK
        );
    }
    let full = send(&service, request("/", &fx.sign("msg_3"), BODY, None)).await;
    assert_eq!(full.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(full.problem(), "over-capacity");
    assert!(full.headers.contains_key("retry-after"));
    // What it remembers is still answered.
    assert!(send(&service, request("/", &fx.sign("msg_1"), BODY, None))
        .await
        .is_duplicate());
    assert_eq!(handler.calls(), 2);
}

/// A backend that is down until told otherwise.
#[derive(Debug, Default)]
struct Flaky {
    down: std::sync::atomic::AtomicBool,
    memory: MemoryGuard,
}

impl Flaky {
    fn fail<T>(&self) -> Option<GuardFuture<T>> {
        self.down
            .load(std::sync::atomic::Ordering::SeqCst)
            .then(|| {
                GuardFuture::ready(Err(GuardError::Unavailable {
                    backend: "flaky",
                    reason: "connection refused".into(),
                }))
            })
    }
}

impl ReplayGuard for Flaky {
    fn reserve(&self, key: &DeliveryKey, lease: Duration) -> GuardFuture<Claim> {
        self.fail()
            .unwrap_or_else(|| self.memory.reserve(key, lease))
    }
    fn complete(&self, key: &DeliveryKey, token: Token, retention: Duration) -> GuardFuture<()> {
        self.fail()
            .unwrap_or_else(|| self.memory.complete(key, token, retention))
    }
    fn release(&self, key: &DeliveryKey, token: Token) -> GuardFuture<()> {
        self.fail()
            .unwrap_or_else(|| self.memory.release(key, token))
    }
    fn name(&self) -> &'static str {
        "flaky"
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_outage_fails_closed_by_default_and_open_when_asked_each_change_logged_once() {
    let capture = Capture::default();
    let _log = capture.install();
    let fx = Fixture::new();
    let flaky = Arc::new(Flaky::default());
    flaky.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let handler = Handler::default();

    let closed = handler.wrap(&fx.layer(ReplayProtection::shared(flaky.clone())));
    for n in 0..3 {
        let answer = send(
            &closed,
            request("/", &fx.sign(&format!("msg_{n}")), BODY, None),
        )
        .await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.problem(), "replay-guard-unavailable");
        assert!(answer.headers.contains_key("retry-after"));
    }
    assert_eq!(handler.calls(), 0);
    assert_eq!(capture.count("replay guard unavailable; failing closed"), 1);

    let open = handler
        .wrap(&fx.layer(ReplayProtection::shared(flaky.clone()).on_outage(Outage::FailOpen)));
    for _ in 0..3 {
        let answer = send(&open, request("/", &fx.sign("msg_1"), BODY, None)).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(!answer.is_duplicate());
    }
    assert_eq!(handler.calls(), 3);
    assert_eq!(capture.count("replay guard unavailable; failing open"), 1);

    flaky.down.store(false, std::sync::atomic::Ordering::SeqCst);
    for _ in 0..2 {
        assert_eq!(
            send(&closed, request("/", &fx.sign("msg_9"), BODY, None))
                .await
                .status,
            StatusCode::OK
        );
    }
    assert_eq!(capture.count("replay guard available again"), 1);
}

#[tokio::test]
async fn library_callers_admit_complete_and_release_through_replay_protection() {
    use webhook_guard::replay::Admission;
    let fx = Fixture::new();
    let protection = memory();
    let headers = fx.sign("msg_1");
    fx.verifier.verify(&headers, BODY).unwrap();
    let key = DeliveryKey::of(&fx.verifier, &headers, None, BODY, "").unwrap();

    let Admission::Handle(ticket) = protection.admit(key, &fx.verifier).await.unwrap() else {
        panic!("a new delivery is handled");
    };
    assert!(matches!(
        protection.admit(key, &fx.verifier).await.unwrap(),
        Admission::InProgress { .. }
    ));
    ticket.release().await.unwrap();
    let Admission::Handle(ticket) = protection.admit(key, &fx.verifier).await.unwrap() else {
        panic!("a released delivery is handled again");
    };
    ticket.complete().await.unwrap();
    assert!(matches!(
        protection.admit(key, &fx.verifier).await.unwrap(),
        Admission::Duplicate
    ));
}

#[tokio::test]
async fn a_large_body_macced_as_it_streams_is_guarded_alike() {
    let fx = Fixture::new();
    let handler = Handler::default();
    let service = handler.wrap(&fx.layer(memory()));
    let body = vec![b'x'; 64 * 1024];
    let headers = fx.signer.sign_at(&body, "msg_big", fx.clock.now()).unwrap();
    let first = send(&service, request("/", &headers, &body, None)).await;
    assert_eq!(
        (first.status, first.is_duplicate()),
        (StatusCode::OK, false)
    );
    let second = send(&service, request("/", &headers, &body, None)).await;
    assert_eq!(
        (second.status, second.is_duplicate()),
        (StatusCode::OK, true)
    );
    assert_eq!(handler.calls(), 1);
}

//! `WebhookLayer::for_projects`: each request is verified with the verifier of the project it
//! names, an unknown project is 404 before anything is read, and the registry changes (a
//! project added, removed, a keyring rotated) take effect from the next request.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, Service, ServiceExt};
use webhook_guard::middleware::{ProjectSelector, WebhookLayer};
use webhook_guard::scheme::{GitHub, StandardWebhooks};
use webhook_guard::{
    Clock, KeyRole, Keyring, ManualClock, ProjectId, Projects, Secret, Signer, Verified, Verifier,
};

const NOW: i64 = 1_700_000_000;
const SECRET_A: &str = "project A's secret";
const SECRET_B: &str = "project B's secret";
const BODY: &[u8] = br#"{"type":"invoice.paid","amount":4200}"#;

fn secret(text: &str) -> Secret {
    Secret::from_bytes(text).expect("a non-empty secret")
}

fn id(text: &str) -> ProjectId {
    ProjectId::parse(text).expect("a valid project id")
}

/// Two projects, `prj_a` and `prj_b`, on one manual clock, verifying Standard Webhooks.
struct Fixture {
    clock: ManualClock,
    projects: Projects,
    keyring_a: Keyring,
}

impl Fixture {
    fn new() -> Self {
        let clock = ManualClock::at_unix(NOW);
        let projects = Projects::new();
        let keyring_a = Keyring::builder()
            .clock(clock.clone())
            .build(secret(SECRET_A));
        let keyring_b = Keyring::builder()
            .clock(clock.clone())
            .build(secret(SECRET_B));
        projects.insert(
            id("prj_a"),
            Verifier::new(StandardWebhooks, keyring_a.clone()),
        );
        projects.insert(id("prj_b"), Verifier::new(StandardWebhooks, keyring_b));
        Self {
            clock,
            projects,
            keyring_a,
        }
    }

    fn by_path(&self) -> WebhookLayer {
        WebhookLayer::for_projects(
            self.projects.clone(),
            ProjectSelector::path_after("/webhooks/"),
        )
    }

    fn by_header(&self) -> WebhookLayer {
        WebhookLayer::for_projects(
            self.projects.clone(),
            ProjectSelector::header(HeaderName::from_static("x-project")),
        )
    }

    /// Headers for [`BODY`] signed now with `secret_text`.
    fn sign(&self, secret_text: &str) -> HeaderMap {
        Signer::new(StandardWebhooks, secret(secret_text))
            .sign_at(BODY, "msg_1", self.clock.now())
            .expect("signing never fails for a plain id")
    }
}

/// What the inner service received.
#[derive(Debug, Clone)]
struct Seen {
    project: Option<ProjectId>,
    verified: Option<Verified>,
    body: Bytes,
}

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
                    project: parts.extensions.get::<ProjectId>().cloned(),
                    verified: parts.extensions.get::<Verified>().cloned(),
                    body,
                });
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
            }
        })
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A body that panics when polled: proof that a request was refused unread.
struct Untouchable;

impl Body for Untouchable {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        panic!("the body was polled although the request should have been refused unread")
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(BODY.len() as u64)
    }
}

/// A response, read in full.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    /// Checks that this is the 404 unknown-project problem and returns its `detail`.
    fn unknown_project(&self) -> String {
        assert_eq!(self.status, StatusCode::NOT_FOUND, "body: {:?}", self.body);
        assert_eq!(
            self.headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"application/problem+json"[..])
        );
        let doc: serde_json::Value =
            serde_json::from_slice(&self.body).expect("the problem document is JSON");
        assert_eq!(doc["type"], "tag:webhook-guard,2026:unknown-project");
        assert_eq!(doc["title"], "Unknown webhook project");
        assert_eq!(doc["status"], 404);
        doc["detail"]
            .as_str()
            .expect("detail is a string")
            .to_owned()
    }

    fn problem_type(&self) -> String {
        let doc: serde_json::Value =
            serde_json::from_slice(&self.body).expect("the problem document is JSON");
        doc["type"].as_str().unwrap_or_default().to_owned()
    }
}

fn request<B>(path: &str, headers: HeaderMap, body: B) -> Request<B> {
    let mut request = Request::post(path).body(body).unwrap();
    request.headers_mut().extend(headers);
    request
}

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
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .unwrap_or_else(|never| match never {})
        .to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

async fn status(layer: &WebhookLayer, path: &str, headers: HeaderMap) -> StatusCode {
    let request = request(path, headers, Full::new(Bytes::from_static(BODY)));
    send(layer, &Recorder::default(), request).await.status
}

// ---------------------------------------------------------------------------------------------
// The right project
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn delivery_for_its_project_reaches_the_inner_service_with_project_id_and_verified() {
    let fx = Fixture::new();
    let recorder = Recorder::default();
    let headers = fx.sign(SECRET_A);

    let answer = send(
        &fx.by_path(),
        &recorder,
        request(
            "/webhooks/prj_a",
            headers,
            Full::new(Bytes::from_static(BODY)),
        ),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK);
    let seen = recorder.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].project, Some(id("prj_a")));
    assert_eq!(seen[0].body, BODY);
    let verified = seen[0]
        .verified
        .as_ref()
        .expect("Verified in the extensions");
    assert_eq!(verified.webhook_id(), Some("msg_1"));
    assert_eq!(verified.role(), KeyRole::Current);
}

#[tokio::test]
async fn path_after_takes_the_segment_up_to_the_next_slash() {
    let fx = Fixture::new();
    let recorder = Recorder::default();
    let path = "/webhooks/prj_b/invoices?attempt=2";
    let headers = fx.sign(SECRET_B);

    let answer = send(
        &fx.by_path(),
        &recorder,
        request(path, headers, Full::new(Bytes::from_static(BODY))),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(recorder.seen()[0].project, Some(id("prj_b")));
}

#[tokio::test]
async fn project_header_selects_the_verifier() {
    let fx = Fixture::new();
    let recorder = Recorder::default();
    let mut headers = fx.sign(SECRET_B);
    headers.insert("x-project", HeaderValue::from_static("prj_b"));

    let answer = send(
        &fx.by_header(),
        &recorder,
        request("/anything", headers, Full::new(Bytes::from_static(BODY))),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(recorder.seen()[0].project, Some(id("prj_b")));
}

#[tokio::test]
async fn delivery_signed_for_project_a_sent_to_project_b_is_401() {
    let fx = Fixture::new();
    let recorder = Recorder::default();

    let answer = send(
        &fx.by_path(),
        &recorder,
        request(
            "/webhooks/prj_b",
            fx.sign(SECRET_A),
            Full::new(Bytes::from_static(BODY)),
        ),
    )
    .await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.problem_type(),
        "tag:webhook-guard,2026:invalid-signature"
    );
    assert!(recorder.seen().is_empty());

    let mut headers = fx.sign(SECRET_A);
    headers.insert("x-project", HeaderValue::from_static("prj_b"));
    assert_eq!(
        status(&fx.by_header(), "/", headers).await,
        StatusCode::UNAUTHORIZED
    );
}

// ---------------------------------------------------------------------------------------------
// Unknown projects
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unregistered_project_is_404_problem_json_unread_and_outside_the_budget() {
    let fx = Fixture::new();
    // A budget of nothing: any request that reached the budget would be 503.
    let layer = fx.by_path().max_buffered_bytes(0);
    let recorder = Recorder::default();

    let answer = send(
        &layer,
        &recorder,
        request("/webhooks/prj_c", fx.sign(SECRET_A), Untouchable),
    )
    .await;

    let detail = answer.unknown_project();
    assert_eq!(
        detail,
        "the request does not name a project this receiver serves"
    );
    assert!(!detail.contains("prj_c"));
    assert!(recorder.seen().is_empty());
}

#[tokio::test]
async fn detailed_rejection_names_the_unregistered_project() {
    let fx = Fixture::new();
    let layer = fx.by_path().detailed_rejections(true);
    let answer = send(
        &layer,
        &Recorder::default(),
        request("/webhooks/prj_c", fx.sign(SECRET_A), Untouchable),
    )
    .await;
    assert_eq!(answer.unknown_project(), "no project prj_c is registered");

    let answer = send(
        &layer,
        &Recorder::default(),
        request("/webhooks/prj%2Fc", fx.sign(SECRET_A), Untouchable),
    )
    .await;
    assert_eq!(
        answer.unknown_project(),
        "the request names no valid project id"
    );
}

#[tokio::test]
async fn path_without_a_valid_registered_id_is_404_unread() {
    let fx = Fixture::new();
    let layer = fx.by_path();
    let overlong = format!("/webhooks/{}", "a".repeat(65));
    let at_limit = format!("/webhooks/{}", "a".repeat(64));
    for path in [
        "/webhooks/../x",
        "/webhooks/..",
        "/webhooks/prj%5Fa",
        "/webhooks/",
        "/webhooks",
        "/hooks/prj_a",
        "/",
        overlong.as_str(),
        at_limit.as_str(),
    ] {
        let answer = send(
            &layer,
            &Recorder::default(),
            request(path, fx.sign(SECRET_A), Untouchable),
        )
        .await;
        answer.unknown_project();
    }
}

#[tokio::test]
async fn header_missing_duplicated_or_invalid_is_404_unread() {
    let fx = Fixture::new();
    let layer = fx.by_header();
    let overlong = "a".repeat(65);
    let cases: [&[&str]; 6] = [
        &[],
        &["prj_a", "prj_a"],
        &["prj_a", "prj_b"],
        &["../x"],
        &[""],
        &[overlong.as_str()],
    ];
    for values in cases {
        let mut headers = fx.sign(SECRET_A);
        for value in values {
            headers.append("x-project", HeaderValue::from_str(value).unwrap());
        }
        let answer = send(
            &layer,
            &Recorder::default(),
            request("/webhooks/prj_a", headers, Untouchable),
        )
        .await;
        answer.unknown_project();
    }
}

// ---------------------------------------------------------------------------------------------
// The registry changes while the layer serves
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rotation_with_grace_on_one_project_accepts_both_secrets_until_grace_ends() {
    let fx = Fixture::new();
    let layer = fx.by_path();
    fx.keyring_a
        .rotate(secret("project A's new secret"), Duration::from_secs(600))
        .unwrap();

    // During the grace period: the old secret and the new one.
    for secret_text in [SECRET_A, "project A's new secret"] {
        let headers = fx.sign(secret_text);
        assert_eq!(
            status(&layer, "/webhooks/prj_a", headers).await,
            StatusCode::OK
        );
    }
    assert_eq!(
        status(&layer, "/webhooks/prj_b", fx.sign(SECRET_B)).await,
        StatusCode::OK
    );

    // After it: only the new one; project B is untouched.
    fx.clock.advance(Duration::from_secs(601));
    assert_eq!(
        status(&layer, "/webhooks/prj_a", fx.sign(SECRET_A)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&layer, "/webhooks/prj_a", fx.sign("project A's new secret")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&layer, "/webhooks/prj_b", fx.sign(SECRET_B)).await,
        StatusCode::OK
    );
    assert_eq!(fx.projects.len(), 2);
}

#[tokio::test]
async fn removed_project_is_404_from_its_next_request() {
    let fx = Fixture::new();
    let layer = fx.by_path();
    assert_eq!(
        status(&layer, "/webhooks/prj_a", fx.sign(SECRET_A)).await,
        StatusCode::OK
    );

    assert!(fx.projects.remove(&id("prj_a")).is_some());

    let answer = send(
        &layer,
        &Recorder::default(),
        request("/webhooks/prj_a", fx.sign(SECRET_A), Untouchable),
    )
    .await;
    answer.unknown_project();
    assert_eq!(
        status(&layer, "/webhooks/prj_b", fx.sign(SECRET_B)).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn project_inserted_after_the_layer_was_built_is_served() {
    let fx = Fixture::new();
    let layer = fx.by_path();
    let service_built_before = layer.layer(Recorder::default().service());
    assert_eq!(
        status(&layer, "/webhooks/prj_c", fx.sign("project C's secret")).await,
        StatusCode::NOT_FOUND
    );

    let keyring = Keyring::builder()
        .clock(fx.clock.clone())
        .build(secret("project C's secret"));
    fx.projects
        .insert(id("prj_c"), Verifier::new(GitHub, keyring));

    let headers = Signer::new(GitHub, secret("project C's secret"))
        .sign(BODY)
        .unwrap();
    let response = service_built_before
        .oneshot(request(
            "/webhooks/prj_c",
            headers,
            Full::new(Bytes::from_static(BODY)),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn single_verifier_layer_puts_no_project_id_in_the_extensions() {
    let fx = Fixture::new();
    let layer = WebhookLayer::new(Verifier::new(StandardWebhooks, fx.keyring_a.clone()));
    let recorder = Recorder::default();
    let answer = send(
        &layer,
        &recorder,
        request(
            "/webhooks/prj_b",
            fx.sign(SECRET_A),
            Full::new(Bytes::from_static(BODY)),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let seen = recorder.seen();
    assert!(seen[0].project.is_none());
    assert!(seen[0].verified.is_some());
}

#[tokio::test]
async fn layer_debug_shows_the_project_count_not_the_keys() {
    let fx = Fixture::new();
    let debug = format!("{:?}", fx.by_path());
    assert!(debug.contains("Projects { len: 2, .. }"), "{debug}");
    assert!(debug.contains("PathAfter(\"/webhooks/\")"), "{debug}");
    assert!(!debug.contains(SECRET_A), "{debug}");
}

/// Readers keep working while another thread inserts and removes projects.
#[test]
fn registry_reads_see_every_project_that_is_not_being_changed() {
    let fx = Fixture::new();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..200 {
                let churn = id(&format!("churn_{i}"));
                fx.projects.insert(
                    churn.clone(),
                    Verifier::new(GitHub, Keyring::new(secret("churn"))),
                );
                fx.projects.remove(&churn);
            }
            stop.store(true, Ordering::SeqCst);
        });
        while !stop.load(Ordering::SeqCst) {
            assert!(fx.projects.get("prj_a").is_some());
            assert!(fx.projects.get("prj_b").is_some());
        }
    });
    assert_eq!(fx.projects.ids(), [id("prj_a"), id("prj_b")]);
}

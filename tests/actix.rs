//! actix-web: the `WebhookGuard` middleware and the `VerifiedBytes` / `VerifiedJson` extractors
//! accept and refuse what the Tower layer does, with the layer's own answers, through
//! `actix_web::test`.

mod framework_support;

use framework_support::*;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::dev::{Payload, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::{test, web, App, HttpResponse};
use bytes::Bytes;
use futures_core::Stream;
use http::HeaderMap;
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use tower::{service_fn, Layer, ServiceExt};
use webhook_guard::actix::{VerifiedBytes, VerifiedJson, WebhookGuard};
use webhook_guard::middleware::{ProjectSelector, WebhookLayer};
use webhook_guard::scheme::{StandardWebhooks, Twitch};
use webhook_guard::{Clock, Keyring, ManualClock, ProjectId, Projects, Signer, Verified, Verifier};

const EVENT: &str = r#"{"type":"payment.created","data":{"amount":42}}"#;

/// The extractor's route and the middleware's route, answering alike.
const PATHS: [&str; 2] = ["/extract", "/guard"];

/// How many times a handler ran.
#[derive(Clone, Default)]
struct Calls(Arc<AtomicUsize>);

impl Calls {
    fn take(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }
}

async fn extracted(
    calls: web::Data<Calls>,
    VerifiedBytes(body, verified): VerifiedBytes,
) -> String {
    calls.0.fetch_add(1, Ordering::SeqCst);
    describe(&verified, &body)
}

async fn guarded(
    calls: web::Data<Calls>,
    verified: web::ReqData<Verified>,
    body: Bytes,
) -> HttpResponse {
    calls.0.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Ok().body(describe(&verified, &body))
}

fn describe(verified: &Verified, body: &[u8]) -> String {
    format!(
        "key={} id={} body={}",
        verified.key_id(),
        verified.webhook_id().unwrap_or("-"),
        String::from_utf8_lossy(body)
    )
}

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    data: Amount,
}

#[derive(Debug, Deserialize)]
struct Amount {
    amount: u64,
}

async fn typed(VerifiedJson(event, verified): VerifiedJson<Event>) -> String {
    format!(
        "{} {} key={}",
        event.kind,
        event.data.amount,
        verified.key_id()
    )
}

/// `/extract` takes `VerifiedBytes`, `/json` takes `VerifiedJson<Event>`, both with the layer in
/// the app data; `/guard` is wrapped in `WebhookGuard` and takes plain `Bytes`.
macro_rules! app {
    ($layer:expr, $calls:expr) => {{
        let layer: WebhookLayer = $layer;
        test::init_service(
            App::new()
                .app_data(web::Data::new($calls.clone()))
                .app_data(web::Data::new(layer.clone()))
                .route("/extract", web::post().to(extracted))
                .route("/json", web::post().to(typed))
                .service(
                    web::resource("/guard")
                        .wrap(WebhookGuard::new(layer))
                        .route(web::post().to(guarded)),
                ),
        )
        .await
    }};
}

fn request(path: &str, headers: &HeaderMap, body: impl Into<Bytes>) -> test::TestRequest {
    let mut request = test::TestRequest::post().uri(path).set_payload(body.into());
    for (name, value) in headers {
        request = request.append_header((name.as_str(), value.as_bytes()));
    }
    request
}

struct Answer {
    status: u16,
    content_type: Option<String>,
    body: Bytes,
}

impl Answer {
    async fn of<B: actix_web::body::MessageBody>(response: ServiceResponse<B>) -> Self {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = test::read_body(response).await;
        Self {
            status,
            content_type,
            body,
        }
    }

    fn problem(&self) -> serde_json::Value {
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/problem+json")
        );
        serde_json::from_slice(&self.body).expect("a problem document")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends a `TestRequest` to an initialized app and reads the whole answer.
macro_rules! call {
    ($app:expr, $request:expr) => {
        Answer::of(test::call_service($app, $request.to_request()).await).await
    };
}

/// The Tower layer's own answer to the same request, around a service that answers "inner".
async fn by_layer(layer: &WebhookLayer, headers: &HeaderMap, body: &[u8]) -> Answer {
    let service = layer.layer(service_fn(|_: http::Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"inner"))))
    }));
    let mut request = http::Request::post("/webhooks")
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("a request");
    request.headers_mut().extend(headers.clone());
    let response = service.oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body.collect().await.expect("a body").to_bytes(),
    }
}

/// Sends the same request to the extractor, the middleware and the Tower layer: all must answer
/// `status` with the same problem document of type `kind`, and no handler may run.
async fn refused_like_the_layer(
    layer: WebhookLayer,
    headers: &HeaderMap,
    body: &'static [u8],
    status: u16,
    kind: &str,
) {
    let calls = Calls::default();
    let app = app!(layer.clone(), calls);
    let expected = by_layer(&layer, headers, body).await;
    assert_eq!(expected.status, status, "{}", expected.text());
    assert_eq!(
        expected.problem()["type"],
        format!("tag:webhook-guard,2026:{kind}")
    );
    for path in PATHS {
        let answer = call!(&app, request(path, headers, body));
        assert_eq!(answer.status, status, "{path}: {}", answer.text());
        assert_eq!(answer.problem(), expected.problem(), "{path}");
        assert_eq!(calls.take(), 0, "{path}: the handler ran");
    }
}

#[actix_web::test]
async fn accepts_signed_delivery_and_passes_the_exact_bytes() {
    let clock = ManualClock::at_unix(NOW);
    let calls = Calls::default();
    let app = app!(layer_for(keyring(&clock)), calls);
    // Not canonical JSON, not even UTF-8: the bytes are passed on as signed.
    let body: &[u8] = b"{ \"a\" :\t1 }\xff\n";
    let headers = sign(&clock, body, "msg_1");

    for path in PATHS {
        let answer = call!(&app, request(path, &headers, body));
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        let mut expected = format!("key={KEY_ID} id=msg_1 body=").into_bytes();
        expected.extend_from_slice(String::from_utf8_lossy(body).as_bytes());
        assert_eq!(answer.body, expected, "{path}");
        assert_eq!(calls.take(), 1, "{path}");
    }
}

#[actix_web::test]
async fn refuses_tampered_body_with_the_layers_401() {
    let clock = ManualClock::at_unix(NOW);
    let headers = sign(&clock, EVENT.as_bytes(), "msg_1");
    let tampered = br#"{"type":"payment.created","data":{"amount":43}}"#;

    refused_like_the_layer(
        layer_for(keyring(&clock)),
        &headers,
        tampered,
        401,
        "invalid-signature",
    )
    .await;
}

#[actix_web::test]
async fn refuses_oversized_body_with_the_layers_413() {
    let clock = ManualClock::at_unix(NOW);
    let big: &'static [u8] = "x".repeat(LIMIT + 1).leak().as_bytes();
    let headers = sign(&clock, big, "msg_1");

    refused_like_the_layer(
        layer_for(keyring(&clock)),
        &headers,
        big,
        413,
        "body-too-large",
    )
    .await;
}

/// A payload of `chunk`-byte chunks that never ends, counting the chunks read from it.
struct Endless {
    chunk: Bytes,
    read: Arc<AtomicUsize>,
}

impl Stream for Endless {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.read.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(Some(Ok(self.chunk.clone())))
    }
}

#[actix_web::test]
async fn stops_reading_an_unannounced_body_at_the_limit() {
    // No `Content-Length`, a body that never ends: the limit is enforced while reading, so the
    // answer is 413 after at most the limit and one chunk, and the handler never runs.
    let clock = ManualClock::at_unix(NOW);
    let calls = Calls::default();
    let app = app!(layer_for(keyring(&clock)), calls);
    let headers = sign(&clock, EVENT.as_bytes(), "msg_1");

    for path in PATHS {
        let read = Arc::new(AtomicUsize::new(0));
        let endless = Endless {
            chunk: Bytes::from(vec![b'x'; 64]),
            read: Arc::clone(&read),
        };
        let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(endless);
        let mut unannounced = test::TestRequest::post().uri(path);
        for (name, value) in &headers {
            unannounced = unannounced.append_header((name.as_str(), value.as_bytes()));
        }
        let (request, _) = unannounced
            .to_request()
            .replace_payload(Payload::from(stream));

        let answer = Answer::of(test::call_service(&app, request).await).await;

        assert_eq!(answer.status, 413, "{path}: {}", answer.text());
        assert_eq!(
            answer.problem()["type"],
            "tag:webhook-guard,2026:body-too-large"
        );
        let read = read.load(Ordering::SeqCst);
        assert!(read <= LIMIT / 64 + 1, "{path}: read {read} chunks");
        assert_eq!(calls.take(), 0, "{path}: the handler ran");
    }
}

#[actix_web::test]
async fn refuses_missing_header_with_the_layers_400() {
    let clock = ManualClock::at_unix(NOW);
    let mut headers = sign(&clock, EVENT.as_bytes(), "msg_1");
    headers.remove("webhook-signature");

    refused_like_the_layer(
        layer_for(keyring(&clock)),
        &headers,
        EVENT.as_bytes(),
        400,
        "missing-header",
    )
    .await;
}

#[actix_web::test]
async fn accepts_old_and_new_secret_during_grace_then_only_new() {
    let clock = ManualClock::at_unix(NOW);
    let keyring = keyring(&clock);
    let calls = Calls::default();
    let app = app!(layer_for(keyring.clone()), calls);
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
        for path in PATHS {
            let answer = call!(&app, request(path, &headers, EVENT));
            assert_eq!(answer.status, 200, "{path}: {}", answer.text());
            assert_eq!(answer.text(), format!("key={id} id=msg_grace body={EVENT}"));
        }
    }

    // After it, the old secret is refused, as the layer refuses it; the new one still verifies.
    clock.advance(Duration::from_secs(2));
    let old = sign_with(&clock, SECRET, EVENT.as_bytes(), "msg_late");
    let new = sign_with(&clock, NEW_SECRET, EVENT.as_bytes(), "msg_late");
    let expected = by_layer(&layer_for(keyring.clone()), &old, EVENT.as_bytes()).await;
    for path in PATHS {
        let answer = call!(&app, request(path, &old, EVENT));
        assert_eq!(answer.status, 401, "{path}");
        assert_eq!(answer.problem(), expected.problem(), "{path}");
        let answer = call!(&app, request(path, &new, EVENT));
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    }
}

#[actix_web::test]
async fn answers_a_signed_twitch_handshake_like_the_layer() {
    // Twitch confirms a subscription with a signed message whose challenge must be echoed; the
    // layer answers it, and so do the extractor and the middleware, without calling the handler.
    let clock = ManualClock::at_unix(NOW);
    let keyring = Keyring::builder()
        .clock(clock.clone())
        .build(secret(SECRET));
    let layer = WebhookLayer::new(Verifier::new(Twitch, keyring));
    let body: &[u8] =
        br#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"f1c2a387"}}"#;
    let handshake = |key: &str| {
        let mut headers = Signer::new(Twitch, secret(key))
            .sign_at(body, "e76c6bd4", clock.now())
            .expect("signed");
        headers.insert(
            "twitch-eventsub-message-type",
            "webhook_callback_verification".parse().unwrap(),
        );
        headers
    };
    let calls = Calls::default();
    let app = app!(layer.clone(), calls);
    let expected = by_layer(&layer, &handshake(SECRET), body).await;
    assert_eq!(expected.status, 200);

    for path in PATHS {
        let answer = call!(&app, request(path, &handshake(SECRET), body));
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.text(), "pogchamp-kappa-360noscope-vohiyo", "{path}");
        assert_eq!(answer.content_type, expected.content_type, "{path}");
        assert_eq!(answer.body, expected.body, "{path}");
        assert_eq!(calls.take(), 0, "{path}: the handler ran");

        // The same challenge with a forged signature is refused, not echoed.
        let forged = handshake("not the subscription's secret");
        let answer = call!(&app, request(path, &forged, body));
        assert_eq!(answer.status, 401, "{path}");
    }
}

#[actix_web::test]
async fn json_extractor_deserializes_or_names_the_bad_field() {
    let clock = ManualClock::at_unix(NOW);
    let calls = Calls::default();
    let app = app!(layer_for(keyring(&clock)), calls);

    let headers = sign(&clock, EVENT.as_bytes(), "msg_1");
    let answer = call!(&app, request("/json", &headers, EVENT));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.text(), format!("payment.created 42 key={KEY_ID}"));

    let body = r#"{"type":"payment.created","data":{"amount":"forty-two"}}"#;
    let headers = sign(&clock, body.as_bytes(), "msg_2");
    let answer = call!(&app, request("/json", &headers, body));
    assert_eq!(answer.status, 400, "{}", answer.text());
    let problem = answer.problem();
    assert_eq!(problem["type"], "tag:webhook-guard,2026:invalid-json");
    assert_eq!(problem["path"], "data.amount");

    // Verification comes first: a forged body is never parsed.
    let forged = sign_with(&clock, "someone else's secret", b"not json", "msg_3");
    let answer = call!(&app, request("/json", &forged, "not json"));
    assert_eq!(answer.status, 401);
}

#[actix_web::test]
async fn extractor_behind_the_middleware_reads_what_it_verified() {
    let clock = ManualClock::at_unix(NOW);
    let calls = Calls::default();
    let layer = layer_for(keyring(&clock));
    // The middleware holds the layer; the app data has none, so the extractor cannot verify
    // again: it reads the verified bytes the middleware passed on.
    let app = test::init_service(
        App::new().app_data(web::Data::new(calls.clone())).service(
            web::resource("/both")
                .wrap(WebhookGuard::new(layer))
                .route(web::post().to(extracted)),
        ),
    )
    .await;
    let headers = sign(&clock, EVENT.as_bytes(), "msg_1");

    let answer = call!(&app, request("/both", &headers, EVENT));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.text(), format!("key={KEY_ID} id=msg_1 body={EVENT}"));

    let forged = sign_with(&clock, "someone else's secret", EVENT.as_bytes(), "msg_1");
    let answer = call!(&app, request("/both", &forged, EVENT));
    assert_eq!(answer.status, 401);
    assert_eq!(calls.take(), 1);
}

#[actix_web::test]
async fn extractor_without_a_layer_answers_500() {
    let clock = ManualClock::at_unix(NOW);
    let calls = Calls::default();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(calls.clone()))
            .route("/extract", web::post().to(extracted)),
    )
    .await;
    let headers = sign(&clock, EVENT.as_bytes(), "msg_1");

    let answer = call!(&app, request("/extract", &headers, EVENT));
    assert_eq!(answer.status, 500);
    assert_eq!(calls.take(), 0);
}

#[actix_web::test]
async fn extractor_takes_a_plain_layer_from_the_app_data() {
    let clock = ManualClock::at_unix(NOW);
    let calls = Calls::default();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(calls.clone()))
            .app_data(layer_for(keyring(&clock)))
            .route("/extract", web::post().to(extracted)),
    )
    .await;
    let headers = sign(&clock, EVENT.as_bytes(), "msg_1");

    let answer = call!(&app, request("/extract", &headers, EVENT));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(calls.take(), 1);
}

#[actix_web::test]
async fn middleware_passes_the_project_it_verified_for() {
    let clock = ManualClock::at_unix(NOW);
    let projects = Projects::new();
    projects.insert(
        ProjectId::parse("prj_1").expect("a project id"),
        Verifier::new(StandardWebhooks, keyring(&clock)),
    );
    let layer = WebhookLayer::for_projects(projects, ProjectSelector::path_after("/projects/"));
    async fn handler(project: web::ReqData<ProjectId>, verified: web::ReqData<Verified>) -> String {
        format!("{} {}", project.as_str(), verified.key_id())
    }
    let app = test::init_service(
        App::new().service(
            web::resource("/projects/{id}")
                .wrap(WebhookGuard::new(layer))
                .route(web::post().to(handler)),
        ),
    )
    .await;
    let headers = sign(&clock, EVENT.as_bytes(), "msg_1");

    let answer = call!(&app, request("/projects/prj_1", &headers, EVENT));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.text(), format!("prj_1 {KEY_ID}"));

    let answer = call!(&app, request("/projects/prj_2", &headers, EVENT));
    assert_eq!(answer.status, 404);
    assert_eq!(
        answer.problem()["type"],
        "tag:webhook-guard,2026:unknown-project"
    );
}

#[actix_web::test]
async fn middleware_passes_a_body_above_actix_default_limit_when_raised() {
    // 300 KiB: within the layer's default 1 MiB, above actix's default 256 KiB `PayloadConfig`,
    // which the module docs say to raise to the layer's limit.
    let clock = ManualClock::at_unix(NOW);
    let calls = Calls::default();
    let layer = WebhookLayer::new(Verifier::new(StandardWebhooks, keyring(&clock)));
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(calls.clone()))
            .app_data(web::PayloadConfig::new(
                webhook_guard::middleware::DEFAULT_MAX_BODY_SIZE,
            ))
            .service(
                web::resource("/guard")
                    .wrap(WebhookGuard::new(layer))
                    .route(web::post().to(guarded)),
            ),
    )
    .await;
    let body = vec![b'x'; 300 * 1024];
    let headers = sign(&clock, &body, "msg_big");

    let answer = call!(&app, request("/guard", &headers, body.clone()));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.body.len(),
        body.len() + format!("key={KEY_ID} id=msg_big body=").len()
    );
    assert_eq!(calls.take(), 1);
}

//! What the replay tests share: a handler told by an unsigned test header how to answer, a
//! service with replay protection around it, and a log capture.

#![allow(dead_code)]

use std::convert::Infallible;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::sync::Notify;
use tower::util::BoxCloneService;
use tower::{service_fn, Layer, ServiceExt};
use webhook_guard::middleware::{ResponseBody, WebhookLayer};

/// Tells the handler how to answer (not signed; the tests' own).
pub const ANSWER: &str = "x-test-answer";

pub type Service =
    BoxCloneService<Request<Full<Bytes>>, Response<ResponseBody<Full<Bytes>>>, Infallible>;

/// The inner service: counts the calls; answers 200, or as [`ANSWER`] says: `500`, `hang`
/// (never), `panic`, `wait` (until [`Handler::open`]).
#[derive(Clone, Default)]
pub struct Handler {
    calls: Arc<AtomicUsize>,
    gate: Arc<Notify>,
}

impl Handler {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Lets every `wait` answer through.
    pub fn open(&self) {
        self.gate.notify_waiters();
    }

    pub fn wrap(&self, layer: &WebhookLayer) -> Service {
        let calls = Arc::clone(&self.calls);
        let gate = Arc::clone(&self.gate);
        let inner = service_fn(move |request: Request<Full<Bytes>>| {
            let calls = Arc::clone(&calls);
            let gate = Arc::clone(&gate);
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let answer = request
                    .headers()
                    .get(ANSWER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let status = match answer.as_str() {
                    "500" => StatusCode::INTERNAL_SERVER_ERROR,
                    "hang" => std::future::pending().await,
                    "panic" => panic!("the handler panicked"),
                    "wait" => {
                        gate.notified().await;
                        StatusCode::OK
                    }
                    _ => StatusCode::OK,
                };
                let mut response = Response::new(Full::new(Bytes::from_static(b"handled")));
                *response.status_mut() = status;
                Ok::<_, Infallible>(response)
            }
        });
        BoxCloneService::new(layer.layer(inner))
    }
}

/// A request to `path` with `headers` and `body`, and `answer` for the handler.
pub fn request(
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    answer: Option<&str>,
) -> Request<Full<Bytes>> {
    let mut request = Request::post(path)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    *request.headers_mut() = headers.clone();
    if let Some(answer) = answer {
        request
            .headers_mut()
            .insert(ANSWER, answer.parse().unwrap());
    }
    request
}

/// Status, headers and body text of a response.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn is_duplicate(&self) -> bool {
        self.headers
            .get("webhook-guard-duplicate")
            .is_some_and(|v| v == "true")
    }

    /// The last part of the problem `type`.
    pub fn problem(&self) -> String {
        let doc: serde_json::Value = serde_json::from_str(&self.body).unwrap_or_default();
        doc["type"]
            .as_str()
            .and_then(|t| t.rsplit(':').next())
            .unwrap_or("")
            .to_owned()
    }
}

pub fn send(
    service: &Service,
    request: Request<Full<Bytes>>,
) -> impl std::future::Future<Output = Answer> + Send {
    let service = service.clone();
    async move { answer(service.oneshot(request).await.unwrap()).await }
}

async fn answer(response: Response<ResponseBody<Full<Bytes>>>) -> Answer {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Log lines written while a [`Capture`] is installed.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// Installs it for this thread (use a current-thread runtime).
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let capture = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || capture.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// How many lines contain `text`.
    pub fn count(&self, text: &str) -> usize {
        let bytes = self.0.lock().unwrap();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| l.contains(text))
            .count()
    }
}

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub mod scenarios {
    //! Scenarios every shared backend must pass, each given fresh `ReplayProtection`s on it.

    use std::time::Duration;

    use http::{HeaderMap, StatusCode};
    use webhook_guard::middleware::WebhookLayer;
    use webhook_guard::replay::{Outage, ReplayProtection};
    use webhook_guard::scheme::StandardWebhooks;
    use webhook_guard::{Clock, Keyring, ManualClock, Secret, Signer, Verifier};

    use super::{request, send, Capture, Handler};

    pub const BODY: &[u8] = br#"{"type":"invoice.paid"}"#;

    /// A Standard Webhooks receiver and sender on one manual clock.
    pub struct Fixture {
        pub clock: ManualClock,
        pub verifier: Verifier,
        pub signer: Signer,
    }

    impl Fixture {
        pub fn new() -> Self {
            let secret = || Secret::from_bytes("It's a Secret to Everybody").unwrap();
            let clock = ManualClock::at_unix(1_700_000_000);
            let keyring = Keyring::builder().clock(clock.clone()).build(secret());
            Self {
                verifier: Verifier::new(StandardWebhooks, keyring),
                signer: Signer::new(StandardWebhooks, secret()),
                clock,
            }
        }

        pub fn sign(&self, id: &str) -> HeaderMap {
            self.signer.sign_at(BODY, id, self.clock.now()).unwrap()
        }

        pub fn layer(&self, protection: ReplayProtection) -> WebhookLayer {
            WebhookLayer::new(self.verifier.clone()).replay_protection(protection)
        }
    }

    /// Two instances (layers on their own connections) sharing the backend: each delivery is
    /// handled once, whichever instance gets it; a copy at the same instant gets 409.
    pub async fn two_instances_handle_each_delivery_once(a: ReplayProtection, b: ReplayProtection) {
        let fx = Fixture::new();
        let handler = Handler::default();
        let (a, b) = (handler.wrap(&fx.layer(a)), handler.wrap(&fx.layer(b)));
        let headers = fx.sign("msg_1");
        let first = send(&a, request("/", &headers, BODY, None)).await;
        assert_eq!(
            (first.status, first.is_duplicate()),
            (StatusCode::OK, false),
            "{}",
            first.body
        );
        let second = send(&b, request("/", &headers, BODY, None)).await;
        assert_eq!(
            (second.status, second.is_duplicate()),
            (StatusCode::OK, true),
            "{}",
            second.body
        );
        assert_eq!(handler.calls(), 1);

        // Two copies at once, one on each instance.
        let headers = fx.sign("msg_2");
        let held = tokio::spawn(send(&a, request("/", &headers, BODY, Some("wait"))));
        while handler.calls() < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let other = send(&b, request("/", &headers, BODY, None)).await;
        assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.body);
        assert_eq!(other.problem(), "duplicate-in-progress");
        assert!(other.headers.contains_key("retry-after"));
        handler.open();
        assert_eq!(held.await.unwrap().status, StatusCode::OK);
        assert!(send(&b, request("/", &headers, BODY, None))
            .await
            .is_duplicate());
        assert_eq!(handler.calls(), 2);
    }

    /// A 500 gives the delivery back: the retry, signed again later, is handled on the other
    /// instance.
    pub async fn a_retry_after_a_500_is_handled(a: ReplayProtection, b: ReplayProtection) {
        let fx = Fixture::new();
        let handler = Handler::default();
        let (a, b) = (handler.wrap(&fx.layer(a)), handler.wrap(&fx.layer(b)));
        let failed = send(&a, request("/", &fx.sign("msg_1"), BODY, Some("500"))).await;
        assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
        fx.clock.advance(Duration::from_secs(30));
        let retry = send(&b, request("/", &fx.sign("msg_1"), BODY, None)).await;
        assert_eq!(
            (retry.status, retry.is_duplicate()),
            (StatusCode::OK, false)
        );
        assert!(send(&a, request("/", &fx.sign("msg_1"), BODY, None))
            .await
            .is_duplicate());
        assert_eq!(handler.calls(), 2);
    }

    /// A request dropped while its handler runs gives the delivery back (released in the
    /// background); one whose holder never answers and is never dropped ends with its lease
    /// (`short` has a lease of 300 ms).
    pub async fn dropped_and_stuck_holders_give_the_delivery_back(
        protection: ReplayProtection,
        short: ReplayProtection,
    ) {
        let fx = Fixture::new();
        let handler = Handler::default();
        let service = handler.wrap(&fx.layer(protection));
        let headers = fx.sign("msg_1");
        let dropped = tokio::time::timeout(
            Duration::from_millis(100),
            send(&service, request("/", &headers, BODY, Some("hang"))),
        )
        .await;
        assert!(dropped.is_err());
        let mut answer = send(&service, request("/", &headers, BODY, None)).await;
        for _ in 0..100 {
            if answer.status != StatusCode::CONFLICT {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            answer = send(&service, request("/", &headers, BODY, None)).await;
        }
        assert_eq!(
            (answer.status, answer.is_duplicate()),
            (StatusCode::OK, false)
        );

        let service = handler.wrap(&fx.layer(short));
        let headers = fx.sign("msg_2");
        let calls = handler.calls();
        let _stuck = tokio::spawn(send(&service, request("/", &headers, BODY, Some("hang"))));
        while handler.calls() == calls {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let during = send(&service, request("/", &headers, BODY, None)).await;
        assert_eq!(during.status, StatusCode::CONFLICT);
        tokio::time::sleep(Duration::from_millis(450)).await;
        let after = send(&service, request("/", &headers, BODY, None)).await;
        assert_eq!(
            (after.status, after.is_duplicate()),
            (StatusCode::OK, false)
        );
    }

    /// With the backend down: 503 `replay-guard-unavailable` failing closed, handled failing
    /// open, each logged once. Run on a current-thread runtime, `capture` installed.
    pub async fn an_outage_fails_closed_or_open_logged_once(
        down: ReplayProtection,
        capture: &Capture,
    ) {
        let fx = Fixture::new();
        let handler = Handler::default();
        let closed = handler.wrap(&fx.layer(down.clone().on_outage(Outage::FailClosed)));
        for n in 0..3 {
            let answer = send(
                &closed,
                request("/", &fx.sign(&format!("msg_{n}")), BODY, None),
            )
            .await;
            assert_eq!(
                answer.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{}",
                answer.body
            );
            assert_eq!(answer.problem(), "replay-guard-unavailable");
            assert!(answer.headers.contains_key("retry-after"));
        }
        assert_eq!(handler.calls(), 0);
        assert_eq!(capture.count("replay guard unavailable; failing closed"), 1);

        let open = handler.wrap(&fx.layer(down.on_outage(Outage::FailOpen)));
        for _ in 0..3 {
            let answer = send(&open, request("/", &fx.sign("msg_1"), BODY, None)).await;
            assert_eq!(
                (answer.status, answer.is_duplicate()),
                (StatusCode::OK, false)
            );
        }
        assert_eq!(handler.calls(), 3);
        assert_eq!(capture.count("replay guard unavailable; failing open"), 1);
    }
}

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

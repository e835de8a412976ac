//! Rejections in the logs (review finding, issue 15 D): each at debug, and a warn summary with
//! counts by kind at most once per interval. Alone in its test binary: tracing caches a
//! callsite's interest process-wide, so a test running beside it without a subscriber could
//! switch the captured events off.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::Full;
use tower::{service_fn, Layer, ServiceExt};
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::GitHub;
use webhook_guard::{Keyring, ManualClock, Secret, Verifier};

const NOW: i64 = 1_700_000_000;
const SECRET: &str = "rejection log secret";

fn secret(text: &str) -> Secret {
    Secret::from_bytes(text).expect("a non-empty secret")
}

async fn answer(layer: &WebhookLayer, headers: HeaderMap) {
    let inner = service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    let mut request = Request::post("/webhooks")
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("a valid request");
    request.headers_mut().extend(headers);
    let response = layer
        .clone()
        .layer(inner)
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    assert!(response.status().is_client_error());
}

fn forged_github() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&format!("sha256={}", "ab".repeat(32))).expect("ASCII"),
    );
    headers
}

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn take(&self) -> String {
        let mut bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&std::mem::take(&mut *bytes)).into_owned()
    }
}

/// Review finding: every rejection logged one unthrottled WARN line, so forged traffic flooded
/// the logs. Each is now at debug; a warn summary, counts by kind, at most once per interval.
#[tokio::test]
async fn rejections_are_logged_at_debug_with_one_warn_summary_per_interval() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let clock = ManualClock::at_unix(NOW);
    let keyring = Keyring::builder()
        .clock(clock.clone())
        .build(secret(SECRET));
    let layer = WebhookLayer::new(Verifier::new(GitHub, keyring));
    for _ in 0..50 {
        answer(&layer, forged_github()).await;
    }
    answer(&layer, HeaderMap::new()).await;
    let logs = captured.take();
    let warns: Vec<&str> = logs.lines().filter(|l| l.contains(" WARN ")).collect();
    let debugs = logs
        .lines()
        .filter(|l| l.contains(" DEBUG ") && l.contains("webhook rejected"))
        .count();
    assert_eq!(debugs, 51, "{logs}");
    assert_eq!(warns.len(), 1, "{logs}");
    assert!(warns[0].contains("total=1"), "{}", warns[0]);
    assert!(warns[0].contains("invalid-signature=1"), "{}", warns[0]);

    // Within the interval: silent at warn. After it: the counts since the last summary.
    clock.advance(Duration::from_secs(59));
    answer(&layer, forged_github()).await;
    assert!(!captured.take().contains(" WARN "));
    clock.advance(Duration::from_secs(1));
    answer(&layer, forged_github()).await;
    let logs = captured.take();
    let warns: Vec<&str> = logs.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warns.len(), 1, "{logs}");
    assert!(warns[0].contains("total=52"), "{}", warns[0]);
    assert!(
        warns[0].contains("invalid-signature=51 missing-header=1")
            || warns[0].contains("missing-header=1 invalid-signature=51"),
        "{}",
        warns[0]
    );
    assert!(!logs.contains(SECRET));

    // The interval is a setting.
    let every_second = WebhookLayer::new(Verifier::new(
        GitHub,
        Keyring::builder()
            .clock(clock.clone())
            .build(secret(SECRET)),
    ))
    .rejection_summary_every(Duration::from_secs(1));
    for _ in 0..3 {
        answer(&every_second, forged_github()).await;
        clock.advance(Duration::from_secs(1));
    }
    let warns = captured
        .take()
        .lines()
        .filter(|l| l.contains(" WARN "))
        .count();
    assert_eq!(warns, 3);
}

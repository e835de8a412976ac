//! Prometheus metrics of `webhook-guard serve` (feature `metrics`): what was verified and
//! refused, and what forwarding did, rendered in the text exposition format at `GET /metrics`.
//!
//! | metric | labels | counts |
//! |---|---|---|
//! | `webhook_guard_verifications_total` | `project`, `result` | deliveries by result: `verified` or a rejection kind ([`Rejection::KINDS`](crate::middleware::Rejection::KINDS)); `project` is `-` for a delivery naming no registered project, so forged paths add no series |
//! | `webhook_guard_rejections_total` | `kind` | rejections by kind, over all projects |
//! | `webhook_guard_forward_total` | `status` | forwards by the status the sender got: the upstream's, or `502`/`504` from the gateway |
//! | `webhook_guard_forward_duration_seconds` | | histogram of forwarding time, connecting and the upstream's whole answer included |

use std::fmt;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

type Labels = Vec<(&'static str, String)>;

/// The metrics of one server. Cloning is cheap; clones count into the same series.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use webhook_guard::metrics::Metrics;
///
/// let metrics = Metrics::new();
/// metrics.verification("prj_1", "verified");
/// metrics.forward(200, Duration::from_millis(3));
/// let text = metrics.render();
/// assert!(text.contains(r#"webhook_guard_verifications_total{project="prj_1",result="verified"} 1"#));
/// assert!(text.contains(r#"webhook_guard_forward_total{status="200"} 1"#));
/// ```
#[derive(Clone)]
pub struct Metrics {
    registry: std::sync::Arc<Registry>,
    verifications: Family<Labels, Counter>,
    rejections: Family<Labels, Counter>,
    forwards: Family<Labels, Counter>,
    forward_duration: Histogram,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every series at zero.
    pub fn new() -> Self {
        let verifications = Family::<Labels, Counter>::default();
        let rejections = Family::<Labels, Counter>::default();
        let forwards = Family::<Labels, Counter>::default();
        // 250 µs to ~16 s.
        let forward_duration = Histogram::new(exponential_buckets(0.000_25, 2.0, 17));
        let mut registry = Registry::default();
        registry.register(
            "webhook_guard_verifications",
            "Deliveries by project and result (verified, or the rejection kind)",
            verifications.clone(),
        );
        registry.register(
            "webhook_guard_rejections",
            "Rejected deliveries by kind",
            rejections.clone(),
        );
        registry.register(
            "webhook_guard_forward",
            "Verified deliveries forwarded upstream, by the status the sender got",
            forwards.clone(),
        );
        registry.register_with_unit(
            "webhook_guard_forward_duration",
            "Time to forward a verified delivery and read the upstream's answer",
            Unit::Seconds,
            forward_duration.clone(),
        );
        Self {
            registry: std::sync::Arc::new(registry),
            verifications,
            rejections,
            forwards,
            forward_duration,
        }
    }

    /// Counts a delivery to `project` with `result` (`verified` or a rejection kind).
    pub fn verification(&self, project: &str, result: &'static str) {
        self.verifications
            .get_or_create(&vec![
                ("project", project.to_owned()),
                ("result", result.to_owned()),
            ])
            .inc();
        if result != "verified" {
            self.rejections
                .get_or_create(&vec![("kind", result.to_owned())])
                .inc();
        }
    }

    /// Counts a forward that answered the sender `status` after `took`.
    pub fn forward(&self, status: u16, took: Duration) {
        self.forwards
            .get_or_create(&vec![("status", status.to_string())])
            .inc();
        self.forward_duration.observe(took.as_secs_f64());
    }

    /// The text exposition format (`text/plain; version=0.0.4`, OpenMetrics-compatible).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

//! [`AccessLog`]: one line per delivery (and the metrics, with feature `metrics`), read from
//! what the verifying layer and the gateway left in the response's extensions.

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;

use super::forward::Delivered;
use crate::middleware::Rejection;

/// The kind of a rejection ([`Rejection::kind`]), in the rejection response's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected(pub &'static str);

/// The layer's default rejection response, marked with its [`Rejected`] kind: give it to
/// [`WebhookLayer::on_rejection`](crate::middleware::WebhookLayer::on_rejection).
pub fn marked_rejection(rejection: Rejection) -> Response<Full<Bytes>> {
    let kind = rejection.kind();
    let mut response = rejection.into_response();
    response.extensions_mut().insert(Rejected(kind));
    response
}

/// Writes the access log line of each delivery at `info` (target `webhook_guard::access`):
/// project, outcome, key id, upstream status, status and latency; never a secret, a signature
/// or the body. With feature `metrics`, counts it too.
#[derive(Debug, Clone, Default)]
pub struct AccessLog {
    #[cfg(feature = "metrics")]
    metrics: Option<crate::metrics::Metrics>,
}

impl AccessLog {
    /// Logging only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also counting into `metrics`.
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Records one delivery to `project` (the id in its path) answered with `response` after
    /// `latency`.
    pub fn record<B>(&self, project: &str, response: &Response<B>, latency: Duration) {
        let extensions = response.extensions();
        let delivered = extensions.get::<Delivered>();
        let rejected = extensions.get::<Rejected>().map(|r| r.0);
        // An unknown project's id is the sender's text: neither logged nor a metric label.
        let project = match rejected {
            Some("unknown-project") | None if delivered.is_none() => "-",
            _ => project,
        };
        let outcome = match (delivered, rejected) {
            (Some(delivered), _) => delivered.outcome,
            (None, Some(kind)) => kind,
            (None, None) => "unanswered",
        };
        let status = response.status().as_u16();
        tracing::info!(
            target: "webhook_guard::access",
            project,
            outcome,
            key_id = delivered.map(|d| d.key_id.as_str()),
            upstream_status = delivered.and_then(|d| d.upstream_status).map(|s| s.as_u16()),
            status,
            latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            "delivery"
        );
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            match (delivered, rejected) {
                (Some(delivered), _) => {
                    metrics.verification(project, "verified");
                    if let Some(took) = delivered.forward_time {
                        metrics.forward(status, took);
                    }
                }
                (None, Some(kind)) => metrics.verification(project, kind),
                (None, None) => {}
            }
        }
    }
}

//! `serve` as a verifying gateway: its flags, the webhook route's handler (forward to the
//! project's upstream or answer), the access log and `/metrics`.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use http::{header, HeaderValue, StatusCode};
use webhook_guard::admin::Admin;
use webhook_guard::gateway::{AccessLog, Delivered, Gateway, UpstreamPolicy};
use webhook_guard::metrics::Metrics;
use webhook_guard::{ProjectId, Verified};

#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    /// A destination projects' upstream URLs may name: a host name, an address or a CIDR range
    /// (repeatable). Without one, no project can forward. Link-local and cloud-metadata
    /// addresses are never allowed.
    #[arg(long, value_name = "HOST|CIDR")]
    pub upstream_allow: Vec<String>,
    /// Milliseconds resolving an upstream's name and connecting to it may take.
    #[arg(long, value_name = "MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub upstream_connect_timeout_ms: u64,
    /// Milliseconds a whole forward may take (connecting and the upstream's whole answer);
    /// then the sender gets 504. Keep it below --request-timeout-secs.
    #[arg(long, value_name = "MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub upstream_timeout_ms: u64,
    /// A PEM file of certificates to trust for https upstreams, besides the system's roots (a
    /// private CA, or a self-signed upstream's own certificate).
    #[arg(long, value_name = "PATH")]
    pub upstream_ca_file: Option<std::path::PathBuf>,
}

impl GatewayArgs {
    /// The allow list.
    pub fn policy(&self) -> Result<UpstreamPolicy, String> {
        self.upstream_allow
            .iter()
            .try_fold(UpstreamPolicy::default(), |policy, entry| {
                policy
                    .allow(entry)
                    .map_err(|e| format!("--upstream-allow: {e}"))
            })
    }

    /// The forwarding client.
    pub fn gateway(&self) -> Result<Gateway, String> {
        let mut builder = Gateway::builder(self.policy()?)
            .connect_timeout(Duration::from_millis(self.upstream_connect_timeout_ms))
            .timeout(Duration::from_millis(self.upstream_timeout_ms));
        if let Some(path) = &self.upstream_ca_file {
            use rustls::pki_types::{pem::PemObject, CertificateDer};
            let shown = path.display();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("--upstream-ca-file {shown}: {e}"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("--upstream-ca-file {shown}: {e}"))?;
            if certs.is_empty() {
                return Err(format!("--upstream-ca-file {shown}: no certificate"));
            }
            for cert in certs {
                builder = builder.tls_root(cert);
            }
        }
        builder
            .build()
            .map_err(|e| format!("--upstream-ca-file: {e}"))
    }
}

/// What the webhook route's handler needs.
#[derive(Debug, Clone)]
pub struct Deliveries {
    pub admin: Admin,
    pub gateway: Gateway,
}

/// `POST /webhooks/{projectId}` once verified: forwarded to the project's upstream, or
/// answered as `received` answers when it has none.
pub async fn delivered<F, R>(
    State(deliveries): State<Deliveries>,
    request: Request,
    answer: F,
) -> Response
where
    F: FnOnce(Extension<ProjectId>, Extension<Verified>) -> R,
    R: std::future::Future,
    R::Output: IntoResponse,
{
    let (parts, body) = request.into_parts();
    let (Some(project), Some(verified)) = (
        parts.extensions.get::<ProjectId>().cloned(),
        parts.extensions.get::<Verified>().cloned(),
    ) else {
        // The route is only reached through the verifying layer.
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    match deliveries.admin.upstream(project.as_str()) {
        Some(upstream) => {
            // The layer passes the verified bytes on whole (a `Full` body).
            let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
                return StatusCode::BAD_REQUEST.into_response();
            };
            deliveries
                .gateway
                .forward(&upstream, &project, &verified, &parts.headers, body)
                .await
                .map(Body::new)
        }
        None => {
            let delivered = Delivered::answered(&verified);
            let mut response = answer(Extension(project), Extension(verified))
                .await
                .into_response();
            response.extensions_mut().insert(delivered);
            response
        }
    }
}

/// Around the webhook route: the access log line and the metrics of each delivery.
pub async fn observe(State(log): State<AccessLog>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let project = request
        .uri()
        .path()
        .strip_prefix("/webhooks/")
        .unwrap_or("")
        .to_owned();
    let response = next.run(request).await;
    log.record(&project, &response, started.elapsed());
    response
}

/// `GET /metrics`: the Prometheus (OpenMetrics) text.
pub async fn metrics(State(metrics): State<Metrics>) -> Response {
    let mut response = metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

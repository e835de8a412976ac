//! [`app`] and [`App`]: everything `webhook-guard serve` answers, as one axum router.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use http::StatusCode;
use serde::Serialize;

use super::{console, router, Admin};
use crate::gateway::{marked_rejection, AccessLog, Delivered, Gateway};
use crate::middleware::{ProjectSelector, WebhookLayer};
use crate::replay::ReplayProtection;
use crate::{ProjectId, Verified};

/// The admin API ([`router`]), `POST /webhooks/{projectId}` verified with the project's
/// keyring (answered `{"verified": true, "projectId", "keyId"}`), and the web console at
/// `/console`: [`App::new`] with nothing added.
///
/// # Examples
///
/// ```
/// use tower::ServiceExt;
/// use webhook_guard::admin::{app, Admin};
/// use webhook_guard::store::{crypt::Sealer, SqliteStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = std::env::temp_dir().join(format!("wg-app-doc-{}", std::process::id()));
/// let admin = Admin::builder().open(SqliteStore::open(dir.join("wg.db"), Sealer::plaintext())?)?;
/// let unsigned = http::Request::post("/webhooks/prj_0000000000000000")
///     .body(axum::body::Body::from("{}"))?;
/// assert_eq!(app(admin).oneshot(unsigned).await?.status(), 404);
/// # std::fs::remove_dir_all(dir)?;
/// # Ok(())
/// # }
/// ```
pub fn app(admin: Admin) -> Router {
    App::new(admin).router()
}

/// What `webhook-guard serve` serves, put together: the admin API, the verifying webhook route
/// (each delivery handled once with [`replay`](App::replay), forwarded to its project's
/// upstream with [`gateway`](App::gateway)), one access log line per delivery, `/metrics` with
/// [`metrics`](App::metrics), and the console.
///
/// # Examples
///
/// ```
/// use webhook_guard::admin::{Admin, App};
/// use webhook_guard::gateway::{Gateway, UpstreamPolicy};
/// use webhook_guard::replay::{MemoryGuard, ReplayProtection};
/// use webhook_guard::store::{crypt::Sealer, SqliteStore};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = std::env::temp_dir().join(format!("wg-app-builder-doc-{}", std::process::id()));
/// let admin = Admin::builder().open(SqliteStore::open(dir.join("wg.db"), Sealer::plaintext())?)?;
/// let gateway = Gateway::builder(UpstreamPolicy::default().allow("10.0.0.0/8")?).build()?;
/// let router: axum::Router = App::new(admin)
///     .gateway(gateway)
///     .replay(ReplayProtection::new(MemoryGuard::new(100_000)))
///     .router();
/// # drop(router);
/// # std::fs::remove_dir_all(dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct App {
    admin: Admin,
    gateway: Option<Gateway>,
    replay: Option<ReplayProtection>,
    #[cfg(feature = "metrics")]
    metrics: Option<crate::metrics::Metrics>,
}

impl App {
    /// The admin API, the webhook route answering verified deliveries itself, the console.
    pub fn new(admin: Admin) -> Self {
        Self {
            admin,
            gateway: None,
            replay: None,
            #[cfg(feature = "metrics")]
            metrics: None,
        }
    }

    /// Forwards verified deliveries of projects with an upstream through `gateway`; the others
    /// are answered as without it.
    pub fn gateway(mut self, gateway: Gateway) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// Handles each verified delivery once ([`WebhookLayer::replay_protection`]).
    pub fn replay(mut self, replay: ReplayProtection) -> Self {
        self.replay = Some(replay);
        self
    }

    /// Counts deliveries into `metrics` and serves them at `GET /metrics` (unauthenticated:
    /// keep the port private or put the route behind your proxy's rules).
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The router.
    pub fn router(self) -> Router {
        let layer = WebhookLayer::for_projects(
            self.admin.projects().clone(),
            ProjectSelector::path_after("/webhooks/"),
        )
        .on_rejection(marked_rejection);
        let layer = match self.replay {
            Some(replay) => layer.replay_protection(replay),
            None => layer,
        };
        let route = "/webhooks/{project_id}";
        let webhooks = match self.gateway {
            Some(gateway) => Router::new()
                .route(route, post(delivered))
                .route_layer(layer)
                .with_state(Deliveries {
                    admin: self.admin.clone(),
                    gateway,
                }),
            None => Router::new()
                .route(route, post(received))
                .route_layer(layer),
        };
        let access = AccessLog::new();
        #[cfg(feature = "metrics")]
        let access = match &self.metrics {
            Some(metrics) => access.metrics(metrics.clone()),
            None => access,
        };
        let webhooks = webhooks.layer(axum::middleware::from_fn_with_state(access, observe));
        let app = router(self.admin).merge(webhooks).merge(console::router());
        #[cfg(feature = "metrics")]
        let app = match self.metrics {
            Some(metrics) => app.merge(
                Router::new()
                    .route("/metrics", axum::routing::get(render_metrics))
                    .with_state(metrics),
            ),
            None => app,
        };
        app
    }
}

/// What the forwarding route's handler needs.
#[derive(Debug, Clone)]
struct Deliveries {
    admin: Admin,
    gateway: Gateway,
}

/// What a verified delivery is answered when no upstream takes it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Received<'a> {
    verified: bool,
    project_id: &'a str,
    key_id: &'a str,
}

async fn received(
    Extension(project): Extension<ProjectId>,
    Extension(verified): Extension<Verified>,
) -> Response {
    tracing::info!(project = %project, key = %verified.key_id(), "webhook verified");
    let delivered = Delivered::answered(&verified);
    let mut response = Json(Received {
        verified: true,
        project_id: project.as_str(),
        key_id: verified.key_id().as_str(),
    })
    .into_response();
    response.extensions_mut().insert(delivered);
    response
}

/// `POST /webhooks/{projectId}` once verified: forwarded to the project's upstream, or
/// answered by [`received`] when it has none.
async fn delivered(State(deliveries): State<Deliveries>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (Some(project), Some(verified)) = (
        parts.extensions.get::<ProjectId>().cloned(),
        parts.extensions.get::<Verified>().cloned(),
    ) else {
        // The route is only reached through the verifying layer.
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    match deliveries.admin.upstream(&project) {
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
        None => received(Extension(project), Extension(verified)).await,
    }
}

/// Around the webhook route: the access log line and the metrics of each delivery.
async fn observe(State(log): State<AccessLog>, request: Request, next: Next) -> Response {
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
#[cfg(feature = "metrics")]
async fn render_metrics(State(metrics): State<crate::metrics::Metrics>) -> Response {
    let mut response = metrics.render().into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    response
}

//! [`app`]: everything `webhook-guard serve` answers, as one axum router.

use axum::extract::Extension;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;

use super::{console, router, Admin};
use crate::middleware::{ProjectSelector, WebhookLayer};
use crate::{ProjectId, Verified};

/// The admin API ([`router`]), `POST /webhooks/{projectId}` verified with the project's
/// keyring (answered `{"verified": true, "projectId", "keyId"}`), and the web console at
/// `/console`: what `webhook-guard serve` serves.
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
    let webhooks = Router::new()
        .route("/webhooks/{project_id}", post(received))
        .route_layer(WebhookLayer::for_projects(
            admin.projects().clone(),
            ProjectSelector::path_after("/webhooks/"),
        ));
    router(admin).merge(webhooks).merge(console::router())
}

/// What a verified delivery is answered when no handler of the user's takes it.
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
) -> axum::response::Response {
    tracing::info!(project = %project, key = %verified.key_id(), "webhook verified");
    axum::response::IntoResponse::into_response(Json(Received {
        verified: true,
        project_id: project.as_str(),
        key_id: verified.key_id().as_str(),
    }))
}

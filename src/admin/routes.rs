//! The admin API over HTTP: [`router`], its request bodies and its answers.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;

use super::credentials::{ApiKeyLayer, Caller};
use super::plane::{Admin, AdminError, DEFAULT_PAGE};
use super::wire::{
    ApiKeyOut, ApiKeysOut, AuditEventOut, AuditOut, CreateApiKeyIn, CreateProjectIn, EndedOut,
    IntegratorSecretOut, ProblemOut, ProjectOut, ProjectSecretOut, ProjectsOut, RegenerateIn,
    SetUpstreamIn,
};
use crate::problem::{Kind, Problem};
use crate::projects::ProjectId;
use crate::store::{ApiKeyId, AuditQuery};

mod extract;

use extract::*;

/// Largest admin request body: 16 KiB.
pub const MAX_ADMIN_BODY: usize = 16 * 1024;

/// Audit events on a page when the caller does not say.
const DEFAULT_AUDIT_PAGE: usize = 50;

/// Admin requests handled at once: half the CPUs the process may use, at least one. More wait
/// their turn, so admin work (a listing, an audit page, a commit) cannot take every core from
/// webhook verification. With 32 clients listing 10 000 projects on 2 CPUs, a webhook's p99
/// was 3.8 ms with 4 admin requests at once and 1.5 ms with 1, the listings answered 9 % slower
/// (BENCHMARKS.md, run N).
///
/// # Examples
///
/// ```
/// let at_once = webhook_guard::admin::max_concurrent_admin_requests();
/// let cpus = std::thread::available_parallelism().map_or(1, usize::from);
/// assert_eq!(at_once, (cpus / 2).max(1), "half the CPUs, at least one");
/// ```
pub fn max_concurrent_admin_requests() -> usize {
    std::thread::available_parallelism().map_or(1, |cpus| (cpus.get() / 2).max(1))
}

/// The admin API as an axum [`Router`]: every endpoint under `/v1` behind
/// [`ApiKeyLayer`], plus unauthenticated `GET /healthz` and `GET /readyz`.
///
/// | method and path | does |
/// |---|---|
/// | `POST /v1/external-support/{projectId}/secret/regenerate` | new signing secret; optional `{"oldSecretValidForSeconds": N}` |
/// | `DELETE /v1/external-support/{projectId}/secret/previous` | ends every grace key of the project now |
/// | `POST /v1/integrator/regenerate-secret` | new API secret (`clientSecret`); optional grace as above |
/// | `POST /v1/projects`, `GET /v1/projects?cursor=&limit=` | create (`{"name", "scheme", "upstreamUrl"}`), list a page |
/// | `GET /v1/projects/{projectId}`, `DELETE …` | show keys (no secret), delete |
/// | `PUT /v1/projects/{projectId}/upstream`, `DELETE …` | forward verified deliveries (`{"upstreamUrl", "resign"}`; a re-signing secret is shown once), stop forwarding |
/// | `POST /v1/api-keys`, `GET /v1/api-keys?cursor=&limit=` | create (`{"name", "projects", "expiresInSeconds"}`, shown once), list a page (masked) |
/// | `DELETE /v1/api-keys/{id}` | delete; the next request with it gets 401 |
/// | `GET /v1/audit?cursor=&limit=&projectId=&action=` | the audit log, newest first, a page at a time |
///
/// Lists answer a page (default 100, at most [`MAX_PAGE`](super::MAX_PAGE); audit: 50, at most
/// [`MAX_AUDIT_PAGE`](super::MAX_AUDIT_PAGE)) and `nextCursor`, `null` on the last page.
/// Every error is `application/problem+json`; bodies are capped at [`MAX_ADMIN_BODY`] and
/// strictly typed (unknown fields are refused); every answer carries `Cache-Control: no-store`.
/// At most [`max_concurrent_admin_requests`] requests under `/v1` are handled at once.
///
/// # Examples
///
/// ```
/// use tower::ServiceExt;
/// use webhook_guard::admin::{router, Admin};
/// use webhook_guard::store::{crypt::Sealer, SqliteStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = std::env::temp_dir().join(format!("wg-router-doc-{}", std::process::id()));
/// let admin = Admin::builder().open(SqliteStore::open(dir.join("wg.db"), Sealer::plaintext())?)?;
/// let integrator = admin.create_integrator()?;
///
/// let request = http::Request::post("/v1/projects")
///     .header("x-api-key", integrator.api_key.key.as_str())
///     .header("content-type", "application/json")
///     .body(axum::body::Body::from(r#"{"name": "shop", "scheme": "github"}"#))?;
/// let response = router(admin.clone()).oneshot(request).await?;
/// assert_eq!(response.status(), 201);
///
/// let unauthenticated = http::Request::get("/v1/projects").body(axum::body::Body::empty())?;
/// assert_eq!(router(admin).oneshot(unauthenticated).await?.status(), 401);
/// # std::fs::remove_dir_all(dir)?;
/// # Ok(())
/// # }
/// ```
pub fn router(admin: Admin) -> Router {
    let credentials = admin.credentials().clone();
    let (per_second, burst) = admin.failed_logins();
    Router::new()
        .route(
            "/v1/external-support/{project_id}/secret/regenerate",
            post(regenerate_project_secret),
        )
        .route(
            "/v1/external-support/{project_id}/secret/previous",
            delete(end_previous_secrets),
        )
        .route(
            "/v1/integrator/regenerate-secret",
            post(regenerate_integrator_secret),
        )
        .route("/v1/projects", post(create_project).get(list_projects))
        .route(
            "/v1/projects/{project_id}",
            get(show_project).delete(delete_project),
        )
        .route(
            "/v1/projects/{project_id}/upstream",
            put(set_upstream).delete(remove_upstream),
        )
        .route("/v1/api-keys", post(create_api_key).get(list_api_keys))
        .route("/v1/api-keys/{id}", delete(delete_api_key))
        .route("/v1/audit", get(audit))
        .route_layer(ApiKeyLayer::new(credentials).failed_attempts(per_second, burst))
        .route_layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            max_concurrent_admin_requests(),
        ))
        .route("/v1/openapi.json", get(openapi_json))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(no_store))
        .with_state(admin)
}

async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn unknown_route(uri: Uri) -> Response {
    Problem::of(&Kind::UNKNOWN_ROUTE)
        .instance(uri.path())
        .into_response()
}

async fn method_not_allowed(uri: Uri) -> Response {
    Problem::of(&Kind::METHOD_NOT_ALLOWED)
        .instance(uri.path())
        .into_response()
}

/// `GET /v1/openapi.json`: the API's OpenAPI 3.1 document, without credentials.
async fn openapi_json() -> Response {
    Json(super::openapi::document()).into_response()
}

async fn readyz(State(admin): State<Admin>) -> Response {
    match blocking(admin.clone(), |admin| {
        admin.store().ping().map_err(AdminError::from)
    })
    .await
    {
        Ok(()) => {
            if admin.readiness_changed(true) {
                tracing::info!("readiness: the store answers again");
            }
            (StatusCode::OK, "ready").into_response()
        }
        Err(e) => {
            // Logged when readiness changes, not at every probe.
            if admin.readiness_changed(false) {
                tracing::warn!(error = %e, "readiness: the store does not answer");
            }
            Problem::of(&Kind::NOT_READY).into_response()
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/external-support/{projectId}/secret/regenerate",
    tag = "signing secrets",
    summary = "Regenerate a project's signing secret",
    description = "The new secret is shown once. The old one ends at once, or after `oldSecretValidForSeconds`.",
    params(("projectId" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "The project id, as sent (never percent-decoded)")),
    request_body(content = Option<RegenerateIn>, content_type = "application/json"),
    responses(
        (status = 200, description = "The new secret, shown once", body = ProjectSecretOut<'_>),
        (status = 400, description = "The body or a parameter is not what the endpoint takes; `field` names it", body = ProblemOut, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 16 KiB", body = ProblemOut, content_type = "application/problem+json"),
        (status = 415, description = "A body not sent as application/json", body = ProblemOut, content_type = "application/problem+json"),
        (status = 403, description = "The key is limited to other projects", body = ProblemOut, content_type = "application/problem+json"),
        (status = 404, description = "No such resource among the caller's", body = ProblemOut, content_type = "application/problem+json"),
        (status = 409, description = "The change would pass a cap (live keys, projects, API keys)", body = ProblemOut, content_type = "application/problem+json"),
    ),
)]
async fn regenerate_project_secret(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    ProjectParam(project): ProjectParam,
    uri: Uri,
    Body(body): Body<RegenerateIn>,
) -> Reply {
    let grace = Duration::from_secs(body.old_secret_valid_for_seconds.unwrap_or(0));
    let done = run(admin, &uri, move |admin| {
        admin.regenerate_project_secret(&caller, &project, grace)
    })
    .await?;
    tracing::info!(key = %done.key_id, grace_secs = grace.as_secs(), "project secret regenerated");
    Ok(Json(ProjectSecretOut::from(&done)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/external-support/{projectId}/secret/previous",
    tag = "signing secrets",
    summary = "End a project's previous secrets now",
    params(("projectId" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "The project id, as sent (never percent-decoded)")),
    responses(
        (status = 200, description = "The grace keys ended", body = EndedOut),
        (status = 403, description = "The key is limited to other projects", body = ProblemOut, content_type = "application/problem+json"),
        (status = 404, description = "No such resource among the caller's", body = ProblemOut, content_type = "application/problem+json"),
    ),
)]
async fn end_previous_secrets(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    ProjectParam(project): ProjectParam,
    uri: Uri,
) -> Reply {
    let ended = run(admin, &uri, move |admin| {
        admin.end_previous_secrets(&caller, &project)
    })
    .await?;
    let ended_key_ids = ended.iter().map(ToString::to_string).collect();
    Ok(Json(EndedOut { ended_key_ids }).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/integrator/regenerate-secret",
    tag = "integrator",
    summary = "Regenerate the integrator's API secret (Basic clientSecret)",
    request_body(content = Option<RegenerateIn>, content_type = "application/json"),
    responses(
        (status = 200, description = "The new API secret, shown once", body = IntegratorSecretOut<'_>),
        (status = 400, description = "The body or a parameter is not what the endpoint takes; `field` names it", body = ProblemOut, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 16 KiB", body = ProblemOut, content_type = "application/problem+json"),
        (status = 415, description = "A body not sent as application/json", body = ProblemOut, content_type = "application/problem+json"),
        (status = 403, description = "A key limited to some projects may not", body = ProblemOut, content_type = "application/problem+json"),
        (status = 409, description = "The change would pass a cap (live keys, projects, API keys)", body = ProblemOut, content_type = "application/problem+json"),
    ),
)]
async fn regenerate_integrator_secret(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    Body(body): Body<RegenerateIn>,
) -> Reply {
    let grace = Duration::from_secs(body.old_secret_valid_for_seconds.unwrap_or(0));
    let done = run(admin, &uri, move |admin| {
        admin.regenerate_integrator_secret(&caller, grace)
    })
    .await?;
    Ok(Json(IntegratorSecretOut::from(&done)).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/projects",
    tag = "projects",
    summary = "Create a project",
    request_body(content = Option<CreateProjectIn>, content_type = "application/json"),
    responses(
        (status = 201, description = "The project and its first signing secret, shown once", body = ProjectOut<'_>),
        (status = 400, description = "The body or a parameter is not what the endpoint takes; `field` names it", body = ProblemOut, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 16 KiB", body = ProblemOut, content_type = "application/problem+json"),
        (status = 415, description = "A body not sent as application/json", body = ProblemOut, content_type = "application/problem+json"),
        (status = 403, description = "A key limited to some projects may not", body = ProblemOut, content_type = "application/problem+json"),
        (status = 409, description = "The change would pass a cap (live keys, projects, API keys)", body = ProblemOut, content_type = "application/problem+json"),
    ),
)]
async fn create_project(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    Body(body): Body<CreateProjectIn>,
) -> Reply {
    let scheme = body.scheme.unwrap_or_else(|| "standard-webhooks".into());
    let created = run(admin, &uri, move |admin| {
        admin.create_forwarding_project(&caller, body.name, &scheme, body.upstream_url.as_deref())
    })
    .await?;
    let mut answer = ProjectOut::from(&created.project);
    answer.signing_secret = Some(created.signing_secret.as_str());
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/projects",
    tag = "projects",
    summary = "List the caller's projects, a page at a time",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Projects on the page (default 100)"),
        ("cursor" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "The nextCursor of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of projects", body = ProjectsOut<'_>),
        (status = 400, description = "A parameter is not what the endpoint takes; `field` names it", body = ProblemOut, content_type = "application/problem+json"),
    ),
)]
async fn list_projects(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    uri: Uri,
) -> Reply {
    let (cursor, limit) = page_params(query).map_err(refuse(&uri))?;
    let page = run(admin, &uri, move |admin| {
        let page = admin.list_projects(&caller, cursor.as_deref(), limit)?;
        // Written here, on the blocking thread, not on the threads that verify webhooks.
        let answer = ProjectsOut {
            projects: page.items.iter().map(|p| ProjectOut::from(&**p)).collect(),
            next_cursor: page.next.clone(),
        };
        serde_json::to_vec(&answer).map_err(|e| AdminError::Interrupted(e.to_string()))
    })
    .await?;
    Ok(json_bytes(page))
}

/// A JSON answer already written.
fn json_bytes(bytes: Vec<u8>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/v1/projects/{projectId}",
    tag = "projects",
    summary = "Show a project and its live keys (never a secret)",
    params(("projectId" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "The project id, as sent (never percent-decoded)")),
    responses(
        (status = 200, description = "The project", body = ProjectOut<'_>),
        (status = 403, description = "The key is limited to other projects", body = ProblemOut, content_type = "application/problem+json"),
        (status = 404, description = "No such resource among the caller's", body = ProblemOut, content_type = "application/problem+json"),
    ),
)]
async fn show_project(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    ProjectParam(project): ProjectParam,
    uri: Uri,
) -> Reply {
    let project = admin
        .project(&caller, &project)
        .map_err(|e| fail(&uri, e))?;
    Ok(Json(ProjectOut::from(&*project)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/projects/{projectId}",
    tag = "projects",
    summary = "Delete a project; its webhooks are refused from then on",
    params(("projectId" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "The project id, as sent (never percent-decoded)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The key is limited to other projects", body = ProblemOut, content_type = "application/problem+json"),
        (status = 404, description = "No such resource among the caller's", body = ProblemOut, content_type = "application/problem+json"),
    ),
)]
async fn delete_project(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    ProjectParam(project): ProjectParam,
    uri: Uri,
) -> Reply {
    run(admin, &uri, move |admin| {
        admin.delete_project(&caller, &project)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "API keys",
    summary = "Create an API key, shown once",
    request_body(content = Option<CreateApiKeyIn>, content_type = "application/json"),
    responses(
        (status = 201, description = "The key, shown once", body = ApiKeyOut<'_>),
        (status = 400, description = "The body or a parameter is not what the endpoint takes; `field` names it", body = ProblemOut, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 16 KiB", body = ProblemOut, content_type = "application/problem+json"),
        (status = 415, description = "A body not sent as application/json", body = ProblemOut, content_type = "application/problem+json"),
        (status = 403, description = "A key limited to some projects may not", body = ProblemOut, content_type = "application/problem+json"),
        (status = 404, description = "No such resource among the caller's", body = ProblemOut, content_type = "application/problem+json"),
        (status = 409, description = "The change would pass a cap (live keys, projects, API keys)", body = ProblemOut, content_type = "application/problem+json"),
    ),
)]
async fn create_api_key(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    Body(body): Body<CreateApiKeyIn>,
) -> Reply {
    let projects = body
        .projects
        .map(|ids| {
            ids.iter()
                .map(|id| {
                    ProjectId::parse(id).map_err(|_| {
                        let shown: String = id.chars().take(80).collect();
                        Problem::bad_request(format!("projects: {shown:?} is not a project id"))
                            .with("field", "projects")
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(refuse(&uri))?;
    let lifetime = body.expires_in_seconds.map(Duration::from_secs);
    let created = run(admin, &uri, move |admin| {
        admin.create_api_key(&caller, body.name, projects, lifetime)
    })
    .await?;
    tracing::info!(api_key = %created.record.id, "API key created");
    let mut answer = ApiKeyOut::from(&created.record);
    answer.key = created.key.to_string();
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "API keys",
    summary = "List API keys (masked), a page at a time",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Keys on the page (default 100)"),
        ("cursor" = Option<String>, Query, pattern = "^[0-9A-Za-z]{12}$", description = "The nextCursor of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of API keys", body = ApiKeysOut<'_>),
        (status = 400, description = "A parameter is not what the endpoint takes; `field` names it", body = ProblemOut, content_type = "application/problem+json"),
        (status = 403, description = "A key limited to some projects may not", body = ProblemOut, content_type = "application/problem+json"),
    ),
)]
async fn list_api_keys(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    uri: Uri,
) -> Reply {
    let (cursor, limit) = page_params(query).map_err(refuse(&uri))?;
    let page = run(admin, &uri, move |admin| {
        admin.list_api_keys(&caller, cursor.as_deref(), limit)
    })
    .await?;
    Ok(Json(ApiKeysOut {
        api_keys: page.items.iter().map(ApiKeyOut::from).collect(),
        next_cursor: page.next,
    })
    .into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/api-keys/{id}",
    tag = "API keys",
    summary = "Delete an API key; the next request with it gets 401",
    params(("id" = String, Path, pattern = "^[0-9A-Za-z]{12}$", description = "The key's id (12 base62 characters)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "A key limited to some projects may not", body = ProblemOut, content_type = "application/problem+json"),
        (status = 404, description = "No such resource among the caller's", body = ProblemOut, content_type = "application/problem+json"),
    ),
)]
async fn delete_api_key(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    ApiKeyParam(id): ApiKeyParam,
    uri: Uri,
) -> Reply {
    run(admin, &uri, move |admin| admin.delete_api_key(&caller, &id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    summary = "The audit log, newest first, a page at a time",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Events on the page (default 50)"),
        ("cursor" = Option<u64>, Query, minimum = 0, description = "The nextCursor of the previous page (`before` is the same parameter's older name)"),
        ("projectId" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "Only this project's events"),
        ("action" = Option<String>, Query, description = "Only events of this action (one of the names listed; another is refused with 400)"),
    ),
    responses(
        (status = 200, description = "A page of events", body = AuditOut<'_>),
        (status = 400, description = "A parameter is not what the endpoint takes; `field` names it", body = ProblemOut, content_type = "application/problem+json"),
        (status = 403, description = "The key is limited to other projects", body = ProblemOut, content_type = "application/problem+json"),
        (status = 404, description = "No such resource among the caller's", body = ProblemOut, content_type = "application/problem+json"),
    ),
)]
async fn audit(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    uri: Uri,
) -> Reply {
    let query = audit_query(query).map_err(refuse(&uri))?;
    let page = run(admin, &uri, move |admin| admin.audit(&caller, query)).await?;
    Ok(Json(AuditOut {
        events: page.items.iter().map(AuditEventOut::from).collect(),
        next_cursor: page.next,
    })
    .into_response())
}

/// `PUT /v1/projects/{projectId}/upstream`: forward the project's verified deliveries.
#[utoipa::path(
    put,
    path = "/v1/projects/{projectId}/upstream",
    tag = "projects",
    summary = "Forward a project's verified deliveries to an upstream URL",
    description = "The URL must be http or https, without credentials, to a destination the operator allows. With `resign`, a gateway-to-upstream secret is made and shown once.",
    params(("projectId" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "The project id, as sent (never percent-decoded)")),
    request_body(content = SetUpstreamIn, content_type = "application/json"),
    responses(
        (status = 200, description = "The project, with the re-signing secret once when made", body = ProjectOut<'_>),
        (status = 400, description = "The body is not what the endpoint takes, or the URL is not allowed; `field` names it", body = ProblemOut, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 16 KiB", body = ProblemOut, content_type = "application/problem+json"),
        (status = 415, description = "A body not sent as application/json", body = ProblemOut, content_type = "application/problem+json"),
        (status = 403, description = "A key limited to some projects may not", body = ProblemOut, content_type = "application/problem+json"),
        (status = 404, description = "No such resource among the caller's", body = ProblemOut, content_type = "application/problem+json"),
    ),
)]
async fn set_upstream(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    ProjectParam(project): ProjectParam,
    uri: Uri,
    Body(body): Body<SetUpstreamIn>,
) -> Reply {
    let (secret, shown) = run(admin, &uri, move |admin| {
        let secret =
            admin.set_project_upstream(&caller, &project, &body.upstream_url, body.resign)?;
        Ok((secret, admin.project(&caller, &project)?))
    })
    .await?;
    let mut answer = ProjectOut::from(&*shown);
    answer.upstream_secret = secret.as_deref().map(String::as_str);
    Ok(Json(answer).into_response())
}

/// `DELETE /v1/projects/{projectId}/upstream`: answer the project's deliveries again.
#[utoipa::path(
    delete,
    path = "/v1/projects/{projectId}/upstream",
    tag = "projects",
    summary = "Stop forwarding a project's deliveries",
    params(("projectId" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "The project id, as sent (never percent-decoded)")),
    responses(
        (status = 204, description = "Deliveries are answered by the gateway again"),
        (status = 403, description = "A key limited to some projects may not", body = ProblemOut, content_type = "application/problem+json"),
        (status = 404, description = "No such resource among the caller's", body = ProblemOut, content_type = "application/problem+json"),
    ),
)]
async fn remove_upstream(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    ProjectParam(project): ProjectParam,
    uri: Uri,
) -> Reply {
    run(admin, &uri, move |admin| {
        admin.remove_project_upstream(&caller, &project)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

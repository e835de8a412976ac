//! The admin API over HTTP: [`router`], its request bodies and its answers.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http_body_util::{BodyExt, Limited};
use serde_json::{json, Map, Value};

use super::credentials::{mask_api_key, ApiKeyLayer, ApiKeyRecord, Caller};
use super::plane::{Admin, AdminError, Project, MAX_GRACE};
use super::Problem;
use crate::projects::ProjectId;
use crate::store::AuditEvent;

/// Largest admin request body: 16 KiB.
pub const MAX_ADMIN_BODY: usize = 16 * 1024;

/// Most audit events on one page.
pub const MAX_AUDIT_PAGE: usize = 200;

/// The admin API as an axum [`Router`]: every endpoint under `/v1` behind
/// [`ApiKeyLayer`], plus unauthenticated `GET /healthz` and `GET /readyz`.
///
/// | method and path | does |
/// |---|---|
/// | `POST /v1/external-support/{projectId}/secret/regenerate` | new signing secret; optional `{"oldSecretValidForSeconds": N}` |
/// | `DELETE /v1/external-support/{projectId}/secret/previous` | ends every grace key of the project now |
/// | `POST /v1/integrator/regenerate-secret` | new API secret (`clientSecret`); optional grace as above |
/// | `POST /v1/projects`, `GET /v1/projects` | create (`{"name", "scheme"}`), list |
/// | `GET /v1/projects/{projectId}`, `DELETE …` | show keys (no secret), delete |
/// | `POST /v1/api-keys`, `GET /v1/api-keys` | create (`{"name", "projects", "expiresInSeconds"}`, shown once), list (masked) |
/// | `DELETE /v1/api-keys/{id}` | delete; the next request with it gets 401 |
/// | `GET /v1/audit?before=&limit=` | the audit log, newest first, with a cursor |
///
/// Every error is `application/problem+json`; bodies are capped at [`MAX_ADMIN_BODY`] and
/// strictly typed (unknown fields are refused); every answer carries `Cache-Control: no-store`.
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
        .route("/v1/api-keys", post(create_api_key).get(list_api_keys))
        .route("/v1/api-keys/{id}", delete(delete_api_key))
        .route("/v1/audit", get(audit))
        .route_layer(ApiKeyLayer::new(credentials))
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
    Problem::new(
        StatusCode::NOT_FOUND,
        "unknown-route",
        "Not found",
        "no endpoint has this path",
    )
    .instance(uri.path())
    .into_response()
}

async fn method_not_allowed(uri: Uri) -> Response {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "the endpoint does not take this method",
    )
    .instance(uri.path())
    .into_response()
}

async fn readyz(State(admin): State<Admin>) -> Response {
    match blocking(admin, |admin| {
        admin.store().ping().map_err(AdminError::from)
    })
    .await
    {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the store does not answer");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not-ready",
                "Not ready",
                "the store does not answer",
            )
            .into_response()
        }
    }
}

/// What a handler answers: the success or the problem document, both as responses.
type Answer = Result<Response, Response>;

/// Runs a management-plane call (which may wait for the disk) off the async workers.
async fn blocking<T: Send + 'static>(
    admin: Admin,
    call: impl FnOnce(&Admin) -> Result<T, AdminError> + Send + 'static,
) -> Result<T, AdminError> {
    match tokio::task::spawn_blocking(move || call(&admin)).await {
        Ok(result) => result,
        Err(e) => Err(AdminError::Interrupted(e.to_string())),
    }
}

/// [`blocking`], with a failure answered as its problem document for the request at `uri`.
async fn run<T: Send + 'static>(
    admin: Admin,
    uri: &Uri,
    call: impl FnOnce(&Admin) -> Result<T, AdminError> + Send + 'static,
) -> Result<T, Response> {
    blocking(admin, call).await.map_err(|e| fail(uri, e))
}

/// An error's problem document with the request's path as `instance`; store failures logged.
fn fail(uri: &Uri, e: AdminError) -> Response {
    if e.status().is_server_error() {
        tracing::error!(error = %e, path = uri.path(), "admin request failed; nothing changed");
    }
    e.problem().instance(uri.path()).into_response()
}

/// A problem in the request itself, answered with its path as `instance`.
fn refuse(uri: &Uri) -> impl FnOnce(Problem) -> Response + '_ {
    move |p| p.instance(uri.path()).into_response()
}

/// The `{project_id}` of a route. An id that is not valid percent-encoded UTF-8 names no
/// project: 404, as an unknown one.
struct ProjectParam(String);

/// The `{id}` of an API-key route, read as [`ProjectParam`] is.
struct ApiKeyParam(String);

/// The route's one path parameter, or the 404 problem document for `resource`.
async fn path_param<S: Send + Sync>(
    parts: &mut http::request::Parts,
    state: &S,
    resource: &str,
) -> Result<String, Response> {
    match Path::<String>::from_request_parts(parts, state).await {
        Ok(Path(id)) => Ok(id),
        Err(_) => Err(Problem::not_found(resource, "")
            .instance(parts.uri.path())
            .into_response()),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ProjectParam {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        path_param(parts, state, "project").await.map(Self)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApiKeyParam {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        path_param(parts, state, "apiKey").await.map(Self)
    }
}

/// A request body: absent, or a JSON object of at most [`MAX_ADMIN_BODY`] bytes sent as
/// `application/json`.
struct Body(Option<Map<String, Value>>);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Response;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let path = request.uri().path().to_owned();
        let problem = |p: Problem| p.instance(&path).into_response();
        let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
        let bytes: Bytes = match Limited::new(request.into_body(), MAX_ADMIN_BODY)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(problem(Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body-too-large",
                    "Body too large",
                    format!("the body is larger than {MAX_ADMIN_BODY} bytes"),
                )))
            }
            Err(_) => {
                return Err(problem(Problem::bad_request("the body could not be read")));
            }
        };
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        let json = content_type
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(problem(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "a request body must be sent as application/json",
            )));
        }
        match serde_json::from_slice::<Strict>(&bytes) {
            Ok(Strict(Value::Object(map))) => Ok(Self(Some(map))),
            Ok(Strict(other)) => Err(problem(Problem::bad_request(format!(
                "the body must be a JSON object, not {}",
                kind_of(&other)
            )))),
            Err(e) => Err(problem(Problem::bad_request(format!(
                "the body is not valid JSON, or names a member twice (line {}, column {})",
                e.line(),
                e.column()
            )))),
        }
    }
}

/// A JSON value whose objects name each member once: `{"a": 1, "a": 2}` is refused rather
/// than read as its last member, so a proxy and this server cannot read one body two ways.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let Strict(value) = access.next_value()?;
            if map.insert(key, value).is_some() {
                return Err(serde::de::Error::custom("a member is named twice"));
            }
        }
        Ok(Value::Object(map))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = access.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

impl Body {
    /// The fields, refusing any not in `allowed`.
    fn fields(self, allowed: &[&str]) -> Result<Map<String, Value>, Problem> {
        let map = self.0.unwrap_or_default();
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            let shown: String = unknown.chars().take(64).collect();
            return Err(Problem::bad_request(format!(
                "unknown field {shown:?}; this endpoint takes {}",
                allowed.join(", ")
            ))
            .with("field", shown));
        }
        Ok(map)
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A whole number of seconds in `0..=max`, or absent (`None`).
fn seconds(map: &Map<String, Value>, field: &str, max: u64) -> Result<Option<u64>, Problem> {
    let bad = |why: String| Problem::bad_request(format!("{field} {why}")).with("field", field);
    match map.get(field) {
        None => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_i64()) {
            (Some(n), _) if n <= max => Ok(Some(n)),
            (Some(n), _) => Err(bad(format!("is {n}, more than {max}"))),
            (None, Some(_)) => Err(bad("must not be negative".into())),
            (None, None) => Err(bad("must be a whole number of seconds".into())),
        },
        Some(other) => Err(bad(format!(
            "must be a whole number of seconds, not {}",
            kind_of(other)
        ))),
    }
}

/// An optional string of at most 200 characters.
fn label(map: &Map<String, Value>, field: &str) -> Result<Option<String>, Problem> {
    match map.get(field) {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= 200 && !s.chars().any(char::is_control) => {
            Ok(Some(s.clone()))
        }
        Some(Value::String(_)) => Err(Problem::bad_request(format!(
            "{field} must be at most 200 characters, without control characters"
        ))
        .with("field", field)),
        Some(other) => Err(Problem::bad_request(format!(
            "{field} must be a string, not {}",
            kind_of(other)
        ))
        .with("field", field)),
    }
}

fn grace(map: &Map<String, Value>) -> Result<Duration, Problem> {
    let secs = seconds(map, "oldSecretValidForSeconds", MAX_GRACE.as_secs())?;
    Ok(Duration::from_secs(secs.unwrap_or(0)))
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn regenerate_project_secret(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    ProjectParam(project): ProjectParam,
    uri: Uri,
    body: Body,
) -> Answer {
    let grace = body
        .fields(&["oldSecretValidForSeconds"])
        .and_then(|map| grace(&map))
        .map_err(refuse(&uri))?;
    let done = run(admin, &uri, move |admin| {
        admin.regenerate_project_secret(&caller, &project, grace)
    })
    .await?;
    tracing::info!(key = %done.key_id, grace_secs = grace.as_secs(), "project secret regenerated");
    let mut answer = json!({
        "signingSecret": done.secret.as_str(),
        "regeneratedAt": time(done.at),
    });
    if let Some(at) = done.old_expires_at {
        answer["oldSecretExpiresAt"] = time(at).into();
    }
    Ok(Json(answer).into_response())
}

async fn end_previous_secrets(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    ProjectParam(project): ProjectParam,
    uri: Uri,
) -> Answer {
    let ended = run(admin, &uri, move |admin| {
        admin.end_previous_secrets(&caller, &project)
    })
    .await?;
    let ended: Vec<&str> = ended.iter().map(|id| id.as_str()).collect();
    Ok(Json(json!({ "endedKeyIds": ended })).into_response())
}

async fn regenerate_integrator_secret(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    body: Body,
) -> Answer {
    let grace = body
        .fields(&["oldSecretValidForSeconds"])
        .and_then(|map| grace(&map))
        .map_err(refuse(&uri))?;
    let done = run(admin, &uri, move |admin| {
        admin.regenerate_integrator_secret(&caller, grace)
    })
    .await?;
    let mut answer = json!({ "secret": done.secret.as_str() });
    if let Some(at) = done.old_expires_at {
        answer["oldSecretExpiresAt"] = time(at).into();
    }
    Ok(Json(answer).into_response())
}

fn project_json(project: &Project) -> Value {
    let keys: Vec<Value> = project
        .keys()
        .iter()
        .map(|key| {
            json!({
                "id": key.id.as_str(),
                "role": match key.role { crate::KeyRole::Current => "current", crate::KeyRole::Grace => "grace" },
                "createdAt": time(key.created_at),
                "expiresAt": key.expires_at.map(time),
                "lastVerifiedAt": key.last_verified.map(time),
            })
        })
        .collect();
    json!({
        "projectId": project.id.as_str(),
        "name": project.name,
        "scheme": project.scheme,
        "createdAt": time(project.created_at),
        "webhookPath": format!("/webhooks/{}", project.id),
        "keys": keys,
    })
}

async fn create_project(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    body: Body,
) -> Answer {
    let (name, scheme) = body
        .fields(&["name", "scheme"])
        .and_then(|map| {
            let name = label(&map, "name")?;
            let scheme = label(&map, "scheme")?.unwrap_or_else(|| "standard-webhooks".into());
            Ok((name, scheme))
        })
        .map_err(refuse(&uri))?;
    let created = run(admin, &uri, move |admin| {
        admin.create_project(&caller, name, &scheme)
    })
    .await?;
    let mut answer = project_json(&created.project);
    answer["signingSecret"] = created.signing_secret.as_str().into();
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn list_projects(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let projects: Vec<Value> = admin
        .list_projects(&caller)
        .iter()
        .map(|p| project_json(p))
        .collect();
    Json(json!({ "projects": projects })).into_response()
}

async fn show_project(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    ProjectParam(project): ProjectParam,
    uri: Uri,
) -> Answer {
    let project = admin
        .project(&caller, &project)
        .map_err(|e| fail(&uri, e))?;
    Ok(Json(project_json(&project)).into_response())
}

async fn delete_project(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    ProjectParam(project): ProjectParam,
    uri: Uri,
) -> Answer {
    run(admin, &uri, move |admin| {
        admin.delete_project(&caller, &project)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn api_key_json(key: &ApiKeyRecord) -> Value {
    let projects = key
        .projects
        .as_ref()
        .map(|ids| ids.iter().map(ProjectId::as_str).collect::<Vec<_>>());
    json!({
        "id": key.id.as_str(),
        "name": key.name,
        "key": mask_api_key(&key.id),
        "createdAt": time(key.created_at),
        "expiresAt": key.expires_at.map(time),
        "lastUsedAt": key.last_used.map(time),
        "projects": projects,
    })
}

/// The longest an API key may be given to live: a year.
const MAX_API_KEY_LIFETIME: u64 = 366 * 24 * 3600;

async fn create_api_key(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    body: Body,
) -> Answer {
    let parsed = body
        .fields(&["name", "projects", "expiresInSeconds"])
        .and_then(|map| {
            let name = label(&map, "name")?;
            let expires =
                seconds(&map, "expiresInSeconds", MAX_API_KEY_LIFETIME)?.map(Duration::from_secs);
            let projects = match map.get("projects") {
                None | Some(Value::Null) => None,
                Some(Value::Array(ids)) if !ids.is_empty() && ids.len() <= 100 => Some(
                    ids.iter()
                        .map(|id| match id {
                            Value::String(id) => ProjectId::parse(id).map_err(|_| {
                                Problem::not_found(
                                    "project",
                                    &id.chars().take(80).collect::<String>(),
                                )
                            }),
                            _ => Err(Problem::bad_request("projects must be project ids")
                                .with("field", "projects")),
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
                Some(_) => {
                    return Err(Problem::bad_request(
                        "projects must be a list of 1 to 100 project ids",
                    )
                    .with("field", "projects"))
                }
            };
            Ok((name, projects, expires))
        });
    let (name, projects, expires) = parsed.map_err(refuse(&uri))?;
    let created = run(admin, &uri, move |admin| {
        admin.create_api_key(&caller, name, projects, expires)
    })
    .await?;
    tracing::info!(api_key = %created.record.id, "API key created");
    let mut answer = api_key_json(&created.record);
    answer["key"] = created.key.as_str().into();
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn list_api_keys(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let keys: Vec<Value> = admin
        .list_api_keys(&caller)
        .iter()
        .map(api_key_json)
        .collect();
    Json(json!({ "apiKeys": keys })).into_response()
}

async fn delete_api_key(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    ApiKeyParam(id): ApiKeyParam,
    uri: Uri,
) -> Answer {
    run(admin, &uri, move |admin| admin.delete_api_key(&caller, &id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn audit_json(event: &AuditEvent) -> Value {
    json!({
        "seq": event.seq,
        "at": time(event.at),
        "actor": event.actor,
        "action": event.action,
        "projectId": event.project.as_ref().map(ProjectId::as_str),
        "oldKeyIds": event.old_keys,
        "newKeyId": event.new_key,
        "graceSeconds": event.grace_secs,
        "expiresAt": event.expires_at.map(time),
    })
}

async fn audit(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    uri: Uri,
) -> Answer {
    let Ok(Query(query)) = query else {
        return Err(refuse(&uri)(Problem::bad_request(
            "the query is not valid percent-encoded UTF-8",
        )));
    };
    let mut before = None;
    let mut limit = 50;
    for (name, value) in &query {
        let bad = |what: &str| {
            refuse(&uri)(
                Problem::bad_request(format!("{name} must be {what}")).with("field", name.as_str()),
            )
        };
        match name.as_str() {
            "before" => match value.parse::<u64>() {
                Ok(cursor) => before = Some(cursor),
                Err(_) => return Err(bad("a cursor from a previous page")),
            },
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_AUDIT_PAGE).contains(&n) => limit = n,
                _ => return Err(bad("a number from 1 to 200")),
            },
            _ => return Err(bad("one of: before, limit (unknown parameter)")),
        }
    }
    let events = run(admin, &uri, move |admin| {
        admin.audit(&caller, before, limit)
    })
    .await?;
    let next = (events.len() == limit)
        .then(|| events.last().map(|e| e.seq.to_string()))
        .flatten();
    let events: Vec<Value> = events.iter().map(audit_json).collect();
    Ok(Json(json!({ "events": events, "nextCursor": next })).into_response())
}

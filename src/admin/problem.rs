//! The admin API's errors as RFC 9457 problem documents, written by the middleware's one
//! problem+json writer.

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Map, Value};

use crate::middleware::problem_response;

/// An admin API error: an RFC 9457 `application/problem+json` answer.
///
/// `type` is `tag:webhook-guard,2026:<kind>`, as for the webhook layer's rejections. The
/// `detail` never holds a secret, a key or a credential.
///
/// # Examples
///
/// ```
/// use http::StatusCode;
/// use webhook_guard::admin::Problem;
///
/// let problem = Problem::not_found("project", "prj_0123456789abcdef");
/// assert_eq!(problem.status(), StatusCode::NOT_FOUND);
/// assert_eq!(problem.document()["resourceId"], "prj_0123456789abcdef");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    status: StatusCode,
    document: Map<String, Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Problem {
    /// A problem of `kind` (the last part of its `type`) with `status`, `title` and `detail`.
    pub fn new(status: StatusCode, kind: &str, title: &str, detail: impl Into<String>) -> Self {
        let mut document = Map::new();
        document.insert(
            "type".into(),
            Value::from(format!("tag:webhook-guard,2026:{kind}")),
        );
        document.insert("title".into(), Value::from(title));
        document.insert("status".into(), Value::from(status.as_u16()));
        document.insert("detail".into(), Value::from(detail.into()));
        Self {
            status,
            document,
            headers: Vec::new(),
        }
    }

    /// Adds a member to the document (an RFC 9457 extension such as `realm` or `scope`).
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.document.insert(name.into(), value.into());
        self
    }

    /// Sets `instance`: the path of the request that failed.
    pub fn instance(self, path: &str) -> Self {
        self.with("instance", path)
    }

    /// Adds a `WWW-Authenticate` challenge to the answer (each call adds one more).
    pub fn challenge(mut self, value: HeaderValue) -> Self {
        self.headers.push((header::WWW_AUTHENTICATE, value));
        self
    }

    /// 429: too many requests; `Retry-After` says in how many whole seconds (at least 1) to
    /// try again.
    pub fn too_many_requests(retry_after: std::time::Duration) -> Self {
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let secs = secs.max(1);
        let mut problem = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            format!("too many requests from this credential or address; retry in {secs} s"),
        )
        .with("retryAfter", secs);
        problem
            .headers
            .push((header::RETRY_AFTER, HeaderValue::from(secs)));
        problem
    }

    /// 401: no credentials, or credentials that are not valid (which, is not said).
    pub fn unauthorized(realm: &str, scope: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "valid credentials are required: an x-api-key header or Basic clientId:clientSecret",
        )
        .with("realm", realm)
        .with("scope", scope)
    }

    /// 403: the credentials are valid but lack `scope`.
    pub fn forbidden(scope: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            format!("the credentials do not have the scope {scope}"),
        )
        .with("scope", scope)
    }

    /// 404 for a `resource_type` with id `resource_id` that does not exist (or belongs to
    /// another integrator, which is not said).
    pub fn not_found(resource_type: &str, resource_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("no {resource_type} with this id"),
        )
        .with("resourceType", resource_type)
        .with("resourceId", resource_id)
    }

    /// 400 for a request body or parameter that is not what the endpoint takes.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    /// 409: the change would break a limit or a rule of the current state.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    /// 500: the change could not be made (the store failed); nothing changed. The cause is
    /// logged, not sent.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the request could not be completed; nothing was changed",
        )
    }

    /// 503: the shared store cannot be reached; nothing was changed. Webhooks are still
    /// verified with the keys this instance holds.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            "the store cannot be reached; nothing was changed: try again later",
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The problem document.
    pub fn document(&self) -> &Map<String, Value> {
        &self.document
    }

    /// The `application/problem+json` response (axum's [`IntoResponse`](axum::response::IntoResponse)
    /// gives the same with axum's body type).
    pub fn into_http_response(self) -> Response<Full<Bytes>> {
        let mut response = problem_response(self.status, &Value::Object(self.document));
        for (name, value) in self.headers {
            response.headers_mut().append(name, value);
        }
        response
    }
}

impl axum::response::IntoResponse for Problem {
    fn into_response(self) -> axum::response::Response {
        self.into_http_response().map(axum::body::Body::new)
    }
}

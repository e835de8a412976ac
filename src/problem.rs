//! RFC 9457 problem documents: every error webhook-guard answers over HTTP — the layer's
//! rejections, the server's 408, invalid JSON bodies, the admin API — is built here, from one
//! table of kinds ([`Kind`]: the `type` URI's last part, the title, the status and the detail
//! sent when nothing more specific may be said). The `type` prefix is written once:
//! [`TYPE_PREFIX`].

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Map, Value};

/// Every problem `type` is this prefix and its kind's slug: `tag:webhook-guard,2026:<slug>`
/// (RFC 4151 tag URIs: stable, and not a URL anyone would try to fetch).
pub const TYPE_PREFIX: &str = "tag:webhook-guard,2026:";

/// One kind of problem: its slug (the last part of `type`), title, status and generic detail.
///
/// # Examples
///
/// ```
/// use webhook_guard::problem::Kind;
///
/// let kind = Kind::named("invalid-signature").unwrap();
/// assert_eq!(kind.status(), 401);
/// assert_eq!(kind.type_uri(), "tag:webhook-guard,2026:invalid-signature");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    slug: &'static str,
    title: &'static str,
    status: u16,
    detail: &'static str,
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $name:ident = ($slug:literal, $status:literal, $title:literal, $detail:literal);)*) => {
        impl Kind {
            $(
                $(#[$doc])*
                pub const $name: Kind = Kind {
                    slug: $slug,
                    title: $title,
                    status: $status,
                    detail: $detail,
                };
            )*

            /// Every kind, in one table.
            pub const ALL: &'static [Kind] = &[$(Kind::$name),*];
        }
    };
}

kinds! {
    /// 400: a header the scheme requires is missing.
    MISSING_HEADER = ("missing-header", 400, "Missing webhook header",
        "a header the webhook scheme requires is missing");
    /// 400: a header that must appear once appears more than once.
    DUPLICATE_HEADER = ("duplicate-header", 400, "Duplicated webhook header",
        "a webhook header that must appear once appears more than once");
    /// 400: a header is not in the scheme's format.
    MALFORMED_HEADER = ("malformed-header", 400, "Malformed webhook header",
        "a webhook header is not in the scheme's format");
    /// 400: the URL the sender signed could not be determined.
    URL_UNKNOWN = ("url-unknown", 400, "Request URL unknown",
        "the URL the sender signed could not be determined");
    /// 500: the receiver's verification is misconfigured.
    MISCONFIGURED = ("misconfigured", 500, "Webhook verification misconfigured",
        "the receiver's webhook verification is misconfigured");
    /// 400: the body is not in the form the scheme requires.
    MALFORMED_BODY = ("malformed-body", 400, "Malformed webhook body",
        "the webhook body is not in the form the scheme requires");
    /// 401: the signed timestamp is outside the tolerance.
    TIMESTAMP_OUT_OF_TOLERANCE = ("timestamp-out-of-tolerance", 401,
        "Webhook timestamp out of tolerance",
        "the signed timestamp is outside the window the receiver accepts");
    /// 401: no signature matches.
    INVALID_SIGNATURE = ("invalid-signature", 401, "Invalid webhook signature",
        "no signature in the request matches");
    /// 413: the body is larger than the receiver accepts.
    BODY_TOO_LARGE = ("body-too-large", 413, "Body too large",
        "the body is larger than the receiver accepts");
    /// 503: the receiver is busy; retry after `Retry-After`.
    OVER_CAPACITY = ("over-capacity", 503, "Webhook receiver busy",
        "the receiver is busy; retry after the time in Retry-After");
    /// 400: the body could not be read.
    BODY_UNREADABLE = ("body-unreadable", 400, "Webhook body unreadable",
        "the webhook body could not be read");
    /// 404: the request names no project the receiver serves.
    UNKNOWN_PROJECT = ("unknown-project", 404, "Unknown webhook project",
        "the request does not name a project this receiver serves");
    /// 409: another copy of this delivery is being handled; retry after `Retry-After`.
    DUPLICATE_IN_PROGRESS = ("duplicate-in-progress", 409, "Webhook delivery in progress",
        "another copy of this delivery is being handled; retry after the time in Retry-After");
    /// 503: the replay guard's backend cannot be reached; retry after `Retry-After`.
    REPLAY_GUARD_UNAVAILABLE = ("replay-guard-unavailable", 503, "Duplicate check unavailable",
        "the receiver cannot check for duplicates now; retry after the time in Retry-After");
    /// 408: the request took longer than the server allows.
    REQUEST_TIMEOUT = ("request-timeout", 408, "Request Timeout",
        "the request took longer than the server allows");
    /// 400: a verified body is not the JSON the handler expects.
    INVALID_JSON = ("invalid-json", 400, "Invalid webhook JSON",
        "the verified body is not the expected JSON");
    /// 401: no credentials, or credentials that are not valid (which, is not said).
    UNAUTHORIZED = ("unauthorized", 401, "Unauthorized",
        "valid credentials are required: an x-api-key header or Basic clientId:clientSecret");
    /// 403: the credentials are valid but lack a scope.
    FORBIDDEN = ("forbidden", 403, "Forbidden", "the credentials do not have the scope");
    /// 404: no such resource among the caller's.
    NOT_FOUND = ("not-found", 404, "Not found", "no resource with this id");
    /// 400: a request body or parameter is not what the endpoint takes.
    BAD_REQUEST = ("bad-request", 400, "Bad request",
        "the request is not what the endpoint takes");
    /// 409: the change would break a limit or a rule of the current state.
    CONFLICT = ("conflict", 409, "Conflict", "the change conflicts with the current state");
    /// 415: a body not sent as `application/json`.
    UNSUPPORTED_MEDIA_TYPE = ("unsupported-media-type", 415, "Unsupported media type",
        "a request body must be sent as application/json");
    /// 429: too many requests; `Retry-After` says when to try again.
    RATE_LIMITED = ("rate-limited", 429, "Too many requests",
        "too many requests; retry after the time in Retry-After");
    /// 404: no endpoint has this path.
    UNKNOWN_ROUTE = ("unknown-route", 404, "Not found", "no endpoint has this path");
    /// 405: the endpoint does not take this method.
    METHOD_NOT_ALLOWED = ("method-not-allowed", 405, "Method not allowed",
        "the endpoint does not take this method");
    /// 503: a dependency (the store) does not answer.
    NOT_READY = ("not-ready", 503, "Not ready", "the store does not answer");
    /// 502: a verified delivery's upstream could not be reached or broke off its answer.
    UPSTREAM_UNAVAILABLE = ("upstream-unavailable", 502, "Bad Gateway",
        "the delivery was verified but the upstream could not be reached or broke off its answer");
    /// 504: a verified delivery's upstream did not answer in time.
    UPSTREAM_TIMEOUT = ("upstream-timeout", 504, "Gateway Timeout",
        "the delivery was verified but the upstream did not answer in time");
    /// 502: a verified delivery's upstream is not an allowed destination.
    UPSTREAM_REFUSED = ("upstream-refused", 502, "Bad Gateway",
        "the delivery was verified but its upstream is not an allowed destination");
    /// 503: the shared store cannot be reached; nothing was changed.
    UNAVAILABLE = ("unavailable", 503, "Service unavailable",
        "the store cannot be reached; nothing was changed: try again later");
    /// 500: the request could not be completed; nothing was changed.
    INTERNAL = ("internal", 500, "Internal error",
        "the request could not be completed; nothing was changed");
}

impl Kind {
    /// The kind whose `type` ends with `slug`.
    pub fn named(slug: &str) -> Option<&'static Kind> {
        Self::ALL.iter().find(|k| k.slug == slug)
    }

    /// The last part of the `type` URI.
    pub const fn slug(&self) -> &'static str {
        self.slug
    }

    /// The `type` URI: [`TYPE_PREFIX`] and the slug.
    pub fn type_uri(&self) -> String {
        format!("{TYPE_PREFIX}{}", self.slug)
    }

    /// The `title`.
    pub fn title(&self) -> &'static str {
        self.title
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The `detail` sent when nothing more specific may be said.
    pub fn generic_detail(&self) -> &'static str {
        self.detail
    }
}

/// An RFC 9457 `application/problem+json` answer of one [`Kind`], with its members and headers.
///
/// The `detail` never holds a secret, a key or a credential.
///
/// # Examples
///
/// ```
/// use http::StatusCode;
/// use webhook_guard::problem::Problem;
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
    /// A problem of `kind` with `detail`.
    pub fn new(kind: &Kind, detail: impl Into<String>) -> Self {
        let mut document = Map::new();
        document.insert("type".into(), Value::from(kind.type_uri()));
        document.insert("title".into(), Value::from(kind.title));
        document.insert("status".into(), Value::from(kind.status));
        document.insert("detail".into(), Value::from(detail.into()));
        Self {
            status: kind.status(),
            document,
            headers: Vec::new(),
        }
    }

    /// A problem of `kind` with its generic detail.
    pub fn of(kind: &Kind) -> Self {
        Self::new(kind, kind.detail)
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
            &Kind::RATE_LIMITED,
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
        Self::of(&Kind::UNAUTHORIZED)
            .with("realm", realm)
            .with("scope", scope)
    }

    /// 403: the credentials are valid but lack `scope`.
    pub fn forbidden(scope: &str) -> Self {
        Self::new(
            &Kind::FORBIDDEN,
            format!("the credentials do not have the scope {scope}"),
        )
        .with("scope", scope)
    }

    /// 404 for a `resource_type` with id `resource_id` that does not exist (or belongs to
    /// another integrator, which is not said).
    pub fn not_found(resource_type: &str, resource_id: &str) -> Self {
        Self::new(&Kind::NOT_FOUND, format!("no {resource_type} with this id"))
            .with("resourceType", resource_type)
            .with("resourceId", resource_id)
    }

    /// 400 for a request body or parameter that is not what the endpoint takes.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(&Kind::BAD_REQUEST, detail)
    }

    /// 409: the change would break a limit or a rule of the current state.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(&Kind::CONFLICT, detail)
    }

    /// 500: the change could not be made (the store failed); nothing changed. The cause is
    /// logged, not sent.
    pub fn internal() -> Self {
        Self::of(&Kind::INTERNAL)
    }

    /// 503: the shared store cannot be reached; nothing was changed. Webhooks are still
    /// verified with the keys this instance holds.
    pub fn unavailable() -> Self {
        Self::of(&Kind::UNAVAILABLE)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The problem document.
    pub fn document(&self) -> &Map<String, Value> {
        &self.document
    }

    /// Adds a header to the answer (`Retry-After`, …).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The `application/problem+json` response (with axum, its `IntoResponse` gives the same
    /// with axum's body type).
    pub fn into_http_response(self) -> Response<Full<Bytes>> {
        let mut response = problem_response(self.status, &Value::Object(self.document));
        for (name, value) in self.headers {
            response.headers_mut().append(name, value);
        }
        response
    }
}

/// `status` with `problem` as its `application/problem+json` body: the one writer of problem
/// documents.
pub(crate) fn problem_response(status: StatusCode, problem: &Value) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(problem).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

#[cfg(any(feature = "axum", feature = "server"))]
impl axum::response::IntoResponse for Problem {
    fn into_response(self) -> axum::response::Response {
        self.into_http_response().map(axum::body::Body::new)
    }
}

//! What the handlers take from a request (path ids, a JSON body, query parameters) and how
//! they answer a failure: each a problem document with the request's path as `instance`.

use super::*;

/// What a handler answers: the success or the problem document, both as responses.
pub(super) type Reply = Result<Response, Response>;

/// Runs a management-plane call (which may wait for the disk) off the async workers.
pub(super) async fn blocking<T: Send + 'static>(
    admin: Admin,
    call: impl FnOnce(&Admin) -> Result<T, AdminError> + Send + 'static,
) -> Result<T, AdminError> {
    match tokio::task::spawn_blocking(move || crate::store::on_blocking_thread(|| call(&admin)))
        .await
    {
        Ok(result) => result,
        Err(e) => Err(AdminError::Interrupted(e.to_string())),
    }
}

/// [`blocking`], with a failure answered as its problem document for the request at `uri`.
pub(super) async fn run<T: Send + 'static>(
    admin: Admin,
    uri: &Uri,
    call: impl FnOnce(&Admin) -> Result<T, AdminError> + Send + 'static,
) -> Result<T, Response> {
    blocking(admin, call).await.map_err(|e| fail(uri, e))
}

/// An error's problem document with the request's path as `instance`; store failures logged.
pub(super) fn fail(uri: &Uri, e: AdminError) -> Response {
    if e.status().is_server_error() {
        tracing::error!(error = %e, path = uri.path(), "admin request failed; nothing changed");
    }
    e.problem().instance(uri.path()).into_response()
}

/// A problem in the request itself, answered with its path as `instance`.
pub(super) fn refuse(uri: &Uri) -> impl FnOnce(Problem) -> Response + '_ {
    move |p| p.instance(uri.path()).into_response()
}

/// The `{project_id}` of a route, as it is in the path: ids are never percent-decoded, here as
/// on the webhook route, so one id has one spelling. Text that is no project id (a `%` in it,
/// a character ids never hold) names no project: 404, as an unknown id.
pub(super) struct ProjectParam(pub(super) ProjectId);

/// The `{id}` of an API-key route, read as [`ProjectParam`] is.
pub(super) struct ApiKeyParam(pub(super) ApiKeyId);

/// The route's one path parameter as sent, or the 404 problem document for `resource`. Every
/// route with an id has it as the third segment (`/v1/projects/{id}`,
/// `/v1/external-support/{id}/…`, `/v1/api-keys/{id}`); axum's captures are percent-decoded,
/// so the segment is read from the path itself.
pub(super) async fn path_param<S: Send + Sync>(
    parts: &mut http::request::Parts,
    _state: &S,
    resource: &str,
) -> Result<String, Response> {
    let path = parts.uri.path();
    match path.split('/').nth(3) {
        Some(id) if !id.is_empty() && !id.contains('%') => Ok(id.to_owned()),
        _ => Err(Problem::not_found(resource, "")
            .instance(path)
            .into_response()),
    }
}

/// The 404 of an id that names nothing, as [`Admin`] answers an unknown one.
pub(super) fn unknown(parts: &http::request::Parts, resource: &'static str, id: &str) -> Response {
    AdminError::NotFound {
        resource,
        id: id.to_owned(),
    }
    .problem()
    .instance(parts.uri.path())
    .into_response()
}

impl<S: Send + Sync> FromRequestParts<S> for ProjectParam {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let id = path_param(parts, state, "project").await?;
        ProjectId::parse(&id)
            .map(Self)
            .map_err(|_| unknown(parts, "project", &id))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApiKeyParam {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let id = path_param(parts, state, "apiKey").await?;
        ApiKeyId::parse(&id)
            .map(Self)
            .map_err(|_| unknown(parts, "apiKey", &id))
    }
}

/// A request body of type `T`: absent (then `T::default()`), or one JSON object of at most
/// [`MAX_ADMIN_BODY`] bytes sent as `application/json`, read by the crate's one JSON reader.
pub(super) struct Body<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let path = request.uri().path().to_owned();
        let problem = |p: Problem| p.instance(&path).into_response();
        let mut types = request.headers().get_all(header::CONTENT_TYPE).iter();
        let content_type = types.next().cloned();
        if types.next().is_some() {
            return Err(problem(
                Problem::bad_request("the request has more than one Content-Type header")
                    .with("field", "content-type"),
            ));
        }
        let bytes: Bytes = match Limited::new(request.into_body(), MAX_ADMIN_BODY)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(problem(Problem::new(
                    &Kind::BODY_TOO_LARGE,
                    format!("the body is larger than {MAX_ADMIN_BODY} bytes"),
                )))
            }
            Err(_) => {
                return Err(problem(Problem::bad_request("the body could not be read")));
            }
        };
        // `null` is no body, as an optional body's schema allows.
        if bytes.is_empty() || bytes.trim_ascii() == b"null" {
            return Ok(Self(T::default()));
        }
        let json = content_type
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(problem(Problem::of(&Kind::UNSUPPORTED_MEDIA_TYPE)));
        }
        // serde reads a struct from an array too (by position): only an object is a body.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(problem(Problem::bad_request(
                "the body must be a JSON object",
            )));
        }
        crate::json::deserialize::<T>(&bytes)
            .map(Self)
            .map_err(|(at, e)| problem(invalid_body(&at, &e)))
    }
}

/// The 400 answer to a body that is not what the endpoint takes, naming the field.
pub(super) fn invalid_body(at: &str, e: &serde_json::Error) -> Problem {
    let text = e.to_string();
    // serde names an unknown or repeated member in backquotes: that member is the field.
    let named = ["unknown field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| text.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let field = named.unwrap_or(at);
    let shown: String = field.chars().take(64).collect();
    let problem = Problem::bad_request(if at == "." {
        format!("the body is not what this endpoint takes: {text}")
    } else {
        format!("{at} {text}")
    });
    if shown == "." || shown.is_empty() {
        problem
    } else {
        problem.with("field", shown)
    }
}

/// Query parameters, each named once and one of `allowed`.
pub(super) fn query_params(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    allowed: &[&str],
) -> Result<Vec<(String, String)>, Problem> {
    let Ok(Query(query)) = query else {
        return Err(Problem::bad_request(
            "the query is not valid percent-encoded UTF-8",
        ));
    };
    for (i, (name, _)) in query.iter().enumerate() {
        let shown: String = name.chars().take(64).collect();
        if !allowed.contains(&name.as_str()) {
            return Err(Problem::bad_request(format!(
                "unknown parameter {shown:?}; this endpoint takes {}",
                allowed.join(", ")
            ))
            .with("field", shown));
        }
        if query[..i].iter().any(|(other, _)| other == name) {
            return Err(
                Problem::bad_request(format!("the parameter {shown} is given twice"))
                    .with("field", shown),
            );
        }
    }
    Ok(query)
}

/// A page size parameter: a whole number (its range is the plane's rule).
pub(super) fn limit_param(name: &str, value: &str) -> Result<usize, Problem> {
    value.parse::<usize>().map_err(|_| {
        Problem::bad_request(format!("{name} must be a whole number")).with("field", name)
    })
}

/// `cursor` and `limit` of a list.
pub(super) fn page_params(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<(Option<String>, usize), Problem> {
    let mut cursor = None;
    let mut limit = DEFAULT_PAGE;
    for (name, value) in query_params(query, &["cursor", "limit"])? {
        match name.as_str() {
            "limit" => limit = limit_param(&name, &value)?,
            _ => cursor = Some(value),
        }
    }
    Ok((cursor, limit))
}

/// `GET /v1/audit`: `cursor` (or its older name `before`), `limit`, `projectId`, `action`.
pub(super) fn audit_query(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<AuditQuery, Problem> {
    let mut audit = AuditQuery::page(None, DEFAULT_AUDIT_PAGE);
    let params = query_params(query, &["cursor", "before", "limit", "projectId", "action"])?;
    for (name, value) in &params {
        let bad = |what: &str| {
            Problem::bad_request(format!("{name} must be {what}")).with("field", name.as_str())
        };
        match name.as_str() {
            "before" | "cursor" => {
                if audit.before.is_some() {
                    return Err(bad("given once (cursor and before are one parameter)"));
                }
                let cursor = value
                    .parse::<i64>()
                    .ok()
                    .and_then(|c| u64::try_from(c).ok())
                    .ok_or_else(|| bad("a cursor from a previous page"))?;
                audit.before = Some(cursor);
            }
            "limit" => audit.limit = limit_param(name, value)?,
            "projectId" => {
                let id = ProjectId::parse(value).map_err(|_| bad("a project id"))?;
                audit = audit.projects(vec![id]);
            }
            _ => {
                let action = value.parse().map_err(|_| bad("one of the audit actions"))?;
                audit = audit.action(action);
            }
        }
    }
    Ok(audit)
}

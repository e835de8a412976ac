use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::error::VerifyError;
use crate::problem::{problem_response, Kind, Problem};
use crate::projects::ProjectId;

/// Why the middleware refused a request; turned into an RFC 9457 problem response.
///
/// # Examples
///
/// ```
/// use http::StatusCode;
/// use webhook_guard::middleware::Rejection;
///
/// let rejection = Rejection::BodyTooLarge { limit: 1024 };
/// assert_eq!(rejection.status(), StatusCode::PAYLOAD_TOO_LARGE);
/// let response = rejection.into_response();
/// assert_eq!(response.headers()["content-type"], "application/problem+json");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Verification failed.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The body is larger than the limit (by `Content-Length` or by what was read).
    #[error("body is larger than the {limit}-byte limit")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The bodies already buffered by requests through this layer use up its budget
    /// ([`WebhookLayer::max_buffered_bytes`](super::WebhookLayer::max_buffered_bytes)): answered
    /// 503 with `Retry-After`, so the sender retries later instead of the process running out of
    /// memory.
    #[error("{max}-byte budget for buffered bodies is in use; retry in {retry_after}s")]
    OverCapacity {
        /// The budget in bytes.
        max: usize,
        /// Seconds the sender should wait (`Retry-After`).
        retry_after: u64,
    },
    /// The body could not be read (the client went away or sent a broken body). The transport's
    /// error is logged, not sent back.
    #[error("body could not be read")]
    BodyRead {
        /// The transport's error message, for logs.
        reason: String,
    },
    /// The request names no project this layer serves
    /// ([`WebhookLayer::for_projects`](super::WebhookLayer::for_projects)): no project id where
    /// the [`ProjectSelector`](super::ProjectSelector) looks, an id given twice or not a valid
    /// [`ProjectId`], or one that is not registered. Answered 404 before the body is read.
    #[error("{}", unknown_project(.id.as_ref()))]
    UnknownProject {
        /// The id the request named, when it is a valid project id that is not registered;
        /// `None` when the request names no valid id (its text is not kept: it is the
        /// sender's, of any length).
        id: Option<ProjectId>,
    },
    /// Another copy of this delivery is being handled now (the replay guard holds its
    /// reservation): answered 409 with `Retry-After`, so the sender retries after it finished
    /// or failed.
    #[error("another copy of this delivery is being handled; retry in {retry_after}s")]
    DuplicateInProgress {
        /// Seconds the sender should wait (`Retry-After`).
        retry_after: u64,
    },
    /// The memory replay guard holds its maximum of live entries: answered 503 `over-capacity`
    /// with `Retry-After` rather than forgetting a delivery still within its window.
    #[error("the replay guard holds its maximum of {max} live entries; retry in {retry_after}s")]
    ReplayGuardFull {
        /// The most entries the guard holds.
        max: usize,
        /// Seconds the sender should wait (`Retry-After`).
        retry_after: u64,
    },
    /// The replay guard's backend is unavailable and the layer fails closed
    /// ([`Outage::FailClosed`](crate::replay::Outage::FailClosed)): answered 503 with
    /// `Retry-After`.
    #[error("the replay guard is unavailable; retry in {retry_after}s")]
    ReplayGuardUnavailable {
        /// Seconds the sender should wait (`Retry-After`).
        retry_after: u64,
    },
}

/// The specific text of [`Rejection::UnknownProject`].
fn unknown_project(id: Option<&ProjectId>) -> String {
    match id {
        Some(id) => format!("no project {id} is registered"),
        None => "the request names no valid project id".to_owned(),
    }
}

/// The kinds the layer answers, in the order its rejection counts are kept; their titles,
/// statuses and generic details are in the crate's one table ([`Kind`]).
const LAYER_KINDS: [Kind; 14] = [
    Kind::MISSING_HEADER,
    Kind::DUPLICATE_HEADER,
    Kind::MALFORMED_HEADER,
    Kind::URL_UNKNOWN,
    Kind::MISCONFIGURED,
    Kind::MALFORMED_BODY,
    Kind::TIMESTAMP_OUT_OF_TOLERANCE,
    Kind::INVALID_SIGNATURE,
    Kind::BODY_TOO_LARGE,
    Kind::OVER_CAPACITY,
    Kind::BODY_UNREADABLE,
    Kind::UNKNOWN_PROJECT,
    Kind::DUPLICATE_IN_PROGRESS,
    Kind::REPLAY_GUARD_UNAVAILABLE,
];

/// Every [`Rejection::kind`], in the order of [`LAYER_KINDS`].
pub(crate) const KINDS: [&str; LAYER_KINDS.len()] = {
    let mut kinds = [""; LAYER_KINDS.len()];
    let mut i = 0;
    while i < LAYER_KINDS.len() {
        kinds[i] = LAYER_KINDS[i].slug();
        i += 1;
    }
    kinds
};

/// The position of `kind` in [`KINDS`].
pub(crate) fn slot(kind: &str) -> Option<usize> {
    KINDS.iter().position(|k| *k == kind)
}

impl Rejection {
    /// Every value [`kind`](Rejection::kind) returns.
    pub const KINDS: &'static [&'static str] = &KINDS;

    /// The response status: 400 for malformed requests, 401 for failed authentication, 404 for
    /// an unknown project, 409 for a delivery another copy of which is being handled, 413 for an
    /// oversized body, 500 for a misconfigured scheme, 503 when the layer's budget for buffered
    /// bodies is in use or the replay guard is full or unavailable.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Verify(VerifyError::Misconfigured { .. }) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Verify(e) if e.is_malformed() => StatusCode::BAD_REQUEST,
            Self::Verify(_) => StatusCode::UNAUTHORIZED,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::OverCapacity { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::BodyRead { .. } => StatusCode::BAD_REQUEST,
            Self::UnknownProject { .. } => StatusCode::NOT_FOUND,
            Self::DuplicateInProgress { .. } => StatusCode::CONFLICT,
            Self::ReplayGuardFull { .. } | Self::ReplayGuardUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// A stable identifier of the kind of problem, used as the last part of the problem `type`;
    /// one of [`Rejection::KINDS`].
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Verify(VerifyError::MissingHeader { .. }) => "missing-header",
            Self::Verify(VerifyError::DuplicateHeader { .. }) => "duplicate-header",
            Self::Verify(VerifyError::MalformedHeader { .. })
            | Self::Verify(VerifyError::ContradictsBody { .. }) => "malformed-header",
            Self::Verify(VerifyError::UrlRequired { .. }) => "url-unknown",
            Self::Verify(VerifyError::Misconfigured { .. }) => "misconfigured",
            Self::Verify(VerifyError::MalformedBody { .. })
            | Self::Verify(VerifyError::TooManyParameters { .. }) => "malformed-body",
            Self::Verify(VerifyError::TimestampTooOld { .. })
            | Self::Verify(VerifyError::TimestampInFuture { .. }) => "timestamp-out-of-tolerance",
            Self::Verify(_) => "invalid-signature",
            Self::BodyTooLarge { .. } => "body-too-large",
            Self::OverCapacity { .. } => "over-capacity",
            Self::BodyRead { .. } => "body-unreadable",
            Self::UnknownProject { .. } => "unknown-project",
            Self::DuplicateInProgress { .. } => "duplicate-in-progress",
            Self::ReplayGuardFull { .. } => "over-capacity",
            Self::ReplayGuardUnavailable { .. } => "replay-guard-unavailable",
        }
    }

    /// A short human summary, the problem `title`.
    pub fn title(&self) -> &'static str {
        self.problem_type().title()
    }

    /// The same sentence for every rejection of a kind, the problem `detail` sent by default.
    ///
    /// The specific text ([`Display`](std::fmt::Display)) tells more than a sender needs and an
    /// attacker should learn: how many live keys were tried (a count going from 1 to 2 shows a
    /// rotation in its grace period), the server's clock to the second, the MAC's length. It is
    /// logged at debug and sent only with
    /// [`WebhookLayer::detailed_rejections`](super::WebhookLayer::detailed_rejections).
    pub fn generic_detail(&self) -> &'static str {
        self.problem_type().generic_detail()
    }

    /// This rejection's row of the crate's table; `kind` returns only the layer's kinds.
    fn problem_type(&self) -> &'static Kind {
        Kind::named(self.kind()).unwrap_or(&Kind::INVALID_SIGNATURE)
    }

    /// The RFC 9457 problem document: `type`, `title`, `status` and the
    /// [generic `detail`](Rejection::generic_detail).
    pub fn problem(&self) -> serde_json::Value {
        self.problem_with(self.generic_detail())
    }

    /// The problem document with the specific `detail` (this rejection's
    /// [`Display`](std::fmt::Display) text), for development.
    pub fn detailed_problem(&self) -> serde_json::Value {
        self.problem_with(&self.to_string())
    }

    fn problem_with(&self, detail: &str) -> serde_json::Value {
        serde_json::Value::Object(Problem::new(self.problem_type(), detail).document().clone())
    }

    /// The default response: the status and the [problem document](Rejection::problem) as
    /// `application/problem+json`.
    /// `409` and `503` answers carry `Retry-After`.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        self.respond(&self.problem())
    }

    /// The response with the [specific detail](Rejection::detailed_problem).
    pub fn into_detailed_response(self) -> Response<Full<Bytes>> {
        self.respond(&self.detailed_problem())
    }

    fn respond(&self, problem: &serde_json::Value) -> Response<Full<Bytes>> {
        let mut response = problem_response(self.status(), problem);
        if let Self::OverCapacity { retry_after, .. }
        | Self::DuplicateInProgress { retry_after }
        | Self::ReplayGuardFull { retry_after, .. }
        | Self::ReplayGuardUnavailable { retry_after } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        response
    }
}

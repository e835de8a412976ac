//! [`AdminError`]: why a management-plane call failed, and its problem document.

use std::time::Duration;

use http::StatusCode;

use crate::keyring::{CommitError, RotationError};
use crate::problem::Problem;
use crate::store::StoreError;

/// Why a management-plane call failed. Each has its problem document
/// ([`AdminError::problem`]); nothing was changed when one is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// No such resource, or it belongs to another integrator (which is not said).
    #[error("no {resource} with id {id}")]
    NotFound {
        /// `project`, `apiKey` or `integrator`.
        resource: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The credentials lack a scope.
    #[error("the credentials do not have the scope {scope}")]
    Forbidden {
        /// The scope.
        scope: String,
    },
    /// The request asks for something invalid.
    #[error("{0}")]
    Invalid(String),
    /// One field of the request is invalid.
    #[error("{field}: {reason}")]
    Field {
        /// The field, as the API names it (`name`, `expiresInSeconds`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The credential made more changes than its rate allows; try again after `retry_after`.
    #[error("too many changes; retry in {} s", retry_after.as_secs())]
    RateLimited {
        /// When the next change will be accepted.
        retry_after: Duration,
    },
    /// The change would break a limit (live keys, API keys).
    #[error("{0}")]
    Conflict(String),
    /// The store failed; the change was not made.
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    /// A new secret could not be generated.
    #[error("a new secret could not be generated: {0}")]
    Random(String),
    /// The call stopped before it finished (its thread panicked or the runtime shut down);
    /// whether a change was made is in the audit log.
    #[error("the call did not finish: {0}")]
    Interrupted(String),
}

impl AdminError {
    /// The RFC 9457 answer. Store and random failures say nothing of their cause (it is logged).
    pub fn problem(&self) -> Problem {
        match self {
            Self::NotFound { resource, id } => Problem::not_found(resource, id),
            Self::Forbidden { scope } => Problem::forbidden(scope),
            Self::Invalid(detail) => Problem::bad_request(detail.clone()),
            Self::Field { field, reason } => {
                Problem::bad_request(format!("{field} {reason}")).with("field", *field)
            }
            Self::RateLimited { retry_after } => Problem::too_many_requests(*retry_after),
            Self::Conflict(detail) => Problem::conflict(detail.clone()),
            Self::Store(StoreError::Unavailable { .. }) => Problem::unavailable(),
            Self::Store(StoreError::Conflict { .. }) => {
                Problem::conflict("another instance changed it meanwhile; try again")
            }
            Self::Store(_) | Self::Random(_) | Self::Interrupted(_) => Problem::internal(),
        }
    }

    /// The status of [`problem`](AdminError::problem).
    pub fn status(&self) -> StatusCode {
        self.problem().status()
    }
}

impl From<RotationError> for AdminError {
    fn from(e: RotationError) -> Self {
        match e {
            RotationError::TooManyKeys { .. } => Self::Conflict(e.to_string()),
            RotationError::Secret(e) => Self::Random(e.to_string()),
            e => Self::Invalid(e.to_string()),
        }
    }
}

impl From<CommitError<StoreError>> for AdminError {
    fn from(e: CommitError<StoreError>) -> Self {
        match e {
            CommitError::Refused(e) => e.into(),
            CommitError::Persist(e) => Self::Store(e),
        }
    }
}

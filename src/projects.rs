//! Many integrations behind one receiver: project ids and the registry of their verifiers.

use std::fmt;

use crate::keyring::random_u64;
use crate::text::ShortStr;

/// Longest project id, in bytes.
pub const MAX_PROJECT_ID_LEN: usize = 64;

/// The non-secret name of one project (one integration): 1 to [`MAX_PROJECT_ID_LEN`] ASCII
/// letters, digits, `-` and `_`, so it is safe in a URL path, a header and a log line.
///
/// Generated ids look like `prj_3f9a0c1d2e4b5a69`.
///
/// # Examples
///
/// ```
/// use webhook_guard::ProjectId;
///
/// assert_eq!(ProjectId::parse("shop-eu")?.as_str(), "shop-eu");
/// assert!(ProjectId::parse("../etc/passwd").is_err());
/// assert!(ProjectId::random().as_str().starts_with("prj_"));
/// # Ok::<(), webhook_guard::ProjectIdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectId(ShortStr);

/// Why a text is not a [`ProjectId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectIdError {
    /// The id is empty.
    #[error("project id is empty")]
    Empty,
    /// The id is longer than [`MAX_PROJECT_ID_LEN`].
    #[error("project id is {len} bytes long, more than the limit of {MAX_PROJECT_ID_LEN}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The id has a character other than ASCII letters, digits, `-` and `_`.
    #[error("project id has a character other than ASCII letters, digits, '-' and '_'")]
    BadCharacter,
}

impl ProjectId {
    /// Checks `id` and makes it a project id.
    ///
    /// # Errors
    ///
    /// [`ProjectIdError`] for an empty or overlong id, or one with other characters.
    pub fn parse(id: &str) -> Result<Self, ProjectIdError> {
        match id.len() {
            0 => Err(ProjectIdError::Empty),
            len if len > MAX_PROJECT_ID_LEN => Err(ProjectIdError::TooLong { len }),
            _ if !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                Err(ProjectIdError::BadCharacter)
            }
            _ => Ok(Self(ShortStr::new(id))),
        }
    }

    /// A fresh random id, `prj_` and 16 hex digits.
    pub fn random() -> Self {
        Self(ShortStr::new(&format!("prj_{:016x}", random_u64())))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

//! The management plane: integrators (tenants), their projects' signing secrets, API keys and
//! API secrets, kept in a durable [`Store`](crate::store::Store) and served as the platforms'
//! admin API.
//!
//! A request reads top to bottom: [`ApiKeyLayer`](credentials::ApiKeyLayer) (who is calling) →
//! route (what they ask) → store transaction (durable first) → the in-memory registry swaps
//! the project's keyring (memory second) → response. The verify path never touches the store.

use std::fmt;

use crate::keyring::random_u64;
use crate::text::ShortStr;

pub mod console;
pub mod credentials;
mod plane;
mod problem;
mod routes;
mod throttle;
mod wire;

pub use plane::{
    Admin, AdminBuilder, AdminError, NewApiKey, NewIntegrator, NewProject, Page, Project,
    Regenerated, DEFAULT_PAGE, DEFAULT_WRITES_PER_SECOND, DEFAULT_WRITE_BURST, MAX_API_KEYS,
    MAX_API_KEY_LIFETIME, MAX_AUDIT_PAGE, MAX_GRACE, MAX_KEY_PROJECTS, MAX_NAME_CHARS, MAX_PAGE,
    MAX_PROJECTS, SCHEMES,
};
pub use problem::Problem;
pub use routes::{router, MAX_ADMIN_BODY};

/// The public id of one integrator (tenant), its Basic-auth `clientId`: `int_` and 16 hex
/// digits. Everything an integrator owns (projects, API keys, its API secret) is reached only
/// with its own credentials.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IntegratorId(ShortStr);

impl IntegratorId {
    /// An id with the given text, as a store reads it back.
    pub fn new(id: &str) -> Self {
        Self(ShortStr::new(id))
    }

    /// A fresh random id.
    pub fn random() -> Self {
        Self(ShortStr::new(&format!("int_{:016x}", random_u64())))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for IntegratorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

impl fmt::Display for IntegratorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

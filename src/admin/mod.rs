//! The management plane: integrators (tenants), their projects' signing secrets, API keys and
//! API secrets, kept in a durable [`Store`](crate::store::Store) and served as the platforms'
//! admin API.
//!
//! A request reads top to bottom: [`ApiKeyLayer`](credentials::ApiKeyLayer) (who is calling) →
//! route (what they ask) → store transaction (durable first) → the in-memory registry swaps
//! the project's keyring (memory second) → response. The verify path never touches the store.

mod app;
pub mod console;
pub mod credentials;
mod feed;
mod openapi;
mod plane;
mod routes;
mod throttle;
mod wire;

pub use crate::problem::Problem;
pub use crate::store::{ApiKeyId, ApiKeyRow, IntegratorId};
pub use app::{app, App};
pub use openapi::document as openapi_document;
pub use plane::{
    Admin, AdminBuilder, AdminError, NewApiKey, NewIntegrator, NewProject, Page, Project,
    Regenerated, DEFAULT_PAGE, DEFAULT_WRITES_PER_SECOND, DEFAULT_WRITE_BURST, MAX_API_KEYS,
    MAX_API_KEY_LIFETIME, MAX_AUDIT_PAGE, MAX_GRACE, MAX_KEY_PROJECTS, MAX_NAME_CHARS, MAX_PAGE,
    MAX_PROJECTS, SCHEMES,
};
pub use routes::{max_concurrent_admin_requests, router, MAX_ADMIN_BODY};

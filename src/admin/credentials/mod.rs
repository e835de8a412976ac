//! API keys, integrators' API secrets, and the layer that requires one of them.
//!
//! # What a key looks like
//!
//! An API key is 65 characters, in the shape of GitHub's `ghp_` tokens:
//!
//! ```text
//! wgk_ 7GkQ2mZp9aXc 3Yb1…(43 characters)…Qz 0aB9cD
//! └┬─┘ └────┬─────┘ └────────┬─────────────┘ └─┬──┘
//! prefix  key id         secret            checksum
//! ```
//!
//! * `wgk_`: a fixed prefix, so secret scanners (GitHub's push protection, trufflehog, …)
//!   recognise a leaked key without false positives, and people see what it is.
//! * the key id: 12 random base62 characters. It is not secret: it names the key in lists and
//!   logs ([`mask_api_key`]) and finds its record without a scan.
//! * the secret: 32 random bytes from the operating system, written as exactly 43 base62
//!   characters (a big-endian base conversion, zero-padded, so every key has the same length).
//! * the checksum: CRC32 of everything before it, as exactly 6 base62 characters. A mistyped or
//!   truncated key is refused by [`check_api_key`] before any lookup, and a scanner can tell a
//!   real key from a random string that happens to start with `wgk_`.
//!
//! An integrator's API secret (the `clientSecret` of Basic authentication, with its id
//! `int_…` as `clientId`) has the same form with the prefix `wgs_` and no key id: 53
//! characters.
//!
//! # Storage
//!
//! Keys and secrets are shown once, when generated, and never stored: only the SHA-256 digest
//! of the whole token is kept ([`ApiKeyRow::digest`]; for API secrets, the material of the
//! integrator's [`Keyring`], so rotating an API secret with a grace period is a keyring
//! rotation). A presented credential is hashed and its digest compared in constant time.
//!
//! # The layer
//!
//! [`ApiKeyLayer`] authenticates every request with [`Credentials::authenticate`], from an
//! `x-api-key` header or else `Authorization: Basic base64(clientId:clientSecret)`. The
//! [`Caller`] goes into the request's extensions; a request without valid credentials is
//! answered `401` with an `application/problem+json` body (and `WWW-Authenticate: Basic` when
//! Basic was tried). Neither the answer nor the log ever holds the presented credential.
//!
//! # Examples
//!
//! ```
//! use axum::{body::Body, response::Response};
//! use chrono::Utc;
//! use http::{Request, StatusCode};
//! use tower::{service_fn, Layer, ServiceExt};
//! use webhook_guard::admin::credentials::{
//!     generate_api_key, ApiKeyLayer, ApiKeyRow, Caller, Credentials,
//! };
//! use webhook_guard::admin::IntegratorId;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let integrator = IntegratorId::random();
//! let (id, token, digest) = generate_api_key()?;
//! let credentials = Credentials::new();
//! // After the store has committed the record (the digest only; the token is shown once):
//! credentials.insert_api_key(ApiKeyRow::new(id, integrator.clone(), digest, Utc::now()));
//!
//! let app = ApiKeyLayer::new(credentials).realm("example").layer(service_fn(
//!     |request: Request<Body>| async move {
//!         let caller = request.extensions().get::<Caller>().cloned();
//!         let who = caller.map(|c| c.integrator().to_string()).unwrap_or_default();
//!         Ok::<_, std::convert::Infallible>(Response::new(Body::from(who)))
//!     },
//! ));
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! runtime.block_on(async {
//!     let good = Request::get("/v1/projects").header("x-api-key", token.as_str()).body(Body::empty())?;
//!     assert_eq!(app.clone().oneshot(good).await?.status(), StatusCode::OK);
//!
//!     let bad = Request::get("/v1/projects").header("x-api-key", "wgk_nope").body(Body::empty())?;
//!     let answer = app.clone().oneshot(bad).await?;
//!     assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
//!     assert_eq!(answer.headers()["content-type"], "application/problem+json");
//!     Ok(())
//! })
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use http::{header, HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::clock::{Clock, Now, SystemClock};
use crate::keyring::{KeyId, Keyring};
use crate::problem::Problem;
use crate::projects::ProjectId;
use crate::store::IntegratorId;
pub use crate::store::{ApiKeyId, ApiKeyRow};

mod layer;
mod token;

pub use layer::{
    ApiKeyLayer, ApiKeyService, ResponseFuture, DEFAULT_FAILURES_PER_SECOND, DEFAULT_FAILURE_BURST,
};
pub use token::{
    check_api_key, generate_api_key, generate_client_secret, mask_api_key, ApiKeyError,
};

/// The header an API key comes in.
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// `last_used` before any use.
const NEVER: i64 = i64::MIN;

/// Which credential authenticated a request, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialId {
    /// An API key (`x-api-key`).
    ApiKey(ApiKeyId),
    /// The integrator's API secret (Basic), by the id of its key in the integrator's keyring.
    ClientSecret(KeyId),
}

/// Who is calling: put into the request's extensions by [`ApiKeyLayer`].
#[derive(Debug, Clone)]
pub struct Caller {
    integrator: IntegratorId,
    credential: CredentialId,
    projects: Option<Arc<[ProjectId]>>,
}

impl Caller {
    /// The integrator the credential belongs to.
    pub fn integrator(&self) -> &IntegratorId {
        &self.integrator
    }

    /// The credential that authenticated the request.
    pub fn credential(&self) -> &CredentialId {
        &self.credential
    }

    /// The projects the credential is limited to; `None` for every project of the integrator
    /// (an unrestricted API key or the API secret).
    pub fn projects(&self) -> Option<&[ProjectId]> {
        self.projects.as_deref()
    }

    /// Whether the credential may act on project `id`.
    ///
    /// # Errors
    ///
    /// A 403 [`Problem`] with scope `project:<id>` when the key is limited to other projects.
    /// (Whether the project belongs to the integrator at all is the route's check.)
    pub fn require_project(&self, id: &ProjectId) -> Result<(), Problem> {
        match &self.projects {
            Some(projects) if !projects.contains(id) => {
                Err(Problem::forbidden(&format!("project:{id}")))
            }
            _ => Ok(()),
        }
    }
}

/// Why a request was not authenticated. The text never holds the presented credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// Neither an `x-api-key` header nor an `Authorization` header.
    #[error("no credentials: neither x-api-key nor Authorization")]
    Missing,
    /// An `x-api-key` header that is not a valid key.
    #[error("api key refused: {reason}")]
    ApiKey {
        /// What is wrong, in a few words.
        reason: &'static str,
    },
    /// `Authorization: Basic` credentials that are not valid.
    #[error("basic credentials refused: {reason}")]
    Basic {
        /// What is wrong, in a few words.
        reason: &'static str,
    },
    /// An `Authorization` header with a scheme other than Basic.
    #[error("authorization scheme other than basic")]
    UnsupportedScheme,
}

impl AuthFailure {
    /// Whether Basic authentication was tried, so the answer carries a Basic challenge.
    pub fn basic_tried(&self) -> bool {
        matches!(self, Self::Basic { .. })
    }
}

/// One API key in memory: its record and its last use as it changes.
struct Entry {
    record: ApiKeyRow,
    projects: Option<Arc<[ProjectId]>>,
    expires: Option<Now>,
    /// Unix seconds of the last use, [`NEVER`] for never.
    last_used: AtomicI64,
}

impl Entry {
    fn new(record: ApiKeyRow) -> Self {
        Self {
            projects: record.projects.as_deref().map(Arc::from),
            expires: record.expires_at.map(Now::from),
            last_used: AtomicI64::new(record.last_used.map_or(NEVER, |t| t.timestamp())),
            record,
        }
    }

    fn record(&self) -> ApiKeyRow {
        let mut record = self.record.clone();
        let secs = self.last_used.load(Ordering::Relaxed);
        if secs != NEVER {
            record.last_used = DateTime::from_timestamp(secs, 0).or(record.last_used);
        }
        record
    }
}

/// The credentials the admin API accepts, in memory: API keys by id and integrators' API
/// secret keyrings by integrator id.
///
/// Requests read both tables lock-free ([`ArcSwap`]); the admin routes change them after the
/// store has committed, with `rcu`, so concurrent changes never lose one another. Clones share
/// the tables.
#[derive(Clone)]
pub struct Credentials {
    shared: Arc<Shared>,
}

struct Shared {
    api_keys: ArcSwap<HashMap<ApiKeyId, Arc<Entry>>>,
    integrators: ArcSwap<HashMap<IntegratorId, Keyring>>,
    clock: Arc<dyn Clock>,
}

impl Default for Credentials {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("api_keys", &self.shared.api_keys.load().len())
            .field("integrators", &self.shared.integrators.load().len())
            .field("clock", &self.shared.clock)
            .finish()
    }
}

impl Credentials {
    /// No credentials, with the system clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }

    /// No credentials, with `clock` for API keys' expiry and last use. (Integrators' API
    /// secrets expire by their keyring's clock.)
    pub fn with_clock(clock: impl Clock) -> Self {
        Self {
            shared: Arc::new(Shared {
                api_keys: ArcSwap::default(),
                integrators: ArcSwap::default(),
                clock: Arc::new(clock),
            }),
        }
    }

    /// Adds (or replaces) an API key.
    pub fn insert_api_key(&self, record: ApiKeyRow) {
        self.insert_api_keys([record]);
    }

    /// Adds (or replaces) many API keys in one change, as at start-up from the store.
    pub fn insert_api_keys(&self, records: impl IntoIterator<Item = ApiKeyRow>) {
        let entries: Vec<Arc<Entry>> = records
            .into_iter()
            .map(|r| Arc::new(Entry::new(r)))
            .collect();
        self.shared.api_keys.rcu(|keys| {
            let mut keys = HashMap::clone(keys);
            keys.extend(entries.iter().map(|e| (e.record.id, Arc::clone(e))));
            keys
        });
    }

    /// Removes an API key; the next request with it is refused. Whether it was there.
    pub fn remove_api_key(&self, id: &ApiKeyId) -> bool {
        let mut removed = false;
        self.shared.api_keys.rcu(|keys| {
            let mut keys = HashMap::clone(keys);
            removed = keys.remove(id).is_some();
            keys
        });
        removed
    }

    /// The API keys of `integrator`, with their last use, by creation time then id.
    pub fn api_keys(&self, integrator: &IntegratorId) -> Vec<ApiKeyRow> {
        let mut records: Vec<ApiKeyRow> = self
            .shared
            .api_keys
            .load()
            .values()
            .filter(|e| e.record.integrator == *integrator)
            .map(|e| e.record())
            .collect();
        records.sort_by_key(|r| (r.created_at, r.id));
        records
    }

    /// Every API key's id and last use, for writing last uses back to a store.
    pub fn last_uses(&self) -> Vec<(ApiKeyId, DateTime<Utc>)> {
        self.shared
            .api_keys
            .load()
            .values()
            .filter_map(|e| e.record().last_used.map(|at| (e.record.id, at)))
            .collect()
    }

    /// Adds (or replaces) an integrator with the keyring of its API secrets' digests.
    pub fn insert_integrator(&self, id: IntegratorId, secrets: Keyring) {
        self.shared.integrators.rcu(|integrators| {
            let mut integrators = HashMap::clone(integrators);
            integrators.insert(id.clone(), secrets.clone());
            integrators
        });
    }

    /// The ids of every integrator.
    pub fn integrator_ids(&self) -> Vec<IntegratorId> {
        self.shared.integrators.load().keys().cloned().collect()
    }

    /// The keyring of an integrator's API secrets, to rotate or revoke one (the change is seen
    /// by the next request).
    pub fn integrator(&self, id: &IntegratorId) -> Option<Keyring> {
        self.shared.integrators.load().get(id).cloned()
    }

    /// Removes an integrator's API secrets; Basic authentication as it fails from the next
    /// request. Whether it was there. (Its API keys are removed one by one.)
    pub fn remove_integrator(&self, id: &IntegratorId) -> bool {
        let mut removed = false;
        self.shared.integrators.rcu(|integrators| {
            let mut integrators = HashMap::clone(integrators);
            removed = integrators.remove(id).is_some();
            integrators
        });
        removed
    }

    /// Who sent a request with `headers`: an `x-api-key` header, or else `Authorization:
    /// Basic base64(clientId:clientSecret)`.
    ///
    /// # Errors
    ///
    /// [`AuthFailure`] when there are no credentials, or they are duplicated, malformed,
    /// unknown, wrong or expired.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthFailure> {
        if let Some(value) = only(headers, &X_API_KEY).map_err(|()| AuthFailure::ApiKey {
            reason: "more than one x-api-key header",
        })? {
            return self.api_key(value);
        }
        match only(headers, &header::AUTHORIZATION).map_err(|()| AuthFailure::Basic {
            reason: "more than one Authorization header",
        })? {
            Some(value) => self.basic(value),
            None => Err(AuthFailure::Missing),
        }
    }

    fn api_key(&self, value: &HeaderValue) -> Result<Caller, AuthFailure> {
        let token = value.to_str().map_err(|_| AuthFailure::ApiKey {
            reason: "not visible ASCII",
        })?;
        self.authenticate_api_key(token)
    }

    /// Who an API key (`wgk_…`) belongs to, as [`authenticate`](Self::authenticate) finds it in
    /// an `x-api-key` header: for a library caller that has the key itself.
    ///
    /// # Errors
    ///
    /// [`AuthFailure::ApiKey`] for a malformed, unknown, wrong or expired key.
    ///
    /// # Examples
    ///
    /// ```
    /// use webhook_guard::admin::Admin;
    /// use webhook_guard::store::{crypt::Sealer, SqliteStore};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = std::env::temp_dir().join(format!("wg-auth-doc-{}", std::process::id()));
    /// let admin = Admin::builder().open(SqliteStore::open(dir.join("wg.db"), Sealer::plaintext())?)?;
    /// let created = admin.create_integrator()?;
    /// let caller = admin.credentials().authenticate_api_key(&created.api_key.key)?;
    /// assert_eq!(caller.integrator(), &created.id);
    /// assert!(admin.credentials().authenticate_api_key("wgk_not-a-key").is_err());
    /// # drop(admin);
    /// # std::fs::remove_dir_all(dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn authenticate_api_key(&self, token: &str) -> Result<Caller, AuthFailure> {
        let refuse = |reason| AuthFailure::ApiKey { reason };
        let (id, digest) = check_api_key(token).map_err(|e| {
            tracing::debug!(error = %e, "api key malformed");
            refuse("malformed or mistyped")
        })?;
        let keys = self.shared.api_keys.load();
        let entry = keys.get(&id).ok_or_else(|| {
            tracing::debug!(key = %id, "api key unknown");
            refuse("unknown key")
        })?;
        if !bool::from(entry.record.digest.ct_eq(&digest)) {
            tracing::debug!(key = %id, "api key secret does not match");
            return Err(refuse("wrong secret"));
        }
        let now = Now::from(self.shared.clock.unix_now());
        if entry.expires.is_some_and(|expires| now >= expires) {
            tracing::debug!(key = %id, "api key expired");
            return Err(refuse("expired"));
        }
        // Written only when the second changed: readers on many cores share the line.
        if entry.last_used.load(Ordering::Relaxed) != now.secs() {
            entry.last_used.store(now.secs(), Ordering::Relaxed);
        }
        Ok(Caller {
            integrator: entry.record.integrator.clone(),
            credential: CredentialId::ApiKey(id),
            projects: entry.projects.clone(),
        })
    }

    fn basic(&self, value: &HeaderValue) -> Result<Caller, AuthFailure> {
        let refuse = |reason| AuthFailure::Basic { reason };
        let value = value.as_bytes();
        let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
            Some(space) => (&value[..space], &value[space + 1..]),
            None => (value, &[][..]),
        };
        // Auth schemes are case-insensitive (RFC 9110 §11.1, RFC 7617 §2).
        if !scheme.eq_ignore_ascii_case(b"basic") {
            return Err(AuthFailure::UnsupportedScheme);
        }
        let decoded = Zeroizing::new(
            STANDARD
                .decode(rest.trim_ascii())
                .map_err(|_| refuse("not base64"))?,
        );
        let colon = decoded
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| refuse("no colon between clientId and clientSecret"))?;
        let (client_id, secret) = (&decoded[..colon], &decoded[colon + 1..]);
        let client_id = std::str::from_utf8(client_id).map_err(|_| refuse("not UTF-8"))?;
        let secret = std::str::from_utf8(secret).map_err(|_| refuse("not UTF-8"))?;
        self.authenticate_basic(client_id, secret)
    }

    /// Who `client_id` with its API secret is, as [`authenticate`](Self::authenticate) finds
    /// them in an `Authorization: Basic` header: for a library caller that has both.
    ///
    /// # Errors
    ///
    /// [`AuthFailure::Basic`] for an unknown `client_id` or a secret that is none of its live
    /// API secrets (compared in constant time).
    ///
    /// # Examples
    ///
    /// ```
    /// use webhook_guard::admin::Admin;
    /// use webhook_guard::store::{crypt::Sealer, SqliteStore};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = std::env::temp_dir().join(format!("wg-basic-doc-{}", std::process::id()));
    /// let admin = Admin::builder().open(SqliteStore::open(dir.join("wg.db"), Sealer::plaintext())?)?;
    /// let created = admin.create_integrator()?;
    /// let credentials = admin.credentials();
    /// let caller = credentials.authenticate_basic(created.id.as_str(), &created.client_secret)?;
    /// assert!(caller.projects().is_none(), "the API secret is not limited to projects");
    /// assert!(credentials.authenticate_basic(created.id.as_str(), "wrong").is_err());
    /// # drop(admin);
    /// # std::fs::remove_dir_all(dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn authenticate_basic(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Caller, AuthFailure> {
        let refuse = |reason| AuthFailure::Basic { reason };
        let secret = client_secret.as_bytes();
        let integrator = IntegratorId::new(client_id);
        let integrators = self.shared.integrators.load();
        let keyring = integrators
            .get(&integrator)
            .ok_or_else(|| refuse("unknown clientId"))?;
        let digest: [u8; 32] = Sha256::digest(secret).into();
        let key = keyring.matching_secret(&digest).ok_or_else(|| {
            tracing::debug!(integrator = %integrator, "api secret does not match");
            refuse("wrong clientSecret")
        })?;
        Ok(Caller {
            integrator,
            credential: CredentialId::ClientSecret(key),
            projects: None,
        })
    }
}

/// The value of header `name` if it is there once; `Err` when it is there more than once.
fn only<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a HeaderValue>, ()> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (first, None) => Ok(first),
        (Some(_), Some(_)) | (None, Some(_)) => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debug counts what is held and shows no secret.
    #[test]
    fn debug_counts_and_hides_the_secrets() {
        let credentials = Credentials::new();
        let secret = crate::Secret::from_bytes("integrator-api-secret-0123456789").unwrap();
        credentials.insert_integrator(IntegratorId::random(), Keyring::new(secret));
        let shown = format!("{credentials:?}");
        assert!(
            shown.starts_with("Credentials { api_keys: 0, integrators: 1, clock: "),
            "{shown}"
        );
        assert!(!shown.contains("integrator-api-secret"), "{shown}");
    }

    #[test]
    fn basic_schemes_are_told_apart_from_others() {
        let credentials = Credentials::new();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(
            credentials.authenticate(&headers).unwrap_err(),
            AuthFailure::UnsupportedScheme
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basicx abc"),
        );
        assert_eq!(
            credentials.authenticate(&headers).unwrap_err(),
            AuthFailure::UnsupportedScheme
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("BASIC Og=="),
        );
        assert!(credentials
            .authenticate(&headers)
            .unwrap_err()
            .basic_tried());
    }
}

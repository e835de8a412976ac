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
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use arrayvec::ArrayString;
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use http::{header, HeaderMap, HeaderName, HeaderValue, Request};
use pin_project_lite::pin_project;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use tower_layer::Layer;
use tower_service::Service;
use zeroize::Zeroizing;

use super::throttle::Buckets;
use super::Problem;
use crate::clock::{Clock, Now, SystemClock};
use crate::keyring::{KeyId, Keyring};
use crate::projects::ProjectId;
use crate::store::IntegratorId;
pub use crate::store::{ApiKeyId, ApiKeyRow};

/// The prefix of every API key.
const API_KEY_PREFIX: &str = "wgk_";
/// The prefix of every integrator API secret.
const CLIENT_SECRET_PREFIX: &str = "wgs_";
/// Characters of a key id.
const ID_LEN: usize = 12;
/// Random bytes of a secret part.
const SECRET_BYTES: usize = 32;
/// Base62 characters of a secret part: 62^43 > 2^256, so 43 always suffice.
const SECRET_LEN: usize = 43;
/// Base62 characters of a checksum: 62^6 > 2^32.
const CHECKSUM_LEN: usize = 6;
/// Characters of a whole API key: 65.
const API_KEY_LEN: usize = API_KEY_PREFIX.len() + ID_LEN + SECRET_LEN + CHECKSUM_LEN;
/// Characters of a whole API secret: 53.
const CLIENT_SECRET_LEN: usize = CLIENT_SECRET_PREFIX.len() + SECRET_LEN + CHECKSUM_LEN;

/// The base62 digits, in value order.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The header an API key comes in.
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// `last_used` before any use.
const NEVER: i64 = i64::MIN;

/// Why an API key or API secret is not well-formed, or could not be made. The message never
/// includes the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// The token does not start with the expected prefix.
    #[error("the token does not start with {expected}")]
    WrongPrefix {
        /// The prefix expected (`wgk_` or `wgs_`).
        expected: &'static str,
    },
    /// The token (or key id) does not have the fixed length.
    #[error("the token is {len} bytes long, not {expected}")]
    WrongLength {
        /// Its length in bytes.
        len: usize,
        /// The length of every such token.
        expected: usize,
    },
    /// A character is not a base62 digit (`0-9`, `A-Z`, `a-z`).
    #[error("the token has a character other than 0-9, A-Z, a-z at byte {position}")]
    BadCharacter {
        /// Its byte offset.
        position: usize,
    },
    /// The last 6 characters are not the CRC32 of the rest: a typo, or not one of our tokens.
    #[error("the token's checksum does not match; it was mistyped or truncated")]
    ChecksumMismatch,
    /// The operating system's random number generator failed.
    #[error("no random bytes from the operating system: {0}")]
    Random(#[source] getrandom::Error),
}

/// A new API key: its id, the token to show once, and the SHA-256 digest of the token, which
/// is what a store keeps.
///
/// # Errors
///
/// [`ApiKeyError::Random`] when the operating system gives no random bytes.
///
/// # Examples
///
/// ```
/// use webhook_guard::admin::credentials::{check_api_key, generate_api_key, mask_api_key};
///
/// let (id, token, digest) = generate_api_key()?;
/// assert!(token.starts_with("wgk_"));
/// assert_eq!(token.len(), 65);
/// assert_eq!(check_api_key(&token)?, (id, digest));
/// assert!(!mask_api_key(&id).contains(&token[16..]));
/// # Ok::<(), webhook_guard::admin::credentials::ApiKeyError>(())
/// ```
pub fn generate_api_key() -> Result<(ApiKeyId, Zeroizing<String>, [u8; 32]), ApiKeyError> {
    let id = random_id()?;
    let token = generate_token(API_KEY_PREFIX, id.as_str(), API_KEY_LEN)?;
    let digest = sha256(&token);
    Ok((id, token, digest))
}

/// A new integrator API secret (the Basic `clientSecret`, `wgs_` + 43 + 6 characters): the
/// token to show once and its SHA-256 digest, which becomes a key of the integrator's
/// [`Keyring`] (`Secret::from_bytes(digest)`), so it rotates with the keyring's grace periods.
///
/// # Errors
///
/// [`ApiKeyError::Random`] when the operating system gives no random bytes.
///
/// # Examples
///
/// ```
/// use webhook_guard::admin::credentials::generate_client_secret;
/// use webhook_guard::{Keyring, Secret};
///
/// let (secret, digest) = generate_client_secret()?;
/// assert!(secret.starts_with("wgs_"));
/// assert_eq!(secret.len(), 53);
/// let keyring = Keyring::new(Secret::from_bytes(digest)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn generate_client_secret() -> Result<(Zeroizing<String>, [u8; 32]), ApiKeyError> {
    let token = generate_token(CLIENT_SECRET_PREFIX, "", CLIENT_SECRET_LEN)?;
    let digest = sha256(&token);
    Ok((token, digest))
}

/// Checks an API key's form (prefix, length, characters, checksum) without any lookup, and
/// returns its id and the SHA-256 digest of the whole token, to compare with the stored one.
///
/// # Errors
///
/// [`ApiKeyError::WrongPrefix`], [`ApiKeyError::WrongLength`], [`ApiKeyError::BadCharacter`] or
/// [`ApiKeyError::ChecksumMismatch`], checked in this order.
///
/// # Examples
///
/// ```
/// use webhook_guard::admin::credentials::{check_api_key, generate_api_key, ApiKeyError};
///
/// let (_, token, _) = generate_api_key()?;
/// let mut typo = token.to_string();
/// let last = if typo.ends_with('0') { "1" } else { "0" };
/// typo.replace_range(64.., last);
/// assert_eq!(check_api_key(&typo), Err(ApiKeyError::ChecksumMismatch));
/// # Ok::<(), ApiKeyError>(())
/// ```
pub fn check_api_key(token: &str) -> Result<(ApiKeyId, [u8; 32]), ApiKeyError> {
    check_token(token, API_KEY_PREFIX, API_KEY_LEN)?;
    // check_token saw base62 characters of the right length: the id part is an id.
    let id = ApiKeyId::parse(&token[API_KEY_PREFIX.len()..API_KEY_PREFIX.len() + ID_LEN]).map_err(
        |_| ApiKeyError::BadCharacter {
            position: API_KEY_PREFIX.len(),
        },
    )?;
    Ok((id, sha256(token)))
}

/// How a key is shown in lists and logs: `wgk_<id>…`, nothing of the secret.
///
/// # Examples
///
/// ```
/// use webhook_guard::admin::credentials::{mask_api_key, ApiKeyId};
///
/// let id = ApiKeyId::parse("7GkQ2mZp9aXc")?;
/// assert_eq!(mask_api_key(&id), "wgk_7GkQ2mZp9aXc…");
/// # Ok::<(), webhook_guard::store::IdError>(())
/// ```
pub fn mask_api_key(id: &ApiKeyId) -> String {
    format!("{API_KEY_PREFIX}{id}…")
}

/// SHA-256 of a token. A fast unsalted hash is right here, unlike for passwords: the tokens
/// carry 256 random bits, so there is nothing to guess and no dictionary to slow down, and the
/// check stays well under a microsecond per request.
fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// 12 random base62 characters, unbiased (bytes of 248 and above are drawn again).
fn random_id() -> Result<ApiKeyId, ApiKeyError> {
    let mut id = ArrayString::<ID_LEN>::new();
    let mut bytes = [0u8; 32];
    while !id.is_full() {
        getrandom::fill(&mut bytes).map_err(ApiKeyError::Random)?;
        for byte in bytes.iter().filter(|b| **b < 248) {
            if id
                .try_push(char::from(BASE62[usize::from(*byte % 62)]))
                .is_err()
            {
                break;
            }
        }
    }
    ApiKeyId::parse(&id).map_err(|_| ApiKeyError::WrongLength {
        len: id.len(),
        expected: ID_LEN,
    })
}

/// `prefix` + `id` + 43 base62 characters of 32 fresh random bytes + the checksum.
fn generate_token(prefix: &str, id: &str, len: usize) -> Result<Zeroizing<String>, ApiKeyError> {
    let mut random = Zeroizing::new([0u8; SECRET_BYTES]);
    getrandom::fill(random.as_mut()).map_err(ApiKeyError::Random)?;
    let mut digits = Zeroizing::new([0u8; SECRET_LEN]);
    encode_base62(random.as_ref(), digits.as_mut());
    let mut token = Zeroizing::new(String::with_capacity(len));
    token.push_str(prefix);
    token.push_str(id);
    token.extend(digits.iter().map(|&d| char::from(d)));
    let checksum = checksum(token.as_bytes());
    token.extend(checksum.iter().map(|&d| char::from(d)));
    debug_assert_eq!(token.len(), len);
    Ok(token)
}

/// The CRC32 of `body` as 6 base62 characters.
fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut digits = [0u8; CHECKSUM_LEN];
    encode_base62(&crc32fast::hash(body).to_be_bytes(), &mut digits);
    digits
}

/// Writes the big-endian number `bytes` as `out.len()` base62 digits, most significant first,
/// zero-padded. `out` must be long enough for the number (43 digits for 32 bytes).
fn encode_base62(bytes: &[u8], out: &mut [u8]) {
    let mut number = Zeroizing::new(bytes.to_vec());
    for digit in out.iter_mut().rev() {
        // Long division of the whole number by 62; the remainder is the next digit.
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let acc = (remainder << 8) | u32::from(*byte);
            // acc < 62 * 256, so the quotient fits a byte.
            *byte = (acc / 62) as u8;
            remainder = acc % 62;
        }
        *digit = BASE62[remainder as usize];
    }
    debug_assert!(number.iter().all(|&b| b == 0), "out is too short");
}

/// Checks prefix, length, characters and checksum of a token.
fn check_token(token: &str, prefix: &'static str, len: usize) -> Result<(), ApiKeyError> {
    if !token.starts_with(prefix) {
        return Err(ApiKeyError::WrongPrefix { expected: prefix });
    }
    if token.len() != len {
        return Err(ApiKeyError::WrongLength {
            len: token.len(),
            expected: len,
        });
    }
    let bytes = token.as_bytes();
    if let Some(position) = bytes[prefix.len()..]
        .iter()
        .position(|b| !b.is_ascii_alphanumeric())
    {
        return Err(ApiKeyError::BadCharacter {
            position: prefix.len() + position,
        });
    }
    let (body, sum) = bytes.split_at(len - CHECKSUM_LEN);
    // The checksum is computable from the token itself, so comparing it is not secret.
    if sum != checksum(body) {
        return Err(ApiKeyError::ChecksumMismatch);
    }
    Ok(())
}

/// Which credential authenticated a request, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Credential {
    /// An API key (`x-api-key`).
    ApiKey(ApiKeyId),
    /// The integrator's API secret (Basic), by the id of its key in the integrator's keyring.
    ClientSecret(KeyId),
}

/// Who is calling: put into the request's extensions by [`ApiKeyLayer`].
#[derive(Debug, Clone)]
pub struct Caller {
    integrator: IntegratorId,
    credential: Credential,
    projects: Option<Arc<[ProjectId]>>,
}

impl Caller {
    /// The integrator the credential belongs to.
    pub fn integrator(&self) -> &IntegratorId {
        &self.integrator
    }

    /// The credential that authenticated the request.
    pub fn credential(&self) -> &Credential {
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
        let refuse = |reason| AuthFailure::ApiKey { reason };
        let token = value.to_str().map_err(|_| refuse("not visible ASCII"))?;
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
            credential: Credential::ApiKey(id),
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
        std::str::from_utf8(secret).map_err(|_| refuse("not UTF-8"))?;
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
            credential: Credential::ClientSecret(key),
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

/// Failed authentications one client address may make at once before the rate applies.
pub const DEFAULT_FAILURE_BURST: u32 = 20;

/// Failed authentications one client address may make per second, on average, past its burst.
pub const DEFAULT_FAILURES_PER_SECOND: u32 = 1;

/// Client addresses whose failures are counted at once (about 100 bytes each).
const MAX_TRACKED_ADDRESSES: usize = 65_536;

/// A Tower layer that lets through only requests with valid credentials
/// ([`Credentials::authenticate`]), with the [`Caller`] in their extensions.
///
/// Others are answered `401` with a [`Problem`] naming the realm, the scope and the request's
/// path, and two `WWW-Authenticate` challenges (RFC 9110 §11.6.1): `ApiKey header="x-api-key"`
/// and `Basic realm="…", charset="UTF-8"`, Basic first when Basic was tried.
///
/// Failed attempts are counted per client address (the `ConnectInfo<SocketAddr>` the server
/// puts in each request; requests without one are not counted): past
/// [`DEFAULT_FAILURE_BURST`] failures, refilled at [`DEFAULT_FAILURES_PER_SECOND`], the
/// address is answered `429` with `Retry-After` before its credentials are looked at. Other
/// addresses are not slowed. See the [module docs](self) for an example.
#[derive(Debug, Clone)]
pub struct ApiKeyLayer {
    config: Arc<Config>,
}

#[derive(Debug)]
struct Config {
    credentials: Credentials,
    realm: &'static str,
    scope: &'static str,
    basic: HeaderValue,
    api_key: HeaderValue,
    failures: Mutex<Buckets<IpAddr>>,
}

impl ApiKeyLayer {
    /// A layer that authenticates against `credentials`, realm `webhook-guard`, scope `admin`.
    pub fn new(credentials: Credentials) -> Self {
        Self::with(
            credentials,
            "webhook-guard",
            "admin",
            (DEFAULT_FAILURES_PER_SECOND, DEFAULT_FAILURE_BURST),
        )
    }

    fn with(
        credentials: Credentials,
        realm: &'static str,
        scope: &'static str,
        (per_second, burst): (u32, u32),
    ) -> Self {
        Self {
            config: Arc::new(Config {
                credentials,
                realm,
                scope,
                basic: challenge("Basic", realm, ", charset=\"UTF-8\""),
                api_key: challenge("ApiKey", realm, ", header=\"x-api-key\""),
                failures: Mutex::new(Buckets::new(per_second, burst, MAX_TRACKED_ADDRESSES)),
            }),
        }
    }

    fn rate(&self) -> (u32, u32) {
        let failures = self
            .config
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        failures.rate()
    }

    /// The realm named in 401 answers and the challenges. Default: `webhook-guard`.
    pub fn realm(self, realm: &'static str) -> Self {
        let rate = self.rate();
        let config = &self.config;
        Self::with(config.credentials.clone(), realm, config.scope, rate)
    }

    /// The scope named in 401 answers. Default: `admin`.
    pub fn scope(self, scope: &'static str) -> Self {
        let rate = self.rate();
        let config = &self.config;
        Self::with(config.credentials.clone(), config.realm, scope, rate)
    }

    /// How many failed authentications one client address may make: `burst` at once, then
    /// `per_second`. Default: [`DEFAULT_FAILURE_BURST`], [`DEFAULT_FAILURES_PER_SECOND`].
    pub fn failed_attempts(self, per_second: u32, burst: u32) -> Self {
        let config = &self.config;
        Self::with(
            config.credentials.clone(),
            config.realm,
            config.scope,
            (per_second, burst),
        )
    }
}

/// `<scheme> realm="<realm>"<rest>`, with the realm as a valid quoted string.
fn challenge(scheme: &str, realm: &str, rest: &str) -> HeaderValue {
    let mut quoted = String::with_capacity(realm.len());
    for c in realm.chars().filter(|c| *c == ' ' || c.is_ascii_graphic()) {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    HeaderValue::from_str(&format!("{scheme} realm=\"{quoted}\"{rest}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic charset=\"UTF-8\""))
}

impl<S> Layer<S> for ApiKeyLayer {
    type Service = ApiKeyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApiKeyService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service of [`ApiKeyLayer`].
#[derive(Debug, Clone)]
pub struct ApiKeyService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S, B> Service<Request<B>> for ApiKeyService<S>
where
    S: Service<Request<B>, Response = Response> + Clone,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let config = &*self.config;
        let address = request
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        let now = config.credentials.shared.clock.now();
        if let Some(address) = address {
            let failures = config
                .failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Err(retry_after) = failures.check(&address, now) {
                drop(failures);
                tracing::debug!(%address, "too many failed authentications");
                let problem =
                    Problem::too_many_requests(retry_after).instance(request.uri().path());
                return ResponseFuture::answered(axum::response::IntoResponse::into_response(
                    problem,
                ));
            }
        }
        match config.credentials.authenticate(request.headers()) {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                // The service that was driven ready is the one that must be called.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::called(inner.call(request))
            }
            Err(failure) => {
                tracing::debug!(%failure, path = request.uri().path(), "request not authenticated");
                if let Some(address) = address {
                    let mut failures = config
                        .failures
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    // Already checked: this takes the token the check saw.
                    let _ = failures.take(&address, now);
                }
                let problem = Problem::unauthorized(config.realm, config.scope)
                    .instance(request.uri().path());
                let (first, second) = if failure.basic_tried() {
                    (&config.basic, &config.api_key)
                } else {
                    (&config.api_key, &config.basic)
                };
                let problem = problem.challenge(first.clone()).challenge(second.clone());
                ResponseFuture::answered(axum::response::IntoResponse::into_response(problem))
            }
        }
    }
}

pin_project! {
    /// Response future of [`ApiKeyService`]: the inner service's future, or the 401 answer.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Called {
            #[pin]
            future: F,
        },
        Answered {
            response: Option<Response>,
        },
    }
}

impl<F> ResponseFuture<F> {
    fn called(future: F) -> Self {
        Self {
            kind: Kind::Called { future },
        }
    }

    fn answered(response: Response) -> Self {
        Self {
            kind: Kind::Answered {
                response: Some(response),
            },
        }
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { future } => future.poll(cx),
            KindProj::Answered { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| unreachable!("polled after completion")))),
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads base62 digits back as a big-endian number of `len` bytes (the inverse of
    /// `encode_base62`, for the tests only).
    fn decode_base62(digits: &[u8], len: usize) -> Vec<u8> {
        let mut number = vec![0u8; len];
        for &d in digits {
            let mut carry = BASE62.iter().position(|&c| c == d).unwrap() as u32;
            for byte in number.iter_mut().rev() {
                let acc = u32::from(*byte) * 62 + carry;
                *byte = acc as u8;
                carry = acc >> 8;
            }
            assert_eq!(carry, 0, "overflow");
        }
        number
    }

    #[test]
    fn base62_is_fixed_width_big_endian() {
        let mut out = [0u8; SECRET_LEN];
        encode_base62(&[0; 32], &mut out);
        assert_eq!(out, [b'0'; SECRET_LEN]);
        let mut one = [0u8; 32];
        one[31] = 61;
        encode_base62(&one, &mut out);
        assert_eq!(&out[..42], &[b'0'; 42]);
        assert_eq!(out[42], b'z');
        one[31] = 62;
        encode_base62(&one, &mut out);
        assert_eq!(&out[41..], b"10");
        // The largest 32-byte number still fits 43 digits.
        encode_base62(&[0xff; 32], &mut out);
        assert_eq!(decode_base62(&out, 32), vec![0xff; 32]);
    }

    #[test]
    fn base62_round_trips_random_numbers() {
        for _ in 0..200 {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).unwrap();
            let mut out = [0u8; SECRET_LEN];
            encode_base62(&bytes, &mut out);
            assert_eq!(decode_base62(&out, 32), bytes);
        }
        for value in [0u32, 1, 61, 62, 0xdead_beef, u32::MAX] {
            let mut out = [0u8; CHECKSUM_LEN];
            encode_base62(&value.to_be_bytes(), &mut out);
            assert_eq!(decode_base62(&out, 4), value.to_be_bytes());
        }
    }

    #[test]
    fn checksum_is_the_crc32_of_the_rest() {
        let (_, token, _) = generate_api_key().unwrap();
        let (body, sum) = token.as_bytes().split_at(API_KEY_LEN - CHECKSUM_LEN);
        assert_eq!(
            decode_base62(sum, 4),
            crc32fast::hash(body).to_be_bytes().to_vec()
        );
    }

    #[test]
    fn random_ids_use_the_whole_alphabet() {
        let mut seen = [false; 62];
        for _ in 0..200 {
            for c in random_id().unwrap().as_str().bytes() {
                seen[BASE62.iter().position(|&d| d == c).unwrap()] = true;
            }
        }
        assert!(seen.iter().all(|s| *s));
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

    #[test]
    fn realms_are_quoted() {
        assert_eq!(
            challenge("Basic", r#"a "b" \c"#, ", charset=\"UTF-8\""),
            r#"Basic realm="a \"b\" \\c", charset="UTF-8""#
        );
    }
}

//! What a store keeps: the ids and rows of integrators, projects and API keys. The store owns
//! these models (the management plane re-exports them), so a store implementation needs
//! nothing above `store/`.

use std::fmt;

use arrayvec::ArrayString;
use chrono::{DateTime, Utc};

use crate::keyring::{random_u64, KeyId, KeyRecord, KeyRole};
use crate::projects::ProjectId;
use crate::public_key::KeyMaterial;
use crate::secret::Secret;
use crate::text::ShortStr;

/// Characters of an API key id.
pub const API_KEY_ID_LEN: usize = 12;

/// An id that is not of its kind's form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {what}: expected {expected}")]
pub struct IdError {
    what: &'static str,
    expected: &'static str,
}

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

/// The public id of one API key: 12 base62 characters, the part after `wgk_`.
///
/// It is random and not secret: it finds the key's record and names the key in lists and logs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiKeyId(ArrayString<API_KEY_ID_LEN>);

impl ApiKeyId {
    /// Checks `id` (exactly 12 base62 characters) and makes it a key id, as a store reads it
    /// back.
    ///
    /// # Errors
    ///
    /// [`IdError`] for anything but 12 base62 characters.
    ///
    /// # Examples
    ///
    /// ```
    /// use webhook_guard::store::ApiKeyId;
    ///
    /// let id = ApiKeyId::parse("7GkQ2mZp9aXc")?;
    /// assert_eq!(id.as_str(), "7GkQ2mZp9aXc");
    /// assert!(ApiKeyId::parse("7GkQ2mZp9aX-").is_err());
    /// # Ok::<(), webhook_guard::store::IdError>(())
    /// ```
    pub fn parse(id: &str) -> Result<Self, IdError> {
        if id.len() != API_KEY_ID_LEN || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(IdError {
                what: "API key id",
                expected: "12 characters 0-9, A-Z, a-z",
            });
        }
        ArrayString::from(id).map(Self).map_err(|_| IdError {
            what: "API key id",
            expected: "12 characters 0-9, A-Z, a-z",
        })
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// One API key as a store keeps it and the list endpoint shows it: everything but the key.
///
/// `Debug` redacts the digest. There is no `PartialEq`: digests are compared only in constant
/// time, by the admin credentials' check.
#[derive(Clone)]
#[non_exhaustive]
pub struct ApiKeyRow {
    /// The key's id.
    pub id: ApiKeyId,
    /// The integrator that owns the key; a caller with it is that integrator.
    pub integrator: IntegratorId,
    /// A name the integrator gave the key.
    pub name: Option<String>,
    /// SHA-256 of the whole token.
    pub digest: [u8; 32],
    /// When the key was made.
    pub created_at: DateTime<Utc>,
    /// When the key stops being accepted; `None` for never.
    pub expires_at: Option<DateTime<Utc>>,
    /// The projects the key may act on; `None` for every project of the integrator.
    pub projects: Option<Vec<ProjectId>>,
    /// The last time (to the second) a request authenticated with the key, if ever.
    pub last_used: Option<DateTime<Utc>>,
}

impl ApiKeyRow {
    /// A record of key `id` of `integrator` with `digest`, made at `created_at`: no name, no
    /// expiry, every project, never used. Set the other fields on the result.
    pub fn new(
        id: ApiKeyId,
        integrator: IntegratorId,
        digest: [u8; 32],
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            integrator,
            name: None,
            digest,
            created_at,
            expires_at: None,
            projects: None,
            last_used: None,
        }
    }
}

impl fmt::Debug for ApiKeyRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyRow")
            .field("id", &self.id)
            .field("integrator", &self.integrator)
            .field("name", &self.name)
            .field("digest", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("projects", &self.projects)
            .field("last_used", &self.last_used)
            .finish()
    }
}

/// One integrator (tenant) as stored: its id (the Basic `clientId`) and its API secrets, each
/// kept as the SHA-256 digest of the secret (a [`KeyRecord`] whose material is the digest), so
/// its rotations have the keyring's grace periods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IntegratorRow {
    /// The integrator's id.
    pub id: IntegratorId,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its API secrets' digests, current first.
    pub secrets: Vec<KeyRecord>,
    /// The row's version in a store shared by many instances (raised by every change of its
    /// secrets); 0 where the store keeps none (SQLite, one process).
    pub version: u64,
}

impl IntegratorRow {
    /// An integrator row.
    pub fn new(id: IntegratorId, created_at: DateTime<Utc>, secrets: Vec<KeyRecord>) -> Self {
        Self {
            id,
            created_at,
            secrets,
            version: 0,
        }
    }
}

/// One project as stored: who owns it, how its webhooks are signed, and its signing keys.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProjectRow {
    /// The project's id.
    pub id: ProjectId,
    /// The integrator that owns it.
    pub integrator: IntegratorId,
    /// A label for people.
    pub name: Option<String>,
    /// The name of the scheme its webhooks are signed with (`github`, `standard-webhooks`, …).
    pub scheme: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its signing keys, current first.
    pub keys: Vec<KeyRecord>,
    /// The row's version in a store shared by many instances (raised by every change of its
    /// keys); 0 where the store keeps none (SQLite, one process).
    pub version: u64,
    /// Where its verified deliveries are forwarded, if anywhere.
    pub upstream: Option<UpstreamRow>,
}

impl ProjectRow {
    /// A project row.
    pub fn new(
        id: ProjectId,
        integrator: IntegratorId,
        name: Option<String>,
        scheme: String,
        created_at: DateTime<Utc>,
        keys: Vec<KeyRecord>,
    ) -> Self {
        Self {
            id,
            integrator,
            name,
            scheme,
            created_at,
            keys,
            version: 0,
            upstream: None,
        }
    }

    /// The row with its verified deliveries forwarded to `upstream`.
    pub fn upstream(mut self, upstream: Option<UpstreamRow>) -> Self {
        self.upstream = upstream;
        self
    }
}

/// Where a project's verified deliveries are forwarded, as stored: the upstream URL and the
/// gateway-to-upstream secret deliveries are re-signed with, if any (sealed like signing keys).
/// `Debug` redacts the secret.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpstreamRow {
    /// The URL, as checked when it was set.
    pub url: String,
    /// The re-signing secret.
    pub secret: Option<Secret>,
}

impl UpstreamRow {
    /// An upstream at `url`, re-signed with `secret` when given.
    pub fn new(url: String, secret: Option<Secret>) -> Self {
        Self { url, secret }
    }

    /// The re-signing secret as the one key a store keeps for it (owner kind
    /// [`UPSTREAM_KEYS`], key id [`UPSTREAM_KEY`]); none without re-signing.
    pub(crate) fn secret_records(upstream: Option<&Self>) -> Vec<KeyRecord> {
        upstream
            .and_then(|u| u.secret.clone())
            .map(|secret| {
                KeyRecord::new(
                    KeyId::new(UPSTREAM_KEY),
                    KeyRole::Current,
                    Utc::now(),
                    None,
                    secret,
                )
            })
            .into_iter()
            .collect()
    }

    /// The upstream a stored `url` and its stored keys name.
    pub(crate) fn from_stored(url: String, keys: Vec<KeyRecord>) -> Self {
        let secret = keys.into_iter().find_map(|record| match record.material {
            KeyMaterial::Secret(secret) => Some(secret),
            _ => None,
        });
        Self::new(url, secret)
    }
}

/// `keys.owner_kind` of a project's signing keys, in every store and in the sealed values'
/// associated data.
pub(crate) const PROJECT_KEYS: &str = "project";
/// `keys.owner_kind` of an integrator's API secrets.
pub(crate) const INTEGRATOR_KEYS: &str = "integrator";
/// `keys.owner_kind` of a project's re-signing secret (key id [`UPSTREAM_KEY`]).
pub(crate) const UPSTREAM_KEYS: &str = "upstream";
/// The key id of a project's re-signing secret.
pub(crate) const UPSTREAM_KEY: &str = "resign";

/// Everything a store holds but the audit log, as read at startup.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct State {
    /// Every integrator.
    pub integrators: Vec<IntegratorRow>,
    /// Every project.
    pub projects: Vec<ProjectRow>,
    /// Every API key (digests, never keys).
    pub api_keys: Vec<ApiKeyRow>,
    /// The sequence number of the newest audit event the state includes (0 for none): a
    /// follower applies the events after it.
    pub seq: u64,
}

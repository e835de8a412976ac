//! The hot-swappable keyring: one current key plus grace keys, rotated without dropping traffic.
//!
//! Readers ([`Verifier`](crate::Verifier)) take one lock-free snapshot per request. Writers
//! ([`Keyring::rotate`], [`Keyring::revoke`], …) build a new immutable key set and publish it
//! with [`ArcSwap::rcu`], so two concurrent rotations never lose one another.

use std::convert::Infallible;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, TimeZone, Utc};
use std::sync::OnceLock;

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;
#[cfg(feature = "admin")]
use subtle::ConstantTimeEq;

use crate::algorithm::Algorithm;
use crate::clock::{Clock, Now, SystemClock};
#[cfg(any(feature = "ed25519", feature = "ecdsa", feature = "paypal"))]
use crate::public_key::PublicInner;
use crate::public_key::{KeyMaterial, PublicKey, SigningKey};
use crate::secret::{RevealedSecret, Secret, SecretError};
use crate::text::ShortStr;

mod key;

use key::*;
pub(crate) use key::{Entry, Key, KeySet};

/// Default longest grace period: one hour, as the platforms that offer one allow.
pub const DEFAULT_MAX_GRACE: Duration = Duration::from_secs(3600);

/// Default bound on the keys live at once (current plus grace).
pub const DEFAULT_MAX_KEYS: usize = 8;

/// `last_verified` before any verification.
const NEVER: i64 = i64::MIN;

/// A keyed HMAC-SHA256 state.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// A computed MAC, held inline.
pub(crate) type Tag = arrayvec::ArrayVec<u8, 32>;

/// The non-secret name of one key in a [`Keyring`].
///
/// Generated ids look like `key_3f9a0c1d2e4b5a69`; they are random, not derived from the
/// secret, so they can be logged and shown freely.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(ShortStr);

impl KeyId {
    /// An id with the given text.
    ///
    /// # Examples
    ///
    /// ```
    /// use webhook_guard::KeyId;
    ///
    /// let id = KeyId::new("stripe-2026-11");
    /// assert_eq!(id.as_str(), "stripe-2026-11");
    /// ```
    pub fn new(id: impl AsRef<str>) -> Self {
        Self(ShortStr::new(id.as_ref()))
    }

    /// A fresh random id.
    pub fn random() -> Self {
        Self(ShortStr::new(&format!("key_{:016x}", random_u64())))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// A random number for ids (key ids, generated webhook ids). Ids are labels, not secrets: when
/// the OS RNG fails, time plus a counter is unique enough.
pub(crate) fn random_u64() -> u64 {
    static FALLBACK: AtomicU64 = AtomicU64::new(0);
    getrandom::u64().unwrap_or_else(|_| {
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
        nanos ^ FALLBACK.fetch_add(1, Ordering::Relaxed).rotate_left(48)
    })
}

/// Whether a key is the one senders should use now, or an old one still honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// The newest key; it does not expire until rotated away.
    Current,
    /// A previous key, accepted until its `expires_at`.
    Grace,
}

/// What an operator may know about one live key: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key's id.
    pub id: KeyId,
    /// Current or grace.
    pub role: KeyRole,
    /// When the key entered the keyring.
    pub created_at: DateTime<Utc>,
    /// When a grace key stops being accepted; `None` for the current key.
    pub expires_at: Option<DateTime<Utc>>,
    /// The last time a delivery verified with this key (to the second), if ever.
    pub last_verified: Option<DateTime<Utc>>,
}

/// One live key as a durable store keeps it: everything [`KeyInfo`] shows, and the key itself.
///
/// Made by [`Keyring::export`] and turned back into a keyring by [`KeyringBuilder::import`], so
/// a rotation survives a restart. The material is redacted in `Debug` and zeroized on drop
/// (secrets and signing keys); a store reads a secret's bytes only through an explicit
/// [`Secret::reveal`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use webhook_guard::{Keyring, KeyRole, ManualClock, Secret};
///
/// let clock = ManualClock::at_unix(1_700_000_000);
/// let keyring = Keyring::builder().clock(clock.clone()).build(Secret::from_bytes("old")?);
/// keyring.rotate(Secret::from_bytes("new")?, Duration::from_secs(600))?;
///
/// let records = keyring.export();
/// assert_eq!(records[0].role, KeyRole::Current);
/// assert!(!format!("{records:?}").contains("new"));
///
/// // After a restart: the same keys, ids, roles and expiry.
/// let restored = Keyring::builder().clock(clock).import(records)?;
/// assert_eq!(restored.keys(), keyring.keys());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct KeyRecord {
    /// The key's id.
    pub id: KeyId,
    /// Current or grace; exactly one record of a keyring is current, and it comes first.
    pub role: KeyRole,
    /// When the key entered the keyring.
    pub created_at: DateTime<Utc>,
    /// When a grace key stops being accepted; `None` for the current key.
    pub expires_at: Option<DateTime<Utc>>,
    /// The key.
    pub material: KeyMaterial,
}

impl KeyRecord {
    /// A record of key `id` with `material`, as a store reads it back.
    pub fn new(
        id: KeyId,
        role: KeyRole,
        created_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        material: impl Into<KeyMaterial>,
    ) -> Self {
        Self {
            id,
            role,
            created_at,
            expires_at,
            material: material.into(),
        }
    }
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("material", &self.material)
            .finish()
    }
}

/// The outcome of a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rotation {
    /// Id of the new current key.
    pub new_key: KeyId,
    /// Id of the key that was current before.
    pub old_key: KeyId,
    /// When the old key stops being accepted; `None` when it was invalidated at once.
    pub old_expires_at: Option<DateTime<Utc>>,
}

/// Why a keyring change was refused. When it is returned, the keyring is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RotationError {
    /// The grace period is longer than the keyring allows.
    #[error("grace period of {}s is out of range (0..={}s)", requested.as_secs(), max.as_secs())]
    GraceOutOfRange {
        /// The grace period asked for.
        requested: Duration,
        /// The longest allowed.
        max: Duration,
    },
    /// The change would leave more live keys than the keyring allows.
    #[error("{live} keys would be live, more than the limit of {max}; revoke a grace key or wait for one to expire")]
    TooManyKeys {
        /// Keys that would be live after the change.
        live: usize,
        /// The limit.
        max: usize,
    },
    /// No live key has this id.
    #[error("no live key has id {id}")]
    UnknownKey {
        /// The id asked for.
        id: KeyId,
    },
    /// The current key cannot be revoked; rotate to a new key instead.
    #[error("key {id} is the current key; rotate to a new key instead of revoking it")]
    RevokeCurrent {
        /// The current key's id.
        id: KeyId,
    },
    /// A grace key was added with an expiry that has already passed.
    #[error("grace key would expire at {expires_at}, which is not after now ({now})")]
    AlreadyExpired {
        /// The expiry asked for.
        expires_at: DateTime<Utc>,
        /// The keyring's clock at the time.
        now: DateTime<Utc>,
    },
    /// The id is already used by a live key.
    #[error("a live key already has id {id}")]
    DuplicateId {
        /// The id.
        id: KeyId,
    },
    /// A new secret could not be generated.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// Records given to [`KeyringBuilder::import`] do not describe a keyring.
    #[error("key records cannot be imported: {problem}")]
    InvalidRecords {
        /// What is wrong with them.
        problem: &'static str,
    },
}

/// A keyring change worked out but not yet made, handed to the `persist` step of
/// [`Keyring::rotate_durably`], [`Keyring::revoke_durably`] and [`Keyring::end_grace_durably`].
pub struct Pending<'a> {
    before: &'a KeySet,
    entries: &'a [Entry],
}

impl Pending<'_> {
    /// The id of the key that was current before the change.
    pub fn previous_current(&self) -> KeyId {
        self.before.current().id.clone()
    }

    /// The keys the change ends: live before it, gone after it.
    pub fn ended(&self) -> Vec<KeyId> {
        self.before
            .entries
            .iter()
            .map(|e| &e.key.id)
            .filter(|id| !self.entries.iter().any(|e| &e.key.id == *id))
            .cloned()
            .collect()
    }

    /// The key records the keyring holds once the change is made, current first, as
    /// [`Keyring::export`] will then give them.
    pub fn records(&self) -> Vec<KeyRecord> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| record_of(role_at(i), e))
            .collect()
    }
}

impl fmt::Debug for Pending<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("keys", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// Why a durable keyring change was not made. The keyring is unchanged either way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError<E> {
    /// The keyring refused the change; nothing was handed to `persist`.
    #[error(transparent)]
    Refused(#[from] RotationError),
    /// `persist` failed, so the change was not made.
    #[error("the change was not persisted: {0}")]
    Persist(E),
}

impl CommitError<Infallible> {
    /// The refusal, for changes that persist nothing and so cannot fail to.
    fn into_refused(self) -> RotationError {
        match self {
            CommitError::Refused(e) => e,
            CommitError::Persist(never) => match never {},
        }
    }
}

/// The `persist` step of a change kept in memory only.
fn in_memory(_: &Pending<'_>) -> Result<(), Infallible> {
    Ok(())
}

struct Shared {
    /// Held by a writer from working out a change until it is published.
    writer: Mutex<()>,
    set: ArcSwap<KeySet>,
    clock: Arc<dyn Clock>,
    /// The latest instant (µs since the epoch) keys were judged live at, from the clock.
    latest: AtomicI64,
    max_grace: Duration,
    max_keys: usize,
}

/// The shared, hot-swappable set of signing keys: one current key plus grace keys.
///
/// Cloning is cheap (an `Arc`); every clone sees the same keys. Reads never block: a verifier
/// takes one snapshot per request. Changes ([`rotate`](Keyring::rotate),
/// [`regenerate`](Keyring::regenerate), [`revoke`](Keyring::revoke),
/// [`add_grace_key`](Keyring::add_grace_key)) are atomic: a request sees the key set from before
/// or after, never a mix, and concurrent changes never overwrite one another.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use webhook_guard::{KeyRole, Keyring, Secret};
///
/// let keyring = Keyring::new(Secret::from_hex("0123456789abcdef0123456789abcdef")?);
///
/// // The platform regenerated its secret and keeps the old one valid for ten minutes.
/// let rotation = keyring.rotate(Secret::from_hex("fedcba9876543210fedcba9876543210")?,
///                               Duration::from_secs(600))?;
/// assert!(rotation.old_expires_at.is_some());
///
/// let keys = keyring.keys();
/// assert_eq!(keys.len(), 2);
/// assert_eq!(keys[0].role, KeyRole::Current);
/// assert_eq!(keys[1].id, rotation.old_key);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Keyring {
    shared: Arc<Shared>,
}

impl Keyring {
    /// A keyring whose current key is `current`, with the default limits and the system clock.
    pub fn new(current: impl Into<KeyMaterial>) -> Self {
        Self::builder().build(current)
    }

    /// A builder to set the limits and the clock.
    pub fn builder() -> KeyringBuilder {
        KeyringBuilder::default()
    }

    /// Makes `new` the current key.
    ///
    /// With `grace` zero the old current key is invalidated at once: no request is accepted
    /// with it after this call returns, even one that was being verified during the call. With
    /// a positive `grace` it stays valid until `now + grace`, reported in
    /// [`Rotation::old_expires_at`]. Earlier grace keys keep their own expiry. Expired keys are
    /// pruned.
    ///
    /// # Errors
    ///
    /// [`RotationError::GraceOutOfRange`] when `grace` exceeds the maximum (3600 s by
    /// default); [`RotationError::TooManyKeys`] when the live keys would exceed the maximum
    /// (8 by default). The keyring is unchanged on error.
    pub fn rotate(
        &self,
        new: impl Into<KeyMaterial>,
        grace: Duration,
    ) -> Result<Rotation, RotationError> {
        self.rotate_with_id(KeyId::random(), new, grace)
    }

    /// [`rotate`](Keyring::rotate) with an id of the caller's choosing.
    ///
    /// # Errors
    ///
    /// As for [`rotate`](Keyring::rotate), and [`RotationError::DuplicateId`] when a live key
    /// already has `id`.
    pub fn rotate_with_id(
        &self,
        id: KeyId,
        new: impl Into<KeyMaterial>,
        grace: Duration,
    ) -> Result<Rotation, RotationError> {
        self.rotate_durably(id, new, grace, in_memory)
            .map_err(CommitError::into_refused)
    }

    /// [`rotate_with_id`](Keyring::rotate_with_id) made durable: `persist` is handed the key
    /// records the keyring will hold ([`Pending::records`]) and the rotation happens only when
    /// it returns `Ok`, for a store that must commit a change before it takes effect.
    ///
    /// Changes to one keyring take turns while `persist` runs; verifications never wait.
    ///
    /// # Errors
    ///
    /// [`CommitError::Refused`] for the reasons [`rotate_with_id`](Keyring::rotate_with_id)
    /// gives (`persist` is not called), [`CommitError::Persist`] with what `persist` returned.
    /// The keyring is unchanged on either.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use webhook_guard::{CommitError, KeyId, Keyring, Secret};
    ///
    /// let keyring = Keyring::new(Secret::from_bytes("old")?);
    /// let old = keyring.current_id();
    ///
    /// // The disk is full: the rotation does not happen.
    /// let failed = keyring.rotate_durably(KeyId::new("k2"), Secret::from_bytes("new")?,
    ///                                     Duration::ZERO, |_| Err("disk full"));
    /// assert!(matches!(failed, Err(CommitError::Persist("disk full"))));
    /// assert_eq!(keyring.current_id(), old);
    ///
    /// let mut saved = Vec::new();
    /// keyring.rotate_durably(KeyId::new("k2"), Secret::from_bytes("new")?, Duration::ZERO,
    ///                        |pending| { saved = pending.records(); Ok::<_, &str>(()) })?;
    /// assert_eq!(saved[0].id, KeyId::new("k2"));
    /// assert_eq!(keyring.current_id(), KeyId::new("k2"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rotate_durably<E>(
        &self,
        id: KeyId,
        new: impl Into<KeyMaterial>,
        grace: Duration,
        persist: impl FnOnce(&Pending<'_>) -> Result<(), E>,
    ) -> Result<Rotation, CommitError<E>> {
        let shared = &*self.shared;
        if grace > shared.max_grace {
            return Err(CommitError::Refused(RotationError::GraceOutOfRange {
                requested: grace,
                max: shared.max_grace,
            }));
        }
        let now = self.now();
        let key = Arc::new(Key::new(id, new.into(), now));
        let expires_at = (!grace.is_zero()).then(|| add(now, grace));
        let rotation = self.update(
            |set| {
                let mut entries = set.pruned(now);
                ensure_unique(&entries, &key.id)?;
                // The current key is never retired nor expiring, so the pruned set still starts
                // with it.
                let old = Arc::clone(&entries[0].key);
                match expires_at {
                    Some(at) => entries[0].expires_at = Some(at),
                    None => {
                        entries.remove(0);
                    }
                }
                entries.insert(
                    0,
                    Entry {
                        key: Arc::clone(&key),
                        expires_at: None,
                    },
                );
                check_count(entries.len(), shared.max_keys)?;
                Ok((entries, old))
            },
            persist,
        )?;
        if expires_at.is_none() {
            rotation.retired.store(true, Ordering::SeqCst);
        }
        tracing::info!(new_key = %key.id, old_key = %rotation.id, grace_secs = grace.as_secs(), "keyring rotated");
        Ok(Rotation {
            new_key: key.id.clone(),
            old_key: rotation.id.clone(),
            old_expires_at: expires_at,
        })
    }

    /// Generates a fresh 32-byte secret and rotates to it, as a platform's "regenerate secret"
    /// button does.
    ///
    /// The new secret is returned once, as a [`RevealedSecret`]; the keyring keeps no readable
    /// copy.
    ///
    /// # Errors
    ///
    /// As for [`rotate`](Keyring::rotate), and [`RotationError::Secret`] when the OS random
    /// number generator fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use webhook_guard::Keyring;
    ///
    /// let (keyring, _first) = Keyring::generate()?;
    /// let (revealed, rotation) = keyring.regenerate(Duration::ZERO)?;
    /// assert_eq!(rotation.old_expires_at, None);
    /// let shown_once = revealed.into_whsec();
    /// assert!(shown_once.starts_with("whsec_"));
    /// # Ok::<(), webhook_guard::RotationError>(())
    /// ```
    pub fn regenerate(&self, grace: Duration) -> Result<(RevealedSecret, Rotation), RotationError> {
        let revealed = Secret::generate()?;
        let rotation = self.rotate(revealed.secret(), grace)?;
        Ok((revealed, rotation))
    }

    /// A keyring with a freshly generated current key, and that key revealed once.
    ///
    /// # Errors
    ///
    /// [`RotationError::Secret`] when the OS random number generator fails.
    pub fn generate() -> Result<(Self, RevealedSecret), RotationError> {
        let revealed = Secret::generate()?;
        Ok((Self::new(revealed.secret()), revealed))
    }

    /// Ends a grace key at once, for a secret that leaked.
    ///
    /// # Errors
    ///
    /// [`RotationError::RevokeCurrent`] for the current key (rotate instead),
    /// [`RotationError::UnknownKey`] when no live key has `id`.
    pub fn revoke(&self, id: &KeyId) -> Result<(), RotationError> {
        self.revoke_durably(id, in_memory)
            .map_err(CommitError::into_refused)
    }

    /// [`revoke`](Keyring::revoke) made durable, as
    /// [`rotate_durably`](Keyring::rotate_durably) is.
    ///
    /// # Errors
    ///
    /// [`CommitError::Refused`] for the reasons [`revoke`](Keyring::revoke) gives,
    /// [`CommitError::Persist`] with what `persist` returned; the keyring is unchanged on either.
    pub fn revoke_durably<E>(
        &self,
        id: &KeyId,
        persist: impl FnOnce(&Pending<'_>) -> Result<(), E>,
    ) -> Result<(), CommitError<E>> {
        let now = self.now();
        let revoked = self.update(
            |set| {
                let mut entries = set.pruned(now);
                let index = entries
                    .iter()
                    .position(|e| &e.key.id == id)
                    .ok_or_else(|| RotationError::UnknownKey { id: id.clone() })?;
                if index == 0 {
                    return Err(RotationError::RevokeCurrent { id: id.clone() });
                }
                let entry = entries.remove(index);
                Ok((entries, entry.key))
            },
            persist,
        )?;
        revoked.retired.store(true, Ordering::SeqCst);
        tracing::warn!(key = %id, "grace key revoked");
        Ok(())
    }

    /// Ends every grace key at once, leaving only the current key, as a platform's "expire the
    /// previous secret now" does. Returns the ids of the keys it ended (none when there were
    /// none), after `persist` accepted the change as [`rotate_durably`](Keyring::rotate_durably)
    /// describes; pass `|_| Ok::<_, std::convert::Infallible>(())` to keep it in memory.
    ///
    /// # Errors
    ///
    /// [`CommitError::Persist`] with what `persist` returned; the keyring is then unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{convert::Infallible, time::Duration};
    /// use webhook_guard::{Keyring, Secret};
    ///
    /// let keyring = Keyring::new(Secret::from_bytes("old")?);
    /// let rotation = keyring.rotate(Secret::from_bytes("new")?, Duration::from_secs(600))?;
    /// let ended = keyring.end_grace_durably(|_| Ok::<_, Infallible>(())).unwrap();
    /// assert_eq!(ended, vec![rotation.old_key]);
    /// assert_eq!(keyring.keys().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn end_grace_durably<E>(
        &self,
        persist: impl FnOnce(&Pending<'_>) -> Result<(), E>,
    ) -> Result<Vec<KeyId>, CommitError<E>> {
        let now = self.now();
        let ended = self.update(
            |set| {
                let mut entries = set.pruned(now);
                let ended: Vec<Arc<Key>> = entries.drain(1..).map(|e| e.key).collect();
                Ok((entries, ended))
            },
            persist,
        )?;
        for key in &ended {
            key.retired.store(true, Ordering::SeqCst);
        }
        if !ended.is_empty() {
            tracing::warn!(keys = ended.len(), "grace keys ended");
        }
        Ok(ended.iter().map(|key| key.id.clone()).collect())
    }

    /// Replaces the key set with `records` (as a store read them back after another instance
    /// changed them) when `accept`, run under the writers' turn, says so; whether it did.
    /// Keys kept (by id) keep their state; keys that are gone are retired at once, so a
    /// request that took its snapshot before cannot be accepted with them after this returns.
    ///
    /// # Errors
    ///
    /// As for [`KeyringBuilder::import`]; the keyring is then unchanged.
    #[cfg(feature = "admin")]
    pub(crate) fn replace_if(
        &self,
        records: Vec<KeyRecord>,
        accept: impl FnOnce() -> bool,
    ) -> Result<bool, RotationError> {
        let shared = &*self.shared;
        let fresh = KeyringBuilder {
            clock: Arc::clone(&shared.clock),
            max_grace: shared.max_grace,
            max_keys: shared.max_keys,
            id: None,
        }
        .import(records)?;
        let fresh = fresh.shared.set.load_full();
        let outcome = self.update(
            |set| {
                let entries: Vec<Entry> = fresh
                    .entries
                    .iter()
                    .map(|e| Entry {
                        key: set
                            .entries
                            .iter()
                            .find(|old| old.key.id == e.key.id)
                            .map_or_else(|| Arc::clone(&e.key), |old| Arc::clone(&old.key)),
                        expires_at: e.expires_at,
                    })
                    .collect();
                let gone: Vec<Arc<Key>> = set
                    .entries
                    .iter()
                    .filter(|old| !entries.iter().any(|e| e.key.id == old.key.id))
                    .map(|old| Arc::clone(&old.key))
                    .collect();
                Ok((entries, gone))
            },
            |_| if accept() { Ok(()) } else { Err(()) },
        );
        match outcome {
            Ok(gone) => {
                for key in gone {
                    key.retired.store(true, Ordering::SeqCst);
                }
                Ok(true)
            }
            Err(CommitError::Persist(())) => Ok(false),
            Err(CommitError::Refused(e)) => Err(e),
        }
    }

    /// The id of the live shared-secret key whose bytes equal `presented`, compared in constant
    /// time with every live key (no early exit), for credentials kept as a keyring (an
    /// integrator's API secrets, as SHA-256 digests, with the same grace periods).
    #[cfg(feature = "admin")]
    pub(crate) fn matching_secret(&self, presented: &[u8]) -> Option<KeyId> {
        let now = self.now();
        let set = self.shared.set.load();
        let mut found = None;
        for (key, _) in set.live(now.into()) {
            if let Material::Hmac { secret, .. } = &key.material {
                if bool::from(secret.expose().ct_eq(presented)) {
                    found = Some(key.id.clone());
                }
            }
        }
        found
    }

    /// Adds an old key that stays valid until `expires_at`, for a service that starts in the
    /// middle of a sender's grace period (for example with the old and new secrets both in its
    /// configuration). Returns the new key's id.
    ///
    /// # Errors
    ///
    /// [`RotationError::AlreadyExpired`] when `expires_at` is not in the future,
    /// [`RotationError::GraceOutOfRange`] when it is further away than the maximum grace period,
    /// [`RotationError::TooManyKeys`] when the keyring is full.
    pub fn add_grace_key(
        &self,
        key: impl Into<KeyMaterial>,
        expires_at: DateTime<Utc>,
    ) -> Result<KeyId, RotationError> {
        let now = self.now();
        if expires_at <= now {
            return Err(RotationError::AlreadyExpired { expires_at, now });
        }
        let requested = (expires_at - now).to_std().unwrap_or(Duration::MAX);
        if requested > self.shared.max_grace {
            return Err(RotationError::GraceOutOfRange {
                requested,
                max: self.shared.max_grace,
            });
        }
        let key = Arc::new(Key::new(KeyId::random(), key.into(), now));
        self.update(
            |set| {
                let mut entries = set.pruned(now);
                // Grace keys are ordered by expiry, latest first, after the current key.
                let at = entries
                    .iter()
                    .skip(1)
                    .position(|e| e.expires_at.is_some_and(|e| e < expires_at))
                    .map_or(entries.len(), |p| p + 1);
                entries.insert(
                    at,
                    Entry {
                        key: Arc::clone(&key),
                        expires_at: Some(expires_at),
                    },
                );
                check_count(entries.len(), self.shared.max_keys)?;
                Ok((entries, ()))
            },
            in_memory,
        )
        .map_err(CommitError::into_refused)?;
        Ok(key.id.clone())
    }

    /// The live keys with their material, current first, then grace keys newest first, for a
    /// durable store ([`KeyringBuilder::import`] restores them).
    pub fn export(&self) -> Vec<KeyRecord> {
        self.map_live(record_of)
    }

    /// `f` of each live key and its role, current first, then grace keys newest first.
    fn map_live<T>(&self, f: impl Fn(KeyRole, &Entry) -> T) -> Vec<T> {
        let now = self.now();
        let set = self.shared.set.load();
        set.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_live(now.into()) && !e.key.is_retired())
            .map(|(i, e)| f(role_at(i), e))
            .collect()
    }

    /// The live keys, current first, then grace keys newest first.
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.map_live(|role, e| KeyInfo {
            id: e.key.id.clone(),
            role,
            created_at: e.key.created_at,
            expires_at: e.expires_at,
            last_verified: match e.key.last_verified.load(Ordering::Relaxed) {
                NEVER => None,
                secs => Utc.timestamp_opt(secs, 0).single(),
            },
        })
    }

    /// The HMAC-SHA256 of `message` under live key `id`, for a sender's endpoint checks that
    /// answer with a MAC (Zoom's URL validation, only after the request verified); `None` when
    /// no live key has that id or it is not a shared secret. Crate-private: as a public call it
    /// would be a signing oracle.
    pub(crate) fn hmac_sha256(&self, id: &KeyId, message: &[u8]) -> Option<[u8; 32]> {
        let now = self.now();
        let set = self.shared.set.load();
        let (key, _) = set.live(now.into()).find(|(key, _)| &key.id == id)?;
        let tag = key.tag(Algorithm::HmacSha256, |out| out(message))?;
        tag.as_slice().try_into().ok()
    }

    /// The id of the current key.
    pub fn current_id(&self) -> KeyId {
        self.shared.set.load().current().id.clone()
    }

    /// The keyring's clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.shared.clock)
    }

    /// The instant keys are judged live at for the clock reading `now`: `now`, or the latest
    /// instant this keyring judged at before when the clock has since stepped back, so a grace
    /// key that expired is not revived by a wall-clock correction before it is pruned. The
    /// latest instant is recorded when it moves on by a millisecond or more (one shared write
    /// per millisecond, not per request), so a step back reaches at most a millisecond behind.
    pub(crate) fn live_at(&self, now: Now) -> Now {
        let micros = now.micros();
        let latest = &self.shared.latest;
        let seen = latest.load(Ordering::Relaxed);
        if micros < seen {
            return Now::from_micros(seen);
        }
        if micros.saturating_sub(seen) >= 1000 {
            latest.fetch_max(micros, Ordering::Relaxed);
        }
        now
    }

    /// The clock's reading, never earlier than an instant keys were judged live at before.
    fn now(&self) -> DateTime<Utc> {
        let now = self.shared.clock.now();
        match self.live_at(now.into()) {
            at if at == Now::from(now) => now,
            at => at.to_datetime(),
        }
    }

    /// One snapshot of the key set; a request uses exactly one.
    pub(crate) fn snapshot(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.shared.set.load()
    }

    /// The key set, held for longer than a call (a body upload).
    pub(crate) fn snapshot_full(&self) -> Arc<KeySet> {
        self.shared.set.load_full()
    }

    /// Works out the key set `change` builds from the latest one, hands it to `persist`, and
    /// publishes it only when `persist` succeeded. Writers take turns (a change is rare and
    /// may wait for a disk), so the set `persist` saw is the one published; readers never wait.
    fn update<R, E>(
        &self,
        change: impl FnOnce(&KeySet) -> Result<(Vec<Entry>, R), RotationError>,
        persist: impl FnOnce(&Pending<'_>) -> Result<(), E>,
    ) -> Result<R, CommitError<E>> {
        let _turn = self
            .shared
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let set = self.shared.set.load_full();
        let (entries, outcome) = change(&set).map_err(CommitError::Refused)?;
        persist(&Pending {
            before: &set,
            entries: &entries,
        })
        .map_err(CommitError::Persist)?;
        // Under the writer lock nobody else publishes, so a plain store loses no update.
        self.shared.set.store(Arc::new(KeySet { entries }));
        Ok(outcome)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.keys())
            .field("max_grace", &self.shared.max_grace)
            .field("max_keys", &self.shared.max_keys)
            .finish()
    }
}

/// Builds a [`Keyring`] with non-default limits or clock.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use webhook_guard::{Keyring, ManualClock, Secret};
///
/// let clock = ManualClock::at_unix(1_700_000_000);
/// let keyring = Keyring::builder()
///     .max_grace(Duration::from_secs(7 * 24 * 3600))
///     .max_keys(4)
///     .clock(clock.clone())
///     .build(Secret::from_bytes(b"first secret")?);
/// assert_eq!(keyring.keys()[0].created_at.timestamp(), 1_700_000_000);
/// # Ok::<(), webhook_guard::SecretError>(())
/// ```
#[derive(Debug)]
pub struct KeyringBuilder {
    clock: Arc<dyn Clock>,
    max_grace: Duration,
    max_keys: usize,
    id: Option<KeyId>,
}

impl Default for KeyringBuilder {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            max_grace: DEFAULT_MAX_GRACE,
            max_keys: DEFAULT_MAX_KEYS,
            id: None,
        }
    }
}

impl KeyringBuilder {
    /// Longest grace period a rotation may ask for. Default: 3600 s.
    pub fn max_grace(mut self, max: Duration) -> Self {
        self.max_grace = max;
        self
    }

    /// Most keys live at once, current included; at least 1. Default: 8.
    pub fn max_keys(mut self, max: usize) -> Self {
        self.max_keys = max.max(1);
        self
    }

    /// The clock for key timestamps and expiry. Default: the system clock.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The id of the first key. Default: a random id.
    pub fn key_id(mut self, id: KeyId) -> Self {
        self.id = Some(id);
        self
    }

    /// Builds the keyring with `current` as its current key.
    pub fn build(self, current: impl Into<KeyMaterial>) -> Keyring {
        let now = self.clock.now();
        let id = self.id.clone().unwrap_or_else(KeyId::random);
        let key = Key::new(id, current.into(), now);
        self.with(vec![Entry {
            key: Arc::new(key),
            expires_at: None,
        }])
    }

    /// Builds the keyring from the records [`Keyring::export`] gave, as a store read them back:
    /// the first current, the rest grace keys in the same order. Grace keys that expired since
    /// are left out; [`key_id`](KeyringBuilder::key_id) does not apply.
    ///
    /// # Errors
    ///
    /// [`RotationError::InvalidRecords`] unless exactly the first record is current and every
    /// other has an expiry, [`RotationError::DuplicateId`] for an id given twice,
    /// [`RotationError::TooManyKeys`] for more live keys than
    /// [`max_keys`](KeyringBuilder::max_keys).
    pub fn import(
        self,
        records: impl IntoIterator<Item = KeyRecord>,
    ) -> Result<Keyring, RotationError> {
        let now = self.clock.now();
        let mut entries: Vec<Entry> = Vec::new();
        for (i, record) in records.into_iter().enumerate() {
            let problem = match (i, record.role, record.expires_at) {
                (0, KeyRole::Current, None) | (1.., KeyRole::Grace, Some(_)) => None,
                (0, _, _) => Some("the first record is not a current key without an expiry"),
                (_, KeyRole::Current, _) => Some("more than one current key"),
                (_, KeyRole::Grace, None) => Some("a grace key without an expiry"),
            };
            if let Some(problem) = problem {
                return Err(RotationError::InvalidRecords { problem });
            }
            ensure_unique(&entries, &record.id)?;
            if record.expires_at.is_some_and(|at| at <= now) {
                continue;
            }
            let key = Key::new(record.id, record.material, record.created_at);
            entries.push(Entry {
                key: Arc::new(key),
                expires_at: record.expires_at,
            });
        }
        if entries.is_empty() {
            return Err(RotationError::InvalidRecords {
                problem: "no current key",
            });
        }
        check_count(entries.len(), self.max_keys)?;
        Ok(self.with(entries))
    }

    fn with(self, entries: Vec<Entry>) -> Keyring {
        let set = KeySet { entries };
        Keyring {
            shared: Arc::new(Shared {
                writer: Mutex::new(()),
                set: ArcSwap::from_pointee(set),
                clock: self.clock,
                latest: AtomicI64::new(i64::MIN),
                max_grace: self.max_grace,
                max_keys: self.max_keys,
            }),
        }
    }
}

fn add(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn check_count(live: usize, max: usize) -> Result<(), RotationError> {
    if live > max {
        Err(RotationError::TooManyKeys { live, max })
    } else {
        Ok(())
    }
}

fn ensure_unique(entries: &[Entry], id: &KeyId) -> Result<(), RotationError> {
    if entries.iter().any(|e| &e.key.id == id) {
        Err(RotationError::DuplicateId { id: id.clone() })
    } else {
        Ok(())
    }
}

#[cfg(all(test, feature = "admin"))]
mod tests {
    use super::*;

    fn secret(text: &str) -> Secret {
        Secret::from_bytes(text).unwrap()
    }

    #[test]
    fn replace_if_keeps_kept_keys_and_retires_the_others_at_once() {
        let keyring = Keyring::new(secret("old"));
        let old = keyring.current_id();
        let before = keyring.snapshot_full();
        // Another instance rotated without grace: its records hold only the new key.
        let elsewhere = Keyring::new(secret("new"));
        let replaced = keyring.replace_if(elsewhere.export(), || true).unwrap();
        assert!(replaced);
        assert_eq!(keyring.current_id(), elsewhere.current_id());
        // A request that took its snapshot before the replace cannot use the old key after it.
        assert!(before
            .entries
            .iter()
            .all(|e| e.key.id != old || e.key.is_retired()));

        // A key present before and after is the same key (its state is kept).
        let kept = Arc::as_ptr(&keyring.snapshot_full().entries[0].key);
        keyring.replace_if(keyring.export(), || true).unwrap();
        assert_eq!(Arc::as_ptr(&keyring.snapshot_full().entries[0].key), kept);
    }

    #[test]
    fn replace_if_refused_leaves_the_keys_as_they_were() {
        let keyring = Keyring::new(secret("old"));
        let old = keyring.current_id();
        let elsewhere = Keyring::new(secret("new"));
        assert!(!keyring.replace_if(elsewhere.export(), || false).unwrap());
        assert_eq!(keyring.current_id(), old);
        assert!(!keyring.snapshot_full().entries[0].key.is_retired());
    }
}

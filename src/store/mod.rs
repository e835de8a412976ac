//! Durable state for the management plane: the [`Store`] trait and its SQLite implementation,
//! [`SqliteStore`].
//!
//! A store keeps what must survive a restart: integrators and the digests of their API
//! secrets, projects and their signing keys, API-key digests, and the audit log. Every change
//! is one call to [`Store::apply`], which commits the change together with its
//! [`AuditEvent`] in one transaction, or changes nothing. The admin API calls it *before* it
//! changes anything in memory, and answers only after it returned: a change that was
//! acknowledged is on disk, and a change that failed left memory as it was.
//!
//! The verify path never touches a store: it reads the in-memory keyrings only.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::keyring::KeyRecord;
use crate::projects::ProjectId;

pub mod crypt;
#[cfg(feature = "postgres")]
pub mod feed;
mod model;
#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;

pub use model::{
    ApiKeyId, ApiKeyRow, IdError, IntegratorId, IntegratorRow, ProjectRow, State, UpstreamRow,
    API_KEY_ID_LEN,
};
pub(crate) use model::{INTEGRATOR_KEYS, PROJECT_KEYS, UPSTREAM_KEYS};

#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStore, CHANGES_CHANNEL, PG_SCHEMA_VERSION};
pub use sqlite::{SqliteStore, SCHEMA_VERSION};

/// Runs `f` telling the stores this is a blocking thread (one of `spawn_blocking`'s): a store
/// that waits on a runtime of its own (PostgreSQL) may then wait on this thread, not on a
/// thread it starts for the call. Never on an async worker thread.
pub(crate) fn on_blocking_thread<T>(f: impl FnOnce() -> T) -> T {
    #[cfg(feature = "postgres")]
    let _marked = postgres::BlockingThread::mark();
    f()
}

/// One change to a store; [`Store::apply`] commits it with its audit event or not at all.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Change<'a> {
    /// A new integrator.
    CreateIntegrator(&'a IntegratorRow),
    /// An integrator's API secrets after a rotation or revocation.
    SetIntegratorSecrets {
        /// The integrator.
        integrator: &'a IntegratorId,
        /// All its secrets' digests, current first.
        secrets: &'a [KeyRecord],
    },
    /// A new project.
    CreateProject(&'a ProjectRow),
    /// A project's signing keys after a rotation or revocation.
    SetProjectKeys {
        /// The owner.
        integrator: &'a IntegratorId,
        /// The project.
        project: &'a ProjectId,
        /// All its keys, current first.
        keys: &'a [KeyRecord],
    },
    /// A project and its keys are deleted.
    DeleteProject {
        /// The owner.
        integrator: &'a IntegratorId,
        /// The project.
        project: &'a ProjectId,
    },
    /// A new API key (its digest).
    CreateApiKey(&'a ApiKeyRow),
    /// Where a project's verified deliveries are forwarded: set, replaced, or removed (`None`).
    SetProjectUpstream {
        /// The owner.
        integrator: &'a IntegratorId,
        /// The project.
        project: &'a ProjectId,
        /// The upstream, or `None` to stop forwarding.
        upstream: Option<&'a UpstreamRow>,
    },
    /// An API key is deleted.
    DeleteApiKey {
        /// The owner.
        integrator: &'a IntegratorId,
        /// The key.
        id: &'a ApiKeyId,
    },
}

/// What an audit event records. [`as_str`](Self::as_str) is what the stores keep, the admin
/// API shows and `GET /v1/audit?action=` filters on.
///
/// # Examples
///
/// ```
/// use webhook_guard::store::AuditAction;
///
/// let action: AuditAction = "project.secret.regenerated".parse()?;
/// assert_eq!(action, AuditAction::ProjectSecretRegenerated);
/// assert_eq!(action.as_str(), "project.secret.regenerated");
/// assert!("project.renamed".parse::<AuditAction>().is_err());
/// # Ok::<(), webhook_guard::store::UnknownAction>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditAction {
    /// `integrator.created`: by `admin create-integrator` or `serve --bootstrap`.
    IntegratorCreated,
    /// `integrator.secret.regenerated`: a new API secret (`clientSecret`).
    IntegratorSecretRegenerated,
    /// `project.created`.
    ProjectCreated,
    /// `project.deleted`.
    ProjectDeleted,
    /// `project.secret.regenerated`: a new signing secret, the old one kept for its grace.
    ProjectSecretRegenerated,
    /// `project.secret.previous-ended`: every grace key ended at once.
    ProjectSecretPreviousEnded,
    /// `project.upstream.set`: verified deliveries forwarded there from now on.
    ProjectUpstreamSet,
    /// `project.upstream.removed`.
    ProjectUpstreamRemoved,
    /// `api-key.created`.
    ApiKeyCreated,
    /// `api-key.deleted`.
    ApiKeyDeleted,
    /// `audit.pruned`: older events removed by the retention rule, `count` of them.
    AuditPruned,
}

impl AuditAction {
    /// Every action, in the order above.
    pub const ALL: [Self; 11] = [
        Self::IntegratorCreated,
        Self::IntegratorSecretRegenerated,
        Self::ProjectCreated,
        Self::ProjectDeleted,
        Self::ProjectSecretRegenerated,
        Self::ProjectSecretPreviousEnded,
        Self::ProjectUpstreamSet,
        Self::ProjectUpstreamRemoved,
        Self::ApiKeyCreated,
        Self::ApiKeyDeleted,
        Self::AuditPruned,
    ];

    /// The action's name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IntegratorCreated => "integrator.created",
            Self::IntegratorSecretRegenerated => "integrator.secret.regenerated",
            Self::ProjectCreated => "project.created",
            Self::ProjectDeleted => "project.deleted",
            Self::ProjectSecretRegenerated => "project.secret.regenerated",
            Self::ProjectSecretPreviousEnded => "project.secret.previous-ended",
            Self::ProjectUpstreamSet => "project.upstream.set",
            Self::ProjectUpstreamRemoved => "project.upstream.removed",
            Self::ApiKeyCreated => "api-key.created",
            Self::ApiKeyDeleted => "api-key.deleted",
            Self::AuditPruned => "audit.pruned",
        }
    }

    /// What kind of row it changed: `"integrator"`, `"project"`, `"api-key"` or `"audit"`.
    pub fn subject(self) -> &'static str {
        let name = self.as_str();
        &name[..name.find('.').unwrap_or(name.len())]
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for AuditAction {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A name that is no [`AuditAction`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no such audit action: {0:?}")]
pub struct UnknownAction(pub String);

impl std::str::FromStr for AuditAction {
    type Err = UnknownAction;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|action| action.as_str() == text)
            .ok_or_else(|| UnknownAction(text.to_owned()))
    }
}

/// A key as a store reads it back: sealed under its row's associated data, its place in the
/// row (0 is current) and its times in nanoseconds.
pub(crate) struct StoredKey {
    pub(crate) key_id: String,
    pub(crate) position: i64,
    pub(crate) created_at: i64,
    pub(crate) expires_at: Option<i64>,
    pub(crate) sealed: Vec<u8>,
}

impl StoredKey {
    /// The key of `owner` (a row of `kind`), its secret opened by `sealer`: a sealed value
    /// moved to another row or key id does not open.
    pub(crate) fn open(
        self,
        sealer: &crypt::Sealer,
        kind: &str,
        owner: &str,
    ) -> Result<KeyRecord, StoreError> {
        let plain = sealer.open(&crypt::aad(kind, owner, &self.key_id), &self.sealed)?;
        let secret = crate::Secret::from_bytes(&*plain).map_err(|e| StoreError::Invalid {
            what: "key material",
            reason: e.to_string(),
        })?;
        let role = match self.position {
            0 => crate::KeyRole::Current,
            _ => crate::KeyRole::Grace,
        };
        Ok(KeyRecord::new(
            crate::KeyId::new(self.key_id),
            role,
            from_nanos(self.created_at),
            self.expires_at.map(from_nanos),
            secret,
        ))
    }
}

/// A time as both stores keep it: nanoseconds since the epoch.
pub(crate) fn nanos(time: DateTime<Utc>) -> i64 {
    time.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// The time `nanos` (as [`nanos`] wrote it) stands for.
pub(crate) fn from_nanos(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

/// An action read back from a store; one this build does not know is an invalid row.
pub(crate) fn stored_action(text: &str) -> Result<AuditAction, StoreError> {
    text.parse()
        .map_err(|e: UnknownAction| StoreError::Invalid {
            what: "audit event",
            reason: e.to_string(),
        })
}

/// What happened, for the audit log. Never a secret: key ids, times and who did it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEvent {
    /// Its position in the log, assigned by the store (0 until stored); newer is larger.
    pub seq: u64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The integrator whose state changed.
    pub integrator: IntegratorId,
    /// The credential that made the change: `api-key:<id>`, `client-secret:<key id>` or `cli`.
    pub actor: String,
    /// What was done, such as `project.secret.regenerated` or `api-key.deleted`.
    pub action: AuditAction,
    /// The project it concerns, if any.
    pub project: Option<ProjectId>,
    /// The key (or API key) ids that stopped being current or were removed.
    pub old_keys: Vec<String>,
    /// The id of the key (or API key) created, if any.
    pub new_key: Option<String>,
    /// The grace period given to the old key, in seconds.
    pub grace_secs: Option<u64>,
    /// When the old key stops being accepted, or when a new API key expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// How many events a pruning removed (`audit.pruned`).
    pub count: Option<u64>,
}

impl AuditEvent {
    /// An event of `action` by `actor` on `integrator`'s state at `at`; fill in the rest with
    /// the builder methods.
    pub fn new(
        at: DateTime<Utc>,
        integrator: IntegratorId,
        actor: impl Into<String>,
        action: AuditAction,
    ) -> Self {
        Self {
            seq: 0,
            at,
            integrator,
            actor: actor.into(),
            action,
            project: None,
            old_keys: Vec::new(),
            new_key: None,
            grace_secs: None,
            expires_at: None,
            count: None,
        }
    }

    /// The project it concerns.
    pub fn project(mut self, project: &ProjectId) -> Self {
        self.project = Some(project.clone());
        self
    }

    /// The ids that stopped being current or were removed.
    pub fn old_keys<T: ToString>(mut self, ids: impl IntoIterator<Item = T>) -> Self {
        self.old_keys = ids.into_iter().map(|id| id.to_string()).collect();
        self
    }

    /// The id created.
    pub fn new_key(mut self, id: impl ToString) -> Self {
        self.new_key = Some(id.to_string());
        self
    }

    /// The grace period and when it ends.
    pub fn grace(mut self, secs: u64, expires_at: Option<DateTime<Utc>>) -> Self {
        self.grace_secs = Some(secs);
        self.expires_at = expires_at;
        self
    }
}

/// Which audit events a page holds: a cursor, a size and optional filters.
///
/// # Examples
///
/// ```
/// use webhook_guard::store::AuditQuery;
///
/// use webhook_guard::store::AuditAction;
///
/// let query = AuditQuery::page(None, 50).action(AuditAction::ProjectSecretRegenerated);
/// assert_eq!(query.limit, 50);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditQuery {
    /// Only events older than this sequence number (the previous page's cursor).
    pub before: Option<u64>,
    /// At most this many events.
    pub limit: usize,
    /// Only events of these projects (events of no project are left out too); `None` for all.
    pub projects: Option<Vec<ProjectId>>,
    /// Only events of this action.
    pub action: Option<AuditAction>,
}

impl AuditQuery {
    /// At most `limit` events older than `before`, of every project and action.
    pub fn page(before: Option<u64>, limit: usize) -> Self {
        Self {
            before,
            limit,
            projects: None,
            action: None,
        }
    }

    /// Only events of `projects`.
    pub fn projects(mut self, projects: Vec<ProjectId>) -> Self {
        self.projects = Some(projects);
        self
    }

    /// Only events of `action`.
    pub fn action(mut self, action: AuditAction) -> Self {
        self.action = Some(action);
        self
    }
}

/// Which audit events a pruning removes: those older than a time, and those past the newest
/// so many (per integrator). Neither set keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditRetention {
    /// Events before this time are removed.
    pub older_than: Option<DateTime<Utc>>,
    /// Only this many of the newest events are kept.
    pub keep_newest: Option<u64>,
}

impl AuditRetention {
    /// Removes events before `older_than` and past the `keep_newest` newest, where given.
    pub fn new(older_than: Option<DateTime<Utc>>, keep_newest: Option<u64>) -> Self {
        Self {
            older_than,
            keep_newest,
        }
    }
}

/// Why a store could not do what was asked. When [`Store::apply`] returns one, nothing was
/// changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file exists but is not a webhook-guard database (or not SQLite at all,
    /// or empty). It is left as it is.
    #[error("{path} is not a webhook-guard database ({reason}); it was left unchanged")]
    NotADatabase {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The database failed its integrity check (truncated or damaged). It is left as it is.
    #[error("{path} is damaged ({reason}); it was left unchanged: restore it from a backup")]
    Corrupt {
        /// The file.
        path: String,
        /// What the integrity check said.
        reason: String,
    },
    /// The database was written by a newer webhook-guard.
    #[error("database schema version {found} is newer than this build understands ({supported})")]
    TooNew {
        /// The file's version.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// The change refers to something the store does not have (or another integrator has).
    #[error("no such {what}")]
    NotFound {
        /// What was missing.
        what: &'static str,
    },
    /// The change would add something that already exists.
    #[error("{what} already exists")]
    Exists {
        /// What was there.
        what: &'static str,
    },
    /// A stored secret could not be opened or sealed.
    #[error(transparent)]
    Crypt(#[from] crypt::CryptError),
    /// A stored value is not what this build wrote.
    #[error("stored {what} is invalid: {reason}")]
    Invalid {
        /// Which value.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The database failed (disk full, read-only, locked, I/O).
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// Another process holds the database: it has the store open for writing (one data
    /// directory, one server). Nothing was opened or changed.
    #[error(
        "{path} is locked by {}: another webhook-guard has this database open; it was left \
         unchanged",
        Holder(*.pid)
    )]
    Locked {
        /// The lock file.
        path: String,
        /// The holder's process id, as it wrote it into the lock file (`None` when unreadable).
        pid: Option<u32>,
    },
    /// The open database file is no longer the file at its path: it was deleted, replaced or
    /// truncated while the store had it open. Nothing more is written (what would be written
    /// would not survive a restart); the store stays in this state until it is reopened.
    #[error(
        "{path} was {reason} while the store had it open; nothing more is written to it: \
         restore it from a backup, then restart"
    )]
    FileChanged {
        /// The database file.
        path: String,
        /// What happened to it, such as `deleted` or `truncated from 20480 to 0 bytes`.
        reason: String,
    },
    /// The database cannot be reached (down, refusing connections, the network). A write that
    /// fails so was not acknowledged: the audit log says whether it committed.
    #[error("the database is unreachable: {reason}")]
    Unavailable {
        /// What the driver said.
        reason: String,
    },
    /// This store cannot keep what the change asks to keep (yet); nothing was changed.
    #[error("{what} cannot be kept in this store")]
    Unsupported {
        /// What could not be kept.
        what: &'static str,
    },
    /// The row changed since this instance read it (another instance wrote it first); nothing
    /// was changed. Reload it and try again.
    #[error("{what} was changed by another writer; reload it and try again")]
    Conflict {
        /// Which row.
        what: &'static str,
    },
    /// PostgreSQL refused a statement.
    #[cfg(feature = "postgres")]
    #[error("database error: {0}")]
    Postgres(tokio_postgres::Error),
    /// The file system failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Displays who holds a lock: `process 1234`, or `another process`.
struct Holder(Option<u32>);

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(pid) => write!(f, "process {pid}"),
            None => f.write_str("another process"),
        }
    }
}

/// Other writers are held off while this lives ([`Store::lock_writes`]). Drop it on the thread
/// that took it.
#[must_use = "the lock is released when this is dropped"]
pub struct WriteLock(#[allow(dead_code)] Option<Box<dyn std::any::Any>>);

impl WriteLock {
    /// A lock that holds nothing off (a store with one process).
    pub fn none() -> Self {
        Self(None)
    }

    /// A lock released when `guard` is dropped.
    pub fn held(guard: impl std::any::Any) -> Self {
        Self(Some(Box::new(guard)))
    }
}

impl std::fmt::Debug for WriteLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteLock")
            .field("held", &self.0.is_some())
            .finish()
    }
}

/// Durable state behind the management plane. [`SqliteStore`] is the embedded default; a store
/// shared by many instances implements the same trait.
///
/// Calls block (a commit waits for the disk): from async code, call them on a blocking thread.
pub trait Store: Send + Sync + 'static {
    /// Everything but the audit log, for startup.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be read or holds values it cannot open.
    fn load(&self) -> Result<State, StoreError>;

    /// Commits `change` together with `event` in one transaction, and returns the event's
    /// sequence number; on error nothing was changed.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] or [`StoreError::Exists`] when the change does not fit what is
    /// stored (nothing is changed), or the store's own failures.
    fn apply(&self, change: Change<'_>, event: &AuditEvent) -> Result<u64, StoreError>;

    /// `integrator`'s audit events, newest first: at most `limit`, older than sequence number
    /// `before` when given (a cursor from the previous page).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be read.
    fn audit(
        &self,
        integrator: &IntegratorId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        self.audit_matching(integrator, &AuditQuery::page(before, limit))
    }

    /// `integrator`'s audit events that `query` selects, newest first.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be read.
    fn audit_matching(
        &self,
        integrator: &IntegratorId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// Removes `integrator`'s audit events that `retention` selects and, when it removed any,
    /// appends `event` with [`count`](AuditEvent::count) set to how many, in one transaction.
    /// Returns how many were removed.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be written; nothing was removed.
    fn prune_audit(
        &self,
        integrator: &IntegratorId,
        retention: AuditRetention,
        event: &AuditEvent,
    ) -> Result<u64, StoreError>;

    /// Records when API keys were last used (not a change of credentials: no audit event).
    /// Keys that no longer exist are skipped.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be written.
    fn record_uses(&self, uses: &[(ApiKeyId, DateTime<Utc>)]) -> Result<(), StoreError>;

    /// [`apply`](Store::apply) for a change of an integrator's secrets or a project's keys,
    /// made only while the row is still at `version` (the one this instance last applied), and
    /// the row's new version with the event's sequence number. A store shared by many
    /// instances checks it; one owned by one process has no other writer and need not.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when another instance changed the row since (nothing is
    /// changed); as for [`apply`](Store::apply).
    fn apply_at(
        &self,
        change: Change<'_>,
        version: u64,
        event: &AuditEvent,
    ) -> Result<(u64, u64), StoreError> {
        let seq = self.apply(change, event)?;
        Ok((seq, version + 1))
    }

    /// Holds off every other writer of the store (other instances included) until the lock is
    /// dropped; changes this thread makes meanwhile go through. A writer that found its row
    /// changed by another instance ([`StoreError::Conflict`]) takes it to reload the row and
    /// write again without racing anyone. A store with one process has nothing to hold off.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be reached.
    fn lock_writes(&self) -> Result<WriteLock, StoreError> {
        Ok(WriteLock::none())
    }

    /// Every audit event after sequence number `after`, oldest first, at most `limit`: what a
    /// follower applies to catch up with the other instances.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be read.
    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let _ = (after, limit);
        Ok(Vec::new())
    }

    /// One project as stored now, if it exists.
    ///
    /// # Errors
    ///
    /// As for [`load`](Store::load).
    fn load_project(&self, id: &ProjectId) -> Result<Option<ProjectRow>, StoreError> {
        Ok(self.load()?.projects.into_iter().find(|p| &p.id == id))
    }

    /// One integrator as stored now, if it exists.
    ///
    /// # Errors
    ///
    /// As for [`load`](Store::load).
    fn load_integrator(&self, id: &IntegratorId) -> Result<Option<IntegratorRow>, StoreError> {
        Ok(self.load()?.integrators.into_iter().find(|i| &i.id == id))
    }

    /// One API key as stored now, if it exists.
    ///
    /// # Errors
    ///
    /// As for [`load`](Store::load).
    fn load_api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRow>, StoreError> {
        Ok(self.load()?.api_keys.into_iter().find(|k| &k.id == id))
    }

    /// Checks that the store answers, for a readiness probe: for a file-backed store, also
    /// that its file is still the one it opened.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when it does not ([`StoreError::FileChanged`] when the file was deleted,
    /// replaced or truncated under it).
    fn ping(&self) -> Result<(), StoreError>;
}

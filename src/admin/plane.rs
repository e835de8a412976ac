//! [`Admin`]: the management plane as library calls, durable first and in memory second.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use http::StatusCode;
use zeroize::Zeroizing;

use super::credentials::{
    generate_api_key, generate_client_secret, ApiKeyId, ApiKeyRecord, Caller, Credential,
    Credentials,
};
use super::{IntegratorId, Problem};
use crate::clock::{Clock, SystemClock};
use crate::keyring::{CommitError, KeyId, KeyInfo, Keyring, KeyringBuilder, RotationError};
use crate::projects::{ProjectId, Projects};
use crate::scheme::{
    Dropbox, GitHub, Linear, Paddle, Scheme, Shopify, Slack, Square, StandardWebhooks, Stripe,
    Twilio, Twitch, Zoom,
};
use crate::secret::Secret;
use crate::store::{AuditEvent, Change, IntegratorRow, ProjectRow, Store, StoreError};
use crate::verify::Verifier;

/// Most projects one integrator may hold.
pub const MAX_PROJECTS: usize = 10_000;

/// Most API keys one integrator may hold.
pub const MAX_API_KEYS: usize = 100;

/// Longest grace period a regeneration may give the old secret: 3600 s, as the platforms allow.
pub const MAX_GRACE: Duration = Duration::from_secs(3600);

/// The schemes a project can verify with (every HMAC scheme), by the name it is created with.
pub const SCHEMES: [&str; 12] = [
    "standard-webhooks",
    "github",
    "stripe",
    "slack",
    "shopify",
    "square",
    "twilio",
    "zoom",
    "linear",
    "dropbox",
    "paddle",
    "twitch",
];

/// The scheme named `name`, for a project.
fn scheme_named(name: &str) -> Option<Box<dyn Scheme>> {
    Some(match name {
        "standard-webhooks" | "standard" => Box::new(StandardWebhooks),
        "github" => Box::new(GitHub),
        "stripe" => Box::new(Stripe),
        "slack" => Box::new(Slack),
        "shopify" => Box::new(Shopify),
        "square" => Box::new(Square),
        "twilio" => Box::new(Twilio),
        "zoom" => Box::new(Zoom),
        "linear" => Box::new(Linear),
        "dropbox" => Box::new(Dropbox),
        "paddle" => Box::new(Paddle),
        "twitch" => Box::new(Twitch),
        _ => return None,
    })
}

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
            Self::Conflict(detail) => Problem::conflict(detail.clone()),
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

/// One project as the management plane knows it.
#[derive(Clone)]
pub struct Project {
    /// Its id.
    pub id: ProjectId,
    /// Its owner.
    pub integrator: IntegratorId,
    /// A label for people.
    pub name: Option<String>,
    /// The scheme its webhooks are verified with.
    pub scheme: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    keyring: Keyring,
}

impl Project {
    /// Its live keys (ids, roles, times, last verification; never a secret).
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.keyring.keys()
    }
}

impl fmt::Debug for Project {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Project")
            .field("id", &self.id)
            .field("integrator", &self.integrator)
            .field("scheme", &self.scheme)
            .field("keys", &self.keyring.keys())
            .finish_non_exhaustive()
    }
}

/// A secret shown once, with when it took effect and when the one it replaced stops working.
#[derive(Debug)]
pub struct Regenerated {
    /// The new secret (a project's signing secret as 64 hex digits, or an integrator's API
    /// secret). Shown once; the store keeps it sealed (signing secrets) or only its digest.
    pub secret: Zeroizing<String>,
    /// When the new secret became current.
    pub at: DateTime<Utc>,
    /// When the old secret stops being accepted; `None` when it ended at once.
    pub old_expires_at: Option<DateTime<Utc>>,
    /// The new key's id.
    pub key_id: KeyId,
}

/// A new project and its first signing secret, shown once.
#[derive(Debug)]
pub struct NewProject {
    /// The project.
    pub project: Project,
    /// Its signing secret: 64 hex digits, used as the HMAC key as it is (the text's bytes).
    pub signing_secret: Zeroizing<String>,
}

/// A new API key, shown once.
#[derive(Debug)]
pub struct NewApiKey {
    /// What is stored and listed.
    pub record: ApiKeyRecord,
    /// The key itself.
    pub key: Zeroizing<String>,
}

/// A new integrator: its `clientId`, API secret and first API key, shown once.
#[derive(Debug)]
pub struct NewIntegrator {
    /// The `clientId`.
    pub id: IntegratorId,
    /// The API secret (`clientSecret`).
    pub client_secret: Zeroizing<String>,
    /// A first API key.
    pub api_key: NewApiKey,
}

/// The management plane: integrators, projects, API keys and their secrets, over a [`Store`].
///
/// Every change is committed to the store (with its audit event) before it takes effect in
/// memory, and returns only after both: when the store fails, memory is unchanged and the
/// caller gets [`AdminError::Store`]. The verify path reads [`Admin::projects`] and never waits
/// for the store.
///
/// Cloning is cheap; clones share everything.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use webhook_guard::admin::Admin;
/// use webhook_guard::store::{crypt::Sealer, SqliteStore};
///
/// let dir = std::env::temp_dir().join(format!("wg-admin-doc-{}", std::process::id()));
/// let admin = Admin::builder().open(SqliteStore::open(dir.join("wg.db"), Sealer::plaintext())?)?;
/// let integrator = admin.create_integrator()?;
/// let caller = admin.credentials().authenticate(&{
///     let mut headers = http::HeaderMap::new();
///     headers.insert("x-api-key", integrator.api_key.key.parse()?);
///     headers
/// }).unwrap();
///
/// let created = admin.create_project(&caller, Some("shop".into()), "github")?;
/// let regenerated = admin.regenerate_project_secret(&caller, created.project.id.as_str(),
///                                                   Duration::from_secs(600))?;
/// assert_eq!(regenerated.secret.len(), 64);
/// assert!(regenerated.old_expires_at.is_some());
/// # drop(admin); std::fs::remove_dir_all(dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Admin {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    projects: Projects,
    owned: ArcSwap<HashMap<ProjectId, Arc<Project>>>,
    credentials: Credentials,
    clock: Arc<dyn Clock>,
    max_keys: usize,
    public_base_url: Option<String>,
    /// Changes that add or remove map entries (projects, API keys) take turns, so a count
    /// checked before a commit is still right after it.
    writer: Mutex<()>,
    /// The last uses already written to the store.
    flushed: Mutex<HashMap<ApiKeyId, DateTime<Utc>>>,
}

/// Builds an [`Admin`]: the clock and limits, then [`open`](AdminBuilder::open) on a store.
pub struct AdminBuilder {
    clock: Arc<dyn Clock>,
    max_keys: usize,
    public_base_url: Option<String>,
}

impl fmt::Debug for AdminBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminBuilder")
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

impl AdminBuilder {
    /// The clock for key times and expiry. Default: the system clock.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The scheme, host and path prefix senders deliver to (`https://hooks.example.com`), for
    /// schemes that sign the URL (Square, Twilio); see [`Verifier::public_base_url`]. Default:
    /// none (the request's own URL).
    pub fn public_base_url(mut self, base: impl Into<String>) -> Self {
        self.public_base_url = Some(base.into());
        self
    }

    /// Most live keys per project, current included. Default: 8.
    pub fn max_keys(mut self, max: usize) -> Self {
        self.max_keys = max.max(1);
        self
    }

    /// Loads everything from `store` and serves it.
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`] when the store cannot be read; [`AdminError::Invalid`] when it
    /// holds a key set or scheme this build cannot use.
    pub fn open(self, store: impl Store) -> Result<Admin, AdminError> {
        let state = store.load()?;
        let credentials = Credentials::with_clock(Arc::clone(&self.clock));
        let mut verifiers = Vec::with_capacity(state.projects.len());
        let mut owned = HashMap::with_capacity(state.projects.len());
        let keyrings = || {
            KeyringBuilder::default()
                .clock(Arc::clone(&self.clock))
                .max_keys(self.max_keys)
                .max_grace(MAX_GRACE)
        };
        for row in state.integrators {
            let keyring = keyrings().import(row.secrets)?;
            credentials.insert_integrator(row.id, keyring);
        }
        let flushed: HashMap<ApiKeyId, DateTime<Utc>> = state
            .api_keys
            .iter()
            .filter_map(|k| k.last_used.map(|at| (k.id, at)))
            .collect();
        credentials.insert_api_keys(state.api_keys);
        for row in state.projects {
            let scheme = scheme_named(&row.scheme).ok_or_else(|| {
                AdminError::Invalid(format!("project {} has an unknown scheme", row.id))
            })?;
            let keyring = keyrings().import(row.keys)?;
            let verifier = verifier_for(scheme, keyring.clone(), self.public_base_url.as_deref());
            verifiers.push((row.id.clone(), verifier));
            owned.insert(
                row.id.clone(),
                Arc::new(Project {
                    id: row.id,
                    integrator: row.integrator,
                    name: row.name,
                    scheme: row.scheme,
                    created_at: row.created_at,
                    keyring,
                }),
            );
        }
        let projects: Projects = verifiers.into_iter().collect();
        Ok(Admin {
            inner: Arc::new(Inner {
                store: Arc::new(store),
                projects,
                owned: ArcSwap::from_pointee(owned),
                credentials,
                clock: self.clock,
                max_keys: self.max_keys,
                public_base_url: self.public_base_url,
                writer: Mutex::new(()),
                flushed: Mutex::new(flushed),
            }),
        })
    }
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("projects", &self.inner.owned.load().len())
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// A builder: the system clock and 8 live keys per project by default.
    pub fn builder() -> AdminBuilder {
        AdminBuilder {
            clock: Arc::new(SystemClock),
            max_keys: crate::keyring::DEFAULT_MAX_KEYS,
            public_base_url: None,
        }
    }

    /// The registry the verifying layer reads ([`WebhookLayer::for_projects`](crate::middleware::WebhookLayer::for_projects)).
    pub fn projects(&self) -> &Projects {
        &self.inner.projects
    }

    /// The credential tables the [`ApiKeyLayer`](super::credentials::ApiKeyLayer) reads.
    pub fn credentials(&self) -> &Credentials {
        &self.inner.credentials
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        &*self.inner.store
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    fn keyring(&self) -> KeyringBuilder {
        KeyringBuilder::default()
            .clock(Arc::clone(&self.inner.clock))
            .max_keys(self.inner.max_keys)
            .max_grace(MAX_GRACE)
    }

    fn turn(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates an integrator with a fresh API secret and a first API key, for bootstrapping
    /// (`webhook-guard admin create-integrator`). The secrets are returned once.
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`] or [`AdminError::Random`]; nothing is changed.
    pub fn create_integrator(&self) -> Result<NewIntegrator, AdminError> {
        let id = IntegratorId::random();
        let (client_secret, digest) =
            generate_client_secret().map_err(|e| AdminError::Random(e.to_string()))?;
        let keyring = self.keyring().build(digest_secret(&digest)?);
        let now = self.now();
        let row = IntegratorRow::new(id.clone(), now, keyring.export());
        let event = AuditEvent::new(now, id.clone(), "cli", "integrator.created")
            .new_key(keyring.current_id());
        self.inner
            .store
            .apply(Change::CreateIntegrator(&row), &event)?;
        self.inner
            .credentials
            .insert_integrator(id.clone(), keyring);
        let api_key = self.create_api_key_as(&id, "cli", Some("first key".into()), None, None)?;
        Ok(NewIntegrator {
            id,
            client_secret,
            api_key,
        })
    }

    /// Regenerates the caller's API secret (its Basic `clientSecret`); the old one keeps
    /// working for `grace` (0 ends it at once), with the keyring's grace semantics.
    ///
    /// # Errors
    ///
    /// [`AdminError::Invalid`] for a grace period over [`MAX_GRACE`],
    /// [`AdminError::Conflict`] when the live secrets would exceed the cap, store and random
    /// failures; nothing is changed.
    pub fn regenerate_integrator_secret(
        &self,
        caller: &Caller,
        grace: Duration,
    ) -> Result<Regenerated, AdminError> {
        let id = caller.integrator();
        let keyring =
            self.inner
                .credentials
                .integrator(id)
                .ok_or_else(|| AdminError::NotFound {
                    resource: "integrator",
                    id: id.to_string(),
                })?;
        let (secret, digest) =
            generate_client_secret().map_err(|e| AdminError::Random(e.to_string()))?;
        let event = AuditEvent::new(
            self.now(),
            id.clone(),
            actor(caller),
            "integrator.secret.regenerated",
        );
        self.regenerate(
            &keyring,
            secret,
            digest_secret(&digest)?,
            grace,
            event,
            Owner::Integrator(id),
        )
    }

    /// Rotates `keyring` to `material` (shown once as `secret`), committing `owner`'s new key
    /// set with `event` (completed with the keys and times) before it takes effect.
    fn regenerate(
        &self,
        keyring: &Keyring,
        secret: Zeroizing<String>,
        material: Secret,
        grace: Duration,
        event: AuditEvent,
        owner: Owner<'_>,
    ) -> Result<Regenerated, AdminError> {
        let new = KeyId::random();
        let mut committed = None;
        keyring.rotate_durably(new.clone(), material, grace, |pending| {
            let records = pending.records();
            let mut event = event
                .old_keys([&pending.previous_current()])
                .new_key(&new)
                .grace(
                    grace.as_secs(),
                    records
                        .get(1)
                        .and_then(|r| r.expires_at)
                        .filter(|_| !grace.is_zero()),
                );
            event.at = records[0].created_at;
            self.inner.store.apply(owner.change(&records), &event)?;
            committed = Some(event);
            Ok(())
        })?;
        let event = committed.unwrap_or_else(|| unreachable!("persist ran"));
        Ok(Regenerated {
            secret,
            at: event.at,
            old_expires_at: event.expires_at,
            key_id: new,
        })
    }

    /// The caller's project `id`, or [`AdminError::NotFound`] for an unknown id, another
    /// integrator's project, or one outside the caller's scope ([`AdminError::Forbidden`]).
    pub fn project(&self, caller: &Caller, id: &str) -> Result<Arc<Project>, AdminError> {
        let not_found = || AdminError::NotFound {
            resource: "project",
            id: id.to_owned(),
        };
        let project = self
            .inner
            .owned
            .load()
            .get(id)
            .filter(|p| &p.integrator == caller.integrator())
            .cloned()
            .ok_or_else(not_found)?;
        caller
            .require_project(&project.id)
            .map_err(|_| AdminError::Forbidden {
                scope: format!("project:{}", project.id),
            })?;
        Ok(project)
    }

    /// The caller's projects (those its credential may reach), by id.
    pub fn list_projects(&self, caller: &Caller) -> Vec<Arc<Project>> {
        let mut list: Vec<Arc<Project>> = self
            .inner
            .owned
            .load()
            .values()
            .filter(|p| &p.integrator == caller.integrator())
            .filter(|p| caller.require_project(&p.id).is_ok())
            .cloned()
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    /// Creates a project verified with `scheme` (one of [`SCHEMES`]) and its first signing
    /// secret, returned once.
    ///
    /// # Errors
    ///
    /// [`AdminError::Forbidden`] for a key limited to some projects,
    /// [`AdminError::Invalid`] for an unknown scheme, [`AdminError::Conflict`] past
    /// [`MAX_PROJECTS`], store and random failures.
    pub fn create_project(
        &self,
        caller: &Caller,
        name: Option<String>,
        scheme: &str,
    ) -> Result<NewProject, AdminError> {
        require_unlimited(caller)?;
        let verify_with = scheme_named(scheme).ok_or_else(|| {
            AdminError::Invalid(format!(
                "unknown scheme {scheme:?}; one of: {}",
                SCHEMES.join(", ")
            ))
        })?;
        let (signing_secret, secret) = new_signing_secret()?;
        let keyring = self.keyring().build(secret);
        let id = ProjectId::random();
        let now = self.now();
        let project = Project {
            id: id.clone(),
            integrator: caller.integrator().clone(),
            name,
            scheme: verify_with.name().to_owned(),
            created_at: now,
            keyring,
        };
        let row = ProjectRow::new(
            id.clone(),
            project.integrator.clone(),
            project.name.clone(),
            project.scheme.clone(),
            now,
            project.keyring.export(),
        );
        let event = AuditEvent::new(
            now,
            caller.integrator().clone(),
            actor(caller),
            "project.created",
        )
        .project(&id)
        .new_key(project.keyring.current_id());
        let _turn = self.turn();
        let owned = self.inner.owned.load();
        let count = owned
            .values()
            .filter(|p| &p.integrator == caller.integrator())
            .count();
        if count >= MAX_PROJECTS {
            return Err(AdminError::Conflict(format!(
                "the integrator has {MAX_PROJECTS} projects, the most allowed; delete one first"
            )));
        }
        self.inner
            .store
            .apply(Change::CreateProject(&row), &event)?;
        let verifier = verifier_for(
            verify_with,
            project.keyring.clone(),
            self.inner.public_base_url.as_deref(),
        );
        let project = Arc::new(project);
        self.inner.owned.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.insert(id.clone(), Arc::clone(&project));
            map
        });
        self.inner.projects.insert(id, verifier);
        Ok(NewProject {
            project: Project::clone(&project),
            signing_secret,
        })
    }

    /// Deletes a project and its keys; its webhooks are refused (404) from then on.
    ///
    /// # Errors
    ///
    /// As for [`project`](Admin::project), [`AdminError::Forbidden`] for a limited key, store
    /// failures; nothing is changed.
    pub fn delete_project(&self, caller: &Caller, id: &str) -> Result<(), AdminError> {
        require_unlimited(caller)?;
        let project = self.project(caller, id)?;
        let event = AuditEvent::new(
            self.now(),
            caller.integrator().clone(),
            actor(caller),
            "project.deleted",
        )
        .project(&project.id)
        .old_keys(project.keys().iter().map(|k| &k.id));
        let _turn = self.turn();
        self.inner.store.apply(
            Change::DeleteProject {
                integrator: caller.integrator(),
                project: &project.id,
            },
            &event,
        )?;
        self.inner.projects.remove(&project.id);
        self.inner.owned.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.remove(&project.id);
            map
        });
        Ok(())
    }

    /// Regenerates a project's signing secret: the old one keeps working for `grace` (0, the
    /// platforms' behaviour, ends it before this returns).
    ///
    /// # Errors
    ///
    /// As for [`project`](Admin::project); [`AdminError::Invalid`] for a grace period over
    /// [`MAX_GRACE`]; [`AdminError::Conflict`] when the live keys would exceed the cap; store
    /// and random failures. Nothing is changed on error: the old secret still verifies.
    pub fn regenerate_project_secret(
        &self,
        caller: &Caller,
        id: &str,
        grace: Duration,
    ) -> Result<Regenerated, AdminError> {
        let project = self.project(caller, id)?;
        let (secret, material) = new_signing_secret()?;
        let event = AuditEvent::new(
            self.now(),
            caller.integrator().clone(),
            actor(caller),
            "project.secret.regenerated",
        )
        .project(&project.id);
        self.regenerate(
            &project.keyring,
            secret,
            material,
            grace,
            event,
            Owner::Project(caller.integrator(), &project.id),
        )
    }

    /// Ends every grace key of a project at once (the previous secrets stop working now).
    /// Returns the ids ended; none is not an error.
    ///
    /// # Errors
    ///
    /// As for [`project`](Admin::project), store failures; nothing is changed.
    pub fn end_previous_secrets(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<Vec<KeyId>, AdminError> {
        let project = self.project(caller, id)?;
        let ended = project.keyring.end_grace_durably(|pending| {
            let records = pending.records();
            let event = AuditEvent::new(
                self.now(),
                caller.integrator().clone(),
                actor(caller),
                "project.secret.previous-ended",
            )
            .project(&project.id)
            .old_keys(pending.ended());
            self.inner
                .store
                .apply(
                    Change::SetProjectKeys {
                        integrator: caller.integrator(),
                        project: &project.id,
                        keys: &records,
                    },
                    &event,
                )
                .map(drop)
        })?;
        Ok(ended)
    }

    /// Creates an API key for the caller's integrator, limited to `projects` when given (each
    /// must be the integrator's), expiring `lifetime` from now when given. Returned once.
    ///
    /// # Errors
    ///
    /// [`AdminError::Forbidden`] for a caller whose own key is limited to some projects,
    /// [`AdminError::NotFound`] for a project that is not the integrator's,
    /// [`AdminError::Conflict`] past [`MAX_API_KEYS`], [`AdminError::Invalid`] for a zero
    /// lifetime; store and random failures. Nothing is changed on error.
    pub fn create_api_key(
        &self,
        caller: &Caller,
        name: Option<String>,
        projects: Option<Vec<ProjectId>>,
        lifetime: Option<Duration>,
    ) -> Result<NewApiKey, AdminError> {
        require_unlimited(caller)?;
        if let Some(ids) = &projects {
            for id in ids {
                self.project(caller, id.as_str())?;
            }
        }
        let expires_at = match lifetime {
            None => None,
            Some(d) if d.is_zero() => {
                return Err(AdminError::Invalid(
                    "an API key's lifetime must be positive".into(),
                ))
            }
            Some(d) => Some(
                chrono::Duration::from_std(d)
                    .ok()
                    .and_then(|d| self.now().checked_add_signed(d))
                    .ok_or_else(|| AdminError::Invalid("the lifetime is too long".into()))?,
            ),
        };
        self.create_api_key_as(
            caller.integrator(),
            &actor(caller),
            name,
            projects,
            expires_at,
        )
    }

    fn create_api_key_as(
        &self,
        integrator: &IntegratorId,
        actor: &str,
        name: Option<String>,
        projects: Option<Vec<ProjectId>>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<NewApiKey, AdminError> {
        let (id, key, digest) =
            generate_api_key().map_err(|e| AdminError::Random(e.to_string()))?;
        let now = self.now();
        let record = ApiKeyRecord {
            id,
            integrator: integrator.clone(),
            name,
            digest,
            created_at: now,
            expires_at,
            projects,
            last_used: None,
        };
        let mut event =
            AuditEvent::new(now, integrator.clone(), actor, "api-key.created").new_key(id);
        event.expires_at = expires_at;
        let _turn = self.turn();
        if self.inner.credentials.api_keys(integrator).len() >= MAX_API_KEYS {
            return Err(AdminError::Conflict(format!(
                "the integrator has {MAX_API_KEYS} API keys, the most allowed; delete one first"
            )));
        }
        self.inner
            .store
            .apply(Change::CreateApiKey(&record), &event)?;
        self.inner.credentials.insert_api_key(record.clone());
        Ok(NewApiKey { record, key })
    }

    /// The caller's integrator's API keys (never a key: ids, names, dates).
    pub fn list_api_keys(&self, caller: &Caller) -> Vec<ApiKeyRecord> {
        self.inner.credentials.api_keys(caller.integrator())
    }

    /// Deletes an API key of the caller's integrator; the very next request with it gets 401.
    ///
    /// # Errors
    ///
    /// [`AdminError::NotFound`] for an unknown id or another integrator's key,
    /// [`AdminError::Forbidden`] for a limited key, store failures; nothing is changed.
    pub fn delete_api_key(&self, caller: &Caller, id: &str) -> Result<(), AdminError> {
        require_unlimited(caller)?;
        let not_found = || AdminError::NotFound {
            resource: "apiKey",
            id: id.to_owned(),
        };
        let id = ApiKeyId::parse(id).map_err(|_| not_found())?;
        let _turn = self.turn();
        if !self
            .inner
            .credentials
            .api_keys(caller.integrator())
            .iter()
            .any(|k| k.id == id)
        {
            return Err(not_found());
        }
        let event = AuditEvent::new(
            self.now(),
            caller.integrator().clone(),
            actor(caller),
            "api-key.deleted",
        )
        .old_keys([&id]);
        self.inner.store.apply(
            Change::DeleteApiKey {
                integrator: caller.integrator(),
                id: &id,
            },
            &event,
        )?;
        self.inner.credentials.remove_api_key(&id);
        Ok(())
    }

    /// Writes the API keys' last uses that changed since the last call to the store, so a
    /// restart keeps them; returns how many. `webhook-guard serve` calls it every minute and
    /// on shutdown. A use is never written on the request path: admin requests do not wait for
    /// a disk write that records them.
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`]; the uses are then written by a later call.
    pub fn flush_last_uses(&self) -> Result<usize, AdminError> {
        let mut flushed = self
            .inner
            .flushed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let changed: Vec<_> = self
            .inner
            .credentials
            .last_uses()
            .into_iter()
            .filter(|(id, at)| flushed.get(id) != Some(at))
            .collect();
        if changed.is_empty() {
            return Ok(0);
        }
        self.inner.store.record_uses(&changed)?;
        flushed.extend(changed.iter().copied());
        Ok(changed.len())
    }

    /// The caller's integrator's audit events, newest first, `limit` at most, before the
    /// cursor `before` when given.
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`] when the store cannot be read.
    pub fn audit(
        &self,
        caller: &Caller,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, AdminError> {
        Ok(self.inner.store.audit(caller.integrator(), before, limit)?)
    }
}

/// A project's verifier: its scheme, its keyring, and the public base URL when one is set.
fn verifier_for(scheme: Box<dyn Scheme>, keyring: Keyring, base: Option<&str>) -> Verifier {
    let verifier = Verifier::new(scheme, keyring);
    match base {
        Some(base) => verifier.public_base_url(base),
        None => verifier,
    }
}

/// Whose key set a rotation changes.
enum Owner<'a> {
    Integrator(&'a IntegratorId),
    Project(&'a IntegratorId, &'a ProjectId),
}

impl<'a> Owner<'a> {
    /// The store change that sets the owner's keys to `keys`.
    fn change<'k>(&self, keys: &'k [crate::keyring::KeyRecord]) -> Change<'k>
    where
        'a: 'k,
    {
        match *self {
            Self::Integrator(integrator) => Change::SetIntegratorSecrets {
                integrator,
                secrets: keys,
            },
            Self::Project(integrator, project) => Change::SetProjectKeys {
                integrator,
                project,
                keys,
            },
        }
    }
}

/// Who made a change, for the audit log.
fn actor(caller: &Caller) -> String {
    match caller.credential() {
        Credential::ApiKey(id) => format!("api-key:{id}"),
        Credential::ClientSecret(id) => format!("client-secret:{id}"),
    }
}

/// Project and key management needs a credential that is not limited to some projects.
fn require_unlimited(caller: &Caller) -> Result<(), AdminError> {
    match caller.projects() {
        None => Ok(()),
        Some(_) => Err(AdminError::Forbidden {
            scope: "integrator".into(),
        }),
    }
}

/// A fresh signing secret: 32 random bytes shown as 64 hex digits; the HMAC key is that text,
/// as GitHub and Stripe key theirs with the text they show.
fn new_signing_secret() -> Result<(Zeroizing<String>, Secret), AdminError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut bytes[..]).map_err(|e| AdminError::Random(e.to_string()))?;
    let text = Zeroizing::new(hex::encode(&bytes[..]));
    let secret =
        Secret::from_bytes(text.as_bytes()).map_err(|e| AdminError::Random(e.to_string()))?;
    Ok((text, secret))
}

fn digest_secret(digest: &[u8; 32]) -> Result<Secret, AdminError> {
    Secret::from_bytes(digest).map_err(|e| AdminError::Random(e.to_string()))
}

//! [`Admin`]: the management plane as library calls, durable first and in memory second.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use super::credentials::{
    generate_client_secret, ApiKeyId, ApiKeyRow, Caller, CredentialId, Credentials,
};
mod api_keys;
mod audit;
mod error;
mod projects;
mod rules;
mod upstreams;

pub(super) use upstreams::upstream_from;

pub use error::AdminError;
use rules::{bad_cursor, check_name, gone, page_size, require_unlimited};

use super::throttle::Buckets;
use super::IntegratorId;
use crate::clock::{Clock, SystemClock};
use crate::gateway::{Upstream, UpstreamPolicy, UpstreamUrl};
use crate::keyring::{CommitError, KeyId, KeyInfo, Keyring, KeyringBuilder};
use crate::projects::{ProjectId, Projects};
use crate::scheme::Scheme;
use crate::secret::Secret;
use crate::store::{
    AuditAction, AuditEvent, Change, IntegratorRow, ProjectRow, Store, StoreError, UpstreamRow,
};
use crate::verify::Verifier;

/// Most projects one integrator may hold, unless [`AdminBuilder::max_projects`] says otherwise.
pub const MAX_PROJECTS: usize = 10_000;

/// Most API keys one integrator may hold.
pub const MAX_API_KEYS: usize = 100;

/// Longest grace period a regeneration may give the old secret: 3600 s, as the platforms allow.
pub const MAX_GRACE: Duration = Duration::from_secs(3600);

/// Longest name of a project or an API key, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Longest lifetime an API key may be given: 366 days.
pub const MAX_API_KEY_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// Most projects one API key may be limited to.
pub const MAX_KEY_PROJECTS: usize = 100;

/// Items on a page of a list when the caller does not say.
pub const DEFAULT_PAGE: usize = 100;

/// Most items on one page of a list.
pub const MAX_PAGE: usize = 500;

/// Most audit events on one page.
pub const MAX_AUDIT_PAGE: usize = 200;

/// Admin changes one credential may make per second, on average ([`AdminBuilder::write_rate`]).
pub const DEFAULT_WRITES_PER_SECOND: u32 = 20;

/// Admin changes one credential may make at once before the rate applies.
pub const DEFAULT_WRITE_BURST: u32 = 100;

/// The schemes a project can verify with (every HMAC scheme), by the name it is created with:
/// [`scheme::NAMES`](crate::scheme::NAMES).
pub const SCHEMES: [&str; 12] = crate::scheme::NAMES;

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
    pub(super) keyring: Keyring,
    pub(super) upstream: Option<Arc<Upstream>>,
}

impl Project {
    /// Its live keys (ids, roles, times, last verification; never a secret).
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.keyring.keys()
    }

    /// Where its verified deliveries are forwarded, if anywhere.
    pub fn upstream(&self) -> Option<&Upstream> {
        self.upstream.as_deref()
    }
}

impl fmt::Debug for Project {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Project")
            .field("id", &self.id)
            .field("integrator", &self.integrator)
            .field("scheme", &self.scheme)
            .field("keys", &self.keyring.keys())
            .field("upstream", &self.upstream)
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
    pub record: ApiKeyRow,
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
/// let caller = admin.credentials().authenticate_api_key(&integrator.api_key.key)?;
///
/// let created = admin.create_project(&caller, Some("shop".into()), "github")?;
/// let id = &created.project.id;
/// let regenerated = admin.regenerate_project_secret(&caller, id, Duration::from_secs(600))?;
/// assert_eq!(regenerated.secret.len(), 64);
/// assert!(regenerated.old_expires_at.is_some());
/// # drop(admin); std::fs::remove_dir_all(dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Admin {
    pub(super) inner: Arc<Inner>,
}

/// The projects the management plane knows, by id and by owner (in id order, for pages).
#[derive(Clone, Default)]
pub(super) struct Catalog {
    pub(super) by_id: HashMap<ProjectId, Arc<Project>>,
    by_integrator: HashMap<IntegratorId, BTreeSet<ProjectId>>,
}

impl Catalog {
    pub(super) fn insert(&mut self, project: Arc<Project>) {
        self.by_integrator
            .entry(project.integrator.clone())
            .or_default()
            .insert(project.id.clone());
        self.by_id.insert(project.id.clone(), project);
    }

    pub(super) fn remove(&mut self, id: &ProjectId) {
        if let Some(project) = self.by_id.remove(id) {
            if let Some(ids) = self.by_integrator.get_mut(&project.integrator) {
                ids.remove(id);
            }
        }
    }

    fn count(&self, integrator: &IntegratorId) -> usize {
        self.by_integrator.get(integrator).map_or(0, BTreeSet::len)
    }
}

/// One page of a list, and the cursor that asks for the next (`None` on the last page).
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// The page of `limit` items of `all` (in order) after the cursor `after`, where `key`
    /// gives an item's cursor.
    fn of(all: impl Iterator<Item = T>, limit: usize, key: impl Fn(&T) -> String) -> Self {
        let mut items: Vec<T> = all.take(limit + 1).collect();
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(key)
        } else {
            None
        };
        Self { items, next }
    }
}

pub(super) struct Inner {
    pub(super) store: Arc<dyn Store>,
    pub(super) projects: Projects,
    pub(super) catalog: ArcSwap<Catalog>,
    pub(super) credentials: Credentials,
    clock: Arc<dyn Clock>,
    max_keys: usize,
    pub(super) max_projects: usize,
    pub(super) public_base_url: Option<String>,
    /// What the change feed has applied (admin/feed.rs).
    pub(super) followed: super::feed::Followed,
    upstream_policy: UpstreamPolicy,
    /// Changes that add or remove map entries (projects, API keys) take turns, so a count
    /// checked before a commit is still right after it.
    writer: Mutex<()>,
    /// The last uses already written to the store.
    flushed: Mutex<HashMap<ApiKeyId, DateTime<Utc>>>,
    writes: Mutex<Buckets<CredentialId>>,
    failed_logins: (u32, u32),
}

/// Builds an [`Admin`]: the clock and limits, then [`open`](AdminBuilder::open) on a store.
pub struct AdminBuilder {
    clock: Arc<dyn Clock>,
    max_keys: usize,
    max_projects: usize,
    public_base_url: Option<String>,
    writes_per_second: u32,
    write_burst: u32,
    failed_logins: (u32, u32),
    upstream_policy: UpstreamPolicy,
}

impl fmt::Debug for AdminBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminBuilder")
            .field("max_keys", &self.max_keys)
            .field("max_projects", &self.max_projects)
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

    /// How many changes one credential (an API key, an API secret) may make: `per_second` on
    /// average, `burst` at once. A change past it is refused with
    /// [`AdminError::RateLimited`], which says when to retry. Default:
    /// [`DEFAULT_WRITES_PER_SECOND`] and [`DEFAULT_WRITE_BURST`]. Reads are not counted.
    pub fn write_rate(mut self, per_second: u32, burst: u32) -> Self {
        self.writes_per_second = per_second.max(1);
        self.write_burst = burst.max(1);
        self
    }

    /// How many failed authentications one client address may make through
    /// [`router`](super::router): `burst` at once, then `per_second`; past it, 429. Default:
    /// [`DEFAULT_FAILURES_PER_SECOND`](super::credentials::DEFAULT_FAILURES_PER_SECOND) and
    /// [`DEFAULT_FAILURE_BURST`](super::credentials::DEFAULT_FAILURE_BURST).
    pub fn failed_logins(mut self, per_second: u32, burst: u32) -> Self {
        self.failed_logins = (per_second.max(1), burst.max(1));
        self
    }

    /// The destinations projects' upstream URLs may name, checked when a URL is set
    /// ([`Admin::set_project_upstream`]). Default: none (no project may forward).
    pub fn upstream_policy(mut self, policy: UpstreamPolicy) -> Self {
        self.upstream_policy = policy;
        self
    }

    /// Most live keys per project, current included. Default: 8.
    pub fn max_keys(mut self, max: usize) -> Self {
        self.max_keys = max.max(1);
        self
    }

    /// Most projects one integrator may hold (at least 1): creating one more is a conflict
    /// (409) until one is deleted. Default: [`MAX_PROJECTS`].
    pub fn max_projects(mut self, max: usize) -> Self {
        self.max_projects = max.max(1);
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
        let mut catalog = Catalog::default();
        let keyrings = || {
            KeyringBuilder::default()
                .clock(Arc::clone(&self.clock))
                .max_keys(self.max_keys)
                .max_grace(MAX_GRACE)
        };
        let followed = super::feed::Followed::new(state.seq);
        for row in state.integrators {
            followed.loaded(super::feed::Row::Integrator(row.id.clone()), row.version);
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
            let scheme = crate::scheme::by_name(&row.scheme).ok_or_else(|| {
                AdminError::Invalid(format!("project {} has an unknown scheme", row.id))
            })?;
            followed.loaded(super::feed::Row::Project(row.id.clone()), row.version);
            let keyring = keyrings().import(row.keys)?;
            let verifier = verifier_for(scheme, keyring.clone(), self.public_base_url.as_deref());
            verifiers.push((row.id.clone(), verifier));
            // A stored URL is not checked against today's policy here: the gateway's connector
            // checks every connection, so a URL the policy no longer allows is refused then.
            let upstream = row
                .upstream
                .map(|stored| upstream_from(&stored).map(Arc::new))
                .transpose()
                .map_err(|e| {
                    AdminError::Invalid(format!("project {} has an invalid upstream: {e}", row.id))
                })?;
            catalog.insert(Arc::new(Project {
                id: row.id,
                integrator: row.integrator,
                name: row.name,
                scheme: row.scheme,
                created_at: row.created_at,
                keyring,
                upstream,
            }));
        }
        let projects: Projects = verifiers.into_iter().collect();
        Ok(Admin {
            inner: Arc::new(Inner {
                store: Arc::new(store),
                projects,
                catalog: ArcSwap::from_pointee(catalog),
                credentials,
                clock: self.clock,
                max_keys: self.max_keys,
                max_projects: self.max_projects,
                public_base_url: self.public_base_url,
                followed,
                upstream_policy: self.upstream_policy,
                writer: Mutex::new(()),
                flushed: Mutex::new(flushed),
                failed_logins: self.failed_logins,
                writes: Mutex::new(Buckets::new(
                    self.writes_per_second,
                    self.write_burst,
                    100_000,
                )),
            }),
        })
    }
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("projects", &self.inner.catalog.load().by_id.len())
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// A builder: the system clock and 8 live keys per project by default.
    pub fn builder() -> AdminBuilder {
        AdminBuilder {
            clock: Arc::new(SystemClock),
            max_keys: crate::keyring::DEFAULT_MAX_KEYS,
            max_projects: MAX_PROJECTS,
            public_base_url: None,
            writes_per_second: DEFAULT_WRITES_PER_SECOND,
            write_burst: DEFAULT_WRITE_BURST,
            failed_logins: (
                super::credentials::DEFAULT_FAILURES_PER_SECOND,
                super::credentials::DEFAULT_FAILURE_BURST,
            ),
            upstream_policy: UpstreamPolicy::default(),
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

    /// Failed authentications one client address may make: per second, and at once.
    pub fn failed_logins(&self) -> (u32, u32) {
        self.inner.failed_logins
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        &*self.inner.store
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    pub(super) fn keyring(&self) -> KeyringBuilder {
        KeyringBuilder::default()
            .clock(Arc::clone(&self.inner.clock))
            .max_keys(self.inner.max_keys)
            .max_grace(MAX_GRACE)
    }

    /// Counts a change by `caller` against its rate.
    fn admit(&self, caller: &Caller) -> Result<(), AdminError> {
        let now = self.now();
        self.inner
            .writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(caller.credential(), now)
            .map_err(|retry_after| AdminError::RateLimited { retry_after })
    }

    /// The audit event of `action` made now by `caller`, on its integrator's state.
    fn event_by(&self, caller: &Caller, action: AuditAction) -> AuditEvent {
        AuditEvent::new(
            self.now(),
            caller.integrator().clone(),
            actor(caller),
            action,
        )
    }

    pub(super) fn write_lock(&self) -> std::sync::MutexGuard<'_, ()> {
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
        let event = AuditEvent::new(now, id.clone(), "cli", AuditAction::IntegratorCreated)
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
    /// [`AdminError::Forbidden`] for a key limited to some projects (it could otherwise take
    /// the whole integrator over), [`AdminError::Invalid`] for a grace period over
    /// [`MAX_GRACE`], [`AdminError::Conflict`] when the live secrets would exceed the cap,
    /// [`AdminError::RateLimited`], store and random failures; nothing is changed.
    pub fn regenerate_integrator_secret(
        &self,
        caller: &Caller,
        grace: Duration,
    ) -> Result<Regenerated, AdminError> {
        require_unlimited(caller)?;
        self.admit(caller)?;
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
            AuditAction::IntegratorSecretRegenerated,
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
        if grace > MAX_GRACE {
            return Err(AdminError::Field {
                field: "oldSecretValidForSeconds",
                reason: format!("is {}, more than {}", grace.as_secs(), MAX_GRACE.as_secs()),
            });
        }
        let new = KeyId::random();
        let mut committed = None;
        // Another instance may have changed the keys since this one applied them: reload them
        // and try once more on the fresh state, holding the other writers off (admin/feed.rs).
        let _row = self.lock_row(&owner);
        let mut _writes = None;
        for attempt in 0..2 {
            let outcome = keyring.rotate_durably(new.clone(), material.clone(), grace, |pending| {
                let records = pending.records();
                let mut event = event
                    .clone()
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
                self.apply_keys(&owner, owner.change(&records), &event)?;
                committed = Some(event);
                Ok(())
            });
            match outcome {
                Err(CommitError::Persist(StoreError::Conflict { .. })) if attempt == 0 => {
                    _writes = Some(self.inner.store.lock_writes()?);
                    self.refresh_keys(&owner)?;
                }
                outcome => {
                    outcome?;
                    break;
                }
            }
        }
        let event = committed.unwrap_or_else(|| unreachable!("persist ran"));
        Ok(Regenerated {
            secret,
            at: event.at,
            old_expires_at: event.expires_at,
            key_id: new,
        })
    }
}

/// A project's verifier: its scheme, its keyring, and the public base URL when one is set.
pub(super) fn verifier_for(
    scheme: Box<dyn Scheme>,
    keyring: Keyring,
    base: Option<&str>,
) -> Verifier {
    let verifier = Verifier::new(scheme, keyring);
    match base {
        Some(base) => verifier.public_base_url(base),
        None => verifier,
    }
}

/// Whose key set a rotation changes.
pub(super) enum Owner<'a> {
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
        CredentialId::ApiKey(id) => format!("api-key:{id}"),
        CredentialId::ClientSecret(id) => format!("client-secret:{id}"),
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

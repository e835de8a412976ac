//! Following other instances: applying the changes they made to a shared store to this
//! instance's memory ([`Admin::apply_changes`], [`Admin::reload_all`], [`Admin::catch_up`]),
//! as the change feed ([`crate::store::feed`]) asks.
//!
//! Each row applied is stamped with its version in the store, and a row is applied only when
//! its version is newer than the one in memory: a slow reload never undoes a newer change. A
//! project or API key appears or disappears only under the writers' turn, after a read made
//! under it, so a reload never brings back what was just deleted here.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use super::plane::{verifier_for, Admin, AdminError, Catalog, Owner, Project};
use crate::keyring::{KeyRecord, Keyring};
use crate::projects::ProjectId;
use crate::store::{
    ApiKeyId, AuditEvent, Change, IntegratorId, IntegratorRow, ProjectRow, StoreError,
};

/// Most events read at once while catching up.
const CATCH_UP_PAGE: usize = 500;

/// A row whose keys are versioned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Row {
    Integrator(IntegratorId),
    Project(ProjectId),
}

/// One writer of a row at a time in this instance, held by its guard (it owns its lock, so it
/// outlives the map it was found in).
#[derive(Debug, Default)]
pub(super) struct RowLock {
    busy: Mutex<bool>,
    free: Condvar,
}

/// This instance's turn to write a row; the next writer's when dropped.
#[derive(Debug)]
pub(super) struct RowGuard(Arc<RowLock>);

impl RowGuard {
    fn take(turn: Arc<RowLock>) -> Self {
        let mut busy = turn.busy.lock().unwrap_or_else(PoisonError::into_inner);
        while *busy {
            busy = turn.free.wait(busy).unwrap_or_else(PoisonError::into_inner);
        }
        *busy = true;
        drop(busy);
        Self(turn)
    }
}

impl Drop for RowGuard {
    fn drop(&mut self) {
        *self.0.busy.lock().unwrap_or_else(PoisonError::into_inner) = false;
        self.0.free.notify_one();
    }
}

/// What this instance has applied: each row's version, and the last audit event.
#[derive(Debug)]
pub(super) struct Followed {
    versions: Mutex<HashMap<Row, u64>>,
    turns: Mutex<HashMap<Row, Arc<RowLock>>>,
    applied: AtomicU64,
    /// Whether the last readiness probe found the store answering.
    ready: AtomicBool,
    /// One catch-up or reload at a time.
    catching: Mutex<()>,
}

impl Followed {
    /// Nothing applied but a state that includes the events up to `seq`.
    pub(super) fn new(seq: u64) -> Self {
        Self {
            versions: Mutex::new(HashMap::new()),
            turns: Mutex::new(HashMap::new()),
            applied: AtomicU64::new(seq),
            ready: AtomicBool::new(true),
            catching: Mutex::new(()),
        }
    }

    /// `row` is in memory at `version`, as loaded.
    pub(super) fn loaded(&self, row: Row, version: u64) {
        self.versions().insert(row, version);
    }

    fn versions(&self) -> std::sync::MutexGuard<'_, HashMap<Row, u64>> {
        self.versions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The version memory holds of `row`. A row created here and never changed since is at 1,
    /// the version a store gives a new row.
    fn version(&self, row: &Row) -> u64 {
        self.versions().get(row).copied().unwrap_or(1)
    }

    /// Records `version` of `row` when it is newer than the one held; whether it was.
    fn advance(&self, row: Row, version: u64) -> bool {
        let mut versions = self.versions();
        match versions.get(&row) {
            Some(&held) if held >= version => false,
            _ => {
                versions.insert(row, version);
                true
            }
        }
    }
}

impl Owner<'_> {
    fn row(&self) -> Row {
        match *self {
            Owner::Integrator(id) => Row::Integrator(id.clone()),
            Owner::Project(_, id) => Row::Project(id.clone()),
        }
    }
}

impl Admin {
    /// Commits a change of `owner`'s keys only while the stored row is at the version memory
    /// holds, and stamps memory with the new one. Called under the keyring's writer turn.
    pub(super) fn apply_keys(
        &self,
        owner: &Owner<'_>,
        change: Change<'_>,
        event: &AuditEvent,
    ) -> Result<u64, StoreError> {
        let row = owner.row();
        let followed = &self.inner.followed;
        let (seq, version) = self
            .inner
            .store
            .apply_at(change, followed.version(&row), event)?;
        followed.versions().insert(row, version);
        Ok(seq)
    }

    /// This instance's turn to change `owner`'s keys. Taken before the keyring's own turn and
    /// held across a retry, so the retry can hold the other instances off
    /// ([`Store::lock_writes`](crate::store::Store::lock_writes)) without waiting for a local
    /// writer that waits for them.
    pub(super) fn lock_row(&self, owner: &Owner<'_>) -> RowGuard {
        let turn = Arc::clone(
            self.inner
                .followed
                .turns
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(owner.row())
                .or_default(),
        );
        RowGuard::take(turn)
    }

    /// Reloads `owner`'s keys into memory, after a write found them changed by another
    /// instance. Takes no turn but the keyring's: the caller may hold the store's write lock.
    pub(super) fn refresh_keys(&self, owner: &Owner<'_>) -> Result<(), AdminError> {
        match *owner {
            Owner::Integrator(id) => {
                if let (Some(row), Some(keyring)) = (
                    self.inner.store.load_integrator(id)?,
                    self.inner.credentials.integrator(id),
                ) {
                    self.replace_keys(owner.row(), &keyring, row.secrets, row.version)?;
                }
            }
            Owner::Project(_, id) => {
                let held = self.inner.catalog.load().by_id.get(id).cloned();
                if let (Some(row), Some(project)) = (self.inner.store.load_project(id)?, held) {
                    self.replace_keys(owner.row(), &project.keyring, row.keys, row.version)?;
                }
            }
        }
        Ok(())
    }

    /// Records whether the store answered a readiness probe; whether that changed since the
    /// last probe (so a state change is logged once, not at every probe).
    pub fn readiness_changed(&self, ready: bool) -> bool {
        self.inner.followed.ready.swap(ready, Ordering::SeqCst) != ready
    }

    /// The sequence number of the last audit event applied to memory.
    pub fn applied_seq(&self) -> u64 {
        self.inner.followed.applied.load(Ordering::SeqCst)
    }

    /// Reads the events after the last one applied and applies them; how many.
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`] when the store cannot be read; what was applied stays applied.
    pub fn catch_up(&self) -> Result<usize, AdminError> {
        let _one = self
            .inner
            .followed
            .catching
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut count = 0;
        loop {
            let events = self
                .inner
                .store
                .changes_since(self.applied_seq(), CATCH_UP_PAGE)?;
            if events.is_empty() {
                return Ok(count);
            }
            self.apply_changes(&events)?;
            count += events.len();
        }
    }

    /// Applies `events` (made by any instance, oldest first): reloads exactly the rows they
    /// name and marks them applied.
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`] when a row cannot be read; nothing after it is marked applied.
    pub fn apply_changes(&self, events: &[AuditEvent]) -> Result<(), AdminError> {
        let mut integrators = BTreeSet::new();
        let mut projects = BTreeSet::new();
        let mut api_keys = BTreeSet::new();
        for event in events {
            if event.action.subject() == "integrator" {
                integrators.insert(event.integrator.clone());
            }
            if let Some(project) = &event.project {
                if event.action.subject() == "project" {
                    projects.insert(project.clone());
                }
            }
            if event.action.subject() == "api-key" {
                api_keys.extend(
                    event
                        .new_key
                        .iter()
                        .chain(&event.old_keys)
                        .filter_map(|id| ApiKeyId::parse(id).ok()),
                );
            }
        }
        for id in &integrators {
            self.reload_integrator(id)?;
        }
        for id in &projects {
            self.reload_project(id)?;
        }
        for id in &api_keys {
            self.reload_api_key(id)?;
        }
        if let Some(last) = events.iter().map(|e| e.seq).max() {
            self.inner
                .followed
                .applied
                .fetch_max(last, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Reloads every row, for when changes may have been missed (the feed reconnected): rows
    /// changed elsewhere are updated, created ones added, deleted ones removed.
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`] when the store cannot be read; memory keeps what it had.
    pub fn reload_all(&self) -> Result<(), AdminError> {
        let _one = self
            .inner
            .followed
            .catching
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let state = self.inner.store.load()?;
        for row in state.integrators {
            self.put_integrator(row)?;
        }
        let catalog = self.inner.catalog.load_full();
        let mut stored = BTreeSet::new();
        for row in state.projects {
            stored.insert(row.id.clone());
            match catalog.by_id.contains_key(&row.id) {
                true => self.put_project(row)?,
                false => self.reload_project(&row.id)?,
            }
        }
        // Gone from the snapshot: deleted elsewhere, or created here after it; a fresh read
        // under the writers' turn tells which.
        for id in catalog.by_id.keys().filter(|id| !stored.contains(*id)) {
            self.reload_project(id)?;
        }
        let stored_keys: BTreeSet<ApiKeyId> = state.api_keys.iter().map(|k| k.id).collect();
        let held_keys: BTreeSet<ApiKeyId> = self
            .inner
            .credentials
            .integrator_ids()
            .iter()
            .flat_map(|id| self.inner.credentials.api_keys(id))
            .map(|k| k.id)
            .collect();
        for id in stored_keys.symmetric_difference(&held_keys) {
            self.reload_api_key(id)?;
        }
        self.inner
            .followed
            .applied
            .fetch_max(state.seq, Ordering::SeqCst);
        Ok(())
    }

    /// Replaces `keyring`'s keys with `records` when `version` is newer than memory's.
    fn replace_keys(
        &self,
        row: Row,
        keyring: &Keyring,
        records: Vec<KeyRecord>,
        version: u64,
    ) -> Result<bool, AdminError> {
        let followed = &self.inner.followed;
        Ok(keyring.replace_if(records, || followed.advance(row, version))?)
    }

    fn reload_integrator(&self, id: &IntegratorId) -> Result<(), AdminError> {
        match self.inner.store.load_integrator(id)? {
            Some(row) => self.put_integrator(row),
            // Integrators are never deleted.
            None => Ok(()),
        }
    }

    fn put_integrator(&self, row: IntegratorRow) -> Result<(), AdminError> {
        let credentials = &self.inner.credentials;
        if let Some(keyring) = credentials.integrator(&row.id) {
            self.replace_keys(
                Row::Integrator(row.id.clone()),
                &keyring,
                row.secrets,
                row.version,
            )?;
            return Ok(());
        }
        let _turn = self.write_lock();
        if credentials.integrator(&row.id).is_none() {
            let keyring = self.keyring().import(row.secrets)?;
            self.inner
                .followed
                .loaded(Row::Integrator(row.id.clone()), row.version);
            credentials.insert_integrator(row.id, keyring);
        }
        Ok(())
    }

    /// Reads project `id` under the writers' turn and makes memory match it.
    fn reload_project(&self, id: &ProjectId) -> Result<(), AdminError> {
        let _turn = self.write_lock();
        match self.inner.store.load_project(id)? {
            Some(row) => self.put_project(row),
            None => {
                if self.inner.catalog.load().by_id.contains_key(id) {
                    self.inner.projects.remove(id);
                    self.inner.catalog.rcu(|catalog| {
                        let mut catalog = Catalog::clone(catalog);
                        catalog.remove(id);
                        catalog
                    });
                }
                Ok(())
            }
        }
    }

    /// Under the writers' turn.
    fn put_project(&self, row: ProjectRow) -> Result<(), AdminError> {
        let upstream = upstream_of(&row);
        if let Some(project) = self.inner.catalog.load().by_id.get(&row.id) {
            self.replace_keys(
                Row::Project(row.id.clone()),
                &project.keyring,
                row.keys,
                row.version,
            )?;
            // The upstream (the gateway's) as stored: set, changed or removed elsewhere. A
            // re-signing secret cannot be compared, so a forwarding project's is taken as read.
            if upstream.is_some() || project.upstream.is_some() {
                self.serve_upstream(&row.id, upstream);
            }
            return Ok(());
        }
        let scheme = crate::scheme::by_name(&row.scheme).ok_or_else(|| {
            AdminError::Invalid(format!("project {} has an unknown scheme", row.id))
        })?;
        let keyring = self.keyring().import(row.keys)?;
        let verifier = verifier_for(
            scheme,
            keyring.clone(),
            self.inner.public_base_url.as_deref(),
        );
        self.inner
            .followed
            .loaded(Row::Project(row.id.clone()), row.version);
        let project = Arc::new(Project {
            id: row.id.clone(),
            integrator: row.integrator,
            name: row.name,
            scheme: row.scheme,
            created_at: row.created_at,
            keyring,
            upstream,
        });
        self.inner.catalog.rcu(|catalog| {
            let mut catalog = Catalog::clone(catalog);
            catalog.insert(Arc::clone(&project));
            catalog
        });
        self.inner.projects.insert(row.id, verifier);
        Ok(())
    }

    /// Reads API key `id` under the writers' turn and makes memory match it.
    fn reload_api_key(&self, id: &ApiKeyId) -> Result<(), AdminError> {
        let _turn = self.write_lock();
        match self.inner.store.load_api_key(id)? {
            Some(row) => {
                let held = self
                    .inner
                    .credentials
                    .api_keys(&row.integrator)
                    .iter()
                    .any(|k| k.id == row.id);
                if !held {
                    self.inner.credentials.insert_api_key(row);
                }
            }
            None => {
                self.inner.credentials.remove_api_key(id);
            }
        }
        Ok(())
    }
}

/// The management plane as the change feed's follower.
#[cfg(feature = "postgres")]
impl crate::store::feed::Follow for Admin {
    fn reload_all(&self) -> Result<(), StoreError> {
        Admin::reload_all(self).map_err(into_store)
    }

    fn catch_up(&self) -> Result<(), StoreError> {
        Admin::catch_up(self).map(drop).map_err(into_store)
    }
}

#[cfg(feature = "postgres")]
fn into_store(e: AdminError) -> StoreError {
    match e {
        AdminError::Store(e) => e,
        e => StoreError::Invalid {
            what: "change",
            reason: e.to_string(),
        },
    }
}

#[cfg(feature = "postgres")]
impl Admin {
    /// Follows the other instances sharing `source`'s database: a [`Listener`] that keeps this
    /// instance's memory within [`FeedOptions::poll`] of the store while the database is
    /// reachable. Dropping it stops following.
    ///
    /// [`Listener`]: crate::store::feed::Listener
    /// [`FeedOptions::poll`]: crate::store::feed::FeedOptions::poll
    pub fn follow(
        &self,
        source: crate::store::feed::FeedSource,
        options: crate::store::feed::FeedOptions,
    ) -> crate::store::feed::Listener {
        crate::store::feed::Listener::start(source, options, Arc::new(self.clone()))
    }
}

/// The upstream a stored project row names, as the gateway serves it.
fn upstream_of(row: &ProjectRow) -> Option<Arc<crate::gateway::Upstream>> {
    row.upstream
        .as_ref()
        .and_then(|u| super::plane::upstream_from(u).ok())
        .map(Arc::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: u8) -> Row {
        Row::Integrator(IntegratorId::new(&format!("int_{n}")))
    }

    /// Memory's version of a row: 1 until loaded or advanced, then only ever newer.
    #[test]
    fn a_rows_version_only_moves_forward() {
        let followed = Followed::new(0);
        assert_eq!(followed.version(&row(1)), 1, "never loaded: a new row");
        followed.loaded(row(1), 7);
        assert_eq!(followed.version(&row(1)), 7);
        assert!(!followed.advance(row(1), 6), "an older version");
        assert!(!followed.advance(row(1), 7), "the version held");
        assert_eq!(followed.version(&row(1)), 7);
        assert!(followed.advance(row(1), 8));
        assert_eq!(followed.version(&row(1)), 8);
        assert!(followed.advance(row(2), 1), "a row not held yet");
        assert_eq!(followed.version(&row(2)), 1);
    }

    /// The store's readiness is reported changed once per change, not at every probe.
    #[test]
    fn readiness_is_reported_changed_once_per_change() {
        let dir = std::env::temp_dir().join(format!(
            "wg-readiness-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let store = crate::store::SqliteStore::open(
            dir.join("wg.db"),
            crate::store::crypt::Sealer::plaintext(),
        )
        .unwrap();
        let admin = Admin::builder().open(store).unwrap();
        assert!(!admin.readiness_changed(true), "ready from the start");
        assert!(admin.readiness_changed(false));
        assert!(!admin.readiness_changed(false));
        assert!(admin.readiness_changed(true));
        assert!(!admin.readiness_changed(true));
        drop(admin);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

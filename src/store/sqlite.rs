//! The embedded store: one SQLite file (rusqlite, bundled), WAL mode, `synchronous=FULL`.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use chrono::{DateTime, Utc};
use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};

use super::crypt::{self, Sealer};
use super::{
    from_nanos, nanos, stored_action, ApiKeyId, ApiKeyRow, AuditAction, AuditEvent, AuditQuery,
    AuditRetention, Change, IntegratorId, IntegratorRow, ProjectRow, State, Store, StoreError,
    StoredKey, UpstreamRow,
};
use crate::keyring::KeyRecord;
use crate::projects::ProjectId;
use crate::public_key::KeyMaterial;

mod file;
mod writes;

use file::*;
use writes::*;

/// The newest schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `PRAGMA application_id` of a webhook-guard database: "wgrd".
const APPLICATION_ID: i64 = 0x7767_7264;

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Migration `i` takes the schema from version `i` to `i + 1`. Append only; never edit one that
/// shipped.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE integrators (
        id          TEXT PRIMARY KEY,
        created_at  INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE projects (
        id          TEXT PRIMARY KEY,
        integrator  TEXT NOT NULL REFERENCES integrators(id),
        name        TEXT,
        scheme      TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX projects_by_integrator ON projects(integrator);
    -- Signing keys of projects and API-secret digests of integrators, sealed (store/crypt.rs).
    CREATE TABLE keys (
        owner_kind  TEXT NOT NULL,
        owner       TEXT NOT NULL,
        key_id      TEXT NOT NULL,
        position    INTEGER NOT NULL,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER,
        material    BLOB NOT NULL,
        PRIMARY KEY (owner_kind, owner, key_id)
    ) STRICT;
    CREATE TABLE api_keys (
        id          TEXT PRIMARY KEY,
        integrator  TEXT NOT NULL REFERENCES integrators(id),
        name        TEXT,
        digest      BLOB NOT NULL,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER,
        projects    TEXT,
        last_used   INTEGER
    ) STRICT;
    CREATE TABLE audit (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        at          INTEGER NOT NULL,
        integrator  TEXT NOT NULL,
        actor       TEXT NOT NULL,
        action      TEXT NOT NULL,
        project     TEXT,
        old_keys    TEXT NOT NULL,
        new_key     TEXT,
        grace_secs  INTEGER,
        expires_at  INTEGER
    ) STRICT;
    CREATE INDEX audit_by_integrator ON audit(integrator, seq);
",
    "
    -- How many events a pruning removed (action audit.pruned).
    ALTER TABLE audit ADD COLUMN count INTEGER;
",
    "
    -- Where a project's verified deliveries are forwarded; its re-signing secret is a sealed
    -- row of keys (owner_kind 'upstream').
    ALTER TABLE projects ADD COLUMN upstream_url TEXT;
",
];

use super::{INTEGRATOR_KEYS as INTEGRATOR, PROJECT_KEYS as PROJECT, UPSTREAM_KEYS as UPSTREAM};

/// The embedded [`Store`]: one SQLite file, opened in WAL mode with `synchronous=FULL`, so a
/// change [`apply`](Store::apply) returned from survives a crash or power loss.
///
/// - One process at a time: [`open`](SqliteStore::open) takes an exclusive advisory lock on
///   `<file>.lock` beside the database (writing its process id into it) and holds it until the
///   store is dropped; another process opening the same database gets
///   [`StoreError::Locked`] naming the holder. Stores opened on the same file within one
///   process share the lock.
/// - The file is watched: [`ping`](Store::ping) and every write first check that the file at
///   the path is still the one opened (same device and inode, not shrunk or emptied). A file
///   deleted, replaced or truncated under the store turns every later write and ping into
///   [`StoreError::FileChanged`], so nothing is acknowledged that a restart would not find.
///
/// - A new file is built under a temporary name, with mode `0600`, and renamed into place once
///   its schema is complete: a crash while creating it leaves no half-made database behind.
/// - An existing file is checked before anything is written to it: it must be a SQLite file of
///   webhook-guard (`application_id`), pass `PRAGMA quick_check`, and have a schema version
///   this build knows; otherwise [`open`](SqliteStore::open) refuses it and leaves it as it is.
/// - The schema is versioned with `PRAGMA user_version`; older files are migrated in one
///   transaction.
/// - Secrets are sealed with a [`Sealer`] before they reach the file.
///
/// # Examples
///
/// ```
/// use webhook_guard::store::{crypt::Sealer, SqliteStore, Store};
///
/// let dir = std::env::temp_dir().join(format!("wg-doc-{}", std::process::id()));
/// let store = SqliteStore::open(dir.join("webhook-guard.db"), Sealer::plaintext())?;
/// store.ping()?;
/// assert!(store.load()?.projects.is_empty());
/// # drop(store); std::fs::remove_dir_all(dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SqliteStore {
    conn: Mutex<Connection>,
    sealer: Sealer,
    path: PathBuf,
    watch: FileWatch,
    /// Held for the store's life; released when the last store of this process on the file
    /// is dropped.
    _lock: Arc<FileLock>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("sealer", &self.sealer)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database at `path`, creating it (and its directory, mode `0700`) when there
    /// is none.
    ///
    /// # Errors
    ///
    /// [`StoreError::Locked`] when another process has the database open;
    /// [`StoreError::NotADatabase`] for a file that is empty, not SQLite or another
    /// application's; [`StoreError::Corrupt`] for one that fails its integrity check;
    /// [`StoreError::TooNew`] for a schema from a newer build; I/O and database errors. The
    /// file is not written to in any of these cases.
    pub fn open(path: impl AsRef<Path>, sealer: Sealer) -> Result<Self, StoreError> {
        // Absolute: the file is watched for as long as the store is open, wherever the
        // process's working directory goes meanwhile.
        let path = std::path::absolute(path.as_ref()).map_err(|e| io(path.as_ref(), e))?;
        make_parent(&path)?;
        let lock = FileLock::take(&path)?;
        match fs::symlink_metadata(&path) {
            Ok(_) => check_header(&path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&path)?,
            Err(source) => return Err(io(&path, source)),
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| damaged(&path, e))?;
        check_existing(&conn, &path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut conn = conn;
        migrate(&mut conn)?;
        let watch = FileWatch::new(&path)?;
        if sealer.is_plaintext() {
            tracing::warn!(
                path = %path.display(),
                "secrets are stored in plaintext: configure a master key to seal them"
            );
        }
        Ok(Self {
            conn: Mutex::new(conn),
            sealer,
            path,
            watch,
            _lock: lock,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-seals every stored secret that is not sealed under the sealer's current master key
    /// (sealed under an older one, or kept in plaintext), in one transaction. Returns how many
    /// were re-sealed.
    ///
    /// Before it commits, every stored secret is opened again with the sealer: the store it
    /// leaves opens with the sealer's current key alone. Add the new master key in front of
    /// the old one, run this, then drop the old key.
    ///
    /// # Errors
    ///
    /// [`StoreError::Crypt`] when a secret cannot be opened with any configured master key
    /// (nothing is changed), [`StoreError::FileChanged`], or the database's own errors.
    pub fn rekey(&self) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows: Vec<(String, String, String, Vec<u8>)> = {
            let mut select = tx.prepare("SELECT owner_kind, owner, key_id, material FROM keys")?;
            let rows =
                select.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut count = 0;
        for (kind, owner, key_id, sealed) in rows {
            if !self.sealer.needs_rekey(&sealed) {
                continue;
            }
            let aad = crypt::aad(&kind, &owner, &key_id);
            let plain = self.sealer.open(&aad, &sealed)?;
            let resealed = self.sealer.seal(&aad, &plain)?;
            tx.execute(
                "UPDATE keys SET material = ?1 WHERE owner_kind = ?2 AND owner = ?3 AND key_id = ?4",
                params![resealed, kind, owner, key_id],
            )?;
            count += 1;
        }
        // Nothing is committed that the configured keys would not open.
        {
            let mut select = tx.prepare("SELECT owner_kind, owner, key_id, material FROM keys")?;
            let mut rows = select.query([])?;
            while let Some(row) = rows.next()? {
                let (kind, owner, key_id): (String, String, String) =
                    (row.get(0)?, row.get(1)?, row.get(2)?);
                let sealed: Vec<u8> = row.get(3)?;
                if self.sealer.needs_rekey(&sealed) {
                    return Err(StoreError::Invalid {
                        what: "key material",
                        reason: "a secret is still sealed under another master key".into(),
                    });
                }
                self.sealer
                    .open(&crypt::aad(&kind, &owner, &key_id), &sealed)?;
            }
        }
        self.watch.check(&self.path)?;
        tx.commit()?;
        Ok(count)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock rolled its transaction back (rusqlite's Drop).
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read_keys(
        &self,
        conn: &Connection,
        kind: &str,
        owner: &str,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let mut select = conn.prepare_cached(
            "SELECT key_id, position, created_at, expires_at, material FROM keys
             WHERE owner_kind = ?1 AND owner = ?2 ORDER BY position",
        )?;
        let rows = select.query_map(params![kind, owner], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Vec<u8>>(4)?,
            ))
        })?;
        let mut records = Vec::new();
        for row in rows {
            let (key_id, position, created_at, expires_at, sealed) = row?;
            let key = StoredKey {
                key_id,
                position,
                created_at,
                expires_at,
                sealed,
            };
            records.push(key.open(&self.sealer, kind, owner)?);
        }
        Ok(records)
    }
}

impl Store for SqliteStore {
    fn load(&self) -> Result<State, StoreError> {
        let conn = self.lock();
        let mut state = State::default();
        let integrators: Vec<(String, i64)> = {
            let mut select = conn.prepare("SELECT id, created_at FROM integrators ORDER BY id")?;
            let rows = select.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (id, created_at) in integrators {
            let secrets = self.read_keys(&conn, INTEGRATOR, &id)?;
            state.integrators.push(IntegratorRow::new(
                IntegratorId::new(&id),
                from_nanos(created_at),
                secrets,
            ));
        }
        type Project = (String, String, Option<String>, String, i64, Option<String>);
        let projects: Vec<Project> = {
            let mut select = conn.prepare(
                "SELECT id, integrator, name, scheme, created_at, upstream_url FROM projects
                 ORDER BY id",
            )?;
            let rows = select.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        for (id, integrator, name, scheme, created_at, upstream_url) in projects {
            let keys = self.read_keys(&conn, PROJECT, &id)?;
            let upstream = match upstream_url {
                Some(url) => Some(UpstreamRow::from_stored(
                    url,
                    self.read_keys(&conn, UPSTREAM, &id)?,
                )),
                None => None,
            };
            state.projects.push(
                ProjectRow::new(
                    parse_project(&id)?,
                    IntegratorId::new(&integrator),
                    name,
                    scheme,
                    from_nanos(created_at),
                    keys,
                )
                .upstream(upstream),
            );
        }
        let mut select = conn.prepare(
            "SELECT id, integrator, name, digest, created_at, expires_at, projects, last_used
             FROM api_keys ORDER BY created_at, id",
        )?;
        let rows = select.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<i64>>(7)?,
            ))
        })?;
        for row in rows {
            let (id, integrator, name, digest, created_at, expires_at, projects, last_used) = row?;
            let invalid = |reason: &str| StoreError::Invalid {
                what: "API key",
                reason: reason.into(),
            };
            let id = ApiKeyId::parse(&id).map_err(|_| invalid("malformed id"))?;
            let digest: [u8; 32] = digest
                .try_into()
                .map_err(|_| invalid("digest is not 32 bytes"))?;
            let projects = match projects {
                None => None,
                Some(text) => {
                    let ids: Vec<String> = serde_json::from_str(&text)
                        .map_err(|_| invalid("malformed project list"))?;
                    Some(
                        ids.iter()
                            .map(|id| parse_project(id))
                            .collect::<Result<_, _>>()?,
                    )
                }
            };
            state.api_keys.push(ApiKeyRow {
                id,
                integrator: IntegratorId::new(&integrator),
                name,
                digest,
                created_at: from_nanos(created_at),
                expires_at: expires_at.map(from_nanos),
                projects,
                last_used: last_used.map(from_nanos),
            });
        }
        state.seq = conn.query_row("SELECT coalesce(max(seq), 0) FROM audit", [], |r| {
            r.get::<_, i64>(0)
        })? as u64;
        Ok(state)
    }

    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let conn = self.lock();
        let mut select = conn.prepare_cached(
            "SELECT seq, integrator FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let found: Vec<(i64, String)> = select
            .query_map(
                params![
                    after.min(i64::MAX as u64) as i64,
                    limit.min(i64::MAX as usize) as i64
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect::<Result<_, _>>()?;
        drop(select);
        drop(conn);
        // Rare (only a follower calls it): each event read back as the audit pages read it.
        let mut events = Vec::with_capacity(found.len());
        for (seq, integrator) in found {
            let integrator = IntegratorId::new(&integrator);
            let page =
                self.audit_matching(&integrator, &AuditQuery::page(Some(seq as u64 + 1), 1))?;
            events.extend(page.into_iter().filter(|e| e.seq == seq as u64));
        }
        Ok(events)
    }

    fn apply(&self, change: Change<'_>, event: &AuditEvent) -> Result<u64, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.apply_in(&tx, change)?;
        let seq = append_event(&tx, event)?;
        self.watch.check(&self.path)?;
        tx.commit()?;
        Ok(seq)
    }

    fn audit_matching(
        &self,
        integrator: &IntegratorId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let conn = self.lock();
        let mut select = conn.prepare_cached(
            "SELECT seq, at, actor, action, project, old_keys, new_key, grace_secs, expires_at, count
             FROM audit WHERE integrator = ?1 AND (?2 IS NULL OR seq < ?2)
               AND (?4 IS NULL OR project IN (SELECT value FROM json_each(?4)))
               AND (?5 IS NULL OR action = ?5)
             ORDER BY seq DESC LIMIT ?3",
        )?;
        let projects = match &query.projects {
            Some(ids) => Some(project_list(ids)?),
            None => None,
        };
        let rows = select.query_map(
            params![
                integrator.as_str(),
                query.before.map(|b| b.min(i64::MAX as u64) as i64),
                query.limit.min(i64::MAX as usize) as i64,
                projects,
                query.action.map(AuditAction::as_str),
            ],
            |r| {
                Ok((
                    (
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ),
                    (
                        r.get::<_, String>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, Option<i64>>(7)?,
                        r.get::<_, Option<i64>>(8)?,
                        r.get::<_, Option<i64>>(9)?,
                    ),
                ))
            },
        )?;
        let mut events = Vec::new();
        for row in rows {
            let (
                (seq, at, actor, action, project),
                (old_keys, new_key, grace_secs, expires_at, count),
            ) = row?;
            let action = stored_action(&action)?;
            let mut event = AuditEvent::new(from_nanos(at), integrator.clone(), actor, action);
            event.seq = seq as u64;
            event.project = project.as_deref().map(parse_project).transpose()?;
            event.old_keys = serde_json::from_str(&old_keys).map_err(|_| StoreError::Invalid {
                what: "audit event",
                reason: "malformed key list".into(),
            })?;
            event.new_key = new_key;
            event.grace_secs = grace_secs.map(|s| s as u64);
            event.expires_at = expires_at.map(from_nanos);
            event.count = count.map(|c| c as u64);
            events.push(event);
        }
        Ok(events)
    }

    fn prune_audit(
        &self,
        integrator: &IntegratorId,
        retention: AuditRetention,
        event: &AuditEvent,
    ) -> Result<u64, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut removed = 0;
        if let Some(before) = retention.older_than {
            removed += tx
                .prepare_cached("DELETE FROM audit WHERE integrator = ?1 AND at < ?2")?
                .execute(params![integrator.as_str(), nanos(before)])?;
        }
        if let Some(keep) = retention.keep_newest {
            removed += tx
                .prepare_cached(
                    "DELETE FROM audit WHERE integrator = ?1 AND seq < (
                        SELECT coalesce(min(seq), 0) FROM (
                            SELECT seq FROM audit WHERE integrator = ?1 ORDER BY seq DESC LIMIT ?2))",
                )?
                .execute(params![
                    integrator.as_str(),
                    keep.min(i64::MAX as u64) as i64
                ])?;
        }
        if removed > 0 {
            let mut event = event.clone();
            event.count = Some(removed as u64);
            append_event(&tx, &event)?;
        }
        self.watch.check(&self.path)?;
        tx.commit()?;
        Ok(removed as u64)
    }

    fn record_uses(&self, uses: &[(ApiKeyId, DateTime<Utc>)]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut update = tx.prepare_cached(
                "UPDATE api_keys SET last_used = ?2 WHERE id = ?1 AND (last_used IS NULL OR last_used < ?2)",
            )?;
            for (id, at) in uses {
                update.execute(params![id.as_str(), nanos(*at)])?;
            }
        }
        self.watch.check(&self.path)?;
        tx.commit()?;
        Ok(())
    }

    fn ping(&self) -> Result<(), StoreError> {
        let conn = self.lock();
        self.watch.check(&self.path)?;
        conn.query_row("SELECT count(*) FROM integrators", [], |_| Ok(()))?;
        Ok(())
    }
}

/// Applies the migrations the file lacks, in one transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let start = usize::try_from(version).unwrap_or(usize::MAX);
    for sql in MIGRATIONS.iter().skip(start) {
        tx.execute_batch(sql)?;
    }
    if start < MIGRATIONS.len() {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

fn project_list(ids: &[ProjectId]) -> Result<String, StoreError> {
    let ids: Vec<&str> = ids.iter().map(ProjectId::as_str).collect();
    serde_json::to_string(&ids).map_err(|e| StoreError::Invalid {
        what: "project list",
        reason: e.to_string(),
    })
}

fn parse_project(id: &str) -> Result<ProjectId, StoreError> {
    ProjectId::parse(id).map_err(|e| StoreError::Invalid {
        what: "project id",
        reason: e.to_string(),
    })
}

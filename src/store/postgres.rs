//! The shared store: PostgreSQL (tokio-postgres, a deadpool pool), for many instances of
//! webhook-guard over one database.
//!
//! The [`Store`] trait is synchronous and is called from plain threads (`main`, the CLI) and
//! from `spawn_blocking` threads; tokio-postgres is asynchronous. The store owns a small
//! runtime (two worker threads: the connections' I/O and the change feed's listener) and
//! blocks on it: directly from a thread outside any runtime, and from a scoped thread when
//! called inside one (a runtime's own `block_on` must not nest). A write waits for a commit,
//! which costs far more than the thread.

use std::cell::RefCell;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::{IsolationLevel, NoTls, Row};

use super::crypt::{self, Sealer};
use super::{
    stored_action, ApiKeyId, ApiKeyRow, AuditAction, AuditEvent, AuditQuery, AuditRetention,
    Change, IntegratorId, IntegratorRow, ProjectRow, State, Store, StoreError, UpstreamRow,
    WriteLock,
};
use crate::keyring::{KeyId, KeyRecord, KeyRole};
use crate::projects::ProjectId;
use crate::public_key::KeyMaterial;
use crate::secret::Secret;

/// Migration `i` takes the schema from version `i` to `i + 1`. Append only; never edit one that
/// shipped.
const MIGRATIONS: &[&str] = &[
    include_str!("postgres/0001_schema.sql"),
    include_str!("postgres/0002_upstream.sql"),
];

/// The newest schema version this build writes (`webhook_guard_schema`).
pub const PG_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The channel every change is announced on, with its audit sequence number as the payload.
pub const CHANGES_CHANNEL: &str = "webhook_guard_changes";

/// The advisory lock every write transaction takes first: sequence numbers are then handed out
/// in commit order, so a follower reading "events after seq n" never skips one that commits
/// late. Admin writes are rare; taking turns costs nothing that matters. ("wgrd" + 1)
const WRITE_LOCK: i64 = 0x7767_7264_0001;

/// The advisory lock migrations and bootstrap run under, so instances starting together do
/// them once.
const SETUP_LOCK: i64 = 0x7767_7264_0002;

use super::{INTEGRATOR_KEYS as INTEGRATOR, PROJECT_KEYS as PROJECT, UPSTREAM_KEYS as UPSTREAM};

/// Settings of a [`PostgresStore`]: the pool's size and how long to wait for a connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// Most connections the pool opens. Default: 4.
    pub pool_size: usize,
    /// How long a call waits for a connection (and a connection attempt takes) before it fails
    /// with [`StoreError::Unavailable`]. Default: 5 s.
    pub connect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 4,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl PostgresOptions {
    /// Most connections the pool opens (at least 1).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long to wait for a connection before failing with [`StoreError::Unavailable`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

/// The [`Store`] many instances share: PostgreSQL, each change and its audit event in one
/// transaction, announced with `NOTIFY webhook_guard_changes` so the other instances follow.
///
/// - The schema is versioned in `webhook_guard_schema`; migrations (SQL files under
///   `src/store/postgres/`) are applied in order in one transaction, under an advisory lock.
/// - Secrets are sealed with the same [`Sealer`] and associated data as the SQLite store: a
///   sealed value moved to another row does not open.
/// - Times are kept to the nanosecond (as `bigint`), as in SQLite.
/// - When the database cannot be reached, calls fail with [`StoreError::Unavailable`].
///
/// # Examples
///
/// ```no_run
/// use webhook_guard::store::{crypt::Sealer, PostgresOptions, PostgresStore, Store};
///
/// let store = PostgresStore::connect(
///     "postgres://postgres@127.0.0.1/webhook_guard",
///     Sealer::plaintext(),
///     PostgresOptions::default().pool_size(8),
/// )?;
/// store.ping()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PostgresStore {
    /// Tells this store's pinned connection from another store's on the same thread.
    id: u64,
    pool: Pool,
    runtime: Option<tokio::runtime::Runtime>,
    config: tokio_postgres::Config,
    sealer: Sealer,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("pool", &self.pool.status())
            .field("sealer", &self.sealer)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime: let it go instead.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/dbname`, or key=value
    /// settings), creating or migrating its schema.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the database cannot be reached,
    /// [`StoreError::TooNew`] for a schema from a newer build, [`StoreError::Invalid`] for a
    /// malformed URL, and the database's own errors.
    pub fn connect(
        url: &str,
        sealer: Sealer,
        options: PostgresOptions,
    ) -> Result<Self, StoreError> {
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|e| StoreError::Invalid {
                what: "database URL",
                reason: e.to_string(),
            })?;
        if config.get_application_name().is_none() {
            config.application_name("webhook-guard");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        // A peer that vanished without a reset (a network partition) is noticed within about
        // 25 s, not after the kernel's two hours, and a statement never waits forever.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
        if config.get_options().is_none() {
            config.options("-c statement_timeout=30000");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("webhook-guard-postgres")
            .enable_all()
            .build()
            .map_err(|source| StoreError::Io {
                path: "postgres runtime".into(),
                source,
            })?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| StoreError::Invalid {
                what: "connection pool",
                reason: e.to_string(),
            })?;
        if sealer.is_plaintext() {
            tracing::warn!("secrets are stored in plaintext: configure a master key to seal them");
        }
        static STORES: AtomicU64 = AtomicU64::new(1);
        let store = Self {
            id: STORES.fetch_add(1, Ordering::Relaxed),
            pool,
            runtime: Some(runtime),
            config,
            sealer,
        };
        store.block(store.migrate())?;
        Ok(store)
    }

    /// The connection settings (host, database, user; for the change feed's own connection).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The runtime the store's connections run on; the change feed's listener runs on it too.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        match &self.runtime {
            Some(runtime) => runtime.handle(),
            None => unreachable!("the runtime is taken only when the store is dropped"),
        }
    }

    /// Runs `future` on the store's runtime and waits for it, from any thread.
    fn block<F>(&self, future: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        block_on(self.runtime(), future)
    }

    /// Runs a read on the connection this thread pinned with [`Store::lock_writes`], if any (a
    /// retry reads the row it rewrites without waiting for the pool, which writers queued
    /// behind the lock may hold), else on one from the pool.
    fn read_pinned_or_pooled<T: Send>(
        &self,
        read: impl for<'c> FnOnce(&'c mut deadpool_postgres::Object) -> Read<'c, T> + Send,
    ) -> Result<T, StoreError> {
        match take_pinned(self.id) {
            None => self.block(async {
                let mut client = self.client().await?;
                read(&mut client).await
            }),
            Some(mut client) => {
                let result = self.block(read(&mut client));
                PINNED.with(|p| *p.borrow_mut() = Some((self.id, client)));
                result
            }
        }
    }

    /// Commits on the connection this thread pinned with [`Store::lock_writes`], if any, else
    /// on one from the pool.
    fn apply_pinned(
        &self,
        change: Change<'_>,
        expected: Option<i64>,
        event: &AuditEvent,
    ) -> Result<(u64, Option<i64>), StoreError> {
        match take_pinned(self.id) {
            None => self.block(async {
                let mut client = self.client().await?;
                self.apply_versioned(&mut client, change, expected, event)
                    .await
            }),
            Some(mut client) => {
                let result = self.block(self.apply_versioned(&mut client, change, expected, event));
                PINNED.with(|p| *p.borrow_mut() = Some((self.id, client)));
                result
            }
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Applies the migrations the database lacks, in one transaction under an advisory lock.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SETUP_LOCK])
            .await
            .map_err(pg)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS webhook_guard_schema (
                 version     bigint PRIMARY KEY,
                 applied_at  timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(pg)?;
        let version: i64 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM webhook_guard_schema",
                &[],
            )
            .await
            .map_err(pg)?
            .get(0);
        if version > PG_SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                found: version,
                supported: PG_SCHEMA_VERSION,
            });
        }
        let start = usize::try_from(version).unwrap_or(usize::MAX);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(start) {
            tx.batch_execute(sql).await.map_err(pg)?;
            tx.execute(
                "INSERT INTO webhook_guard_schema (version) VALUES ($1)",
                &[&(i as i64 + 1)],
            )
            .await
            .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)
    }

    /// Re-seals every stored secret that is not sealed under the sealer's current master key,
    /// in one transaction; how many were re-sealed. As [`SqliteStore::rekey`](super::SqliteStore::rekey).
    ///
    /// # Errors
    ///
    /// [`StoreError::Crypt`] when a secret cannot be opened with any configured master key
    /// (nothing is changed), [`StoreError::Unavailable`], the database's own errors.
    pub fn rekey(&self) -> Result<usize, StoreError> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
                .await
                .map_err(pg)?;
            let rows = tx
                .query(
                    "SELECT owner_kind, owner, key_id, material FROM keys FOR UPDATE",
                    &[],
                )
                .await
                .map_err(pg)?;
            let mut count = 0;
            for row in rows {
                let (kind, owner, key_id, sealed): (String, String, String, Vec<u8>) =
                    (row.get(0), row.get(1), row.get(2), row.get(3));
                if !self.sealer.needs_rekey(&sealed) {
                    continue;
                }
                let aad = crypt::aad(&kind, &owner, &key_id);
                let plain = self.sealer.open(&aad, &sealed)?;
                let resealed = self.sealer.seal(&aad, &plain)?;
                tx.execute(
                    "UPDATE keys SET material = $1 WHERE owner_kind = $2 AND owner = $3 AND key_id = $4",
                    &[&resealed, &kind, &owner, &key_id],
                )
                .await
                .map_err(pg)?;
                count += 1;
            }
            tx.commit().await.map_err(pg)?;
            Ok(count)
        })
    }

    /// Runs `f` once across every instance sharing the database: under a session-wide lock, so
    /// two instances starting together do not both bootstrap. `f` sees the store.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`], or what `f` returns.
    pub fn exclusively<T, E>(&self, f: impl FnOnce(&Self) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let client = self.block(async {
            let client = self.client().await?;
            client
                .execute("SELECT pg_advisory_lock($1)", &[&SETUP_LOCK])
                .await
                .map_err(pg)?;
            Ok::<_, StoreError>(client)
        })?;
        let result = f(self);
        self.block(async {
            // A connection that lost its lock with its session is dropped by the pool anyway.
            let _ = client
                .execute("SELECT pg_advisory_unlock($1)", &[&SETUP_LOCK])
                .await;
        });
        result
    }

    fn seal_keys(
        &self,
        kind: &str,
        owner: &str,
        records: &[KeyRecord],
    ) -> Result<Vec<SealedKey>, StoreError> {
        records
            .iter()
            .enumerate()
            .map(|(position, record)| {
                let KeyMaterial::Secret(secret) = &record.material else {
                    return Err(StoreError::Invalid {
                        what: "key material",
                        reason: "only shared secrets are stored".into(),
                    });
                };
                let plain = secret.reveal().into_bytes();
                let aad = crypt::aad(kind, owner, record.id.as_str());
                Ok(SealedKey {
                    key_id: record.id.as_str().to_owned(),
                    position: position as i32,
                    created_at: nanos(record.created_at),
                    expires_at: record.expires_at.map(nanos),
                    material: self.sealer.seal(&aad, &plain)?,
                })
            })
            .collect()
    }

    fn open_key(&self, kind: &str, owner: &str, row: &Row) -> Result<KeyRecord, StoreError> {
        let key_id: String = row.get("key_id");
        let position: i32 = row.get("position");
        let sealed: Vec<u8> = row.get("material");
        let plain = self
            .sealer
            .open(&crypt::aad(kind, owner, &key_id), &sealed)?;
        let secret = Secret::from_bytes(&*plain).map_err(|e| StoreError::Invalid {
            what: "key material",
            reason: e.to_string(),
        })?;
        let role = if position == 0 {
            KeyRole::Current
        } else {
            KeyRole::Grace
        };
        Ok(KeyRecord::new(
            KeyId::new(key_id),
            role,
            from_nanos(row.get("created_at")),
            row.get::<_, Option<i64>>("expires_at").map(from_nanos),
            secret,
        ))
    }

    /// Makes `change` in `tx`; for a change of a row's keys, only while the row is at
    /// `expected` (when given), returning the row's new version.
    async fn apply_in(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        change: Change<'_>,
        expected: Option<i64>,
    ) -> Result<Option<i64>, StoreError> {
        match change {
            // The project's version guards its key set only: the upstream is a setting, the
            // last one written wins.
            Change::SetProjectUpstream {
                integrator,
                project,
                upstream,
            } => {
                let sealed = self.seal_keys(
                    UPSTREAM,
                    project.as_str(),
                    &UpstreamRow::secret_records(upstream),
                )?;
                affected(
                    "project",
                    exec(
                        tx,
                        "UPDATE projects SET upstream_url = $1 WHERE id = $2 AND integrator = $3",
                        &[
                            &upstream.map(|u| u.url.as_str()),
                            &project.as_str(),
                            &integrator.as_str(),
                        ],
                    )
                    .await
                    .map_err(pg)?,
                )?;
                write_keys(tx, UPSTREAM, project.as_str(), &sealed).await?;
                Ok(None)
            }
            Change::CreateIntegrator(row) => {
                let sealed = self.seal_keys(INTEGRATOR, row.id.as_str(), &row.secrets)?;
                insert_new(
                    "integrator",
                    exec(
                        tx,
                        "INSERT INTO integrators (id, created_at) VALUES ($1, $2)",
                        &[&row.id.as_str(), &nanos(row.created_at)],
                    )
                    .await,
                )?;
                write_keys(tx, INTEGRATOR, row.id.as_str(), &sealed).await?;
                Ok(Some(1))
            }
            Change::SetIntegratorSecrets {
                integrator,
                secrets,
            } => {
                let sealed = self.seal_keys(INTEGRATOR, integrator.as_str(), secrets)?;
                let version = bump(
                    tx,
                    "integrator",
                    "UPDATE integrators SET version = version + 1
                     WHERE id = $1 AND ($2::bigint IS NULL OR version = $2) RETURNING version",
                    "SELECT 1 FROM integrators WHERE id = $1 AND $2::bigint IS NOT NULL",
                    &[&integrator.as_str(), &expected],
                )
                .await?;
                write_keys(tx, INTEGRATOR, integrator.as_str(), &sealed).await?;
                Ok(Some(version))
            }
            Change::CreateProject(row) => {
                let sealed = self.seal_keys(PROJECT, row.id.as_str(), &row.keys)?;
                let upstream = row.upstream.as_ref();
                let resign = self.seal_keys(
                    UPSTREAM,
                    row.id.as_str(),
                    &UpstreamRow::secret_records(upstream),
                )?;
                integrator_exists(tx, &row.integrator).await?;
                insert_new(
                    "project",
                    exec(
                        tx,
                        "INSERT INTO projects (id, integrator, name, scheme, created_at, upstream_url)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                        &[
                            &row.id.as_str(),
                            &row.integrator.as_str(),
                            &row.name,
                            &row.scheme,
                            &nanos(row.created_at),
                            &upstream.map(|u| u.url.as_str()),
                        ],
                    )
                    .await,
                )?;
                write_keys(tx, PROJECT, row.id.as_str(), &sealed).await?;
                write_keys(tx, UPSTREAM, row.id.as_str(), &resign).await?;
                Ok(Some(1))
            }
            Change::SetProjectKeys {
                integrator,
                project,
                keys,
            } => {
                let sealed = self.seal_keys(PROJECT, project.as_str(), keys)?;
                let version = bump(
                    tx,
                    "project",
                    "UPDATE projects SET version = version + 1
                     WHERE id = $1 AND integrator = $2 AND ($3::bigint IS NULL OR version = $3)
                     RETURNING version",
                    "SELECT 1 FROM projects WHERE id = $1 AND integrator = $2 AND $3::bigint IS NOT NULL",
                    &[&project.as_str(), &integrator.as_str(), &expected],
                )
                .await?;
                write_keys(tx, PROJECT, project.as_str(), &sealed).await?;
                Ok(Some(version))
            }
            Change::DeleteProject {
                integrator,
                project,
            } => {
                affected(
                    "project",
                    exec(
                        tx,
                        "DELETE FROM projects WHERE id = $1 AND integrator = $2",
                        &[&project.as_str(), &integrator.as_str()],
                    )
                    .await
                    .map_err(pg)?,
                )?;
                exec(
                    tx,
                    "DELETE FROM keys WHERE owner_kind IN ($1, $2) AND owner = $3",
                    &[&PROJECT, &UPSTREAM, &project.as_str()],
                )
                .await
                .map_err(pg)?;
                Ok(None)
            }
            Change::CreateApiKey(key) => {
                integrator_exists(tx, &key.integrator).await?;
                let projects: Option<Vec<&str>> = key
                    .projects
                    .as_ref()
                    .map(|ids| ids.iter().map(ProjectId::as_str).collect());
                insert_new(
                    "API key",
                    exec(
                        tx,
                        "INSERT INTO api_keys (id, integrator, name, digest, created_at, expires_at, projects, last_used)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        &[
                            &key.id.as_str(),
                            &key.integrator.as_str(),
                            &key.name,
                            &&key.digest[..],
                            &nanos(key.created_at),
                            &key.expires_at.map(nanos),
                            &projects,
                            &key.last_used.map(nanos),
                        ],
                    )
                    .await,
                )?;
                Ok(Some(1))
            }
            Change::DeleteApiKey { integrator, id } => {
                affected(
                    "API key",
                    exec(
                        tx,
                        "DELETE FROM api_keys WHERE id = $1 AND integrator = $2",
                        &[&id.as_str(), &integrator.as_str()],
                    )
                    .await
                    .map_err(pg)?,
                )?;
                Ok(None)
            }
        }
    }

    /// Commits `change` and `event` in one transaction, announced on [`CHANGES_CHANNEL`]; the
    /// event's sequence number and the row's new version.
    async fn apply_versioned(
        &self,
        client: &mut deadpool_postgres::Object,
        change: Change<'_>,
        expected: Option<i64>,
        event: &AuditEvent,
    ) -> Result<(u64, Option<i64>), StoreError> {
        let tx = client.transaction().await.map_err(pg)?;
        exec(&tx, "SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
            .await
            .map_err(pg)?;
        let version = self.apply_in(&tx, change, expected).await?;
        let seq = append_event(&tx, event).await?;
        tx.commit().await.map_err(pg)?;
        Ok((seq, version))
    }

    async fn load_async(&self) -> Result<State, StoreError> {
        let mut client = self.client().await?;
        // One snapshot: the rows, their keys and the log's end as of one moment.
        let tx = snapshot(&mut client).await?;
        let mut keys: std::collections::HashMap<(String, String), Vec<Row>> =
            std::collections::HashMap::new();
        for row in tx
            .query(
                "SELECT owner_kind, owner, key_id, position, created_at, expires_at, material
                 FROM keys ORDER BY owner_kind, owner, position",
                &[],
            )
            .await
            .map_err(pg)?
        {
            keys.entry((row.get(0), row.get(1))).or_default().push(row);
        }
        let mut keys_of = |kind: &str, owner: &str| -> Result<Vec<KeyRecord>, StoreError> {
            keys.remove(&(kind.to_owned(), owner.to_owned()))
                .unwrap_or_default()
                .iter()
                .map(|row| self.open_key(kind, owner, row))
                .collect()
        };
        let mut state = State::default();
        for row in tx
            .query(
                "SELECT id, created_at, version FROM integrators ORDER BY id",
                &[],
            )
            .await
            .map_err(pg)?
        {
            let id: String = row.get(0);
            let secrets = keys_of(INTEGRATOR, &id)?;
            let mut integrator =
                IntegratorRow::new(IntegratorId::new(&id), from_nanos(row.get(1)), secrets);
            integrator.version = row.get::<_, i64>(2) as u64;
            state.integrators.push(integrator);
        }
        for row in tx
            .query(
                "SELECT id, integrator, name, scheme, created_at, version, upstream_url
                 FROM projects ORDER BY id",
                &[],
            )
            .await
            .map_err(pg)?
        {
            let id: String = row.get(0);
            let keys = keys_of(PROJECT, &id)?;
            let upstream = match row.get::<_, Option<String>>(6) {
                Some(url) => Some(UpstreamRow::from_stored(url, keys_of(UPSTREAM, &id)?)),
                None => None,
            };
            let mut project = ProjectRow::new(
                parse_project(&id)?,
                IntegratorId::new(row.get(1)),
                row.get(2),
                row.get(3),
                from_nanos(row.get(4)),
                keys,
            )
            .upstream(upstream);
            project.version = row.get::<_, i64>(5) as u64;
            state.projects.push(project);
        }
        for row in tx
            .query(
                "SELECT id, integrator, name, digest, created_at, expires_at, projects, last_used
                 FROM api_keys ORDER BY created_at, id",
                &[],
            )
            .await
            .map_err(pg)?
        {
            state.api_keys.push(api_key_row(&row)?);
        }
        state.seq = tx
            .query_one("SELECT coalesce(max(seq), 0) FROM audit", &[])
            .await
            .map_err(pg)?
            .get::<_, i64>(0) as u64;
        tx.commit().await.map_err(pg)?;
        Ok(state)
    }
}

thread_local! {
    /// The connection holding [`WRITE_LOCK`] for this thread ([`Store::lock_writes`]), with
    /// its store's id.
    static PINNED: RefCell<Option<(u64, deadpool_postgres::Object)>> = const { RefCell::new(None) };
}

fn take_pinned(store: u64) -> Option<deadpool_postgres::Object> {
    PINNED.with(|p| {
        let mut p = p.borrow_mut();
        match &*p {
            Some((id, _)) if *id == store => p.take().map(|(_, client)| client),
            _ => None,
        }
    })
}

/// Releases [`WRITE_LOCK`] when dropped; a connection that cannot say so is closed, which
/// releases it too, rather than returned to the pool still holding it.
struct PinnedWrites {
    store: u64,
    runtime: tokio::runtime::Handle,
}

impl Drop for PinnedWrites {
    fn drop(&mut self) {
        let Some(client) = take_pinned(self.store) else {
            return;
        };
        let unlocked = block_on(&self.runtime, async {
            client
                .query_one("SELECT pg_advisory_unlock($1)", &[&WRITE_LOCK])
                .await
                .map(|row| row.get::<_, bool>(0))
        });
        if !matches!(unlocked, Ok(true)) {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

/// Runs `future` on `runtime` and waits for it, from any thread: directly outside a runtime,
/// on a scoped thread of its own inside one (an async task, a `spawn_blocking` thread), where a
/// nested `block_on` would panic.
fn block_on<F>(runtime: &tokio::runtime::Handle, future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime.block_on(future);
    }
    std::thread::scope(
        |scope| match scope.spawn(|| runtime.block_on(future)).join() {
            Ok(output) => output,
            Err(panic) => std::panic::resume_unwind(panic),
        },
    )
}

/// Runs `sql` in `tx` as a statement prepared once per connection: one round trip, not two.
async fn exec(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.execute(&statement, params).await
}

/// [`exec`] for a statement that returns at most one row.
async fn query_opt(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Option<Row>, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.query_opt(&statement, params).await
}

/// A read-only transaction on one snapshot.
async fn snapshot(
    client: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, StoreError> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg)
}

/// Raises a row's version with `update` (which names the expected version, or none); when it
/// touched nothing, `exists` tells a row at another version ([`StoreError::Conflict`]) from
/// none ([`StoreError::NotFound`]).
async fn bump(
    tx: &deadpool_postgres::Transaction<'_>,
    what: &'static str,
    update: &str,
    exists: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<i64, StoreError> {
    if let Some(row) = query_opt(tx, update, params).await.map_err(pg)? {
        return Ok(row.get(0));
    }
    match query_opt(tx, exists, params).await.map_err(pg)? {
        Some(_) => Err(StoreError::Conflict { what }),
        None => Err(StoreError::NotFound { what }),
    }
}

/// The stored (sealed) keys of one owner, current first.
async fn keys_in(
    tx: &deadpool_postgres::Transaction<'_>,
    kind: &str,
    owner: &str,
) -> Result<Vec<Row>, StoreError> {
    tx.query(
        "SELECT key_id, position, created_at, expires_at, material FROM keys
         WHERE owner_kind = $1 AND owner = $2 ORDER BY position",
        &[&kind, &owner],
    )
    .await
    .map_err(pg)
}

/// A read borrowing a connection: it owns everything else it needs.
type Read<'c, T> = std::pin::Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'c>>;

/// A key sealed for its row, ready to insert.
struct SealedKey {
    key_id: String,
    position: i32,
    created_at: i64,
    expires_at: Option<i64>,
    material: Vec<u8>,
}

async fn write_keys(
    tx: &deadpool_postgres::Transaction<'_>,
    kind: &str,
    owner: &str,
    keys: &[SealedKey],
) -> Result<(), StoreError> {
    exec(
        tx,
        "DELETE FROM keys WHERE owner_kind = $1 AND owner = $2",
        &[&kind, &owner],
    )
    .await
    .map_err(pg)?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO keys (owner_kind, owner, key_id, position, created_at, expires_at, material)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await
        .map_err(pg)?;
    for key in keys {
        tx.execute(
            &insert,
            &[
                &kind,
                &owner,
                &key.key_id,
                &key.position,
                &key.created_at,
                &key.expires_at,
                &key.material,
            ],
        )
        .await
        .map_err(pg)?;
    }
    Ok(())
}

async fn integrator_exists(
    tx: &deadpool_postgres::Transaction<'_>,
    id: &IntegratorId,
) -> Result<(), StoreError> {
    // FOR KEY SHARE: the integrator cannot vanish before this transaction commits.
    query_opt(
        tx,
        "SELECT 1 FROM integrators WHERE id = $1 FOR KEY SHARE",
        &[&id.as_str()],
    )
    .await
    .map_err(pg)?
    .map(drop)
    .ok_or(StoreError::NotFound { what: "integrator" })
}

/// Appends `event` in `tx` and announces it; its sequence number.
async fn append_event(
    tx: &deadpool_postgres::Transaction<'_>,
    event: &AuditEvent,
) -> Result<u64, StoreError> {
    let insert = tx
        .prepare_cached(
            "WITH event AS (
                 INSERT INTO audit (at, integrator, actor, action, project, old_keys, new_key, grace_secs, expires_at, count)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq)
             SELECT seq, pg_notify($11, seq::text) FROM event",
        )
        .await
        .map_err(pg)?;
    let seq: i64 = tx
        .query_one(
            &insert,
            &[
                &nanos(event.at),
                &event.integrator.as_str(),
                &event.actor,
                &event.action.as_str(),
                &event.project.as_ref().map(ProjectId::as_str),
                &event.old_keys,
                &event.new_key,
                &event.grace_secs.map(|s| s.min(i64::MAX as u64) as i64),
                &event.expires_at.map(nanos),
                &event.count.map(|c| c.min(i64::MAX as u64) as i64),
                &CHANGES_CHANNEL,
            ],
        )
        .await
        .map_err(pg)?
        .get(0);
    Ok(seq as u64)
}

fn audit_event(row: &Row) -> Result<AuditEvent, StoreError> {
    let action = stored_action(row.get("action"))?;
    let mut event = AuditEvent::new(
        from_nanos(row.get("at")),
        IntegratorId::new(row.get("integrator")),
        row.get::<_, String>("actor"),
        action,
    );
    event.seq = row.get::<_, i64>("seq") as u64;
    event.project = row
        .get::<_, Option<&str>>("project")
        .map(parse_project)
        .transpose()?;
    event.old_keys = row.get("old_keys");
    event.new_key = row.get("new_key");
    event.grace_secs = row.get::<_, Option<i64>>("grace_secs").map(|s| s as u64);
    event.expires_at = row.get::<_, Option<i64>>("expires_at").map(from_nanos);
    event.count = row.get::<_, Option<i64>>("count").map(|c| c as u64);
    Ok(event)
}

fn api_key_row(row: &Row) -> Result<ApiKeyRow, StoreError> {
    let invalid = |reason: &str| StoreError::Invalid {
        what: "API key",
        reason: reason.into(),
    };
    let id = ApiKeyId::parse(row.get("id")).map_err(|_| invalid("malformed id"))?;
    let digest: [u8; 32] = row
        .get::<_, Vec<u8>>("digest")
        .try_into()
        .map_err(|_| invalid("digest is not 32 bytes"))?;
    let projects = row
        .get::<_, Option<Vec<String>>>("projects")
        .map(|ids| ids.iter().map(|id| parse_project(id)).collect())
        .transpose()?;
    Ok(ApiKeyRow {
        id,
        integrator: IntegratorId::new(row.get("integrator")),
        name: row.get("name"),
        digest,
        created_at: from_nanos(row.get("created_at")),
        expires_at: row.get::<_, Option<i64>>("expires_at").map(from_nanos),
        projects,
        last_used: row.get::<_, Option<i64>>("last_used").map(from_nanos),
    })
}

impl Store for PostgresStore {
    fn load(&self) -> Result<State, StoreError> {
        self.block(self.load_async())
    }

    fn apply(&self, change: Change<'_>, event: &AuditEvent) -> Result<u64, StoreError> {
        self.apply_pinned(change, None, event).map(|(seq, _)| seq)
    }

    fn apply_at(
        &self,
        change: Change<'_>,
        version: u64,
        event: &AuditEvent,
    ) -> Result<(u64, u64), StoreError> {
        let expected = i64::try_from(version).unwrap_or(i64::MAX);
        let (seq, new) = self.apply_pinned(change, Some(expected), event)?;
        Ok((seq, new.map_or(version + 1, |v| v as u64)))
    }

    fn lock_writes(&self) -> Result<WriteLock, StoreError> {
        let held = PINNED.with(|p| matches!(&*p.borrow(), Some((id, _)) if *id == self.id));
        if held {
            // Already held by this thread: the outer lock releases it.
            return Ok(WriteLock::none());
        }
        let client = self.block(async {
            let client = self.client().await?;
            client
                .execute("SELECT pg_advisory_lock($1)", &[&WRITE_LOCK])
                .await
                .map_err(pg)?;
            Ok::<_, StoreError>(client)
        })?;
        PINNED.with(|p| *p.borrow_mut() = Some((self.id, client)));
        Ok(WriteLock::held(PinnedWrites {
            store: self.id,
            runtime: self.runtime().clone(),
        }))
    }

    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let after = after.min(i64::MAX as u64) as i64;
        let limit = limit.min(i64::MAX as usize) as i64;
        self.block(async {
            let client = self.client().await?;
            let select = client
                .prepare_cached(
                    "SELECT seq, at, integrator, actor, action, project, old_keys, new_key, grace_secs, expires_at, count
                     FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .await
                .map_err(pg)?;
            client
                .query(&select, &[&after, &limit])
                .await
                .map_err(pg)?
                .iter()
                .map(audit_event)
                .collect()
        })
    }

    fn load_project(&self, id: &ProjectId) -> Result<Option<ProjectRow>, StoreError> {
        let rows = self.read_pinned_or_pooled({
            let id = id.as_str().to_owned();
            move |client| {
                Box::pin(async move {
                    let tx = snapshot(client).await?;
                    let row = tx
                        .query_opt(
                            "SELECT id, integrator, name, scheme, created_at, version, upstream_url
                             FROM projects WHERE id = $1",
                            &[&id],
                        )
                        .await
                        .map_err(pg)?;
                    let keys = keys_in(&tx, PROJECT, &id).await?;
                    let resign = keys_in(&tx, UPSTREAM, &id).await?;
                    tx.commit().await.map_err(pg)?;
                    Ok(row.map(|row| (row, keys, resign)))
                })
            }
        })?;
        let Some((row, keys, resign)) = rows else {
            return Ok(None);
        };
        let keys = keys
            .iter()
            .map(|key| self.open_key(PROJECT, id.as_str(), key))
            .collect::<Result<_, _>>()?;
        let upstream = match row.get::<_, Option<String>>(6) {
            Some(url) => {
                let resign = resign
                    .iter()
                    .map(|key| self.open_key(UPSTREAM, id.as_str(), key))
                    .collect::<Result<_, _>>()?;
                Some(UpstreamRow::from_stored(url, resign))
            }
            None => None,
        };
        let mut project = ProjectRow::new(
            id.clone(),
            IntegratorId::new(row.get(1)),
            row.get(2),
            row.get(3),
            from_nanos(row.get(4)),
            keys,
        )
        .upstream(upstream);
        project.version = row.get::<_, i64>(5) as u64;
        Ok(Some(project))
    }

    fn load_integrator(&self, id: &IntegratorId) -> Result<Option<IntegratorRow>, StoreError> {
        let rows = self.read_pinned_or_pooled({
            let id = id.as_str().to_owned();
            move |client| {
                Box::pin(async move {
                    let tx = snapshot(client).await?;
                    let row = tx
                        .query_opt(
                            "SELECT created_at, version FROM integrators WHERE id = $1",
                            &[&id],
                        )
                        .await
                        .map_err(pg)?;
                    let keys = keys_in(&tx, INTEGRATOR, &id).await?;
                    tx.commit().await.map_err(pg)?;
                    Ok(row.map(|row| (row, keys)))
                })
            }
        })?;
        let Some((row, keys)) = rows else {
            return Ok(None);
        };
        let secrets = keys
            .iter()
            .map(|key| self.open_key(INTEGRATOR, id.as_str(), key))
            .collect::<Result<_, _>>()?;
        let mut integrator = IntegratorRow::new(id.clone(), from_nanos(row.get(0)), secrets);
        integrator.version = row.get::<_, i64>(1) as u64;
        Ok(Some(integrator))
    }

    fn load_api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRow>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            client
                .query_opt(
                    "SELECT id, integrator, name, digest, created_at, expires_at, projects, last_used
                     FROM api_keys WHERE id = $1",
                    &[&id.as_str()],
                )
                .await
                .map_err(pg)?
                .map(|row| api_key_row(&row))
                .transpose()
        })
    }

    fn audit_matching(
        &self,
        integrator: &IntegratorId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let projects: Option<Vec<&str>> = query
            .projects
            .as_ref()
            .map(|ids| ids.iter().map(ProjectId::as_str).collect());
        let before = query.before.map(|b| b.min(i64::MAX as u64) as i64);
        let limit = query.limit.min(i64::MAX as usize) as i64;
        self.block(async {
            let client = self.client().await?;
            let select = client
                .prepare_cached(
                    "SELECT seq, at, integrator, actor, action, project, old_keys, new_key, grace_secs, expires_at, count
                     FROM audit WHERE integrator = $1 AND ($2::bigint IS NULL OR seq < $2)
                       AND ($4::text[] IS NULL OR project = ANY($4))
                       AND ($5::text IS NULL OR action = $5)
                     ORDER BY seq DESC LIMIT $3",
                )
                .await
                .map_err(pg)?;
            client
                .query(
                    &select,
                    &[
                        &integrator.as_str(),
                        &before,
                        &limit,
                        &projects,
                        &query.action.map(AuditAction::as_str),
                    ],
                )
                .await
                .map_err(pg)?
                .iter()
                .map(audit_event)
                .collect()
        })
    }

    fn prune_audit(
        &self,
        integrator: &IntegratorId,
        retention: AuditRetention,
        event: &AuditEvent,
    ) -> Result<u64, StoreError> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
                .await
                .map_err(pg)?;
            let mut removed = 0;
            if let Some(before) = retention.older_than {
                removed += tx
                    .execute(
                        "DELETE FROM audit WHERE integrator = $1 AND at < $2",
                        &[&integrator.as_str(), &nanos(before)],
                    )
                    .await
                    .map_err(pg)?;
            }
            if let Some(keep) = retention.keep_newest {
                removed += tx
                    .execute(
                        "DELETE FROM audit WHERE integrator = $1 AND seq < (
                             SELECT coalesce(min(seq), 0) FROM (
                                 SELECT seq FROM audit WHERE integrator = $1
                                 ORDER BY seq DESC LIMIT $2) AS newest)",
                        &[&integrator.as_str(), &(keep.min(i64::MAX as u64) as i64)],
                    )
                    .await
                    .map_err(pg)?;
            }
            if removed > 0 {
                let mut event = event.clone();
                event.count = Some(removed);
                append_event(&tx, &event).await?;
            }
            tx.commit().await.map_err(pg)?;
            Ok(removed)
        })
    }

    fn record_uses(&self, uses: &[(ApiKeyId, DateTime<Utc>)]) -> Result<(), StoreError> {
        let ids: Vec<&str> = uses.iter().map(|(id, _)| id.as_str()).collect();
        let times: Vec<i64> = uses.iter().map(|(_, at)| nanos(*at)).collect();
        self.block(async {
            let client = self.client().await?;
            // One statement: the uses land together or not at all. Not a change of
            // credentials: no audit event, no version.
            client
                .execute(
                    "UPDATE api_keys SET last_used = u.at
                     FROM unnest($1::text[], $2::bigint[]) AS u(id, at)
                     WHERE api_keys.id = u.id AND (last_used IS NULL OR last_used < u.at)",
                    &[&ids, &times],
                )
                .await
                .map_err(pg)?;
            Ok(())
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.block(async {
            let client = self.client().await?;
            client
                .query_one("SELECT count(*) FROM integrators", &[])
                .await
                .map_err(pg)?;
            Ok(())
        })
    }
}

/// A database error: [`StoreError::Unavailable`] when the server cannot be reached or is going
/// away, the error itself otherwise.
pub(crate) fn pg(e: tokio_postgres::Error) -> StoreError {
    let unavailable = match e.code() {
        None => e.as_db_error().is_none(),
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::TOO_MANY_CONNECTIONS,
                    SqlState::DATABASE_DROPPED,
                ]
                .contains(code)
                // `ALLOW_CONNECTIONS false`: "database … is not currently accepting connections".
                || (code == &SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE
                    && e.as_db_error()
                        .is_some_and(|db| db.message().contains("accepting connections")))
        }
    };
    if unavailable {
        StoreError::Unavailable {
            reason: e.to_string(),
        }
    } else {
        StoreError::Postgres(e)
    }
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg(e),
        e => StoreError::Unavailable {
            reason: e.to_string(),
        },
    }
}

/// An insert that must add a row: a duplicate is [`StoreError::Exists`].
fn insert_new(
    what: &'static str,
    result: Result<u64, tokio_postgres::Error>,
) -> Result<(), StoreError> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(StoreError::Exists { what }),
        Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
            Err(StoreError::NotFound { what: "integrator" })
        }
        Err(e) => Err(pg(e)),
    }
}

/// A statement that must touch a row: none is [`StoreError::NotFound`].
fn affected(what: &'static str, rows: u64) -> Result<(), StoreError> {
    match rows {
        0 => Err(StoreError::NotFound { what }),
        _ => Ok(()),
    }
}

fn parse_project(id: &str) -> Result<ProjectId, StoreError> {
    ProjectId::parse(id).map_err(|e| StoreError::Invalid {
        what: "project id",
        reason: e.to_string(),
    })
}

fn nanos(time: DateTime<Utc>) -> i64 {
    time.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn from_nanos(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

//! The shared store: PostgreSQL (tokio-postgres, a deadpool pool), for many instances of
//! webhook-guard over one database.
//!
//! The [`Store`] trait is synchronous and is called from plain threads (`main`, the CLI) and
//! from `spawn_blocking` threads; tokio-postgres is asynchronous. The store owns a small
//! runtime (two worker threads: the connections' I/O and the change feed's listener) and
//! blocks on it: directly from a thread outside any runtime or marked blocking
//! ([`super::on_blocking_thread`]: the admin routes' and the feed's `spawn_blocking` threads),
//! and from a scoped thread when called inside an async task (a runtime's own `block_on` must
//! not nest there).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use rustls::pki_types::CertificateDer;
use tokio_postgres::error::SqlState;
use tokio_postgres::{IsolationLevel, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::crypt::{self, Sealer};
use super::{
    from_nanos, nanos, stored_action, ApiKeyId, ApiKeyRow, AuditAction, AuditEvent, AuditQuery,
    AuditRetention, Change, IntegratorId, IntegratorRow, ProjectRow, State, Store, StoreError,
    StoredKey, UpstreamRow, WriteLock,
};
use crate::keyring::KeyRecord;
use crate::projects::ProjectId;
use crate::public_key::KeyMaterial;

mod reads;
mod writes;

use reads::*;
use writes::*;

/// Migration `i` takes the schema from version `i` to `i + 1`. Append only; never edit one that
/// shipped.
const MIGRATIONS: &[&str] = &[
    include_str!("postgres/0001_schema.sql"),
    include_str!("postgres/0002_upstream.sql"),
    include_str!("postgres/0003_refuse.sql"),
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

/// Settings of a [`PostgresStore`]: the pool's size, how long to wait for a connection, and
/// the certificates TLS trusts.
///
/// TLS is used when the URL says `sslmode=require`; the server's certificate is then verified
/// against the system's roots and [`tls_roots`](PostgresOptions::tls_roots), and its name
/// against the host connected to (libpq's `verify-full`). Without `sslmode=require`
/// (`disable`, or `prefer`, the default) no TLS is used. The change feed's connection follows
/// the same settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// Most connections the pool opens. Default: 4.
    pub pool_size: usize,
    /// How long a call waits for a connection (and a connection attempt takes) before it fails
    /// with [`StoreError::Unavailable`]. Default: 5 s.
    pub connect_timeout: Duration,
    /// Certificates trusted for the server's, besides the system's roots (a private CA, or the
    /// server's own self-signed certificate). Default: none.
    pub tls_roots: Vec<CertificateDer<'static>>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 4,
            connect_timeout: Duration::from_secs(5),
            tls_roots: Vec::new(),
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

    /// Trusts `cert` for the server's certificate under `sslmode=require`, besides the
    /// system's roots.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use rustls::pki_types::{pem::PemObject, CertificateDer};
    /// use webhook_guard::store::{crypt::Sealer, PostgresOptions, PostgresStore};
    ///
    /// let ca = CertificateDer::from_pem_file("/etc/webhook-guard/db-ca.pem")?;
    /// let store = PostgresStore::connect(
    ///     "postgres://webhook_guard@db.internal/webhook_guard?sslmode=require",
    ///     Sealer::plaintext(),
    ///     PostgresOptions::default().tls_root(ca),
    /// )?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tls_root(mut self, cert: CertificateDer<'static>) -> Self {
        self.tls_roots.push(cert);
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
    tls: MakeRustlsConnect,
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
        let tls = crate::tls::postgres(&mut config, &options.tls_roots).map_err(|e| {
            StoreError::Invalid {
                what: "TLS settings",
                reason: e.to_string(),
            }
        })?;
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
            tls.clone(),
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
            tls,
            sealer,
        };
        store.block(store.migrate())?;
        Ok(store)
    }

    /// The connection settings (host, database, user; for the change feed's own connection).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// How the store's connections use TLS (the change feed's connection uses it too).
    pub(crate) fn tls(&self) -> &MakeRustlsConnect {
        &self.tls
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

thread_local! {
    /// Whether this thread is a blocking one ([`super::on_blocking_thread`]).
    static BLOCKING_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as a blocking one while it lives.
pub(super) struct BlockingThread(bool);

impl BlockingThread {
    pub(super) fn mark() -> Self {
        Self(BLOCKING_THREAD.replace(true))
    }
}

impl Drop for BlockingThread {
    fn drop(&mut self) {
        BLOCKING_THREAD.set(self.0);
    }
}

/// Runs `future` on `runtime` and waits for it, from any thread: directly outside a runtime and
/// on a thread marked blocking ([`super::on_blocking_thread`]), on a scoped thread of its own
/// elsewhere inside a runtime (an async task), where a nested `block_on` would panic.
fn block_on<F>(runtime: &tokio::runtime::Handle, future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() || BLOCKING_THREAD.get() {
        return runtime.block_on(future);
    }
    std::thread::scope(
        |scope| match scope.spawn(|| runtime.block_on(future)).join() {
            Ok(output) => output,
            Err(panic) => std::panic::resume_unwind(panic),
        },
    )
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
            reason: crate::error::with_causes(&e),
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

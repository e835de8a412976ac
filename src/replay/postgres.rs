//! [`PostgresGuard`]: the replay guard in a PostgreSQL table, shared by every instance that
//! uses the same database.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use rustls::pki_types::CertificateDer;
use tokio_postgres::{Client, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{Claim, DeliveryKey, GuardError, GuardFuture, ReplayGuard, Token};

/// How long a connection attempt or a statement may take before the backend counts as
/// unavailable.
const TIMEOUT: Duration = Duration::from_secs(2);

/// After a failed connection attempt, calls fail at once for this long rather than each
/// trying again.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

/// How often expired rows are deleted, unless set with [`PostgresGuard::connect_with`].
pub const DEFAULT_CLEAN_UP_EVERY: Duration = Duration::from_secs(60);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS webhook_guard_replay (
    key bytea PRIMARY KEY,
    token bytea,
    done boolean NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_guard_replay_expires_at ON webhook_guard_replay (expires_at);
";

/// Takes the key when it is free or its entry expired (not yet cleaned up); then reads what
/// holds it. A row another transaction inserted meanwhile is not visible to the reads: then
/// neither claimed nor read, which is "in progress".
const RESERVE: &str = "
WITH claimed AS (
    INSERT INTO webhook_guard_replay AS r (key, token, done, expires_at)
    VALUES ($1, $2, false, now() + $3::bigint * interval '1 millisecond')
    ON CONFLICT (key) DO UPDATE
        SET token = EXCLUDED.token, done = false, expires_at = EXCLUDED.expires_at
        WHERE r.expires_at <= now()
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM claimed),
       r.done,
       (extract(epoch FROM r.expires_at - now()) * 1000)::bigint
FROM (SELECT 1) AS one
LEFT JOIN webhook_guard_replay AS r ON r.key = $1
";

const COMPLETE: &str = "
INSERT INTO webhook_guard_replay AS r (key, token, done, expires_at)
VALUES ($1, NULL, true, now() + $2::bigint * interval '1 millisecond')
ON CONFLICT (key) DO UPDATE SET token = NULL, done = true, expires_at = EXCLUDED.expires_at
";

const RELEASE: &str = "DELETE FROM webhook_guard_replay WHERE key = $1 AND token = $2 AND NOT done";

const CLEAN_UP: &str = "DELETE FROM webhook_guard_replay WHERE expires_at < now()";

/// Remembers deliveries in the PostgreSQL table `webhook_guard_replay` (feature `postgres`),
/// created if missing: one row per key with its state and expiry, judged by the database's
/// clock so every instance agrees.
///
/// - reserve: one statement, `INSERT … ON CONFLICT (key) DO UPDATE … WHERE` the row expired
///   (an expired row not yet cleaned up is taken over, a live one left alone), which also
///   reads the row that holds the key;
/// - complete: the row becomes `done`, expiring after the retention;
/// - release: `DELETE` of the row while it holds this reservation's token;
/// - clean-up: expired rows are deleted every [`DEFAULT_CLEAN_UP_EVERY`] by a background task
///   that ends with the guard.
///
/// One connection, its statements pipelined; a lost connection is made again on the next call
/// (at most one attempt per half second).
///
/// # Examples
///
/// ```no_run
/// use webhook_guard::replay::{PostgresGuard, ReplayProtection};
///
/// # async fn run() -> Result<(), webhook_guard::replay::GuardError> {
/// let guard = PostgresGuard::connect("host=127.0.0.1 user=postgres dbname=hooks").await?;
/// let protection = ReplayProtection::new(guard);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresGuard {
    shared: Arc<Shared>,
}

struct Shared {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    connection: ArcSwapOption<Connection>,
    /// When the last connection attempt failed.
    failed_at: Mutex<Option<Instant>>,
    connecting: tokio::sync::Mutex<()>,
}

/// A connection and its prepared statements.
struct Connection {
    client: Client,
    reserve: Statement,
    complete: Statement,
    release: Statement,
}

impl PostgresGuard {
    /// Connects to the database `config` names (a `tokio-postgres` connection string, such as
    /// `host=127.0.0.1 user=postgres dbname=hooks`, or a `postgresql://` URL), creates the
    /// table if missing and starts the clean-up. Call it within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`GuardError::Unavailable`] when the string is not valid or the database cannot be
    /// reached.
    pub async fn connect(config: &str) -> Result<Self, GuardError> {
        Self::connect_with(config, DEFAULT_CLEAN_UP_EVERY).await
    }

    /// As [`connect`](PostgresGuard::connect), trusting `roots` (besides the system's) for the
    /// server's certificate when `config` says `sslmode=require`. TLS is used only then, the
    /// certificate and the host's name verified (libpq's `verify-full`); `prefer`, the
    /// default, connects without TLS.
    ///
    /// # Errors
    ///
    /// As for [`connect`](PostgresGuard::connect); a certificate that does not verify makes
    /// the database unreachable.
    pub async fn connect_tls(
        config: &str,
        roots: &[CertificateDer<'static>],
    ) -> Result<Self, GuardError> {
        Self::open(config, DEFAULT_CLEAN_UP_EVERY, roots).await
    }

    /// As [`connect`](PostgresGuard::connect), deleting expired rows every `every`.
    ///
    /// # Errors
    ///
    /// As for [`connect`](PostgresGuard::connect).
    pub async fn connect_with(config: &str, every: Duration) -> Result<Self, GuardError> {
        Self::open(config, every, &[]).await
    }

    async fn open(
        config: &str,
        every: Duration,
        roots: &[CertificateDer<'static>],
    ) -> Result<Self, GuardError> {
        let mut config: tokio_postgres::Config = config.parse().map_err(unavailable)?;
        config.connect_timeout(TIMEOUT);
        let tls = crate::tls::postgres(&mut config, roots).map_err(unavailable)?;
        let guard = Self {
            shared: Arc::new(Shared {
                config,
                tls,
                connection: ArcSwapOption::empty(),
                failed_at: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
            }),
        };
        let connection = guard.shared.connection().await?;
        timed(connection.client.batch_execute(SCHEMA)).await?;
        tokio::spawn(clean_up(Arc::downgrade(&guard.shared), every));
        Ok(guard)
    }

    /// Deletes the expired rows now.
    ///
    /// # Errors
    ///
    /// [`GuardError::Unavailable`].
    pub async fn clean_up(&self) -> Result<u64, GuardError> {
        let connection = self.shared.connection().await?;
        timed(connection.client.execute(CLEAN_UP, &[])).await
    }

    /// The client of the current connection, for comparisons on the same connection.
    ///
    /// # Errors
    ///
    /// [`GuardError::Unavailable`].
    pub async fn client(&self) -> Result<impl std::ops::Deref<Target = Client>, GuardError> {
        struct Held(Arc<Connection>);
        impl std::ops::Deref for Held {
            type Target = Client;
            fn deref(&self) -> &Client {
                &self.0.client
            }
        }
        Ok(Held(self.shared.connection().await?))
    }
}

async fn clean_up(shared: Weak<Shared>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.tick().await;
    loop {
        interval.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let result = match shared.connection().await {
            Ok(connection) => timed(connection.client.execute(CLEAN_UP, &[])).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(rows) => tracing::debug!(rows, "replay guard removed expired deliveries"),
            Err(e) => tracing::debug!(error = %e, "replay guard clean-up failed"),
        }
    }
}

impl Shared {
    /// The live connection, made again if it was lost.
    async fn connection(&self) -> Result<Arc<Connection>, GuardError> {
        if let Some(connection) = self.connection.load_full() {
            if !connection.client.is_closed() {
                return Ok(connection);
            }
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(connection) = self.connection.load_full() {
            if !connection.client.is_closed() {
                return Ok(connection);
            }
        }
        let recently = self
            .failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < RECONNECT_EVERY);
        if recently {
            return Err(GuardError::Unavailable {
                backend: "postgres",
                reason: "the last connection attempt failed".into(),
            });
        }
        match self.connect().await {
            Ok(connection) => {
                let connection = Arc::new(connection);
                self.connection.store(Some(Arc::clone(&connection)));
                Ok(connection)
            }
            Err(e) => {
                *self
                    .failed_at
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
                Err(e)
            }
        }
    }

    async fn connect(&self) -> Result<Connection, GuardError> {
        let (client, connection) = timed(self.config.connect(self.tls.clone())).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "replay guard connection ended");
            }
        });
        // The table may not exist yet on the first connection: prepared after it is made.
        let _ = timed(client.batch_execute(SCHEMA)).await;
        Ok(Connection {
            reserve: timed(client.prepare(RESERVE)).await?,
            complete: timed(client.prepare(COMPLETE)).await?,
            release: timed(client.prepare(RELEASE)).await?,
            client,
        })
    }
}

fn unavailable(e: impl std::error::Error) -> GuardError {
    GuardError::Unavailable {
        backend: "postgres",
        reason: crate::error::with_causes(&e),
    }
}

/// The database did not answer within [`TIMEOUT`].
#[derive(Debug, thiserror::Error)]
#[error("timed out")]
struct TimedOut;

/// `future`, failing as unavailable after [`TIMEOUT`].
async fn timed<T, E: std::error::Error>(
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, GuardError> {
    match tokio::time::timeout(TIMEOUT, future).await {
        Ok(result) => result.map_err(unavailable),
        Err(_) => Err(unavailable(TimedOut)),
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl ReplayGuard for PostgresGuard {
    fn reserve(&self, key: &DeliveryKey, lease: Duration) -> GuardFuture<Claim> {
        let shared = Arc::clone(&self.shared);
        let key = *key;
        GuardFuture::new(async move {
            let connection = shared.connection().await?;
            let token = Token::random();
            let token_bytes = token.as_u128().to_le_bytes();
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                [&&key.as_bytes()[..], &&token_bytes[..], &millis(lease)];
            let row = timed(connection.client.query_one(&connection.reserve, &params)).await?;
            let claimed: bool = row.try_get(0).map_err(unavailable)?;
            let done: Option<bool> = row.try_get(1).map_err(unavailable)?;
            let left: Option<i64> = row.try_get(2).map_err(unavailable)?;
            Ok(match (claimed, done) {
                (true, _) => Claim::Reserved(token),
                (false, Some(true)) => Claim::Done,
                (false, _) => Claim::InProgress {
                    retry_after: Duration::from_millis(
                        left.and_then(|ms| u64::try_from(ms).ok())
                            .unwrap_or(0)
                            .max(1000),
                    ),
                },
            })
        })
    }

    fn complete(&self, key: &DeliveryKey, token: Token, retention: Duration) -> GuardFuture<()> {
        let _ = token;
        let shared = Arc::clone(&self.shared);
        let key = *key;
        GuardFuture::new(async move {
            let connection = shared.connection().await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
                [&&key.as_bytes()[..], &millis(retention)];
            timed(connection.client.execute(&connection.complete, &params)).await?;
            Ok(())
        })
    }

    fn release(&self, key: &DeliveryKey, token: Token) -> GuardFuture<()> {
        let shared = Arc::clone(&self.shared);
        let key = *key;
        GuardFuture::new(async move {
            let connection = shared.connection().await?;
            let token_bytes = token.as_u128().to_le_bytes();
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
                [&&key.as_bytes()[..], &&token_bytes[..]];
            timed(connection.client.execute(&connection.release, &params)).await?;
            Ok(())
        })
    }

    fn abandon(&self, key: &DeliveryKey, token: Token) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(self.release(key, token));
        }
    }

    fn name(&self) -> &'static str {
        "postgres"
    }
}

impl fmt::Debug for PostgresGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresGuard").finish_non_exhaustive()
    }
}

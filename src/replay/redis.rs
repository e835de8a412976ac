//! [`RedisGuard`]: the replay guard in Redis, shared by every instance that uses the same
//! server and prefix.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, Script};

use super::{Claim, DeliveryKey, GuardError, GuardFuture, ReplayGuard, Token};

/// Keys are this prefix followed by the delivery key in hex, unless set with
/// [`RedisGuard::prefix`].
pub const DEFAULT_REDIS_PREFIX: &str = "webhook-guard:replay:";

/// How long a command may take before the backend counts as unavailable.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Deletes the key only while it still holds this reservation.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
";

/// Remembers deliveries in Redis (feature `redis`), through the `redis` crate's
/// [`ConnectionManager`], which reconnects by itself.
///
/// - reserve: `SET <prefix><key> p:<token> NX GET PX <lease>`, one round trip: the old value
///   tells `done` from `processing` (then a `PTTL` for `Retry-After`);
/// - complete: `SET <prefix><key> done PX <retention>`;
/// - release: a Lua script deleting the key only while it holds this reservation's token, so
///   a holder whose lease ended cannot release the next holder's reservation.
///
/// Needs Redis 7.0 or later (`SET … NX GET`).
///
/// # Examples
///
/// ```no_run
/// use webhook_guard::replay::{RedisGuard, ReplayProtection};
///
/// # async fn run() -> Result<(), webhook_guard::replay::GuardError> {
/// let guard = RedisGuard::open("redis://127.0.0.1:6379/")?.prefix("billing:replay:");
/// let protection = ReplayProtection::new(guard);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisGuard {
    connection: ConnectionManager,
    prefix: Arc<str>,
    release: Arc<Script>,
}

impl RedisGuard {
    /// A guard on the Redis server at `url` (`redis://host:port/db`). It connects on first
    /// use and reconnects after a failure, so it can be made while Redis is down: calls fail
    /// ([`GuardError::Unavailable`]) until it is back. Call it within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`GuardError::Unavailable`] when `url` is not a Redis URL.
    pub fn open(url: &str) -> Result<Self, GuardError> {
        let client = Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
        Ok(Self::new(connection))
    }

    /// A guard on `connection`.
    pub fn new(connection: ConnectionManager) -> Self {
        Self {
            connection,
            prefix: Arc::from(DEFAULT_REDIS_PREFIX),
            release: Arc::new(Script::new(RELEASE)),
        }
    }

    /// Puts this before every key, to keep apart the deliveries of receivers sharing a
    /// server. Default: [`DEFAULT_REDIS_PREFIX`].
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = Arc::from(prefix);
        self
    }

    /// The connection it uses.
    pub fn connection(&self) -> &ConnectionManager {
        &self.connection
    }

    /// The Redis key of `key`.
    pub fn redis_key(&self, key: &DeliveryKey) -> String {
        format!("{}{}", self.prefix, key.to_hex())
    }
}

fn unavailable(e: RedisError) -> GuardError {
    GuardError::Unavailable {
        backend: "redis",
        reason: e.to_string(),
    }
}

fn reservation(token: Token) -> String {
    format!("p:{:032x}", token.as_u128())
}

/// Whole milliseconds, at least 1 (Redis refuses an expiry of 0).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl ReplayGuard for RedisGuard {
    fn reserve(&self, key: &DeliveryKey, lease: Duration) -> GuardFuture<Claim> {
        let mut connection = self.connection.clone();
        let key = self.redis_key(key);
        let token = Token::random();
        GuardFuture::new(async move {
            let old: Option<Vec<u8>> = redis::cmd("SET")
                .arg(&key)
                .arg(reservation(token))
                .arg("NX")
                .arg("GET")
                .arg("PX")
                .arg(millis(lease))
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            match old.as_deref() {
                None => Ok(Claim::Reserved(token)),
                Some(b"done") => Ok(Claim::Done),
                Some(_) => {
                    let left: i64 = redis::cmd("PTTL")
                        .arg(&key)
                        .query_async(&mut connection)
                        .await
                        .map_err(unavailable)?;
                    let left = u64::try_from(left).unwrap_or(0).max(1000);
                    Ok(Claim::InProgress {
                        retry_after: Duration::from_millis(left),
                    })
                }
            }
        })
    }

    fn complete(&self, key: &DeliveryKey, token: Token, retention: Duration) -> GuardFuture<()> {
        let _ = token;
        let mut connection = self.connection.clone();
        let key = self.redis_key(key);
        GuardFuture::new(async move {
            redis::cmd("SET")
                .arg(&key)
                .arg("done")
                .arg("PX")
                .arg(millis(retention))
                .query_async::<()>(&mut connection)
                .await
                .map_err(unavailable)
        })
    }

    fn release(&self, key: &DeliveryKey, token: Token) -> GuardFuture<()> {
        let mut connection = self.connection.clone();
        let key = self.redis_key(key);
        let script = Arc::clone(&self.release);
        GuardFuture::new(async move {
            script
                .key(&key)
                .arg(reservation(token))
                .invoke_async::<i64>(&mut connection)
                .await
                .map(drop)
                .map_err(unavailable)
        })
    }

    fn abandon(&self, key: &DeliveryKey, token: Token) {
        // From a destructor: release in the background if there is a runtime, else the lease
        // ends the reservation.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let release = self.release(key, token);
            runtime.spawn(release);
        }
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

impl fmt::Debug for RedisGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisGuard")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

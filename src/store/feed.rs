//! The change feed: how an instance follows what the other instances sharing a
//! [`PostgresStore`] change.
//!
//! Every change is committed with its audit event, and the same transaction runs
//! `pg_notify('webhook_guard_changes', seq)`. A [`Listener`] holds a connection of its own
//! that `LISTEN`s on that channel; on each notification, and every
//! [`poll`](FeedOptions::poll) in any case, it asks its [`Follow`]er to catch up (read the
//! events after the last one applied and reload exactly the rows they name). Notifications are
//! lost while a connection is down, so after every (re)connection the follower reloads
//! everything. The staleness bound is therefore the poll interval (500 ms by default) plus a
//! read, while the database is reachable.
//!
//! As tokio-postgres documents for `LISTEN`, notifications arrive through
//! `Connection::poll_message` as `AsyncMessage::Notification`; the connection is driven by a
//! task that forwards them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::postgres::PostgresStore;
use super::{StoreError, CHANGES_CHANNEL};

/// The `application_name` of the listener's connection (to find it in `pg_stat_activity`).
pub const LISTENER_APPLICATION_NAME: &str = "webhook-guard-feed";

/// How a [`Listener`] follows the store.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct FeedOptions {
    /// How often the follower catches up without a notification (notifications can be lost).
    /// Default: 500 ms.
    pub poll: Duration,
    /// How long to wait before connecting again after the connection failed. Default: 500 ms.
    pub reconnect: Duration,
}

impl Default for FeedOptions {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(500),
            reconnect: Duration::from_millis(500),
        }
    }
}

impl FeedOptions {
    /// How often to catch up without a notification; never more often than every 10 ms.
    ///
    /// ```
    /// use std::time::Duration;
    /// use webhook_guard::store::feed::FeedOptions;
    ///
    /// let options = FeedOptions::default().poll(Duration::from_millis(200));
    /// assert_eq!(options.poll, Duration::from_millis(200));
    /// assert_eq!(options.reconnect, Duration::from_millis(500), "the other setting is kept");
    /// assert_eq!(FeedOptions::default().poll(Duration::ZERO).poll, Duration::from_millis(10));
    /// ```
    pub fn poll(mut self, every: Duration) -> Self {
        self.poll = every.max(Duration::from_millis(10));
        self
    }

    /// How long to wait before connecting again; at least 10 ms.
    ///
    /// ```
    /// use std::time::Duration;
    /// use webhook_guard::store::feed::FeedOptions;
    ///
    /// let options = FeedOptions::default().reconnect(Duration::from_secs(2));
    /// assert_eq!(options.reconnect, Duration::from_secs(2));
    /// assert_eq!(options.poll, Duration::from_millis(500), "the other setting is kept");
    /// let eager = FeedOptions::default().reconnect(Duration::from_millis(1));
    /// assert_eq!(eager.reconnect, Duration::from_millis(10));
    /// ```
    pub fn reconnect(mut self, after: Duration) -> Self {
        self.reconnect = after.max(Duration::from_millis(10));
        self
    }
}

/// What the listener calls; the management plane implements it (`admin/feed.rs`). Calls come
/// from a blocking thread, one at a time.
pub trait Follow: Send + Sync + 'static {
    /// Notifications may have been missed: reload every row.
    ///
    /// # Errors
    ///
    /// [`StoreError`]; the listener reconnects and asks again.
    fn reload_all(&self) -> Result<(), StoreError>;

    /// Apply the events after the last one applied.
    ///
    /// # Errors
    ///
    /// [`StoreError`]; the next notification or poll asks again.
    fn catch_up(&self) -> Result<(), StoreError>;
}

/// Where a listener connects: the store's settings and runtime, taken before the store is
/// handed to the management plane ([`PostgresStore::feed`]).
#[derive(Clone)]
pub struct FeedSource {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for FeedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedSource")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("ssl_mode", &self.config.get_ssl_mode())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Where a [`Listener`] on this store's database connects.
    pub fn feed(&self) -> FeedSource {
        let mut config = self.config().clone();
        config.application_name(LISTENER_APPLICATION_NAME);
        FeedSource {
            config,
            tls: self.tls().clone(),
            runtime: self.runtime().clone(),
        }
    }
}

/// A running listener; dropping it stops it.
#[derive(Debug)]
pub struct Listener {
    task: JoinHandle<()>,
    connected: Arc<AtomicBool>,
}

impl Listener {
    /// Starts listening on `source` for `follower`, which is first asked to
    /// [`reload_all`](Follow::reload_all) once connected.
    pub fn start(source: FeedSource, options: FeedOptions, follower: Arc<dyn Follow>) -> Self {
        let connected = Arc::new(AtomicBool::new(false));
        let task = source.runtime.spawn(run(
            source.config,
            source.tls,
            options,
            follower,
            Arc::clone(&connected),
        ));
        Self { task, connected }
    }

    /// Whether the listener is connected and the last reload succeeded: this instance follows
    /// the others within the poll interval.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs `f` of the follower on a blocking thread.
async fn call(
    follower: &Arc<dyn Follow>,
    f: fn(&dyn Follow) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let follower = Arc::clone(follower);
    match tokio::task::spawn_blocking(move || super::on_blocking_thread(|| f(&*follower))).await {
        Ok(result) => result,
        Err(e) => Err(StoreError::Unavailable {
            reason: format!("the follower stopped: {e}"),
        }),
    }
}

async fn run(
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    options: FeedOptions,
    follower: Arc<dyn Follow>,
    connected: Arc<AtomicBool>,
) {
    // Logged once per change of state, not once per attempt.
    let mut first = true;
    loop {
        let outcome = session(&config, &tls, options, &follower, &connected).await;
        let was_connected = connected.swap(false, Ordering::SeqCst);
        if was_connected || first {
            match outcome {
                Err(e) => tracing::warn!(
                    error = %e,
                    "change feed disconnected; verifying with the keys held, reconnecting"
                ),
                Ok(()) => tracing::warn!("change feed disconnected; reconnecting"),
            }
        }
        first = false;
        tokio::time::sleep(options.reconnect).await;
    }
}

/// One connection: LISTEN, reload everything, then catch up on each notification and poll.
/// Returns when the connection ends.
async fn session(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    options: FeedOptions,
    follower: &Arc<dyn Follow>,
    connected: &AtomicBool,
) -> Result<(), StoreError> {
    let connecting = config.connect(tls.clone());
    let (client, mut connection) = connecting.await.map_err(super::postgres::pg)?;
    let (wake, mut woken) = mpsc::unbounded_channel::<()>();
    let driver = tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if wake.send(()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "change feed connection ended");
                    break;
                }
            }
        }
    });
    let result = async {
        client
            .batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))
            .await
            .map_err(super::postgres::pg)?;
        // Whatever happened while we were not listening is not in any notification.
        call(follower, |f| f.reload_all()).await?;
        if !connected.swap(true, Ordering::SeqCst) {
            tracing::info!("change feed connected; state reloaded");
        }
        let mut poll = tokio::time::interval(options.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                woke = woken.recv() => {
                    if woke.is_none() {
                        return Err(StoreError::Unavailable {
                            reason: "the change feed's connection closed".into(),
                        });
                    }
                    // Many notifications, one catch-up.
                    while woken.try_recv().is_ok() {}
                }
                _ = poll.tick() => {
                    if client.is_closed() {
                        return Err(StoreError::Unavailable {
                            reason: "the change feed's connection closed".into(),
                        });
                    }
                }
            }
            if let Err(e) = call(follower, |f| f.catch_up()).await {
                tracing::debug!(error = %e, "catching up failed; retrying at the next poll");
            }
        }
    }
    .await;
    drop(client);
    driver.abort();
    result
}

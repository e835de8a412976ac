//! Where "now" comes from: the system clock in production, a [`ManualClock`] in tests.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

/// A source of the current time.
///
/// The keyring uses it to stamp and expire keys, the verifier to check timestamps. Inject a
/// [`ManualClock`] to move time in tests without sleeping.
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to; clones share the same time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use webhook_guard::{Clock, ManualClock};
///
/// let clock = ManualClock::at_unix(1_700_000_000);
/// let view = clock.clone();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(view.now().timestamp(), 1_700_000_090);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    micros: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock stopped at `time` (microsecond precision).
    pub fn new(time: DateTime<Utc>) -> Self {
        Self {
            micros: Arc::new(AtomicI64::new(time.timestamp_micros())),
        }
    }

    /// A clock stopped at `secs` seconds after the Unix epoch.
    pub fn at_unix(secs: i64) -> Self {
        Self {
            micros: Arc::new(AtomicI64::new(secs.saturating_mul(1_000_000))),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.micros.fetch_add(by, Ordering::SeqCst);
    }

    /// Moves the clock back by `by`, as a wall clock may after a correction.
    pub fn rewind(&self, by: Duration) {
        let by = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.micros.fetch_sub(by, Ordering::SeqCst);
    }

    /// Sets the clock to `time`.
    pub fn set(&self, time: DateTime<Utc>) {
        self.micros.store(time.timestamp_micros(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_micros(self.micros.load(Ordering::SeqCst))
            .single()
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

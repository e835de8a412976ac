//! Where "now" comes from: the system clock in production, a [`ManualClock`] in tests.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeZone, Utc};

/// A source of the current time.
///
/// The keyring uses it to stamp and expire keys, the verifier to check timestamps. Inject a
/// [`ManualClock`] to move time in tests without sleeping.
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// The current time as whole seconds and nanoseconds since the Unix epoch, which is all a
    /// verification needs. The default derives it from [`now`](Clock::now); [`SystemClock`]
    /// reads the system clock without building a calendar date (half the cost of `now`).
    ///
    /// # Examples
    ///
    /// ```
    /// use webhook_guard::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::at_unix(1_700_000_000);
    /// assert_eq!(clock.unix_now(), (1_700_000_000, 0));
    /// ```
    fn unix_now(&self) -> (i64, u32) {
        unix_parts(self.now())
    }
}

/// A shared clock is a clock, so one clock can be handed to several owners.
impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }

    fn unix_now(&self) -> (i64, u32) {
        (**self).unix_now()
    }
}

/// `time` as whole seconds and nanoseconds since the Unix epoch.
fn unix_parts(time: DateTime<Utc>) -> (i64, u32) {
    (time.timestamp(), time.timestamp_subsec_nanos())
}

/// An instant as seconds and nanoseconds since the Unix epoch: what the hot path compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Now {
    secs: i64,
    nanos: u32,
}

impl Now {
    /// Whole seconds since the Unix epoch.
    pub(crate) fn secs(self) -> i64 {
        self.secs
    }

    /// Whole microseconds since the Unix epoch, saturating.
    pub(crate) fn micros(self) -> i64 {
        self.secs
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(self.nanos / 1000))
    }

    pub(crate) fn from_micros(micros: i64) -> Self {
        // `rem_euclid` is below 1 000 000, so the nanoseconds fit a u32.
        Self {
            secs: micros.div_euclid(1_000_000),
            nanos: (micros.rem_euclid(1_000_000) * 1000) as u32,
        }
    }

    /// As a calendar time; the latest one chrono has if beyond its range.
    pub(crate) fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.secs, self.nanos).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// When a request is judged: `now`, the clock reading timestamps are checked against, and
/// `keys`, the instant keys are live or expired at. They are the same for an explicit time
/// (`verify_at`); on the clock-driven paths `keys` is never earlier than an instant the keyring
/// judged before, so a wall clock stepping back cannot revive an expired key
/// (`Keyring::live_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Moment {
    pub(crate) now: Now,
    pub(crate) keys: Now,
}

impl From<Now> for Moment {
    fn from(now: Now) -> Self {
        Self { now, keys: now }
    }
}

impl From<DateTime<Utc>> for Moment {
    fn from(time: DateTime<Utc>) -> Self {
        Now::from(time).into()
    }
}

impl From<(i64, u32)> for Now {
    fn from((secs, nanos): (i64, u32)) -> Self {
        Self { secs, nanos }
    }
}

impl From<DateTime<Utc>> for Now {
    fn from(time: DateTime<Utc>) -> Self {
        unix_parts(time).into()
    }
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn unix_now(&self) -> (i64, u32) {
        since_epoch(SystemTime::now())
    }
}

/// `time` as seconds (rounded down) and nanoseconds since the Unix epoch, as chrono counts.
fn since_epoch(time: SystemTime) -> (i64, u32) {
    let (secs, nanos, before_epoch) = match time.duration_since(UNIX_EPOCH) {
        Ok(since) => (since.as_secs(), since.subsec_nanos(), false),
        Err(e) => (e.duration().as_secs(), e.duration().subsec_nanos(), true),
    };
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    match (before_epoch, nanos) {
        (false, _) => (secs, nanos),
        (true, 0) => (-secs, 0),
        (true, _) => (-secs - 1, 1_000_000_000 - nanos),
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

    fn unix_now(&self) -> (i64, u32) {
        let micros = self.micros.load(Ordering::SeqCst);
        let secs = micros.div_euclid(1_000_000);
        match (CHRONO_MIN_SECS..=CHRONO_MAX_SECS).contains(&secs) {
            // `rem_euclid` is below 1 000 000, so the nanoseconds fit a u32.
            true => (secs, (micros.rem_euclid(1_000_000) * 1000) as u32),
            // Outside chrono's range `now` answers its maximum.
            false => unix_parts(self.now()),
        }
    }
}

/// The first and last second chrono represents (years −262 143 and +262 142).
const CHRONO_MIN_SECS: i64 = -8_334_601_228_800;
const CHRONO_MAX_SECS: i64 = 8_210_266_876_799;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_counts_unix_time_as_chrono_does() {
        for (secs, nanos, after) in [
            (0, 0, true),
            (0, 1, true),
            (1_700_000_000, 999_999_999, true),
            (0, 1, false),
            (5, 250, false),
            (5, 0, false),
            (86_400 * 365 * 30, 123_456_789, false),
        ] {
            let offset = Duration::new(secs, nanos);
            let time = match after {
                true => UNIX_EPOCH + offset,
                false => UNIX_EPOCH - offset,
            };
            let expected = DateTime::<Utc>::from(time);
            assert_eq!(
                since_epoch(time),
                (expected.timestamp(), expected.timestamp_subsec_nanos()),
                "{offset:?} {}",
                if after { "after" } else { "before" }
            );
        }
        let before = Now::from(Utc::now());
        let now = Now::from(SystemClock.unix_now());
        let after = Now::from(Utc::now());
        assert!(before <= now && now <= after);
    }

    #[test]
    fn manual_clock_reads_unix_time_as_its_date_time() {
        assert_eq!(DateTime::<Utc>::MIN_UTC.timestamp(), CHRONO_MIN_SECS);
        assert_eq!(DateTime::<Utc>::MAX_UTC.timestamp(), CHRONO_MAX_SECS);
        let edges = [CHRONO_MIN_SECS, CHRONO_MAX_SECS].map(|s| s * 1_000_000);
        for micros in [i64::MIN, i64::MAX, -1, 0, 1, 999_999, 1_000_000, -1_000_001]
            .into_iter()
            .chain(
                edges
                    .iter()
                    .flat_map(|e| [e - 1, *e, e + 1, e + 999_999, e + 1_000_000]),
            )
        {
            let clock = ManualClock::at_unix(0);
            clock.micros.store(micros, Ordering::SeqCst);
            let now = clock.now();
            assert_eq!(
                clock.unix_now(),
                (now.timestamp(), now.timestamp_subsec_nanos()),
                "{micros}"
            );
        }
    }

    #[test]
    fn instants_order_as_date_times_do() {
        let times = [
            -1_500_000_001i64,
            -1,
            0,
            1,
            999_999_999,
            1_000_000_000,
            1_700_000_000_000_000_001,
        ];
        for a in times {
            for b in times {
                let (a_time, b_time) = (
                    DateTime::from_timestamp_nanos(a),
                    DateTime::from_timestamp_nanos(b),
                );
                assert_eq!(
                    Now::from(a_time).cmp(&Now::from(b_time)),
                    a_time.cmp(&b_time)
                );
            }
        }
    }
}

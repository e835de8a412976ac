//! Token buckets: how the management plane limits changes per credential and failed
//! authentications per client address.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// One token bucket per key, refilled at `per_second` up to `burst`, at most `max_keys` of
/// them in memory.
///
/// A key without a bucket starts full, so a bucket that has refilled is worth nothing: when
/// the table is full those are dropped first; when none has refilled, a new key is let through
/// untracked rather than evicting a bucket that is holding someone back.
#[derive(Debug)]
pub(crate) struct Buckets<K> {
    per_second: f64,
    burst: f64,
    max_keys: usize,
    buckets: HashMap<K, (f64, DateTime<Utc>)>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    /// Buckets of `burst` tokens refilled at `per_second` (both at least 1).
    pub(crate) fn new(per_second: u32, burst: u32, max_keys: usize) -> Self {
        Self {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            max_keys,
            buckets: HashMap::new(),
        }
    }

    /// The rate and burst it was made with.
    pub(crate) fn rate(&self) -> (u32, u32) {
        (self.per_second as u32, self.burst as u32)
    }

    /// The tokens `key` has at `now`.
    fn available(&self, key: &K, now: DateTime<Utc>) -> f64 {
        self.buckets
            .get(key)
            .map_or(self.burst, |&(tokens, at)| self.refill(tokens, at, now))
    }

    fn refill(&self, tokens: f64, at: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
        let elapsed = (now - at).num_microseconds().unwrap_or(i64::MAX).max(0) as f64 / 1e6;
        (tokens + elapsed * self.per_second).min(self.burst)
    }

    /// How long until `key` has a whole token, when it has none at `now`.
    fn wait(&self, available: f64) -> Duration {
        Duration::from_secs_f64(((1.0 - available) / self.per_second).max(0.001))
    }

    /// `Ok` when `key` has a token at `now`, without taking it; else when it will.
    pub(crate) fn check(&self, key: &K, now: DateTime<Utc>) -> Result<(), Duration> {
        let available = self.available(key, now);
        if available >= 1.0 {
            Ok(())
        } else {
            Err(self.wait(available))
        }
    }

    /// Takes a token from `key`'s bucket at `now`, or says when one will be there.
    pub(crate) fn take(&mut self, key: &K, now: DateTime<Utc>) -> Result<(), Duration> {
        let available = self.available(key, now);
        if available < 1.0 {
            return Err(self.wait(available));
        }
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.max_keys {
            let (rate, burst) = (self.per_second, self.burst);
            self.buckets.retain(|_, (tokens, at)| {
                let elapsed = (now - *at).num_microseconds().unwrap_or(i64::MAX).max(0) as f64;
                *tokens + elapsed / 1e6 * rate < burst
            });
            if self.buckets.len() >= self.max_keys {
                return Ok(());
            }
        }
        self.buckets.insert(key.clone(), (available - 1.0, now));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap()
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut buckets = Buckets::new(2, 3, 10);
        for _ in 0..3 {
            assert!(buckets.take(&"a", at(0)).is_ok());
        }
        let wait = buckets.take(&"a", at(0)).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(
            buckets.take(&"b", at(0)).is_ok(),
            "another key has its own bucket"
        );
        assert!(buckets.take(&"a", at(499)).is_err());
        assert!(buckets.take(&"a", at(500)).is_ok());
        assert!(buckets.check(&"a", at(500)).is_err());
        assert!(buckets.check(&"a", at(1000)).is_ok());
    }

    #[test]
    fn a_full_table_drops_refilled_buckets_and_never_one_that_holds_back() {
        let mut buckets = Buckets::new(1, 1, 2);
        assert!(buckets.take(&1, at(0)).is_ok());
        assert!(buckets.take(&2, at(0)).is_ok());
        // Both empty: a third key is let through untracked, the two stay held back.
        assert!(buckets.take(&3, at(0)).is_ok());
        assert!(buckets.take(&1, at(0)).is_err());
        assert!(buckets.take(&2, at(0)).is_err());
        // Once refilled they are dropped to make room.
        assert!(buckets.take(&3, at(5000)).is_ok());
        assert!(buckets.take(&3, at(5000)).is_err());
    }

    #[test]
    fn a_full_table_never_grows_and_drops_exactly_the_refilled_buckets() {
        let mut buckets = Buckets::new(2, 2, 2);
        for key in [1, 2] {
            assert!(buckets.take(&key, at(0)).is_ok());
            assert!(buckets.take(&key, at(0)).is_ok());
        }
        // A quarter of a second on, each holds half a token of two: both still hold back, so
        // a third key goes untracked, however often it comes.
        for _ in 0..3 {
            assert!(buckets.take(&3, at(250)).is_ok());
            assert_eq!(buckets.buckets.len(), 2, "never more buckets than max_keys");
        }
        // Half a token there, half a token to come: a quarter of a second at 2 per second.
        assert_eq!(buckets.take(&1, at(250)), Err(Duration::from_millis(250)));
        // A second on, both have refilled exactly (2 tokens at 2 per second): dropped, and the
        // third key gets a bucket of its own, which runs dry.
        assert!(buckets.take(&3, at(1000)).is_ok());
        assert_eq!(buckets.buckets.len(), 1);
        assert!(buckets.take(&3, at(1000)).is_ok());
        assert!(buckets.take(&3, at(1000)).is_err());
    }
}

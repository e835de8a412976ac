//! [`MemoryGuard`]: the replay guard in this process's memory.

use std::collections::{hash_map, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{Claim, DeliveryKey, GuardError, GuardFuture, ReplayGuard, Token};

/// Default for [`MemoryGuard::default`]: one million entries, about 50 MB.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// Most shards; fewer when the guard is small, so each holds at least [`MIN_PER_SHARD`], and
/// at most [`SHARDS_PER_CPU`] per CPU: more locks than cores only spread the guard over more
/// cache lines (each delivery's lookup misses the cache more often) without taking contention
/// lower.
const MAX_SHARDS: usize = 64;
const MIN_PER_SHARD: usize = 1024;
const SHARDS_PER_CPU: usize = 4;

/// A full shard whose last scan for expired entries freed little (under a sixteenth of it) and
/// that has taken in little since scans again at most this often (milliseconds), so a flood of
/// new deliveries into a full guard costs one scan of a shard per second, not one per delivery. A scan that freed more
/// pays for itself: the room it made takes that many deliveries to fill.
const SWEEP_EVERY_MS: u64 = 1000;

/// A shard that is not full is also swept when it has doubled since its last sweep (and holds
/// at least this many entries) and an entry may have expired: expired entries then never
/// outnumber live ones by much, so a guard whose deliveries come and go (a short retention, a
/// steady rate) keeps a map the size of what is live, in cache, instead of filling to its
/// bound with the dead. Each sweep is paid for by the insertions that doubled the shard.
const GROWN_SWEEP_MIN: usize = 64;

/// Remembers deliveries in this process: a map split into shards, each behind its own lock,
/// keyed by 128 bits of the [`DeliveryKey`], each entry expiring with its lease or retention.
///
/// It holds at most `max` entries (each of its shards a share of them). When a shard is full
/// and none of its entries has expired, a new delivery is refused ([`GuardError::Full`],
/// answered 503 `over-capacity` by the layer) rather than forgetting a delivery still within
/// its window, which would let its replay through. Expired entries are dropped when their key
/// comes again, when a shard has doubled since its last scan, or when a full shard needs room
/// (a scan of the shard, at most once a second unless the last one freed a sixteenth of it or
/// more).
///
/// Not shared between processes and forgotten on a restart: for several instances use
/// `PostgresGuard` or `RedisGuard`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use webhook_guard::replay::{Claim, DeliveryKey, MemoryGuard};
///
/// let guard = MemoryGuard::new(10_000);
/// let key = DeliveryKey::from_bytes([7; 32]);
/// let Claim::Reserved(token) = guard.try_reserve(&key, Duration::from_secs(60))? else {
///     panic!("a new key is free");
/// };
/// assert!(matches!(guard.try_reserve(&key, Duration::from_secs(60))?, Claim::InProgress { .. }));
/// guard.try_complete(&key, token, Duration::from_secs(600));
/// assert_eq!(guard.try_reserve(&key, Duration::from_secs(60))?, Claim::Done);
/// # Ok::<(), webhook_guard::replay::GuardError>(())
/// ```
pub struct MemoryGuard {
    shards: Box<[Padded]>,
    per_shard: usize,
    epoch: Instant,
    tokens: AtomicU64,
}

/// A shard on its own cache line, so two cores locking neighbouring shards do not contend.
#[repr(align(64))]
struct Padded(Mutex<Shard>);

#[derive(Default)]
struct Shard {
    map: HashMap<u128, Entry, BuildHasherDefault<PrefixHasher>>,
    /// No entry expires before this (milliseconds since the epoch); `u64::MAX` when empty.
    next_expiry: u64,
    last_sweep: Option<u64>,
    /// Entries the last sweep dropped.
    freed: usize,
    /// Entries the last sweep kept.
    kept: usize,
}

/// 16 bytes: the expiry in milliseconds since the guard's epoch, and the reservation's token
/// (0 once done).
#[derive(Clone, Copy)]
struct Entry {
    expires: u64,
    token: u64,
}

/// The keys are SHA-256 output: their low 64 bits are already a hash. (The shard is chosen by
/// the high bits.)
#[derive(Default)]
struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u128(&mut self, i: u128) {
        self.0 = i as u64;
    }
}

impl MemoryGuard {
    /// A guard holding at most `max` entries (at least 1), about 50 bytes each.
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let most = (SHARDS_PER_CPU * cpus).min(MAX_SHARDS);
        let shards = (max / MIN_PER_SHARD).clamp(1, most);
        // A power of two, so the shard is a mask of the key.
        let shards = 1 << shards.ilog2();
        Self {
            shards: (0..shards)
                .map(|_| {
                    Padded(Mutex::new(Shard {
                        next_expiry: u64::MAX,
                        ..Shard::default()
                    }))
                })
                .collect(),
            per_shard: max / shards,
            epoch: Instant::now(),
            tokens: AtomicU64::new(1),
        }
    }

    /// The most entries it holds.
    pub fn max_entries(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    /// Entries held now, expired ones not dropped yet included.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }

    /// True when it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`ReplayGuard::reserve`], answered at once.
    ///
    /// # Errors
    ///
    /// [`GuardError::Full`].
    pub fn try_reserve(&self, key: &DeliveryKey, lease: Duration) -> Result<Claim, GuardError> {
        let now = self.now();
        let k = key.prefix();
        let mut shard = self.shard(k);
        let expires = now.saturating_add(millis(lease));
        let len = shard.map.len();
        let full = len >= self.per_shard;
        let grown = len >= (2 * shard.kept).max(GROWN_SWEEP_MIN) && now >= shard.next_expiry;
        if !full && !grown {
            // The usual case, one probe of the map: no room to make first.
            let token = match shard.map.entry(k) {
                hash_map::Entry::Occupied(mut held) => {
                    let entry = held.get_mut();
                    if entry.expires > now {
                        return Ok(claimed(entry, now));
                    }
                    let token = self.tokens.fetch_add(1, Ordering::Relaxed);
                    *entry = Entry { expires, token };
                    token
                }
                hash_map::Entry::Vacant(free) => {
                    let token = self.tokens.fetch_add(1, Ordering::Relaxed);
                    free.insert(Entry { expires, token });
                    token
                }
            };
            shard.note(expires);
            return Ok(Claim::Reserved(Token::from_u128(token.into())));
        }
        if let Some(entry) = shard.map.get_mut(&k) {
            if entry.expires > now {
                return Ok(claimed(entry, now));
            }
            let token = self.tokens.fetch_add(1, Ordering::Relaxed);
            *entry = Entry { expires, token };
            shard.note(expires);
            return Ok(Claim::Reserved(Token::from_u128(token.into())));
        }
        if full {
            if !shard.sweep(now, self.per_shard) {
                return Err(GuardError::Full {
                    max: self.max_entries(),
                });
            }
        } else {
            shard.collect(now);
        }
        let token = self.tokens.fetch_add(1, Ordering::Relaxed);
        shard.map.insert(k, Entry { expires, token });
        shard.note(expires);
        Ok(Claim::Reserved(Token::from_u128(token.into())))
    }

    /// [`ReplayGuard::complete`], done at once. A key whose entry is gone (its lease ended and
    /// a full shard dropped it) is remembered again if there is room.
    pub fn try_complete(&self, key: &DeliveryKey, token: Token, retention: Duration) {
        let _ = token;
        let now = self.now();
        let k = key.prefix();
        let mut shard = self.shard(k);
        let expires = now.saturating_add(millis(retention));
        let done = Entry { expires, token: 0 };
        if let Some(entry) = shard.map.get_mut(&k) {
            *entry = done;
        } else if shard.map.len() < self.per_shard {
            shard.map.insert(k, done);
        } else {
            return;
        }
        shard.note(expires);
    }

    /// [`ReplayGuard::release`], done at once: the entry goes if `token` still holds it.
    pub fn try_release(&self, key: &DeliveryKey, token: Token) {
        let k = key.prefix();
        let mut shard = self.shard(k);
        if shard
            .map
            .get(&k)
            .is_some_and(|e| e.token != 0 && u128::from(e.token) == token.as_u128())
        {
            shard.map.remove(&k);
        }
    }

    fn shard(&self, k: u128) -> MutexGuard<'_, Shard> {
        let index = (k >> 64) as usize & (self.shards.len() - 1);
        lock(&self.shards[index])
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// What a key held and live answers: done, or in progress until its lease ends.
fn claimed(entry: &Entry, now: u64) -> Claim {
    match entry.token {
        0 => Claim::Done,
        _ => Claim::InProgress {
            retry_after: Duration::from_millis(entry.expires - now),
        },
    }
}

/// A shard's lock; a panic elsewhere never leaves a shard half-changed, so a poisoned lock is
/// used as is.
fn lock(shard: &Padded) -> MutexGuard<'_, Shard> {
    shard.0.lock().unwrap_or_else(PoisonError::into_inner)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Shard {
    fn note(&mut self, expires: u64) {
        self.next_expiry = self.next_expiry.min(expires);
    }

    /// Drops expired entries if any may have expired and the last sweep is a second old; true
    /// when there is room afterwards.
    fn sweep(&mut self, now: u64, per_shard: usize) -> bool {
        let recent = self
            .last_sweep
            .is_some_and(|at| now < at.saturating_add(SWEEP_EVERY_MS));
        // A recent sweep that freed little is not repeated, unless the shard has taken in a
        // sixteenth of itself since (entries that may have expired by now).
        let grown = self.map.len().saturating_sub(self.kept);
        if now < self.next_expiry
            || (recent && self.freed < per_shard / 16 && grown < per_shard / 16)
        {
            return false;
        }
        self.collect(now);
        self.map.len() < per_shard
    }

    /// Drops every expired entry.
    fn collect(&mut self, now: u64) {
        let before = self.map.len();
        let mut next = u64::MAX;
        self.map.retain(|_, e| {
            let live = e.expires > now;
            if live {
                next = next.min(e.expires);
            }
            live
        });
        self.next_expiry = next;
        self.last_sweep = Some(now);
        self.freed = before - self.map.len();
        self.kept = self.map.len();
    }
}

impl Default for MemoryGuard {
    /// A guard of [`DEFAULT_MAX_ENTRIES`].
    fn default() -> Self {
        Self::new(DEFAULT_MAX_ENTRIES)
    }
}

impl std::fmt::Debug for MemoryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryGuard")
            .field("shards", &self.shards.len())
            .field("max_entries", &self.max_entries())
            .finish_non_exhaustive()
    }
}

impl ReplayGuard for MemoryGuard {
    fn reserve(&self, key: &DeliveryKey, lease: Duration) -> GuardFuture<Claim> {
        GuardFuture::ready(self.try_reserve(key, lease))
    }

    fn complete(&self, key: &DeliveryKey, token: Token, retention: Duration) -> GuardFuture<()> {
        self.try_complete(key, token, retention);
        GuardFuture::ready(Ok(()))
    }

    fn release(&self, key: &DeliveryKey, token: Token) -> GuardFuture<()> {
        self.try_release(key, token);
        GuardFuture::ready(Ok(()))
    }

    fn abandon(&self, key: &DeliveryKey, token: Token) {
        self.try_release(key, token);
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> DeliveryKey {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&n.to_le_bytes());
        bytes[8..16].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
        DeliveryKey::from_bytes(bytes)
    }

    const LEASE: Duration = Duration::from_secs(60);

    /// Found measuring the layer with the guard (issue 22): with a short retention the map
    /// filled to its bound with expired entries before a full shard swept them, so every
    /// lookup missed the cache. A shard that doubled is swept: the map stays near what is live.
    #[test]
    fn expired_entries_never_outgrow_the_live_ones_by_much() {
        let guard = MemoryGuard::new(1_000_000);
        let shards = guard.shards.len();
        for n in 0..200_000 {
            let Ok(Claim::Reserved(token)) = guard.try_reserve(&key(n), LEASE) else {
                panic!("free")
            };
            // Done, and forgotten at once (retention 0): nothing stays live.
            guard.try_complete(&key(n), token, Duration::ZERO);
            if n % 10_000 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        assert!(
            guard.len() <= shards * 2 * GROWN_SWEEP_MIN + 10_000,
            "{} entries held for none live",
            guard.len()
        );
        // Live entries are never swept: a million-entry window still holds them all.
        let live = MemoryGuard::new(100_000);
        for n in 0..50_000 {
            assert!(matches!(
                live.try_reserve(&key(n), LEASE),
                Ok(Claim::Reserved(_))
            ));
        }
        assert_eq!(live.len(), 50_000);
        for n in 0..50_000 {
            assert!(matches!(
                live.try_reserve(&key(n), LEASE),
                Ok(Claim::InProgress { .. })
            ));
        }
    }

    #[test]
    fn reserve_complete_release() {
        let guard = MemoryGuard::new(10);
        let Ok(Claim::Reserved(token)) = guard.try_reserve(&key(1), LEASE) else {
            panic!()
        };
        assert!(matches!(
            guard.try_reserve(&key(1), LEASE),
            Ok(Claim::InProgress { retry_after }) if retry_after <= LEASE
        ));
        // Another holder's token releases nothing.
        guard.try_release(&key(1), Token::from_u128(token.as_u128() + 1));
        assert!(matches!(
            guard.try_reserve(&key(1), LEASE),
            Ok(Claim::InProgress { .. })
        ));
        guard.try_release(&key(1), token);
        let Ok(Claim::Reserved(token)) = guard.try_reserve(&key(1), LEASE) else {
            panic!()
        };
        guard.try_complete(&key(1), token, LEASE);
        assert_eq!(guard.try_reserve(&key(1), LEASE), Ok(Claim::Done));
        // A done key is not released by its old token.
        guard.try_release(&key(1), token);
        assert_eq!(guard.try_reserve(&key(1), LEASE), Ok(Claim::Done));
    }

    #[test]
    fn a_full_guard_refuses_rather_than_forgets() {
        let guard = MemoryGuard::new(4);
        for n in 0..4 {
            assert!(matches!(
                guard.try_reserve(&key(n), LEASE),
                Ok(Claim::Reserved(_))
            ));
        }
        assert_eq!(
            guard.try_reserve(&key(9), LEASE),
            Err(GuardError::Full { max: 4 })
        );
        // The entries held are still answered.
        assert!(matches!(
            guard.try_reserve(&key(0), LEASE),
            Ok(Claim::InProgress { .. })
        ));
        assert_eq!(guard.len(), 4);
    }

    #[test]
    fn expired_entries_make_room() {
        let guard = MemoryGuard::new(4);
        for n in 0..4 {
            let Ok(Claim::Reserved(token)) = guard.try_reserve(&key(n), LEASE) else {
                panic!()
            };
            guard.try_complete(&key(n), token, Duration::ZERO);
        }
        std::thread::sleep(Duration::from_millis(2));
        for n in 4..8 {
            assert!(
                matches!(guard.try_reserve(&key(n), LEASE), Ok(Claim::Reserved(_))),
                "{n}"
            );
        }
        assert_eq!(guard.len(), 4);
    }

    #[test]
    fn a_productive_sweep_may_run_again_at_once() {
        let guard = MemoryGuard::new(32);
        for round in 0..4u64 {
            for n in 0..32 {
                let k = key(round * 100 + n);
                let Ok(Claim::Reserved(token)) = guard.try_reserve(&k, LEASE) else {
                    panic!("round {round}, {n}")
                };
                guard.try_complete(&k, token, Duration::ZERO);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn shards_split_the_bound() {
        let guard = MemoryGuard::new(1_000_000);
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let most = (SHARDS_PER_CPU * cpus).min(MAX_SHARDS);
        // The largest power of two within four per CPU (and 64).
        assert!(guard.shards.len() <= most && 2 * guard.shards.len() > most);
        assert!(guard.shards.len().is_power_of_two());
        assert!(guard.max_entries() <= 1_000_000);
        assert!(guard.max_entries() > 1_000_000 - guard.shards.len());
        assert_eq!(MemoryGuard::new(3000).shards.len(), 2);
    }
}

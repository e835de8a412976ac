//! [`MemoryGuard`]: the replay guard in this process's memory.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::{Claim, DeliveryKey, GuardError, GuardFuture, ReplayGuard, Token};

/// Default for [`MemoryGuard::default`]: one million entries, about 20 MB when full.
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
/// new deliveries into a full guard costs one scan of a shard per second, not one per delivery.
/// A scan that freed more pays for itself: the room it made takes that many deliveries to fill.
const SWEEP_EVERY_MS: u64 = 1000;

/// Slots per bucket: four of 16 bytes, one cache line, what one probe reads.
const SLOTS: usize = 4;
/// A shard's table starts with this many buckets (1 KiB), or its most if fewer.
const MIN_BUCKETS: usize = 16;
/// A table below its largest size is rebuilt when this share of its slots (sixteenths) is used,
/// live or not: linear probing over four-slot buckets stays near one cache line per lookup.
const FILL_16THS: usize = 13;
/// A rebuilt table is sized so its live entries use this share of it (sixteenths): the room
/// left pays for the rebuild.
const REBUILT_16THS: usize = 10;

/// Bits of a slot's `meta` holding the reservation's token; the rest hold the expiry.
const TOKEN_BITS: u32 = 24;
const TOKEN_MASK: u64 = (1 << TOKEN_BITS) - 1;
/// The latest expiry a slot can hold: 2^40 ms, 34 years after the guard started.
const MAX_EXPIRY: u64 = (1 << (64 - TOKEN_BITS)) - 1;

/// Remembers deliveries in this process: a table split into shards, each behind its own lock,
/// each entry expiring with its lease or retention.
///
/// Each shard is an open-addressing table of 64-byte buckets of four 16-byte entries (64 bits of
/// the [`DeliveryKey`], its expiry and the reservation's token), probed one bucket after the
/// next: looking a delivery up reads one cache line, rarely two adjacent ones. Two different
/// deliveries are confused only when these 64 bits agree: with a million live entries, a
/// chance of 5·10⁻¹⁴ per delivery. A table grows with what it holds and is rebuilt without
/// its expired entries when it fills; full, it takes 16 × 16 / 13 ≈ 20 bytes per entry.
///
/// It holds at most `max` entries (each of its shards a share of them). When a shard is full
/// and none of its entries has expired, a new delivery is refused ([`GuardError::Full`],
/// answered 503 `over-capacity` by the layer) rather than forgetting a delivery still within
/// its window, which would let its replay through. The room of an expired or released entry is
/// taken by the next delivery that probes it; a shard's table is rebuilt without expired
/// entries when it fills (a full shard at its largest size at most once a second, unless the
/// last rebuild freed a sixteenth of it or more).
///
/// Expiries are counted in milliseconds on the kernel's coarse monotonic clock, which advances
/// once a scheduler tick (1 to 10 ms, 4 ms on most Linux kernels) and costs a few nanoseconds
/// to read where the precise one costs 20 or more: an entry may outlive its lease or retention
/// by up to a tick.
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
    /// A shard's largest table: room for `per_shard` entries with an empty slot left.
    max_buckets: usize,
    epoch: coarsetime::Instant,
}

/// A shard on its own cache line, so two cores locking neighbouring shards do not contend.
#[repr(align(64))]
struct Padded(Mutex<Shard>);

struct Shard {
    buckets: Vec<Bucket>,
    /// Slots not empty: live entries, and expired or released ones not dropped yet.
    used: usize,
    /// No entry expires before this (milliseconds since the epoch); `u64::MAX` when empty.
    next_expiry: u64,
    /// Entries released since the last rebuild (their room is free before they expire).
    released: usize,
    last_sweep: Option<u64>,
    /// Entries the last rebuild dropped.
    freed: usize,
    /// Entries the last rebuild kept.
    kept: usize,
    /// The last reservation's token.
    last_token: u64,
}

#[derive(Clone, Copy, Default)]
#[repr(align(64))]
struct Bucket([Slot; SLOTS]);

/// 16 bytes: the key's `tag` (0 for an empty slot) and its `meta`: the expiry in milliseconds
/// since the guard's epoch (the high 40 bits) and the reservation's token (the low 24; 0 once
/// done). A released entry keeps its tag with an expiry of 0, so probes still pass it.
#[derive(Clone, Copy, Default)]
struct Slot {
    tag: u64,
    meta: u64,
}

impl Slot {
    fn new(tag: u64, expires: u64, token: u64) -> Self {
        Self {
            tag,
            meta: (expires.min(MAX_EXPIRY) << TOKEN_BITS) | token,
        }
    }

    fn expires(self) -> u64 {
        self.meta >> TOKEN_BITS
    }

    fn token(self) -> u64 {
        self.meta & TOKEN_MASK
    }

    fn live(self, now: u64) -> bool {
        self.tag != 0 && self.expires() > now
    }
}

/// Where a key is, or where it would go.
enum Probe {
    /// Its slot (live or not): bucket, slot.
    Held(usize, usize),
    /// Not held: the first expired or released slot on its way, else the empty one ending it.
    Free {
        reuse: Option<(usize, usize)>,
        empty: (usize, usize),
    },
}

/// The key's 64 bits the guard keeps: its bytes 8 to 16, which also choose the shard (their low
/// bits) and the bucket (their high bits). Never 0, which marks an empty slot.
fn tag(key: &DeliveryKey) -> u64 {
    let mut bits = [0u8; 8];
    bits.copy_from_slice(&key.as_bytes()[8..16]);
    u64::from_le_bytes(bits).max(1)
}

impl MemoryGuard {
    /// A guard holding at most `max` entries (at least 1), about 20 bytes each when full.
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let most = (SHARDS_PER_CPU * cpus).min(MAX_SHARDS);
        let shards = (max / MIN_PER_SHARD).clamp(1, most);
        // A power of two, so the shard is a mask of the key.
        let shards = 1 << shards.ilog2();
        let per_shard = max / shards;
        // Room for `per_shard` entries at most 13/16 of the slots, and one empty slot besides,
        // so every probe ends.
        let slots = (per_shard * 16).div_ceil(FILL_16THS).max(per_shard + 1);
        let max_buckets = slots.div_ceil(SLOTS);
        Self {
            shards: (0..shards)
                .map(|_| {
                    Padded(Mutex::new(Shard {
                        buckets: vec![Bucket::default(); MIN_BUCKETS.min(max_buckets)],
                        used: 0,
                        next_expiry: u64::MAX,
                        released: 0,
                        last_sweep: None,
                        freed: 0,
                        kept: 0,
                        last_token: 0,
                    }))
                })
                .collect(),
            per_shard,
            max_buckets,
            epoch: coarsetime::Instant::now_without_cache_update(),
        }
    }

    /// The most entries it holds.
    pub fn max_entries(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    /// Entries held now, expired ones not dropped yet included.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).used).sum()
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
        let tag = tag(key);
        let mut shard = self.shard(tag);
        let expires = now.saturating_add(millis(lease));
        let at = match shard.probe(tag, now) {
            Probe::Held(b, s) => {
                let slot = shard.buckets[b].0[s];
                if slot.live(now) {
                    return Ok(claimed(slot, now));
                }
                (b, s)
            }
            Probe::Free { reuse, empty } => {
                match self.free_slot(&mut shard, tag, now, reuse, empty) {
                    Some(at) => at,
                    None => {
                        return Err(GuardError::Full {
                            max: self.max_entries(),
                        })
                    }
                }
            }
        };
        let token = shard.token();
        shard.put(at, Slot::new(tag, expires, token));
        Ok(Claim::Reserved(Token::from_u128(
            (u128::from(now) << 64) | u128::from(token),
        )))
    }

    /// [`ReplayGuard::complete`], done at once: the entry is kept for `retention` from its
    /// reservation (read from `token`, so no clock is read when the reservation still holds the
    /// key). A key whose entry is gone (its lease ended and a full shard dropped it) is
    /// remembered again, for `retention` from now, if there is room.
    pub fn try_complete(&self, key: &DeliveryKey, token: Token, retention: Duration) {
        let tag = tag(key);
        let (reserved_at, value) = split(token);
        let mut shard = self.shard(tag);
        let at = match shard.probe(tag, reserved_at) {
            Probe::Held(b, s) if value != 0 && shard.buckets[b].0[s].token() == value => {
                let done = Slot::new(tag, reserved_at.saturating_add(millis(retention)), 0);
                shard.put((b, s), done);
                return;
            }
            Probe::Held(b, s) => (b, s),
            // Its reservation is gone: free slots are judged by the clock.
            Probe::Free { .. } => {
                let now = self.now();
                match shard.probe(tag, now) {
                    Probe::Held(b, s) => (b, s),
                    Probe::Free { reuse, empty } => {
                        match self.free_slot(&mut shard, tag, now, reuse, empty) {
                            Some(at) => at,
                            None => return,
                        }
                    }
                }
            }
        };
        let done = Slot::new(tag, self.now().saturating_add(millis(retention)), 0);
        shard.put(at, done);
    }

    /// [`ReplayGuard::release`], done at once: the entry goes if `token` still holds it.
    pub fn try_release(&self, key: &DeliveryKey, token: Token) {
        let tag = tag(key);
        let mut shard = self.shard(tag);
        if let Probe::Held(b, s) = shard.probe(tag, 0) {
            let slot = shard.buckets[b].0[s];
            if slot.token() != 0 && slot.token() == split(token).1 {
                // Its tag stays, so the probes passing it still go on.
                shard.buckets[b].0[s].meta = 0;
                shard.released += 1;
            }
        }
    }

    /// The slot a key not held takes: an expired or released one on its way, else the empty
    /// one ending its probe while the shard has room, else one a rebuild makes; `None` when the
    /// shard is full of live entries.
    fn free_slot(
        &self,
        shard: &mut Shard,
        tag: u64,
        now: u64,
        reuse: Option<(usize, usize)>,
        empty: (usize, usize),
    ) -> Option<(usize, usize)> {
        if reuse.is_some() {
            return reuse;
        }
        if shard.used < shard.limit(self.per_shard, self.max_buckets) {
            shard.used += 1;
            return Some(empty);
        }
        shard.make_room(tag, now, self.per_shard, self.max_buckets)
    }

    fn shard(&self, tag: u64) -> MutexGuard<'_, Shard> {
        lock(&self.shards[tag as usize & (self.shards.len() - 1)])
    }

    /// Milliseconds since the guard's epoch, on the coarse monotonic clock.
    fn now(&self) -> u64 {
        coarsetime::Instant::now_without_cache_update()
            .duration_since(self.epoch)
            .as_millis()
    }
}

/// A token's parts: when its reservation was made (milliseconds since the epoch, the high 64
/// bits) and its value (the low 64).
fn split(token: Token) -> (u64, u64) {
    let token = token.as_u128();
    ((token >> 64) as u64, token as u64)
}

/// What a key held and live answers: done, or in progress until its lease ends.
fn claimed(slot: Slot, now: u64) -> Claim {
    match slot.token() {
        0 => Claim::Done,
        _ => Claim::InProgress {
            retry_after: Duration::from_millis(slot.expires() - now),
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

/// The first bucket of `tag` in a table of `buckets`: its high bits, scaled.
fn home(tag: u64, buckets: usize) -> usize {
    ((u128::from(tag) * buckets as u128) >> 64) as usize
}

impl Shard {
    /// Finds `tag`, from its home bucket to the first bucket with an empty slot (slots are never
    /// emptied but by a rebuild, so a key is never past one). `now` tells which slots are free
    /// to take.
    fn probe(&self, tag: u64, now: u64) -> Probe {
        let n = self.buckets.len();
        let mut b = home(tag, n);
        let mut reuse = None;
        loop {
            for (s, slot) in self.buckets[b].0.iter().enumerate() {
                if slot.tag == tag {
                    return Probe::Held(b, s);
                }
                if slot.tag == 0 {
                    return Probe::Free {
                        reuse,
                        empty: (b, s),
                    };
                }
                if reuse.is_none() && !slot.live(now) {
                    reuse = Some((b, s));
                }
            }
            b = if b + 1 == n { 0 } else { b + 1 };
        }
    }

    /// A new reservation's token, 1 to 2^24 - 1, counted in the shard (under its lock, and a
    /// key's reservations are all in one shard): two reservations of one key confuse their
    /// tokens only if 16 million others were made in its shard between them.
    fn token(&mut self) -> u64 {
        self.last_token = self.last_token % TOKEN_MASK + 1;
        self.last_token
    }

    fn put(&mut self, (b, s): (usize, usize), slot: Slot) {
        self.buckets[b].0[s] = slot;
        self.next_expiry = self.next_expiry.min(slot.expires());
    }

    /// Slots it may use: `per_shard` at its largest size, 13/16 of them below it.
    fn limit(&self, per_shard: usize, max_buckets: usize) -> usize {
        if self.buckets.len() >= max_buckets {
            per_shard
        } else {
            (self.buckets.len() * SLOTS * FILL_16THS / 16).min(per_shard)
        }
    }

    /// Room for one more entry, `tag`'s: the table rebuilt without its expired and released
    /// entries (and grown if its live ones need it). Below its largest size always; at it, only
    /// if entries may have expired or been released and the last rebuild is a second old (or
    /// freed a sixteenth or more, or the shard has taken in a sixteenth since). The slot to
    /// take, counted as used; `None` when there is no room.
    fn make_room(
        &mut self,
        tag: u64,
        now: u64,
        per_shard: usize,
        max_buckets: usize,
    ) -> Option<(usize, usize)> {
        if self.buckets.len() >= max_buckets {
            let recent = self
                .last_sweep
                .is_some_and(|at| now < at.saturating_add(SWEEP_EVERY_MS));
            let grown = self.used.saturating_sub(self.kept);
            let nothing_dead = now < self.next_expiry && self.released == 0;
            if nothing_dead || (recent && self.freed < per_shard / 16 && grown < per_shard / 16) {
                return None;
            }
        }
        self.rebuild(now, max_buckets);
        if self.used >= self.limit(per_shard, max_buckets) {
            return None;
        }
        match self.probe(tag, now) {
            Probe::Free { empty, .. } => {
                self.used += 1;
                Some(empty)
            }
            // A rebuilt table holds only live entries, and this key was not among them.
            Probe::Held(..) => None,
        }
    }

    /// Moves the live entries into a table sized for them (10/16 of its slots, at most the
    /// largest), dropping the others.
    fn rebuild(&mut self, now: u64, max_buckets: usize) {
        let live: Vec<Slot> = self
            .buckets
            .iter()
            .flat_map(|b| b.0)
            .filter(|slot| slot.live(now))
            .collect();
        let want = (live.len() * 16).div_ceil(REBUILT_16THS * SLOTS);
        let n = want
            .clamp(MIN_BUCKETS, MIN_BUCKETS.max(max_buckets))
            .min(max_buckets);
        // A new table of exactly `n` (a resized one would keep its doubled capacity).
        self.buckets = vec![Bucket::default(); n];
        let mut next = u64::MAX;
        for slot in &live {
            let mut b = home(slot.tag, n);
            loop {
                if let Some(free) = self.buckets[b].0.iter_mut().find(|s| s.tag == 0) {
                    *free = *slot;
                    break;
                }
                b = if b + 1 == n { 0 } else { b + 1 };
            }
            next = next.min(slot.expires());
        }
        self.freed = self.used - live.len();
        self.used = live.len();
        self.kept = live.len();
        self.next_expiry = next;
        self.released = 0;
        self.last_sweep = Some(now);
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
    /// Longer than a tick of the coarse clock the guard reads (1 to 10 ms).
    const TICK: Duration = Duration::from_millis(15);

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
                std::thread::sleep(TICK);
            }
        }
        assert!(
            guard.len() <= shards * MIN_BUCKETS * SLOTS,
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

    /// A key whose 64 kept bits start alike: every one has the same home bucket.
    fn crowded(n: u64) -> DeliveryKey {
        let mut bytes = [0u8; 32];
        bytes[8..16].copy_from_slice(&((0xabcd_u64 << 48) | n).to_le_bytes());
        DeliveryKey::from_bytes(bytes)
    }

    /// Keys sharing a home bucket spill into the next ones; releasing the first leaves the
    /// later ones found, and a new key takes a released slot rather than a new one.
    #[test]
    fn probes_pass_released_entries_and_reuse_them() {
        let guard = MemoryGuard::new(1000);
        assert_eq!(guard.shards.len(), 1);
        let tokens: Vec<Token> = (1..=10)
            .map(|n| match guard.try_reserve(&crowded(n), LEASE) {
                Ok(Claim::Reserved(token)) => token,
                other => panic!("{n}: {other:?}"),
            })
            .collect();
        for (n, token) in (1..=5).zip(&tokens) {
            guard.try_release(&crowded(n), *token);
        }
        for n in 6..=10 {
            assert!(
                matches!(
                    guard.try_reserve(&crowded(n), LEASE),
                    Ok(Claim::InProgress { .. })
                ),
                "{n} is still held past the released ones"
            );
        }
        assert_eq!(guard.len(), 10);
        for n in 11..=15 {
            assert!(matches!(
                guard.try_reserve(&crowded(n), LEASE),
                Ok(Claim::Reserved(_))
            ));
        }
        assert_eq!(guard.len(), 10, "five released slots taken again");
        for n in (6..=15).chain(1..=1) {
            let held = guard.try_reserve(&crowded(n), LEASE);
            if n == 1 {
                assert!(matches!(held, Ok(Claim::Reserved(_))), "1 was released");
            } else {
                assert!(matches!(held, Ok(Claim::InProgress { .. })), "{n}");
            }
        }
    }

    /// Entries survive the rebuilds that grow a table, and an endless retention stays done.
    #[test]
    fn entries_survive_growth_and_the_longest_retention() {
        let guard = MemoryGuard::new(100_000);
        for n in 0..60_000 {
            let Ok(Claim::Reserved(token)) = guard.try_reserve(&key(n), LEASE) else {
                panic!("{n} is free")
            };
            if n % 2 == 0 {
                guard.try_complete(&key(n), token, Duration::MAX);
            }
        }
        for n in 0..60_000 {
            let claim = guard.try_reserve(&key(n), LEASE);
            if n % 2 == 0 {
                assert_eq!(claim, Ok(Claim::Done), "{n}");
            } else {
                assert!(matches!(claim, Ok(Claim::InProgress { .. })), "{n}");
            }
        }
        assert_eq!(guard.len(), 60_000);
        let largest = guard.shards.iter().map(|s| lock(s).buckets.len()).max();
        assert!(largest <= Some(guard.max_buckets));
    }

    /// The retention runs from the reservation its token names; a token that names none of the
    /// key's reservations is kept from now.
    #[test]
    fn retention_runs_from_the_reservation() {
        let guard = MemoryGuard::new(10);
        let Ok(Claim::Reserved(token)) = guard.try_reserve(&key(1), LEASE) else {
            panic!()
        };
        std::thread::sleep(Duration::from_millis(50));
        guard.try_complete(&key(1), token, Duration::from_millis(20));
        assert!(
            matches!(guard.try_reserve(&key(1), LEASE), Ok(Claim::Reserved(_))),
            "reserved 50 ms ago, kept 20 ms"
        );
        guard.try_complete(&key(1), Token::from_u128(7), Duration::from_millis(20));
        assert_eq!(guard.try_reserve(&key(1), LEASE), Ok(Claim::Done));
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

    /// Each reservation of a key has a token of its own: a holder whose lease ended cannot
    /// release the reservation the next copy took.
    #[test]
    fn a_stale_holders_token_releases_nothing() {
        let guard = MemoryGuard::new(10);
        let Ok(Claim::Reserved(stale)) = guard.try_reserve(&key(1), Duration::ZERO) else {
            panic!()
        };
        // Its lease is over at once: the next copy reserves the key anew.
        let Ok(Claim::Reserved(token)) = guard.try_reserve(&key(1), LEASE) else {
            panic!("a reservation whose lease ended is taken over")
        };
        assert_ne!(stale.as_u128(), token.as_u128());
        guard.try_release(&key(1), stale);
        assert!(matches!(
            guard.try_reserve(&key(1), LEASE),
            Ok(Claim::InProgress { .. })
        ));
        guard.try_release(&key(1), token);
        assert!(matches!(
            guard.try_reserve(&key(1), LEASE),
            Ok(Claim::Reserved(_))
        ));
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
        std::thread::sleep(TICK);
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
            std::thread::sleep(TICK);
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

//! What does replay protection cost? The memory guard's check-and-reserve with a million live
//! entries, its bytes per entry, a flood of ten million new ids against its bound; Redis and
//! PostgreSQL guards beside the bare command on the same connection; verify + guard through the
//! layer at 1 KiB beside the layer alone.
//!
//! Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432) parts run with the `redis` and
//! `postgres` features; each uses its own key prefix or database, removed at the end.

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use http::{Request, Response};
use http_body_util::Full;
use tower::{service_fn, Layer, ServiceExt};
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::replay::{Claim, DeliveryKey, MemoryGuard, ReplayProtection, Token};
use webhook_guard::Signer;

mod common;

/// Bytes the process holds on the heap now.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards its arguments unchanged to the system allocator; the counter
// is only arithmetic on the sizes. (The crate forbids unsafe code; this bench needs it only
// because `GlobalAlloc` is an unsafe trait.)
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HELD.fetch_add(new_size, Ordering::Relaxed);
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Distinct keys, as SHA-256 output would be (splitmix64).
fn key(n: u64) -> DeliveryKey {
    let mut bytes = [0u8; 32];
    let mut x = n;
    for chunk in bytes.chunks_mut(8) {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    DeliveryKey::from_bytes(bytes)
}

/// A reservation, released when dropped.
struct Reserved<'g> {
    guard: &'g MemoryGuard,
    key: DeliveryKey,
    token: Token,
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.guard.try_release(&self.key, self.token);
    }
}

const LIVE: u64 = 1_000_000;
const LEASE: Duration = Duration::from_secs(3600);

fn memory(c: &mut Criterion) {
    let before = HELD.load(Ordering::Relaxed);
    let guard = MemoryGuard::new(2 * LIVE as usize);
    for n in 0..LIVE {
        let Ok(Claim::Reserved(token)) = guard.try_reserve(&key(n), LEASE) else {
            panic!("free")
        };
        guard.try_complete(&key(n), token, LEASE);
    }
    let held = HELD.load(Ordering::Relaxed) - before;
    eprintln!(
        "memory guard: {LIVE} live entries hold {held} bytes, {:.1} bytes per entry",
        held as f64 / LIVE as f64
    );

    let mut group = c.benchmark_group("replay/memory");
    // A new delivery: reserved, then released so the guard stays at a million entries.
    let mut n = LIVE;
    group.bench_function("reserve-new+release/1M-live", |b| {
        b.iter(|| {
            n += 1;
            let k = key(n);
            let Ok(Claim::Reserved(token)) = guard.try_reserve(&k, LEASE) else {
                panic!("free")
            };
            guard.try_release(&k, token);
        })
    });
    // The check-and-reserve alone: each new delivery's reservation is released after its
    // batch is timed (criterion drops a batch's outputs after measuring it), so the guard stays
    // at a million entries and only `try_reserve` is measured.
    let mut r = 20 * LIVE;
    group.bench_function("reserve-new/1M-live", |b| {
        b.iter_batched(
            || {
                r += 1;
                key(r)
            },
            |k| {
                let Ok(Claim::Reserved(token)) = guard.try_reserve(&k, LEASE) else {
                    panic!("free")
                };
                Reserved {
                    guard: &guard,
                    key: k,
                    token,
                }
            },
            BatchSize::SmallInput,
        )
    });
    // The same on a guard small enough for the cache, for what the memory misses cost.
    let small = MemoryGuard::new(2048);
    for n in 0..1000 {
        let Ok(Claim::Reserved(token)) = small.try_reserve(&key(n), LEASE) else {
            panic!("free")
        };
        small.try_complete(&key(n), token, LEASE);
    }
    let mut s = 0;
    group.bench_function("duplicate/1k-live", |b| {
        b.iter(|| {
            s = (s + 7) % 1000;
            black_box(small.try_reserve(&key(s), LEASE).unwrap())
        })
    });
    // A duplicate: found done.
    let mut m = 0;
    group.bench_function("duplicate/1M-live", |b| {
        b.iter(|| {
            m = (m + 7919) % LIVE;
            black_box(guard.try_reserve(&key(m), LEASE).unwrap())
        })
    });
    // The floor under the row above: one random line of a table the guard's size, each read
    // waiting for the one before (as each delivery's lookup waits for its own), no guard.
    let lines = held / 64;
    let mut next = vec![0u64; lines * 8];
    let mut order: Vec<u64> = (0..lines as u64).collect();
    for i in (1..order.len()).rev() {
        let j = (key(i as u64).as_bytes()[0] as usize
            | (key(i as u64).as_bytes()[1] as usize) << 8
            | (key(i as u64).as_bytes()[2] as usize) << 16)
            % (i + 1);
        order.swap(i, j);
    }
    for w in 0..lines {
        next[order[w] as usize * 8] = order[(w + 1) % lines];
    }
    let mut line = 0u64;
    group.bench_function("memory-floor/one-random-line-of-the-1M-live-table", |b| {
        b.iter(|| {
            line = next[line as usize * 8];
            black_box(line)
        })
    });
    drop(next);
    // What the layer bench below does to its guard: new deliveries reserved and done with a
    // retention of 0, on a guard of a million entries that holds none live.
    let fresh = MemoryGuard::new(LIVE as usize);
    let mut f = 0;
    group.bench_function("reserve-new+complete/none-live", |b| {
        b.iter(|| {
            f += 1;
            let k = key(f);
            let Ok(Claim::Reserved(token)) = fresh.try_reserve(&k, LEASE) else {
                panic!("free")
            };
            fresh.try_complete(&k, token, Duration::ZERO);
        })
    });
    // A new delivery, reserved and marked done (the layer's two calls); its entry expires at
    // once, so the guard does not grow.
    let mut n = 10 * LIVE;
    group.bench_function("reserve-new+complete/1M-live", |b| {
        b.iter(|| {
            n += 1;
            let k = key(n);
            let Ok(Claim::Reserved(token)) = guard.try_reserve(&k, LEASE) else {
                panic!("free")
            };
            guard.try_complete(&k, token, Duration::ZERO);
        })
    });
    group.finish();
    drop(guard);

    // A flood of ten million new ids against a bound of one million.
    let guard = MemoryGuard::new(LIVE as usize);
    let before = HELD.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut refused = 0u64;
    for n in 0..10 * LIVE {
        if guard.try_reserve(&key(n), LEASE).is_err() {
            refused += 1;
        }
    }
    let took = started.elapsed();
    let held = HELD.load(Ordering::Relaxed) - before;
    assert!(guard.len() <= guard.max_entries());
    eprintln!(
        "memory guard flood: 10M new ids, bound {}: {} held, {refused} refused (503), {held} bytes, {:.0} ns per id",
        guard.max_entries(),
        guard.len(),
        took.as_nanos() as f64 / 1e7
    );
}

fn layer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let inner = service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    let size = 1024;
    let body = Bytes::from(common::body(size));
    // Distinct deliveries, cycled; each handled once per cycle (the guard forgets it at once).
    let signer = Signer::new(common::scheme("standard"), common::secret());
    let deliveries: Vec<_> = (0..50_000)
        .map(|i| {
            common::with_usual_headers(
                signer
                    .sign_at(&body, &format!("msg_{i:027}"), common::now())
                    .unwrap(),
            )
        })
        .collect();
    let verifier = common::verifier("standard", 1, true);
    let plain = WebhookLayer::new(verifier.clone()).layer(inner);
    let protection =
        ReplayProtection::new(MemoryGuard::new(LIVE as usize)).retention(Duration::ZERO);
    let guarded = WebhookLayer::new(verifier)
        .replay_protection(protection)
        .layer(inner);
    let mut group = c.benchmark_group("replay/layer/standard");
    for (name, service) in [("layer", &plain), ("layer+memory-guard", &guarded)] {
        let mut i = 0;
        group.bench_function(BenchmarkId::new(name, size), |b| {
            b.iter(|| {
                i = (i + 1) % deliveries.len();
                let mut request = Request::post("/webhooks")
                    .body(Full::new(body.clone()))
                    .unwrap();
                *request.headers_mut() = deliveries[i].clone();
                let response = rt.block_on(service.clone().oneshot(request)).unwrap();
                assert!(response.headers().get("webhook-guard-duplicate").is_none());
                black_box(response)
            })
        });
    }
    group.finish();
}

#[cfg(feature = "redis")]
fn redis(c: &mut Criterion) {
    use webhook_guard::replay::{RedisGuard, ReplayGuard};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let prefix = format!("wg_bench_{}:", std::process::id());
    let guard = rt.block_on(async {
        RedisGuard::open("redis://127.0.0.1:6379/")
            .unwrap()
            .prefix(&prefix)
    });
    let mut group = c.benchmark_group("replay/redis");
    let mut n = 0;
    group.bench_function("bare SET NX PX", |b| {
        let mut connection = guard.connection().clone();
        b.iter(|| {
            n += 1;
            let k = format!("{prefix}bare:{}", key(n).to_hex());
            rt.block_on(async {
                let set: Option<String> = redis::cmd("SET")
                    .arg(&k)
                    .arg("p")
                    .arg("NX")
                    .arg("PX")
                    .arg(60_000)
                    .query_async(&mut connection)
                    .await
                    .unwrap();
                black_box(set)
            })
        })
    });
    group.bench_function("guard reserve", |b| {
        b.iter(|| {
            n += 1;
            black_box(
                rt.block_on(guard.reserve(&key(n), Duration::from_secs(60)))
                    .unwrap(),
            )
        })
    });
    group.finish();
    rt.block_on(async {
        let mut connection = guard.connection().clone();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut connection)
            .await
            .unwrap_or_default();
        for chunk in keys.chunks(1000) {
            let _: Result<(), _> = redis::cmd("DEL")
                .arg(chunk)
                .query_async(&mut connection)
                .await;
        }
    });
}

#[cfg(feature = "postgres")]
fn postgres(c: &mut Criterion) {
    use webhook_guard::replay::{PostgresGuard, ReplayGuard};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = "host=127.0.0.1 port=5432 user=postgres";
    let db = format!("wg_test_bench_{}", std::process::id());
    let admin = |sql: String| {
        rt.block_on(async move {
            let (client, connection) = tokio_postgres::connect(
                &format!("{server} dbname=postgres"),
                tokio_postgres::NoTls,
            )
            .await
            .unwrap();
            let task = tokio::spawn(connection);
            client.batch_execute(&sql).await.unwrap();
            drop(client);
            let _ = task.await;
        })
    };
    admin(format!("CREATE DATABASE {db}"));
    let guard = rt
        .block_on(PostgresGuard::connect(&format!("{server} dbname={db}")))
        .unwrap();
    let bare = rt.block_on(async {
        let client = guard.client().await.unwrap();
        client
            .batch_execute("CREATE TABLE bare (key bytea PRIMARY KEY, expires_at timestamptz NOT NULL)")
            .await
            .unwrap();
        client
            .prepare("INSERT INTO bare (key, expires_at) VALUES ($1, now() + interval '60 seconds') ON CONFLICT DO NOTHING")
            .await
            .unwrap()
    });
    let mut group = c.benchmark_group("replay/postgres");
    let mut n = 0;
    group.bench_function("bare INSERT ON CONFLICT DO NOTHING", |b| {
        b.iter(|| {
            n += 1;
            let k = key(n);
            rt.block_on(async {
                let client = guard.client().await.unwrap();
                black_box(client.execute(&bare, &[&&k.as_bytes()[..]]).await.unwrap())
            })
        })
    });
    group.bench_function("guard reserve", |b| {
        b.iter(|| {
            n += 1;
            black_box(
                rt.block_on(guard.reserve(&key(n), Duration::from_secs(60)))
                    .unwrap(),
            )
        })
    });
    group.finish();
    drop(guard);
    admin(format!("DROP DATABASE {db} WITH (FORCE)"));
}

#[cfg(not(feature = "redis"))]
fn redis(_: &mut Criterion) {}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &mut Criterion) {}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = memory, layer, redis, postgres
}
criterion_main!(benches);

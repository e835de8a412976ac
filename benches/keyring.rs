//! What do more live keys cost? Verify with 1, 2 and 8 keys where the current key matches, the
//! oldest grace key matches, or none does; and verify latency while another thread rotates.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use webhook_guard::Secret;

mod common;

fn live_keys(c: &mut Criterion) {
    let body = common::body(1024);
    let headers = common::headers("standard", &body);
    let forged = common::headers("standard", b"another body");
    let now = common::now();
    let mut group = c.benchmark_group("keyring/standard-1KiB");
    for keys in [1usize, 2, 8] {
        let current = common::verifier("standard", keys, true);
        group.bench_function(BenchmarkId::new("current-matches", keys), |b| {
            b.iter(|| black_box(current.verify_at(&headers, &body, now).unwrap()))
        });
        if keys > 1 {
            let oldest = common::verifier("standard", keys, false);
            group.bench_function(BenchmarkId::new("oldest-grace-matches", keys), |b| {
                b.iter(|| black_box(oldest.verify_at(&headers, &body, now).unwrap()))
            });
        }
        group.bench_function(BenchmarkId::new("none-matches", keys), |b| {
            b.iter(|| black_box(current.verify_at(&forged, &body, now).unwrap_err()))
        });
    }
    group.finish();
}

fn while_rotating(c: &mut Criterion) {
    let body = common::body(1024);
    let headers = common::headers("standard", &body);
    let verifier = common::verifier("standard", 1, true);
    let keyring = verifier.keyring().clone();
    let stop = AtomicBool::new(false);
    let now = common::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            // Keep the matching secret live: add it back as a grace key every rotation.
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let _ =
                    keyring.rotate(Secret::from_bytes(format!("r{i}")).unwrap(), Duration::ZERO);
                let _ = keyring.add_grace_key(common::secret(), now + chrono::Duration::hours(1));
            }
        });
        c.bench_function("keyring/standard-1KiB/while-rotating", |b| {
            b.iter(|| black_box(verifier.verify_at(&headers, &body, now).is_ok()))
        });
        stop.store(true, Ordering::Relaxed);
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = live_keys, while_rotating
}
criterion_main!(benches);

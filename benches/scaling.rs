//! Does verification scale across cores? Deliveries per second with 1 and 2 threads sharing
//! one verifier and keyring (no shared lock on the hot path).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

mod common;

fn threads(c: &mut Criterion) {
    let body = common::body(1024);
    let headers = common::headers("standard", &body);
    let verifier = common::verifier("standard", 2, true);
    let now = common::now();
    let mut group = c.benchmark_group("scaling/standard-1KiB");
    // One "element" is a batch of 1000 deliveries per thread.
    for n in [1usize, 2] {
        group.throughput(Throughput::Elements((1000 * n) as u64));
        group.bench_function(BenchmarkId::new("threads", n), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..n {
                        s.spawn(|| {
                            for _ in 0..iters * 1000 {
                                black_box(verifier.verify_at(&headers, &body, now).unwrap());
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3)).sample_size(20);
    targets = threads
}
criterion_main!(benches);

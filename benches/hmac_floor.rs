//! How close is `Verifier::verify` to the floor, a raw pre-keyed HMAC-SHA256 over the same
//! bytes (clone the keyed state, update, finalize), for each scheme and body size?

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::hint::black_box;

mod common;

fn floor_vs_verify(c: &mut Criterion) {
    let keyed = Hmac::<Sha256>::new_from_slice(b"0123456789abcdef0123456789abcdef").unwrap();
    for (name, _) in common::schemes() {
        let mut group = c.benchmark_group(format!("hmac_floor/{name}"));
        for size in common::SIZES {
            let body = common::body(size);
            let headers = common::headers(name, &body);
            let (before, after) = common::prefix(name, &headers);
            let verifier = common::verifier(name, 1, true);
            let now = common::now();
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(BenchmarkId::new("floor", size), &body, |b, body| {
                b.iter(|| {
                    let mut mac = keyed.clone();
                    mac.update(&before);
                    mac.update(black_box(body));
                    mac.update(&after);
                    black_box(mac.finalize().into_bytes())
                })
            });
            group.bench_with_input(BenchmarkId::new("verify", size), &body, |b, body| {
                b.iter(|| {
                    black_box(
                        verifier
                            .verify_at(black_box(&headers), black_box(body), now)
                            .unwrap(),
                    )
                })
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = floor_vs_verify
}
criterion_main!(benches);

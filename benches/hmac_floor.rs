//! How close is `Verifier::verify` to the floor, a raw pre-keyed HMAC-SHA256 over the same
//! bytes (clone the keyed state, update, finalize), for each scheme and body size? For GitHub
//! also a hand-written single-purpose check (`handwritten`): what reading one header from an
//! `http::HeaderMap` plus the MAC costs at the least, the bound for any `HeaderMap` verifier.

use arc_swap::ArcSwap;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderName};
use sha2::Sha256;
use std::hint::black_box;
use subtle::ConstantTimeEq;

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
            if name == "github" {
                let keys = ArcSwap::from_pointee(vec![keyed.clone()]);
                group.bench_with_input(BenchmarkId::new("handwritten", size), &body, |b, body| {
                    b.iter(|| assert!(handwritten(black_box(&headers), black_box(body), &keys)))
                });
            }
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

/// GitHub's check and nothing else: one pass over the headers (refusing a duplicate), `to_str`,
/// hex decode, a key snapshot, the MAC per key and a constant-time compare; no roles, no
/// `Verified`, no error detail, no other scheme.
#[inline(never)]
fn handwritten(map: &HeaderMap, body: &[u8], keys: &ArcSwap<Vec<Hmac<Sha256>>>) -> bool {
    const SIGNATURE: HeaderName = HeaderName::from_static("x-hub-signature-256");
    let (mut found, mut repeated) = (None, false);
    for (name, value) in map {
        if name == SIGNATURE {
            repeated |= found.replace(value).is_some();
        }
    }
    let text = match (found.map(|v| v.to_str()), repeated) {
        (Some(Ok(text)), false) => text.trim_ascii(),
        _ => return false,
    };
    let mut signature = [0u8; 32];
    let hex = text.strip_prefix("sha256=").unwrap_or_default();
    if hex.len() != 64 || const_hex::decode_to_slice(hex, &mut signature).is_err() {
        return false;
    }
    keys.load().iter().any(|keyed| {
        let mut mac = keyed.clone();
        mac.update(body);
        let tag = mac.finalize().into_bytes();
        let diff = signature
            .chunks_exact(8)
            .zip(tag.chunks_exact(8))
            .fold(0u64, |diff, (a, b)| {
                let word = |x: &[u8]| u64::from_ne_bytes(x.try_into().unwrap_or_default());
                diff | (word(a) ^ word(b))
            });
        bool::from(diff.ct_eq(&0))
    })
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = floor_vs_verify
}
criterion_main!(benches);

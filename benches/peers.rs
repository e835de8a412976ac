//! The same deliveries verified by this crate and by the published Rust verifiers, per body size.
//!
//! * `peers/standard`: Standard Webhooks: `webhook-guard`, `webhook-verify` 0.1, `svix` 2.9
//!   (`svix::webhooks::Webhook::verify`), `standardwebhooks` 1.0.1, and the RustCrypto
//!   pre-keyed HMAC floor over the same bytes.
//! * `peers/stripe`: Stripe: `webhook-guard`, `webhook-verify`, floor.
//! * `peers/github`: GitHub (`X-Hub-Signature-256`, a MAC over the body only): `webhook-guard`,
//!   `webhook-verify`, and pre-keyed body MACs with `ring::hmac`, `aws_lc_rs::hmac` and RustCrypto
//!   `Hmac<Sha256>` (each checking the decoded tag with its own `verify`).
//!
//! Every contender gets the same secret, body and headers (the signature headers among the nine
//! of a typical proxied request, `common::with_usual_headers`), and each is asserted to accept
//! the delivery once before it is measured.
//!
//! `standardwebhooks` and `svix` check the timestamp against the system clock with no way to
//! inject one, so
//! the Standard Webhooks deliveries are signed at the real current time (per body size, just
//! before they are measured); `webhook-guard` is given that instant with `verify_at` and
//! `webhook-verify` reads the system clock. Stripe and GitHub deliveries are signed at
//! `common::NOW` and both verifiers are given that instant.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha2::Sha256;
use std::hint::black_box;
use webhook_guard::Signer;

mod common;

const RAW_KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const MSG_ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";

/// `webhook-verify` clock fixed at [`common::NOW`].
struct FixedClock;
impl webhook_verify::Clock for FixedClock {
    fn now(&self) -> u64 {
        common::NOW as u64
    }
}

/// `webhook-verify` (without its `http` feature) reads headers from a list of pairs.
fn pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect()
}

fn whsec() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(RAW_KEY)
    )
}

/// The tag the floor contenders check: HMAC-SHA256 over `before ‖ body ‖ after`.
fn tag(before: &[u8], body: &[u8], after: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(RAW_KEY).unwrap();
    mac.update(before);
    mac.update(body);
    mac.update(after);
    mac.finalize().into_bytes().to_vec()
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

fn standard(c: &mut Criterion) {
    let keyed = Hmac::<Sha256>::new_from_slice(RAW_KEY).unwrap();
    let sw = standardwebhooks::Webhook::new(&whsec()).unwrap();
    let svix = svix::webhooks::Webhook::new(&whsec()).unwrap();
    let wv_secret = webhook_verify::Secret::new(whsec());
    let wv_options = webhook_verify::VerifyOptions::default();
    let verifier = common::verifier("standard", 1, true);
    let mut group = c.benchmark_group("peers/standard");
    for size in common::SIZES {
        let body = common::body(size);
        // Signed now (second precision) so that `standardwebhooks`' system-clock check passes.
        let now: DateTime<Utc> = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
        let headers = common::with_usual_headers(
            Signer::new(common::scheme("standard"), common::secret())
                .sign_at(&body, MSG_ID, now)
                .unwrap(),
        );
        let list = pairs(&headers);
        let (before, after) = common::prefix("standard", &headers);
        let expected = tag(&before, &body, &after);

        // Every contender accepts this delivery.
        verifier.verify_at(&headers, &body, now).unwrap();
        webhook_verify::verify(
            webhook_verify::Provider::StandardWebhooks,
            &list,
            &body,
            &wv_secret,
            wv_options.clone(),
        )
        .unwrap();
        sw.verify(&body, &headers).unwrap();
        svix.verify(&body, &headers).unwrap();
        {
            let mut mac = keyed.clone();
            mac.update(&before);
            mac.update(&body);
            mac.update(&after);
            mac.verify_slice(&expected).unwrap();
        }

        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("floor", size), &body, |b, body| {
            b.iter(|| {
                let mut mac = keyed.clone();
                mac.update(&before);
                mac.update(black_box(body));
                mac.update(&after);
                black_box(mac.verify_slice(black_box(&expected)).is_ok())
            })
        });
        group.bench_with_input(BenchmarkId::new("webhook-guard", size), &body, |b, body| {
            b.iter(|| {
                black_box(
                    verifier
                        .verify_at(black_box(&headers), black_box(body), now)
                        .unwrap(),
                )
            })
        });
        group.bench_with_input(
            BenchmarkId::new("webhook-verify", size),
            &body,
            |b, body| {
                b.iter(|| {
                    black_box(webhook_verify::verify(
                        webhook_verify::Provider::StandardWebhooks,
                        black_box(&list),
                        black_box(body),
                        &wv_secret,
                        wv_options.clone(),
                    ))
                    .unwrap()
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("svix", size), &body, |b, body| {
            b.iter(|| black_box(svix.verify(black_box(body), black_box(&headers))).unwrap())
        });
        group.bench_with_input(
            BenchmarkId::new("standardwebhooks", size),
            &body,
            |b, body| {
                b.iter(|| black_box(sw.verify(black_box(body), black_box(&headers))).unwrap())
            },
        );
    }
    group.finish();
}

fn stripe(c: &mut Criterion) {
    let keyed = Hmac::<Sha256>::new_from_slice(RAW_KEY).unwrap();
    let wv_secret = webhook_verify::Secret::new(std::str::from_utf8(RAW_KEY).unwrap());
    let wv_options =
        webhook_verify::VerifyOptions::default().with_clock(Some(Arc::new(FixedClock)));
    let verifier = common::verifier("stripe", 1, true);
    let now = common::now();
    let mut group = c.benchmark_group("peers/stripe");
    for size in common::SIZES {
        let body = common::body(size);
        let headers = common::headers("stripe", &body);
        let list = pairs(&headers);
        let (before, after) = common::prefix("stripe", &headers);
        let expected = tag(&before, &body, &after);

        verifier.verify_at(&headers, &body, now).unwrap();
        webhook_verify::verify(
            webhook_verify::Provider::Stripe,
            &list,
            &body,
            &wv_secret,
            wv_options.clone(),
        )
        .unwrap();

        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("floor", size), &body, |b, body| {
            b.iter(|| {
                let mut mac = keyed.clone();
                mac.update(&before);
                mac.update(black_box(body));
                mac.update(&after);
                black_box(mac.verify_slice(black_box(&expected)).is_ok())
            })
        });
        group.bench_with_input(BenchmarkId::new("webhook-guard", size), &body, |b, body| {
            b.iter(|| {
                black_box(
                    verifier
                        .verify_at(black_box(&headers), black_box(body), now)
                        .unwrap(),
                )
            })
        });
        group.bench_with_input(
            BenchmarkId::new("webhook-verify", size),
            &body,
            |b, body| {
                b.iter(|| {
                    black_box(webhook_verify::verify(
                        webhook_verify::Provider::Stripe,
                        black_box(&list),
                        black_box(body),
                        &wv_secret,
                        wv_options.clone(),
                    ))
                    .unwrap()
                })
            },
        );
    }
    group.finish();
}

fn github(c: &mut Criterion) {
    let keyed = Hmac::<Sha256>::new_from_slice(RAW_KEY).unwrap();
    let ring_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, RAW_KEY);
    let aws_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, RAW_KEY);
    let wv_secret = webhook_verify::Secret::new(std::str::from_utf8(RAW_KEY).unwrap());
    let wv_options = webhook_verify::VerifyOptions::default();
    let verifier = common::verifier("github", 1, true);
    let now = common::now();
    let mut group = c.benchmark_group("peers/github");
    for size in common::SIZES {
        let body = common::body(size);
        let headers = common::headers("github", &body);
        let list = pairs(&headers);
        // The tag the header carries, decoded once: the MAC-only contenders check it.
        let header = headers["x-hub-signature-256"].to_str().unwrap();
        let expected = hex::decode(header.strip_prefix("sha256=").unwrap()).unwrap();
        assert_eq!(expected, tag(b"", &body, b""));

        verifier.verify_at(&headers, &body, now).unwrap();
        webhook_verify::verify(
            webhook_verify::Provider::GitHub,
            &list,
            &body,
            &wv_secret,
            wv_options.clone(),
        )
        .unwrap();
        ring::hmac::verify(&ring_key, &body, &expected).unwrap();
        aws_lc_rs::hmac::verify(&aws_key, &body, &expected).unwrap();
        {
            let mut mac = keyed.clone();
            mac.update(&body);
            mac.verify_slice(&expected).unwrap();
        }

        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("floor", size), &body, |b, body| {
            b.iter(|| {
                let mut mac = keyed.clone();
                mac.update(black_box(body));
                black_box(mac.verify_slice(black_box(&expected)).is_ok())
            })
        });
        group.bench_with_input(BenchmarkId::new("ring", size), &body, |b, body| {
            b.iter(|| {
                black_box(
                    ring::hmac::verify(&ring_key, black_box(body), black_box(&expected)).is_ok(),
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("aws-lc-rs", size), &body, |b, body| {
            b.iter(|| {
                black_box(
                    aws_lc_rs::hmac::verify(&aws_key, black_box(body), black_box(&expected))
                        .is_ok(),
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("webhook-guard", size), &body, |b, body| {
            b.iter(|| {
                black_box(
                    verifier
                        .verify_at(black_box(&headers), black_box(body), now)
                        .unwrap(),
                )
            })
        });
        group.bench_with_input(
            BenchmarkId::new("webhook-verify", size),
            &body,
            |b, body| {
                b.iter(|| {
                    black_box(webhook_verify::verify(
                        webhook_verify::Provider::GitHub,
                        black_box(&list),
                        black_box(body),
                        &wv_secret,
                        wv_options.clone(),
                    ))
                    .unwrap()
                })
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = standard, stripe, github
}
criterion_main!(benches);

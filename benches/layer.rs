//! What does the layer cost beyond the MAC? A trivial inner service called directly vs through
//! `WebhookLayer` with `oneshot`, and a bare `verify` of the same delivery for reference.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::{Request, Response};
use http_body_util::Full;
use std::hint::black_box;
use tower::{service_fn, Layer, ServiceExt};
use webhook_guard::middleware::WebhookLayer;

mod common;

fn layer_overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let inner = service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    let mut group = c.benchmark_group("layer/standard");
    for size in [1024usize, 64 * 1024, 1024 * 1024] {
        let body = Bytes::from(common::body(size));
        let headers = common::headers("standard", &body);
        let verifier = common::verifier("standard", 1, true);
        let service = WebhookLayer::new(verifier.clone()).layer(inner);
        let request = || {
            let mut r = Request::post("/webhooks")
                .body(Full::new(body.clone()))
                .unwrap();
            *r.headers_mut() = headers.clone();
            r
        };
        group.bench_function(BenchmarkId::new("inner-direct", size), |b| {
            b.iter(|| rt.block_on(async { black_box(inner.oneshot(request()).await.unwrap()) }))
        });
        group.bench_function(BenchmarkId::new("verify-only", size), |b| {
            b.iter(|| black_box(verifier.verify_at(&headers, &body, common::now()).unwrap()))
        });
        group.bench_function(BenchmarkId::new("through-layer", size), |b| {
            b.iter(|| {
                rt.block_on(async { black_box(service.clone().oneshot(request()).await.unwrap()) })
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = layer_overhead
}
criterion_main!(benches);

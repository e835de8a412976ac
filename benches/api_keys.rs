//! What does `ApiKeyLayer` cost per request with 10 000 live API keys? `Credentials::authenticate`
//! alone (a good key, a mistyped key refused by its checksum, Basic with an API secret), and a
//! trivial inner service called directly vs through the layer with `oneshot`.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::Utc;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::{HeaderMap, HeaderValue, Request};
use tower::{service_fn, Layer, ServiceExt};
use webhook_guard::admin::credentials::{
    generate_api_key, generate_client_secret, ApiKeyLayer, ApiKeyRow, Credentials,
};
use webhook_guard::admin::IntegratorId;
use webhook_guard::{Keyring, Secret};

mod common;

const KEYS: usize = 10_000;

fn api_keys(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let credentials = Credentials::new();
    let mut tokens = Vec::new();
    let records: Vec<ApiKeyRow> = (0..KEYS)
        .map(|i| {
            let (id, token, digest) = generate_api_key().unwrap();
            // One integrator per 10 keys.
            let integrator = IntegratorId::new(&format!("int_{:016x}", i / 10));
            tokens.push(token);
            ApiKeyRow::new(id, integrator, digest, Utc::now())
        })
        .collect();
    credentials.insert_api_keys(records);
    let (secret, digest) = generate_client_secret().unwrap();
    let integrator = IntegratorId::random();
    credentials.insert_integrator(
        integrator.clone(),
        Keyring::new(Secret::from_bytes(digest).unwrap()),
    );

    let with_key = |token: &str| {
        let mut headers = common::with_usual_headers(HeaderMap::new());
        headers.insert("x-api-key", HeaderValue::from_str(token).unwrap());
        headers
    };
    let good = with_key(&tokens[KEYS / 2]);
    let mut typo = tokens[KEYS / 3].to_string();
    typo.replace_range(64.., if typo.ends_with('0') { "1" } else { "0" });
    let typo = with_key(&typo);
    let mut basic = common::with_usual_headers(HeaderMap::new());
    let encoded = STANDARD.encode(format!("{integrator}:{}", secret.as_str()));
    basic.insert(
        "authorization",
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
    );

    let mut group = c.benchmark_group("api_keys");
    group.bench_function(BenchmarkId::new("authenticate-key", KEYS), |b| {
        b.iter(|| black_box(credentials.authenticate(black_box(&good)).unwrap()))
    });
    group.bench_function(BenchmarkId::new("authenticate-typo", KEYS), |b| {
        b.iter(|| black_box(credentials.authenticate(black_box(&typo)).unwrap_err()))
    });
    group.bench_function(BenchmarkId::new("authenticate-basic", KEYS), |b| {
        b.iter(|| black_box(credentials.authenticate(black_box(&basic)).unwrap()))
    });

    let inner = service_fn(|_: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::from("ok")))
    });
    let service = ApiKeyLayer::new(credentials.clone()).layer(inner);
    let request = || {
        let mut r = Request::get("/v1/projects").body(Body::empty()).unwrap();
        *r.headers_mut() = good.clone();
        r
    };
    group.bench_function(BenchmarkId::new("inner-direct", KEYS), |b| {
        b.iter(|| rt.block_on(async { black_box(inner.oneshot(request()).await.unwrap()) }))
    });
    group.bench_function(BenchmarkId::new("through-layer", KEYS), |b| {
        b.iter(|| {
            rt.block_on(async { black_box(service.clone().oneshot(request()).await.unwrap()) })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = api_keys
}
criterion_main!(benches);

//! Does admin load raise webhook latency? (Issue 19, item 5.) The review measured a small
//! delivery's p99 going from 0.3 ms to 605 ms while 4 clients listed 10 000 projects, and to
//! 2 686 ms with 32, because one unpaginated 4.96 MB listing ran on the threads that verify
//! webhooks.
//!
//! `admin::app` (the admin API, `POST /webhooks/{projectId}`) on `server::serve` with its
//! default limits, on a 2-worker runtime as `webhook-guard serve` runs on this machine; one
//! integrator with 10 000 GitHub projects in a SQLite store. A legitimate 1 KiB delivery is
//! sent again and again on one keep-alive connection, first alone, then while 32 clients (own
//! connections, own runtime) walk the whole project list page by page (`limit=500`, the
//! largest page, following `nextCursor`) as fast as they are answered.
//!
//! Prints p50 / p99 / max of `ADMIN_LOAD_SAMPLES` deliveries (default 2 000) alone and under
//! load, and the listing pages answered meanwhile; then criterion times one delivery alone and
//! under load (`admin_load/webhook-1KiB/{alone,32-listers}`). `ADMIN_LOAD_LISTERS` changes 32.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use webhook_guard::admin::{app, Admin};
use webhook_guard::scheme::GitHub;
use webhook_guard::server::{serve, Limits};
use webhook_guard::store::crypt::Sealer;
use webhook_guard::store::SqliteStore;
use webhook_guard::{Secret, Signer};

mod common;

const PROJECTS: usize = 10_000;
const PAGE: usize = 500;
const BODY: usize = 1024;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The data directory: memory-backed when the system has it (creating 10 000 projects is 10 000
/// commits; the listing and the webhooks read memory, not the disk).
fn scratch() -> PathBuf {
    let base = PathBuf::from("/dev/shm");
    let base = if base.is_dir() {
        base
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("wg-bench-admin-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

struct Setup {
    addr: SocketAddr,
    /// A signed delivery to the first project, as raw HTTP/1.1.
    delivery: Vec<u8>,
    /// `GET /v1/projects?limit=500` with the API key, without the cursor and the end of head.
    list: String,
    dir: PathBuf,
}

async fn start() -> Setup {
    let dir = scratch();
    let store = SqliteStore::open(dir.join("wg.db"), Sealer::plaintext()).unwrap();
    let admin = Admin::builder()
        .write_rate(u32::MAX, u32::MAX)
        .open(store)
        .unwrap();
    let integrator = admin.create_integrator().unwrap();
    let caller = admin
        .credentials()
        .authenticate_api_key(&integrator.api_key.key)
        .unwrap();
    let first = admin.create_project(&caller, None, "github").unwrap();
    for i in 1..PROJECTS {
        admin
            .create_project(&caller, Some(format!("project {i}")), "github")
            .unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(
        listener,
        app(admin),
        Limits::default(),
        std::future::pending(),
    ));
    let body = vec![b'x'; BODY];
    let secret = Secret::from_bytes(first.signing_secret.as_bytes()).unwrap();
    let signed = Signer::new(GitHub, secret).sign(&body).unwrap();
    let mut delivery = format!(
        "POST /webhooks/{} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {BODY}\r\n",
        first.project.id
    );
    for (name, value) in &signed {
        delivery.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    delivery.push_str("\r\n");
    let mut delivery = delivery.into_bytes();
    delivery.extend_from_slice(&body);
    let list = format!(
        "GET /v1/projects?limit={PAGE}{{cursor}} HTTP/1.1\r\nhost: {addr}\r\nx-api-key: {}\r\n\r\n",
        integrator.api_key.key.as_str()
    );
    Setup {
        addr,
        delivery,
        list,
        dir,
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// One lister: walks every page, then starts over, until `stop`; counts pages answered.
async fn lister(addr: SocketAddr, list: String, stop: Arc<AtomicBool>, pages: Arc<AtomicU64>) {
    let mut stream = connect(addr).await;
    let mut buf = Vec::new();
    let mut cursor = String::new();
    while !stop.load(Ordering::Relaxed) {
        let request = list.replace("{cursor}", &cursor);
        let body_at = common::exchange_ok(&mut stream, request.as_bytes(), &mut buf).await;
        let page: serde_json::Value = serde_json::from_slice(&buf[body_at..]).unwrap();
        pages.fetch_add(1, Ordering::Relaxed);
        cursor = match page["nextCursor"].as_str() {
            Some(next) => format!("&cursor={next}"),
            None => String::new(),
        };
    }
}

struct Load {
    stop: Arc<AtomicBool>,
    pages: Arc<AtomicU64>,
    runtime: Runtime,
}

impl Load {
    fn start(setup: &Setup, listers: usize) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let pages = Arc::new(AtomicU64::new(0));
        for _ in 0..listers {
            runtime.spawn(lister(
                setup.addr,
                setup.list.clone(),
                Arc::clone(&stop),
                Arc::clone(&pages),
            ));
        }
        // Every lister has had its first page before anything is measured.
        while pages.load(Ordering::Relaxed) < listers as u64 {
            std::thread::sleep(Duration::from_millis(10));
        }
        Self {
            stop,
            pages,
            runtime,
        }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.runtime.shutdown_timeout(Duration::from_secs(5));
        self.pages.load(Ordering::Relaxed)
    }
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99), *samples.last().unwrap())
}

fn deliveries(runtime: &Runtime, stream: &mut TcpStream, setup: &Setup, n: usize) -> Vec<Duration> {
    let mut buf = Vec::new();
    (0..n)
        .map(|_| {
            let start = Instant::now();
            runtime.block_on(common::exchange_ok(stream, &setup.delivery, &mut buf));
            start.elapsed()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let samples = env_usize("ADMIN_LOAD_SAMPLES", 2000);
    let listers = env_usize("ADMIN_LOAD_LISTERS", 32);
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let setup = server.block_on(start());
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut stream = client.block_on(connect(setup.addr));
    deliveries(&client, &mut stream, &setup, 200); // warm up

    let (a50, a99, amax) = percentiles(deliveries(&client, &mut stream, &setup, samples));
    let load = Load::start(&setup, listers);
    let started = Instant::now();
    let (l50, l99, lmax) = percentiles(deliveries(&client, &mut stream, &setup, samples));
    let elapsed = started.elapsed();
    let pages = load.stop();
    println!(
        "webhook 1 KiB, {samples} deliveries: alone p50 {a50:?} p99 {a99:?} max {amax:?}; \
         with {listers} clients listing {PROJECTS} projects: p50 {l50:?} p99 {l99:?} max {lmax:?} \
         ({pages} pages of {PAGE} answered, {:.0}/s); p99 under load / alone {:.2}x",
        pages as f64 / elapsed.as_secs_f64(),
        l99.as_secs_f64() / a99.as_secs_f64()
    );

    let mut group = c.benchmark_group("admin_load/webhook-1KiB");
    let mut buf = Vec::new();
    group.bench_function("alone", |b| {
        b.iter(|| client.block_on(common::exchange_ok(&mut stream, &setup.delivery, &mut buf)))
    });
    let load = Load::start(&setup, listers);
    group.bench_function(format!("{listers}-listers"), |b| {
        b.iter(|| client.block_on(common::exchange_ok(&mut stream, &setup.delivery, &mut buf)))
    });
    load.stop();
    group.finish();
    let _ = std::fs::remove_dir_all(&setup.dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);

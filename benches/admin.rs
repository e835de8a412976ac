//! Does a regeneration over HTTP cost more than the disk's own commit?
//!
//! `regenerate` end to end (HTTP/1.1 keep-alive on loopback → ApiKeyLayer → route → SQLite
//! transaction with its audit row, `synchronous=FULL` → keyring swap → JSON answer), side by
//! side with a raw rusqlite `INSERT` + `COMMIT` of one row in WAL mode with `synchronous=FULL`
//! on the same disk. Target: p50 and p99 of regenerate ≤ 1.5× the raw commit's.
//!
//! Before criterion's medians it prints p50/p99 of 1 000 sequential calls of each.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use tokio::net::TcpStream;
use webhook_guard::admin::{router, Admin};
use webhook_guard::store::crypt::{MasterKeyId, MasterKeys, Sealer};
use webhook_guard::store::SqliteStore;

mod common;

const SAMPLES: usize = 1000;

/// A directory next to the build (the disk a data directory would be on), removed first.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench-admin")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Raw {
    conn: rusqlite::Connection,
    row: Vec<u8>,
}

impl Raw {
    fn new() -> Self {
        let conn = rusqlite::Connection::open(scratch("raw").join("raw.db")).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
            .unwrap();
        Self {
            conn,
            row: vec![7u8; 200],
        }
    }

    fn insert_commit(&mut self) {
        let tx = self.conn.transaction().unwrap();
        tx.execute("INSERT INTO t (v) VALUES (?1)", [&self.row])
            .unwrap();
        tx.commit().unwrap();
    }
}

struct Server {
    addr: SocketAddr,
    request: Vec<u8>,
    /// The same regeneration as a library call, without HTTP.
    call: Box<dyn Fn() + Send + Sync>,
}

impl Server {
    async fn start() -> Self {
        let (keys, _) = MasterKeys::generate(MasterKeyId::new("bench").unwrap()).unwrap();
        let store =
            SqliteStore::open(scratch("server").join("wg.db"), Sealer::encrypting(keys)).unwrap();
        // The default cap of 8 live keys would stop a long loop with grace; grace 0 keeps one.
        let admin = Admin::builder().open(store).unwrap();
        let integrator = admin.create_integrator().unwrap();
        let caller = admin
            .credentials()
            .authenticate_api_key(&integrator.api_key.key)
            .unwrap();
        let project = admin
            .create_project(&caller, None, "github")
            .unwrap()
            .project
            .id;
        let call = {
            let (admin, project) = (admin.clone(), project.clone());
            Box::new(move || {
                admin
                    .regenerate_project_secret(&caller, &project, Duration::ZERO)
                    .unwrap();
            })
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(admin)).await });
        let request = format!(
            "POST /v1/external-support/{project}/secret/regenerate HTTP/1.1\r\nhost: {addr}\r\n\
             x-api-key: {}\r\ncontent-length: 0\r\n\r\n",
            integrator.api_key.key.as_str()
        )
        .into_bytes();
        Self {
            addr,
            request,
            call,
        }
    }
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99))
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(Server::start());
    let mut stream = runtime.block_on(async {
        let stream = TcpStream::connect(server.addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    });
    let mut buf = Vec::new();
    let mut raw = Raw::new();

    // Percentiles, interleaved so both see the same disk conditions.
    let (mut http, mut call, mut commit) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..SAMPLES {
        let start = Instant::now();
        runtime.block_on(common::exchange_ok(&mut stream, &server.request, &mut buf));
        http.push(start.elapsed());
        let start = Instant::now();
        (server.call)();
        call.push(start.elapsed());
        let start = Instant::now();
        raw.insert_commit();
        commit.push(start.elapsed());
    }
    let (h50, h99) = percentiles(http);
    let (c50, c99) = percentiles(call);
    let (r50, r99) = percentiles(commit);
    println!(
        "regenerate over HTTP: p50 {h50:?} p99 {h99:?}; as a library call: p50 {c50:?} p99 {c99:?}; \
         raw insert+commit: p50 {r50:?} p99 {r99:?}; HTTP / raw: p50 {:.2}x p99 {:.2}x",
        h50.as_secs_f64() / r50.as_secs_f64(),
        h99.as_secs_f64() / r99.as_secs_f64()
    );

    let mut group = c.benchmark_group("durable_change");
    group.sample_size(50);
    group.bench_function("rusqlite_insert_commit", |b| b.iter(|| raw.insert_commit()));
    group.bench_function("regenerate_call", |b| b.iter(|| (server.call)()));
    let health = format!("GET /healthz HTTP/1.1\r\nhost: {}\r\n\r\n", server.addr).into_bytes();
    group.bench_function("healthz_over_http", |b| {
        b.iter(|| runtime.block_on(common::exchange_ok(&mut stream, &health, &mut buf)))
    });
    group.bench_function("regenerate_over_http", |b| {
        b.iter(|| runtime.block_on(common::exchange_ok(&mut stream, &server.request, &mut buf)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! How long until another instance applies a change, and what a regeneration over PostgreSQL
//! costs beside the database's own commit.
//!
//! Two `Admin`s (A and B) on one fresh PostgreSQL database (created and dropped by the run), each
//! with its own pool and change-feed listener, as two `webhook-guard serve --database-url`
//! processes would be:
//!
//! 1. propagation with notifications: N regenerations without grace on A; the time from A's
//!    answer until B refuses the old secret and accepts the new one (B polled every 100 µs);
//! 2. propagation with B's listener killed (`pg_terminate_backend`) just before each
//!    regeneration: B learns it by reconnecting and reloading, or by its 500 ms poll;
//! 3. one regeneration on A (version check, advisory lock, sealing, the audit row, `pg_notify`,
//!    commit, keyring swap), over HTTP/1.1 keep-alive on loopback (`POST
//!    …/secret/regenerate`, as `serve --database-url` answers it) and as a library call, vs a
//!    bare `INSERT` + `COMMIT` of one row on its own connection, interleaved, in the same run.
//!
//! 4. startup: a third instance opening the database once it holds `PROPAGATION_PROJECTS`
//!    projects (default 10 000): the time `PostgresStore::connect` + `AdminBuilder::open` take,
//!    and the resident memory the process grew by.
//!
//! Needs PostgreSQL at 127.0.0.1:5432 (user `postgres`, trust; `WG_TEST_POSTGRES` overrides).
//! `PROPAGATION_N` (default 200) and `PROPAGATION_KILLED_N` (default 20) set the counts;
//! `PROPAGATION_NO_FEED=1` stops both listeners before part 3.

#[path = "../tests/pg_support/mod.rs"]
mod pg_support;

mod common;

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use pg_support::TestDb;
use webhook_guard::admin::credentials::Caller;
use webhook_guard::admin::Admin;
use webhook_guard::scheme::GitHub;
use webhook_guard::store::crypt::Sealer;
use webhook_guard::store::feed::{FeedOptions, Listener, LISTENER_APPLICATION_NAME};
use webhook_guard::store::{PostgresOptions, PostgresStore};
use webhook_guard::{Secret, Signer};

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn instance(db: &TestDb) -> (Admin, Listener) {
    let store =
        PostgresStore::connect(&db.url(), Sealer::plaintext(), PostgresOptions::default()).unwrap();
    let source = store.feed();
    let admin = Admin::builder()
        .write_rate(1_000_000, 1_000_000)
        .open(store)
        .unwrap();
    let listener = admin.follow(source, FeedOptions::default());
    let started = Instant::now();
    while !listener.is_connected() {
        assert!(started.elapsed() < Duration::from_secs(10), "listener");
        std::thread::sleep(Duration::from_millis(5));
    }
    (admin, listener)
}

fn accepts(admin: &Admin, project: &str, secret: &str) -> bool {
    let body = br#"{"action":"opened"}"#;
    let headers = Signer::new(GitHub, Secret::from_bytes(secret).unwrap())
        .sign(body)
        .unwrap();
    admin
        .projects()
        .get(project)
        .is_some_and(|verifier| verifier.verify(&headers, body).is_ok())
}

/// Waits until B has applied the regeneration from `old` to `new`; how long it took.
fn until_applied(b: &Admin, project: &str, old: &str, new: &str) -> Duration {
    let started = Instant::now();
    while accepts(b, project, old) || !accepts(b, project, new) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "B never applied it"
        );
        std::thread::sleep(Duration::from_micros(100));
    }
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let (p50, p99, max) = (
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples[samples.len() - 1],
    );
    println!(
        "{name:<44} n={:<4} p50 {:>9.3} ms   p99 {:>9.3} ms   max {:>9.3} ms",
        samples.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
    );
    p50
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let db = TestDb::new();
    let (a, a_listener) = instance(&db);
    let (b, b_listener) = instance(&db);
    let who = a.create_integrator().unwrap();
    let caller: Caller = a
        .credentials()
        .authenticate_api_key(&who.api_key.key)
        .unwrap();
    let created = a.create_project(&caller, None, "github").unwrap();
    let project = created.project.id.clone();
    let mut secret = created.signing_secret.to_string();
    until_applied(&b, project.as_str(), "never a secret", &secret);

    // The old secret; `secret` becomes the new one.
    let regenerate = |secret: &mut String| -> String {
        std::mem::replace(
            secret,
            a.regenerate_project_secret(&caller, &project, Duration::ZERO)
                .unwrap()
                .secret
                .to_string(),
        )
    };

    let n = count("PROPAGATION_N", 200);
    let mut notified = Vec::with_capacity(n);
    for _ in 0..n {
        let old = regenerate(&mut secret);
        notified.push(until_applied(&b, project.as_str(), &old, &secret));
    }
    let killed_n = count("PROPAGATION_KILLED_N", 20);
    let mut killed = Vec::with_capacity(killed_n);
    for _ in 0..killed_n {
        db.admin(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = '{}' AND application_name = '{LISTENER_APPLICATION_NAME}'",
            db.name
        ));
        let old = regenerate(&mut secret);
        killed.push(until_applied(&b, project.as_str(), &old, &secret));
        // Both listeners back before the next round.
        std::thread::sleep(Duration::from_millis(600));
    }

    // `PROPAGATION_NO_FEED=1`: without the listeners (and the reloads each change sets off on
    // both instances), what the write itself costs.
    if std::env::var_os("PROPAGATION_NO_FEED").is_some() {
        drop((a_listener, b_listener));
        std::thread::sleep(Duration::from_millis(100));
    }
    // Regeneration vs the database's own commit, interleaved.
    db.run("CREATE TABLE bare (id bigserial PRIMARY KEY, body text NOT NULL)");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bare = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    });
    let insert = runtime
        .block_on(bare.prepare("INSERT INTO bare (body) VALUES ($1)"))
        .unwrap();
    // A's HTTP API, as `serve` runs it.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut stream = server.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(axum::serve(listener, webhook_guard::admin::router(a.clone())).into_future());
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    });
    let request = format!(
        "POST /v1/external-support/{project}/secret/regenerate HTTP/1.1\r\nhost: a\r\n\
         x-api-key: {}\r\ncontent-length: 0\r\n\r\n",
        who.api_key.key.as_str()
    )
    .into_bytes();
    // The same exchange without a write: what HTTP, authentication and the blocking pool cost.
    let read = format!(
        "GET /v1/projects/{project} HTTP/1.1\r\nhost: a\r\nx-api-key: {}\r\n\r\n",
        who.api_key.key.as_str()
    )
    .into_bytes();
    let mut buf = Vec::new();
    let rounds = 2 * n;
    let (mut regenerations, mut commits, mut http) = (Vec::new(), Vec::new(), Vec::new());
    let mut reads = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        server.block_on(common::exchange_ok(&mut stream, &read, &mut buf));
        reads.push(started.elapsed());
        let started = Instant::now();
        server.block_on(common::exchange_ok(&mut stream, &request, &mut buf));
        http.push(started.elapsed());
        let started = Instant::now();
        regenerate(&mut secret);
        regenerations.push(started.elapsed());
        let started = Instant::now();
        runtime
            .block_on(bare.execute(&insert, &[&"a row of about the audit row's size"]))
            .unwrap();
        commits.push(started.elapsed());
    }

    println!("propagation A → B (B applies the regeneration A answered)");
    report("with notifications", notified);
    report("listener killed before each regeneration", killed);
    println!("cost of one regeneration on A vs a bare INSERT + COMMIT");
    let h = report("POST …/secret/regenerate over HTTP/1.1", http);
    let r = report("regenerate_project_secret (library call)", regenerations);
    let c = report("bare INSERT + COMMIT (autocommit)", commits);
    report("GET /v1/projects/{id} over HTTP/1.1 (no write)", reads);
    println!(
        "ratio of medians: HTTP {:.2}, library call {:.2}",
        h.as_secs_f64() / c.as_secs_f64(),
        r.as_secs_f64() / c.as_secs_f64()
    );
    drop((bare, stream));
    drop(server);
    drop(runtime);

    // Startup with many projects.
    let projects = count("PROPAGATION_PROJECTS", 10_000);
    let started = Instant::now();
    for i in 1..projects {
        a.create_project(&caller, Some(format!("project {i}")), "github")
            .unwrap();
    }
    println!(
        "startup: {projects} projects created in {:.1} s ({:.0} creations/s on one writer)",
        started.elapsed().as_secs_f64(),
        (projects - 1) as f64 / started.elapsed().as_secs_f64()
    );
    let before = resident_bytes();
    let started = Instant::now();
    let store =
        PostgresStore::connect(&db.url(), Sealer::plaintext(), PostgresOptions::default()).unwrap();
    let c = Admin::builder().open(store).unwrap();
    let took = started.elapsed();
    let grew = resident_bytes().saturating_sub(before);
    assert!(c.projects().get(project.as_str()).is_some());
    println!(
        "startup: an instance opened the database with {projects} projects in {:.0} ms; resident \
         memory grew by {:.1} MB ({:.0} bytes per project)",
        took.as_secs_f64() * 1e3,
        grew as f64 / 1e6,
        grew as f64 / projects as f64
    );
}

/// The process's resident set, from `/proc/self/statm` (0 where there is none).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

//! TLS to PostgreSQL (issue 21): with `sslmode=require` the store, the change feed and the
//! replay guard connect over TLS, the server's certificate verified against the roots given and
//! its name against the host; an untrusted certificate or another name connects nothing; without
//! `sslmode=require` no TLS is used, as before.
//!
//! The test server is the one every machine of the project runs (127.0.0.1:5432), whose
//! certificate (Debian's `ssl-cert-snakeoil`, `ssl = on` by default) names `localhost`: the
//! tests read it from the server (`pg_read_file(current_setting('ssl_cert_file'))`) and trust it.
//! Debian also lists that certificate in `/etc/ssl/certs`, which the system's roots are read
//! from: where a test needs it untrusted, it runs `webhook-guard` with `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` naming no certificate, so the roots are only the ones given.

#![cfg(unix)]

mod pg_support;
mod serve_support;

use std::process::{Command, Stdio};

use pg_support::TestDb;
use rustls::pki_types::{pem::PemObject, CertificateDer};
use serve_support::{deliver, http, serving};
use webhook_guard::replay::{GuardError, PostgresGuard};
use webhook_guard::store::crypt::Sealer;
use webhook_guard::store::{PostgresOptions, PostgresStore, Store, StoreError};

const KEY: &str = "a:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The server's certificate, as PEM.
fn server_certificate(db: &TestDb) -> String {
    let on: String = db.admin("SELECT current_setting('ssl')")[0].get(0);
    assert_eq!(
        on, "on",
        "the test PostgreSQL serves without TLS: set ssl = on (Debian's default, with the \
         snakeoil certificate) in postgresql.conf"
    );
    db.admin("SELECT pg_read_file(current_setting('ssl_cert_file'))")[0].get(0)
}

fn certificate(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("a PEM certificate")
}

/// Settings reaching the test server as `host` (the name TLS checks) at 127.0.0.1.
fn conninfo(db: &TestDb, host: &str, sslmode: Option<&str>) -> String {
    let mode = sslmode.map_or(String::new(), |m| format!(" sslmode={m}"));
    format!(
        "host={host} hostaddr=127.0.0.1 port=5432 user=postgres dbname={}{mode}",
        db.name
    )
}

/// The connections to `db` (other than the test's own), and how many of them use TLS.
fn connections(db: &TestDb) -> (i64, i64) {
    let rows = db.admin(&format!(
        "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
         JOIN pg_stat_ssl s USING (pid) WHERE a.datname = '{}' AND a.pid <> pg_backend_pid()",
        db.name
    ));
    (rows[0].get(0), rows[0].get(1))
}

#[test]
fn the_store_connects_over_verified_tls_with_sslmode_require() {
    let db = TestDb::new();
    let cert = certificate(&server_certificate(&db));
    let options = PostgresOptions::default().tls_root(cert);
    let url = conninfo(&db, "localhost", Some("require"));
    let store = PostgresStore::connect(&url, Sealer::plaintext(), options).unwrap();
    store.ping().unwrap();
    let (all, tls) = connections(&db);
    assert!(all >= 1, "the store holds a connection");
    assert_eq!(tls, all, "every connection of the store uses TLS");
}

#[test]
fn a_certificate_for_another_name_connects_nothing() {
    let db = TestDb::new();
    let cert = certificate(&server_certificate(&db));
    // Trusted, but it names localhost, not the address connected to.
    let url = conninfo(&db, "127.0.0.1", Some("require"));
    let options = PostgresOptions::default().tls_root(cert);
    match PostgresStore::connect(&url, Sealer::plaintext(), options) {
        Err(StoreError::Unavailable { reason }) => {
            assert!(reason.contains("certificate"), "{reason}")
        }
        other => panic!("a certificate for another name: {other:?}"),
    }
    // Nothing was created on the way: the schema is written only once connected.
    let tables: i64 =
        db.run("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0].get(0);
    assert_eq!(tables, 0);
}

#[test]
fn without_sslmode_require_no_tls_is_used_though_the_server_offers_it() {
    let db = TestDb::new();
    server_certificate(&db);
    for mode in [None, Some("prefer"), Some("disable")] {
        let url = conninfo(&db, "localhost", mode);
        let store =
            PostgresStore::connect(&url, Sealer::plaintext(), PostgresOptions::default()).unwrap();
        store.ping().unwrap();
        let (all, tls) = connections(&db);
        assert!(all >= 1);
        assert_eq!(tls, 0, "sslmode {mode:?}: no TLS");
        drop(store);
        db.admin(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' \
             AND pid <> pg_backend_pid()",
            db.name
        ));
    }
}

#[tokio::test]
async fn the_replay_guard_connects_over_verified_tls_with_sslmode_require() {
    let db = TestDb::new();
    let pem = server_certificate(&db);
    let url = conninfo(&db, "127.0.0.1", Some("require"));
    match PostgresGuard::connect_tls(&url, &[certificate(&pem)]).await {
        Err(GuardError::Unavailable { reason, .. }) => {
            assert!(reason.contains("certificate"), "{reason}")
        }
        other => panic!("a certificate for another name: {other:?}"),
    }
    let url = conninfo(&db, "localhost", Some("require"));
    let guard = PostgresGuard::connect_tls(&url, &[certificate(&pem)])
        .await
        .unwrap();
    guard.clean_up().await.unwrap();
    let (all, tls) = connections(&db);
    assert!(all >= 1);
    assert_eq!(tls, all, "the guard's connection uses TLS");
}

#[test]
fn serve_with_database_ca_file_keeps_every_connection_on_tls() {
    let db = TestDb::new();
    let dir = std::env::temp_dir().join(format!("wg-pg-tls-{}", db.name));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("server.pem");
    std::fs::write(&ca, server_certificate(&db)).unwrap();
    let url = conninfo(&db, "localhost", Some("require"));
    let empty = dir.join("none.pem");
    std::fs::write(&empty, "").unwrap();
    let no_roots = dir.join("roots");
    std::fs::create_dir_all(&no_roots).unwrap();
    let serve = |extra: &[&std::ffi::OsStr]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_webhook-guard"));
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--bootstrap",
                "--database-url",
            ])
            .arg(&url)
            .args(extra)
            .env("RUST_LOG", "warn")
            .env("WEBHOOK_GUARD_MASTER_KEYS", KEY)
            // The system's roots: none.
            .env("SSL_CERT_FILE", &empty)
            .env("SSL_CERT_DIR", &no_roots)
            .env_remove("DATABASE_URL");
        command
    };
    // Without the certificate trusted, it does not start, and says why; the same for the
    // replay guard's database.
    let replay_url = conninfo(&db, "localhost", Some("require"));
    let replay: [&std::ffi::OsStr; 6] = [
        "--database-ca-file".as_ref(),
        ca.as_os_str(),
        "--replay".as_ref(),
        "postgres".as_ref(),
        "--replay-postgres-url".as_ref(),
        replay_url.as_ref(),
    ];
    for (extra, flag) in [
        (&[][..], "--database-url"),
        (&replay[..], "--replay-postgres-url"),
    ] {
        let said = refused(serve(extra));
        assert!(
            said.contains(flag) && said.contains("certificate"),
            "{said}"
        );
    }
    // With them, it serves, the pool, the change feed's listener and the guard all on TLS.
    let ca_flags: [&std::ffi::OsStr; 2] = ["--replay-postgres-ca-file".as_ref(), ca.as_os_str()];
    let child = serve(&[&replay[..], &ca_flags[..]].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = serving(child);
    let project = server.exported("WG_PROJECT").expect("bootstrapped");
    let signing = server.exported("WG_SIGNING_SECRET").expect("bootstrapped");
    assert_eq!(deliver(server.addr, &project, &signing), 200);
    let key = server.exported("WG_API_KEY").expect("bootstrapped");
    let path = format!("/v1/external-support/{project}/secret/regenerate");
    let (status, body) = http(server.addr, "POST", &path, &[("x-api-key", &key)], b"");
    assert_eq!(status, 200, "{body}");
    let (all, tls) = connections(&db);
    assert!(
        all >= 3,
        "a pool connection, the feed's listener, the guard's: {all}"
    );
    assert_eq!(tls, all, "every connection of serve uses TLS");
    let _ = std::fs::remove_dir_all(&dir);
}

/// What `command` (a `serve` expected not to start) printed on stderr; it must exit, failing,
/// within 30 s.
fn refused(mut command: Command) -> String {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("serve started with an untrusted certificate");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut said = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut said).unwrap();
    said
}

//! The PostgreSQL store: the shared store suite on a database of its own per test, and what is
//! its own (migrations recorded once, a typed error when the database cannot be reached).

#![cfg(feature = "postgres")]

mod pg_support;
mod store_suite;

use std::time::Duration;

use pg_support::TestDb;
use store_suite::Backend;
use webhook_guard::store::crypt::Sealer;
use webhook_guard::store::{PostgresOptions, PostgresStore, Store, StoreError, PG_SCHEMA_VERSION};

impl Backend for TestDb {
    type Store = PostgresStore;

    fn open(&self, sealer: Sealer) -> PostgresStore {
        PostgresStore::connect(&self.url(), sealer, PostgresOptions::default()).unwrap()
    }

    fn materials(&self) -> Vec<Vec<u8>> {
        self.run("SELECT material FROM keys")
            .iter()
            .map(|row| row.get(0))
            .collect()
    }

    fn copy_current_key(&self, from: &str, to: &str) {
        self.run(&format!(
            "UPDATE keys SET material = (SELECT material FROM keys WHERE owner = '{from}' AND position = 0)
             WHERE owner = '{to}' AND position = 0"
        ));
    }
}

#[test]
fn every_row_reads_back_to_the_nanosecond() {
    store_suite::every_row_reads_back_to_the_nanosecond(&TestDb::new());
}

#[test]
fn a_change_that_does_not_fit_changes_nothing_and_logs_nothing() {
    store_suite::a_change_that_does_not_fit_changes_nothing_and_logs_nothing(&TestDb::new());
}

#[test]
fn audit_pages_and_filters() {
    store_suite::audit_pages_and_filters(&TestDb::new());
}

#[test]
fn prune_audit_removes_what_retention_selects_and_says_how_many() {
    store_suite::prune_audit_removes_what_retention_selects_and_says_how_many(&TestDb::new());
}

#[test]
fn record_uses_moves_last_used_forward_only() {
    store_suite::record_uses_moves_last_used_forward_only(&TestDb::new());
}

#[test]
fn sealed_secrets_are_not_readable_in_the_table() {
    store_suite::sealed_secrets_are_not_readable_in_the_table(&TestDb::new());
}

#[test]
fn a_secret_moved_to_another_project_fails_to_open() {
    store_suite::a_secret_moved_to_another_project_fails_to_open(&TestDb::new());
}

#[test]
fn migrations_run_once_and_are_recorded() {
    let db = TestDb::new();
    let first = db.open(Sealer::plaintext());
    let second = db.open(Sealer::plaintext());
    first.ping().unwrap();
    second.ping().unwrap();
    let versions: Vec<i64> = db
        .run("SELECT version FROM webhook_guard_schema ORDER BY version")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=PG_SCHEMA_VERSION).collect::<Vec<_>>());
}

#[test]
fn a_schema_from_a_newer_build_is_refused() {
    let db = TestDb::new();
    drop(db.open(Sealer::plaintext()));
    db.run(&format!(
        "INSERT INTO webhook_guard_schema (version) VALUES ({})",
        PG_SCHEMA_VERSION + 1
    ));
    let err = PostgresStore::connect(&db.url(), Sealer::plaintext(), PostgresOptions::default())
        .unwrap_err();
    assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
}

#[test]
fn an_unreachable_database_is_a_typed_error() {
    let db = TestDb::new();
    let store = db.open(Sealer::plaintext());
    store.ping().unwrap();
    db.admin(&format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS false",
        db.name
    ));
    db.admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
        db.name
    ));
    let err = store.ping().unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    let err = store.load().unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    db.admin(&format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS true",
        db.name
    ));
    store.ping().unwrap();
    // Nobody listens on a closed port: unreachable, within the connect timeout.
    let started = std::time::Instant::now();
    let err = PostgresStore::connect(
        "host=127.0.0.1 port=1 user=postgres dbname=postgres",
        Sealer::plaintext(),
        PostgresOptions::default().connect_timeout(Duration::from_secs(2)),
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "current_thread")]
async fn calls_work_from_inside_a_runtime() {
    // The admin API calls the store on blocking threads; a test or a bootstrap may call it
    // from an async task: neither panics nor deadlocks.
    let db = TestDb::new();
    let store = std::sync::Arc::new(db.open(Sealer::plaintext()));
    store.ping().unwrap();
    let blocking = std::sync::Arc::clone(&store);
    tokio::task::spawn_blocking(move || blocking.ping().unwrap())
        .await
        .unwrap();
    drop(store);
}

#[test]
fn admin_writes_answer_503_and_change_nothing_while_the_database_is_unreachable() {
    use webhook_guard::admin::Admin;
    let db = TestDb::new();
    let admin = Admin::builder().open(db.open(Sealer::plaintext())).unwrap();
    admin.create_integrator().unwrap();
    db.admin(&format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS false",
        db.name
    ));
    db.admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
        db.name
    ));
    let err = admin.create_integrator().unwrap_err();
    assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE, "{err}");
    assert_eq!(
        err.problem().document()["type"],
        "tag:webhook-guard,2026:unavailable"
    );
    assert_eq!(admin.credentials().integrator_ids().len(), 1);
    db.admin(&format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS true",
        db.name
    ));
    assert_eq!(admin.store().load().unwrap().integrators.len(), 1);
}

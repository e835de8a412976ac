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
fn changes_since_and_single_rows_read_what_is_stored() {
    store_suite::changes_since_and_single_rows_read_what_is_stored(&TestDb::new());
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

#[test]
fn a_write_from_a_stale_version_is_a_conflict_and_changes_nothing() {
    use webhook_guard::store::{Change, ProjectRow};
    let db = TestDb::new();
    let (store, owner, id) = store_suite::seeded(&db, Sealer::plaintext());
    let stored: ProjectRow = store.load_project(&id).unwrap().unwrap();
    assert_eq!(stored.version, 1, "a new row is at version 1");
    let clock = store_suite::clock();
    let keys = store_suite::keys(&clock, false);
    let change = || Change::SetProjectKeys {
        integrator: &owner,
        project: &id,
        keys: &keys,
    };
    let event = || store_suite::event(&owner, "project.secret.regenerated").project(&id);
    let (_, version) = store.apply_at(change(), 1, &event()).unwrap();
    assert_eq!(version, 2);
    let events = store.changes_since(0, 100).unwrap().len();
    // Another instance still at version 1 writes: refused, nothing changed or logged.
    let err = store.apply_at(change(), 1, &event()).unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { what: "project" }),
        "{err}"
    );
    assert_eq!(store.changes_since(0, 100).unwrap().len(), events);
    assert_eq!(store.load_project(&id).unwrap().unwrap().version, 2);
    // An unconditional write (the CLI) still goes through and moves the version on.
    store.apply(change(), &event()).unwrap();
    assert_eq!(store.load_project(&id).unwrap().unwrap().version, 3);
}

#[test]
fn each_change_is_announced_with_its_sequence_number() {
    let db = TestDb::new();
    let conninfo = db.url();
    let (tx, rx) = std::sync::mpsc::channel();
    let listening = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (client, mut connection) =
                tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
                    .await
                    .unwrap();
            let (notes, mut received) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(async move {
                while let Some(Ok(message)) =
                    std::future::poll_fn(|cx| connection.poll_message(cx)).await
                {
                    if let tokio_postgres::AsyncMessage::Notification(n) = message {
                        let _ = notes.send((n.channel().to_owned(), n.payload().to_owned()));
                    }
                }
            });
            client
                .batch_execute("LISTEN webhook_guard_changes")
                .await
                .unwrap();
            tx.send(()).unwrap();
            let mut got = Vec::new();
            while got.len() < 2 {
                got.push(received.recv().await.unwrap());
            }
            got
        })
    });
    rx.recv().unwrap();
    let (store, _, _) = store_suite::seeded(&db, Sealer::plaintext());
    let seqs: Vec<String> = store
        .changes_since(0, 10)
        .unwrap()
        .iter()
        .map(|e| e.seq.to_string())
        .collect();
    let got = listening.join().unwrap();
    assert_eq!(
        got,
        seqs.into_iter()
            .map(|seq| ("webhook_guard_changes".to_owned(), seq))
            .collect::<Vec<_>>()
    );
}

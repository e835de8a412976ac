//! The PostgreSQL store: the shared store suite on a database of its own per test, and what is
//! its own (migrations recorded once, a typed error when the database cannot be reached).

#![cfg(feature = "postgres")]

mod pg_support;
mod store_suite;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pg_support::TestDb;
use store_suite::Backend;
use webhook_guard::admin::IntegratorId;
use webhook_guard::store::crypt::Sealer;
use webhook_guard::store::{
    Change, PostgresOptions, PostgresStore, Store, StoreError, PG_SCHEMA_VERSION,
};

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

/// A write goes out in one round trip (`BEGIN`, its statements, `COMMIT` together): a refused
/// one must end its transaction on the server, or the connection would go back to the pool
/// inside it and the next write on it would never be seen by anyone else.
#[test]
fn a_refused_write_leaves_its_connection_out_of_any_transaction() {
    use webhook_guard::store::{ApiKeyId, Change, ProjectRow};
    let db = TestDb::new();
    let (seeded, owner, id) = store_suite::seeded(&db, Sealer::plaintext());
    drop(seeded);
    // One connection: every write below runs on the one the refusals ran on.
    let store = PostgresStore::connect(
        &db.url(),
        Sealer::plaintext(),
        PostgresOptions::default().pool_size(1),
    )
    .unwrap();
    let clock = store_suite::clock();
    let keys = store_suite::keys(&clock, false);
    let stranger = IntegratorId::new("int_b");
    let event = |who: &IntegratorId, action| store_suite::event(who, action).project(&id);
    let committed = || -> (i64, i64) {
        let row = &db.run(
            "SELECT (SELECT version FROM projects WHERE id = 'prj_a'), (SELECT count(*) FROM audit)",
        )[0];
        (row.get(0), row.get(1))
    };
    let before = committed();
    // Each way a statement refuses: a stale version (WG409), a row of another tenant (WG404),
    // a duplicate (a unique violation) and a missing owner (WG404 before a foreign key).
    let stale = store.apply_at(
        Change::SetProjectKeys {
            integrator: &owner,
            project: &id,
            keys: &keys,
        },
        0,
        &event(&owner, "project.secret.regenerated"),
    );
    assert!(
        matches!(stale, Err(StoreError::Conflict { what: "project" })),
        "{stale:?}"
    );
    let foreign = store.apply(
        Change::SetProjectKeys {
            integrator: &stranger,
            project: &id,
            keys: &keys,
        },
        &event(&stranger, "project.secret.regenerated"),
    );
    assert!(
        matches!(foreign, Err(StoreError::NotFound { what: "project" })),
        "{foreign:?}"
    );
    let stored: ProjectRow = store.load_project(&id).unwrap().unwrap();
    let twice = store.apply(
        Change::CreateProject(&stored),
        &event(&owner, "project.created"),
    );
    assert!(
        matches!(twice, Err(StoreError::Exists { what: "project" })),
        "{twice:?}"
    );
    let orphan = store.apply(
        Change::DeleteApiKey {
            integrator: &owner,
            id: &ApiKeyId::parse("7GkQ2mZp9aXc").unwrap(),
        },
        &event(&owner, "api-key.deleted"),
    );
    assert!(
        matches!(orphan, Err(StoreError::NotFound { what: "API key" })),
        "{orphan:?}"
    );
    assert_eq!(committed(), before, "a refused write changed something");
    assert!(
        db.run(&format!(
            "SELECT 1 FROM pg_stat_activity WHERE datname = '{}' AND state LIKE 'idle in transaction%'",
            db.name
        ))
        .is_empty(),
        "a connection was left inside a transaction"
    );
    // The next write on that connection commits for everyone to see, at once.
    let (seq, version) = store
        .apply_at(
            Change::SetProjectKeys {
                integrator: &owner,
                project: &id,
                keys: &keys,
            },
            before.0 as u64,
            &event(&owner, "project.secret.regenerated"),
        )
        .unwrap();
    assert_eq!(version, before.0 as u64 + 1);
    assert_eq!(committed(), (before.0 + 1, before.1 + 1));
    let last: i64 = db.run("SELECT max(seq) FROM audit")[0].get(0);
    assert_eq!(seq, last as u64);
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

#[test]
fn a_pool_of_one_held_by_a_writer_fails_other_calls_within_the_connect_timeout() {
    let db = TestDb::new();
    let options = PostgresOptions::default()
        .pool_size(1)
        .connect_timeout(Duration::from_secs(1));
    assert_eq!(options.pool_size, 1);
    assert_eq!(options.connect_timeout, Duration::from_secs(1));
    assert_eq!(PostgresOptions::default().pool_size(0).pool_size, 1);
    let store = Arc::new(PostgresStore::connect(&db.url(), Sealer::plaintext(), options).unwrap());
    let ping_elsewhere = |store: &Arc<PostgresStore>| {
        let store = Arc::clone(store);
        std::thread::spawn(move || store.ping()).join().unwrap()
    };
    ping_elsewhere(&store).unwrap();
    // This thread pins the only connection: another thread waits for it, then gives up.
    let lock = store.lock_writes().unwrap();
    let started = Instant::now();
    let err = ping_elsewhere(&store).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    // It waited for the connection for the timeout set (a second), not the default 5 s, and
    // gave up rather than waiting for as long as the lock is held. The upper bound tells the
    // two timeouts apart with 3.5 s to spare for a loaded machine.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(4500),
        "{waited:?}"
    );
    drop(lock);
    ping_elsewhere(&store).unwrap();
}

#[test]
fn rekey_moves_every_secret_to_the_new_master_key_in_one_go() {
    use webhook_guard::store::crypt::MasterKeyId;
    let db = TestDb::new();
    let (store, _, _) = store_suite::seeded(&db, Sealer::plaintext());
    let before = store.load().unwrap();
    drop(store);
    let secrets = db.materials().len();
    assert_eq!(secrets, 3, "one integrator secret and two project keys");
    // Key a: everything plaintext gets sealed.
    let store = db.open(store_suite::sealer(store_suite::KEY_A));
    assert_eq!(store.rekey().unwrap(), secrets);
    assert_eq!(store.rekey().unwrap(), 0, "nothing left to do");
    drop(store);
    // Key b in front, a kept for reading: everything moves to b.
    let both = format!("{}\n{}", store_suite::KEY_B, store_suite::KEY_A);
    let store = db.open(store_suite::sealer(&both));
    assert_eq!(store.rekey().unwrap(), secrets);
    drop(store);
    let b = MasterKeyId::new("b").unwrap();
    for sealed in db.materials() {
        assert_eq!(Sealer::sealed_with(&sealed).unwrap(), Some(b.clone()));
    }
    // Now a can go.
    let after = db
        .open(store_suite::sealer(store_suite::KEY_B))
        .load()
        .unwrap();
    let material = |state: &webhook_guard::store::State| -> Vec<Vec<u8>> {
        state.projects[0]
            .keys
            .iter()
            .chain(&state.integrators[0].secrets)
            .map(|k| match &k.material {
                webhook_guard::KeyMaterial::Secret(s) => s.reveal().into_bytes().to_vec(),
                _ => unreachable!(),
            })
            .collect()
    };
    assert_eq!(material(&after), material(&before));
}

/// The ids of the server processes `db` has open for stores (not for the test's own queries).
fn store_backends(db: &TestDb) -> Vec<i32> {
    db.admin(&format!(
        "SELECT pid FROM pg_stat_activity WHERE datname = '{}' AND application_name = 'webhook-guard' ORDER BY pid",
        db.name
    ))
    .iter()
    .map(|row| row.get(0))
    .collect()
}

#[test]
fn changes_under_the_write_lock_go_through_and_other_writers_wait_for_it() {
    let db = TestDb::new();
    let (store, owner, project) = store_suite::seeded(&db, Sealer::plaintext());
    let store = Arc::new(store);
    let clock = store_suite::clock();
    let regenerate = move |store: &PostgresStore| {
        store.apply(
            Change::SetProjectKeys {
                integrator: &owner,
                project: &project,
                keys: &store_suite::keys(&clock, true),
            },
            &store_suite::event(&owner, "project.secret.regenerated").project(&project),
        )
    };
    let regenerate = Arc::new(regenerate);
    let lock = store.lock_writes().unwrap();
    let pinned = store_backends(&db);
    // This thread's own change goes through on the connection holding the lock...
    let started = Instant::now();
    regenerate(&store).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    // ...another thread's waits for it.
    let (done, finished) = std::sync::mpsc::channel();
    let writer = {
        let (store, regenerate) = (Arc::clone(&store), Arc::clone(&regenerate));
        std::thread::spawn(move || {
            let result = regenerate(&store);
            done.send(()).unwrap();
            result
        })
    };
    assert!(
        finished.recv_timeout(Duration::from_millis(500)).is_err(),
        "another writer went through while the lock was held"
    );
    drop(lock);
    finished.recv_timeout(Duration::from_secs(10)).unwrap();
    writer.join().unwrap().unwrap();
    // The connection that held the lock went back to the pool, not away (a closed one leaves
    // `pg_stat_activity` within moments).
    std::thread::sleep(Duration::from_millis(300));
    for pid in pinned {
        assert!(store_backends(&db).contains(&pid), "backend {pid} closed");
    }
}

#[test]
fn the_write_lock_of_one_store_does_not_carry_another_stores_writes() {
    let (one, other) = (TestDb::new(), TestDb::new());
    let (one_store, _, _) = store_suite::seeded(&one, Sealer::plaintext());
    let other_store = other.open(Sealer::plaintext());
    let _lock = one_store.lock_writes().unwrap();
    // Made on this thread while it holds the first store's lock: it lands in its own database.
    let owner = IntegratorId::new("int_other");
    other_store
        .apply(
            Change::CreateIntegrator(&store_suite::integrator(&owner, &store_suite::clock())),
            &store_suite::event(&owner, "integrator.created"),
        )
        .unwrap();
    assert!(other_store.load_integrator(&owner).unwrap().is_some());
    assert!(one_store.load_integrator(&owner).unwrap().is_none());
}

#[test]
fn only_errors_of_a_server_going_away_are_unavailable() {
    let db = TestDb::new();
    let store = db.open(Sealer::plaintext());
    // Every new integrator fails with the SQLSTATE and message of `wg_test_raise`.
    db.run(
        "CREATE TABLE wg_test_raise (code text, message text);
         INSERT INTO wg_test_raise VALUES ('P0001', '');
         CREATE FUNCTION wg_test_raise() RETURNS trigger LANGUAGE plpgsql AS $$
         DECLARE r record;
         BEGIN
             SELECT * INTO r FROM wg_test_raise;
             RAISE EXCEPTION USING ERRCODE = r.code, MESSAGE = r.message;
         END $$;
         CREATE TRIGGER wg_test_raise BEFORE INSERT ON integrators
             FOR EACH ROW EXECUTE FUNCTION wg_test_raise();",
    );
    let owner = IntegratorId::new("int_raise");
    let row = store_suite::integrator(&owner, &store_suite::clock());
    for (code, message, unavailable) in [
        ("08006", "connection failure", true),
        ("08P01", "protocol violation", true),
        (
            "57P01",
            "terminating connection due to administrator command",
            true,
        ),
        ("53300", "sorry, too many clients already", true),
        (
            "55000",
            "database \"x\" is not currently accepting connections",
            true,
        ),
        ("55000", "object not in prerequisite state", false),
        ("XX000", "not currently accepting connections", false),
        ("22023", "invalid parameter value", false),
    ] {
        db.run(&format!(
            "UPDATE wg_test_raise SET code = '{code}', message = '{}'",
            message.replace('\'', "''")
        ));
        let err = store
            .apply(
                Change::CreateIntegrator(&row),
                &store_suite::event(&owner, "integrator.created"),
            )
            .unwrap_err();
        if unavailable {
            assert!(
                matches!(err, StoreError::Unavailable { .. }),
                "{code}: {err:?}"
            );
        } else {
            assert!(matches!(err, StoreError::Postgres(_)), "{code}: {err:?}");
        }
    }
}

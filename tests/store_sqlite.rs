//! The SQLite store: files it creates, files it refuses (and leaves as they were), one
//! transaction per change with its audit event, and the audit log's pages.

mod admin_support;
mod store_suite;

use std::fs;
use std::path::Path;
use std::time::Duration;

use admin_support::TempDir;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use webhook_guard::admin::IntegratorId;
use webhook_guard::store::crypt::Sealer;
use webhook_guard::store::{
    AuditEvent, Change, IntegratorRow, ProjectRow, SqliteStore, Store, StoreError, SCHEMA_VERSION,
};
use webhook_guard::{KeyRecord, KeyRole, Keyring, ManualClock, ProjectId, Secret};

/// The shared store suite's view of a SQLite file.
struct Sqlite(TempDir);

impl Sqlite {
    fn new(name: &str) -> Self {
        Self(TempDir::new(name))
    }
}

impl store_suite::Backend for Sqlite {
    type Store = SqliteStore;

    fn open(&self, sealer: Sealer) -> SqliteStore {
        SqliteStore::open(self.0.db(), sealer).unwrap()
    }

    fn materials(&self) -> Vec<Vec<u8>> {
        let conn = rusqlite::Connection::open(self.0.db()).unwrap();
        let mut select = conn.prepare("SELECT material FROM keys").unwrap();
        let rows = select.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    fn copy_current_key(&self, from: &str, to: &str) {
        // An attacker with write access to the file copies one project's sealed key over another's.
        let conn = rusqlite::Connection::open(self.0.db()).unwrap();
        conn.execute(
            "UPDATE keys SET material = (SELECT material FROM keys WHERE owner = ?1 AND position = 0)
             WHERE owner = ?2 AND position = 0",
            [from, to],
        )
        .unwrap();
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 123_456_789).unwrap()
}

fn digest(path: &Path) -> [u8; 32] {
    Sha256::digest(fs::read(path).unwrap()).into()
}

fn keys(clock: &ManualClock, grace: bool) -> Vec<KeyRecord> {
    let keyring = Keyring::builder()
        .clock(clock.clone())
        .build(Secret::from_bytes("first secret").unwrap());
    if grace {
        keyring
            .rotate(
                Secret::from_bytes("second secret").unwrap(),
                Duration::from_secs(600),
            )
            .unwrap();
    }
    keyring.export()
}

fn integrator(id: &IntegratorId, clock: &ManualClock) -> IntegratorRow {
    IntegratorRow::new(id.clone(), at(1_700_000_000), keys(clock, false))
}

fn project(id: &ProjectId, owner: &IntegratorId, clock: &ManualClock) -> ProjectRow {
    ProjectRow::new(
        id.clone(),
        owner.clone(),
        Some("shop".into()),
        "github".into(),
        at(1_700_000_001),
        keys(clock, true),
    )
}

fn event(owner: &IntegratorId, action: &str) -> AuditEvent {
    let action = action.parse().expect("a known audit action");
    AuditEvent::new(at(1_700_000_002), owner.clone(), "cli", action)
}

/// Opens a store with one integrator and one project with two keys.
fn seeded(dir: &TempDir) -> (SqliteStore, IntegratorId, ProjectId) {
    let clock = ManualClock::at_unix(1_700_000_000);
    let store = SqliteStore::open(dir.db(), Sealer::plaintext()).unwrap();
    let owner = IntegratorId::new("int_a");
    let id = ProjectId::parse("prj_a").unwrap();
    store
        .apply(
            Change::CreateIntegrator(&integrator(&owner, &clock)),
            &event(&owner, "integrator.created"),
        )
        .unwrap();
    store
        .apply(
            Change::CreateProject(&project(&id, &owner, &clock)),
            &event(&owner, "project.created"),
        )
        .unwrap();
    (store, owner, id)
}

#[cfg(unix)]
#[test]
fn new_database_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("mode");
    let db = dir.0.join("data").join("wg.db");
    let store = SqliteStore::open(&db, Sealer::plaintext()).unwrap();
    store.ping().unwrap();
    let file = fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    let parent = fs::metadata(db.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(file, 0o600, "database mode {file:o}");
    assert_eq!(parent, 0o700, "data directory mode {parent:o}");
    // No half-made file is left behind.
    assert!(!dir.0.join("data").join("wg.db.creating").exists());
}

#[test]
fn everything_written_reads_back_after_reopening() {
    let dir = TempDir::new("reopen");
    let (store, owner, id) = seeded(&dir);
    let before = store.load().unwrap();
    drop(store);
    let store = SqliteStore::open(dir.db(), Sealer::plaintext()).unwrap();
    let after = store.load().unwrap();
    assert_eq!(after.integrators.len(), 1);
    assert_eq!(after.integrators[0].id, owner);
    assert_eq!(after.projects.len(), 1);
    let (p, q) = (&before.projects[0], &after.projects[0]);
    assert_eq!(q.id, id);
    assert_eq!(q.scheme, "github");
    assert_eq!(q.name.as_deref(), Some("shop"));
    assert_eq!(
        q.created_at,
        at(1_700_000_001),
        "times keep their nanoseconds"
    );
    assert_eq!(q.keys.len(), 2);
    assert_eq!(q.keys[0].role, KeyRole::Current);
    assert_eq!(q.keys[1].role, KeyRole::Grace);
    for (a, b) in p.keys.iter().zip(&q.keys) {
        assert_eq!(
            (a.id.clone(), a.created_at, a.expires_at),
            (b.id.clone(), b.created_at, b.expires_at)
        );
    }
    // The keys are the same keys: a keyring built from them has the same key ids.
    let clock = ManualClock::at_unix(1_700_000_000);
    let keyring = Keyring::builder()
        .clock(clock)
        .import(q.keys.clone())
        .unwrap();
    assert_eq!(keyring.keys().len(), 2);
}

#[test]
fn a_change_that_does_not_fit_changes_nothing_and_logs_nothing() {
    store_suite::a_change_that_does_not_fit_changes_nothing_and_logs_nothing(&Sqlite::new("nofit"));
}

#[test]
fn audit_pages_and_filters() {
    store_suite::audit_pages_and_filters(&Sqlite::new("audit"));
}

#[test]
fn every_row_reads_back_to_the_nanosecond() {
    store_suite::every_row_reads_back_to_the_nanosecond(&Sqlite::new("rows"));
}

#[test]
fn prune_audit_removes_what_retention_selects_and_says_how_many() {
    store_suite::prune_audit_removes_what_retention_selects_and_says_how_many(&Sqlite::new(
        "prune",
    ));
}

#[test]
fn record_uses_moves_last_used_forward_only() {
    store_suite::record_uses_moves_last_used_forward_only(&Sqlite::new("uses"));
}

#[test]
fn sealed_secrets_are_not_readable_in_the_table() {
    store_suite::sealed_secrets_are_not_readable_in_the_table(&Sqlite::new("table"));
}

/// Opens `path` and asserts it is refused with `expected`, and not changed by the attempt.
fn assert_refused(path: &Path, expected: fn(&StoreError) -> bool) {
    let before = digest(path);
    let err = SqliteStore::open(path, Sealer::plaintext()).unwrap_err();
    assert!(expected(&err), "unexpected error: {err}");
    assert!(
        err.to_string().contains("unchanged") || matches!(err, StoreError::TooNew { .. }),
        "{err}"
    );
    assert_eq!(digest(path), before, "the refused file was changed");
}

#[test]
fn an_empty_file_is_refused_and_left_as_it_is() {
    let dir = TempDir::new("empty");
    fs::write(dir.db(), b"").unwrap();
    assert_refused(&dir.db(), |e| matches!(e, StoreError::NotADatabase { .. }));
}

#[test]
fn garbage_is_refused_and_left_as_it_is() {
    let dir = TempDir::new("garbage");
    let mut garbage = vec![0u8; 8192];
    getrandom::fill(&mut garbage).unwrap();
    fs::write(dir.db(), &garbage).unwrap();
    assert_refused(&dir.db(), |e| matches!(e, StoreError::NotADatabase { .. }));
}

#[test]
fn a_truncated_database_is_refused_and_left_as_it_is() {
    let dir = TempDir::new("truncated");
    let (store, owner, _) = seeded(&dir);
    // Enough rows to span several pages.
    let clock = ManualClock::at_unix(1_700_000_000);
    for i in 0..200 {
        let id = ProjectId::parse(&format!("prj_{i:04}")).unwrap();
        store
            .apply(
                Change::CreateProject(&project(&id, &owner, &clock)),
                &event(&owner, "project.created"),
            )
            .unwrap();
    }
    drop(store); // checkpoints the WAL into the file
    let len = fs::metadata(dir.db()).unwrap().len();
    assert!(len > 8 * 4096, "database is {len} bytes");
    let file = fs::OpenOptions::new().write(true).open(dir.db()).unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    assert_refused(&dir.db(), |e| {
        matches!(
            e,
            StoreError::Corrupt { .. } | StoreError::NotADatabase { .. }
        )
    });
}

#[test]
fn another_applications_database_is_refused_and_left_as_it_is() {
    let dir = TempDir::new("foreign");
    {
        let conn = rusqlite::Connection::open(dir.db()).unwrap();
        conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi');")
            .unwrap();
    }
    assert_refused(&dir.db(), |e| matches!(e, StoreError::NotADatabase { .. }));
}

#[test]
fn a_schema_from_a_newer_build_is_refused() {
    let dir = TempDir::new("newer");
    drop(seeded(&dir));
    {
        let conn = rusqlite::Connection::open(dir.db()).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    assert_refused(&dir.db(), |e| matches!(e, StoreError::TooNew { .. }));
}

fn keys_named(text: &str) -> webhook_guard::store::crypt::MasterKeys {
    webhook_guard::store::crypt::MasterKeys::parse(text).unwrap()
}

const KEY_A: &str = "a:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "b:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

#[test]
fn sealed_secrets_are_not_in_the_file_and_read_back_with_the_key() {
    let dir = TempDir::new("sealed");
    let clock = ManualClock::at_unix(1_700_000_000);
    let owner = IntegratorId::new("int_a");
    let store = SqliteStore::open(dir.db(), Sealer::encrypting(keys_named(KEY_A))).unwrap();
    store
        .apply(
            Change::CreateIntegrator(&integrator(&owner, &clock)),
            &event(&owner, "integrator.created"),
        )
        .unwrap();
    let id = ProjectId::parse("prj_a").unwrap();
    store
        .apply(
            Change::CreateProject(&project(&id, &owner, &clock)),
            &event(&owner, "project.created"),
        )
        .unwrap();
    drop(store);
    let bytes = fs::read(dir.db()).unwrap();
    for secret in [&b"first secret"[..], b"second secret"] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "a secret is in the file in clear"
        );
    }
    let store = SqliteStore::open(dir.db(), Sealer::encrypting(keys_named(KEY_A))).unwrap();
    let state = store.load().unwrap();
    assert_eq!(state.projects[0].keys.len(), 2);
    // Without the key the secrets cannot be read, and the error says which key is missing.
    let store = SqliteStore::open(dir.db(), Sealer::encrypting(keys_named(KEY_B))).unwrap();
    let err = store.load().unwrap_err();
    assert!(err.to_string().contains('a'), "{err}");
}

#[test]
fn changes_since_and_single_rows_read_what_is_stored() {
    store_suite::changes_since_and_single_rows_read_what_is_stored(&Sqlite::new("changes"));
}

#[test]
fn a_secret_moved_to_another_project_fails_to_open() {
    store_suite::a_secret_moved_to_another_project_fails_to_open(&Sqlite::new("swapped"));
}

#[test]
fn rekey_moves_every_secret_to_the_new_master_key_in_one_go() {
    let dir = TempDir::new("rekey");
    let clock = ManualClock::at_unix(1_700_000_000);
    let owner = IntegratorId::new("int_a");
    // Written in plaintext first, as by an operator who had no master key yet.
    let store = SqliteStore::open(dir.db(), Sealer::plaintext()).unwrap();
    store
        .apply(
            Change::CreateIntegrator(&integrator(&owner, &clock)),
            &event(&owner, "integrator.created"),
        )
        .unwrap();
    let id = ProjectId::parse("prj_a").unwrap();
    store
        .apply(
            Change::CreateProject(&project(&id, &owner, &clock)),
            &event(&owner, "project.created"),
        )
        .unwrap();
    let before = store.load().unwrap();
    drop(store);
    // Key a: everything plaintext gets sealed.
    let store = SqliteStore::open(dir.db(), Sealer::encrypting(keys_named(KEY_A))).unwrap();
    assert_eq!(
        store.rekey().unwrap(),
        3,
        "one integrator secret and two project keys"
    );
    assert_eq!(store.rekey().unwrap(), 0, "nothing left to do");
    drop(store);
    // Key b in front, a kept for reading: everything moves to b.
    let both = format!("{KEY_B}\n{KEY_A}");
    let store = SqliteStore::open(dir.db(), Sealer::encrypting(keys_named(&both))).unwrap();
    assert_eq!(store.rekey().unwrap(), 3);
    drop(store);
    // Now a can go.
    let store = SqliteStore::open(dir.db(), Sealer::encrypting(keys_named(KEY_B))).unwrap();
    let after = store.load().unwrap();
    let material = |state: &webhook_guard::store::State| -> Vec<Vec<u8>> {
        state.projects[0]
            .keys
            .iter()
            .map(|k| match &k.material {
                webhook_guard::KeyMaterial::Secret(s) => s.reveal().into_bytes().to_vec(),
                _ => unreachable!(),
            })
            .collect()
    };
    assert_eq!(material(&after), material(&before));
}

fn lock_file(db: &Path) -> std::path::PathBuf {
    let mut path = db.as_os_str().to_owned();
    path.push(".lock");
    path.into()
}

#[test]
fn a_database_another_process_holds_is_refused_naming_the_holder() {
    let dir = TempDir::new("locked");
    // Another process's lock: a descriptor this process's stores know nothing of.
    let holder = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(lock_file(&dir.db()))
        .unwrap();
    fs::write(lock_file(&dir.db()), "4242\n").unwrap();
    holder.lock().unwrap();
    let err = SqliteStore::open(dir.db(), Sealer::plaintext()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Locked {
                pid: Some(4242),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("process 4242"), "{err}");
    assert!(!dir.db().exists(), "nothing was created");
    // Once the holder is gone, the store opens, and holds the lock itself with its pid.
    drop(holder);
    let store = SqliteStore::open(dir.db(), Sealer::plaintext()).unwrap();
    assert_eq!(
        fs::read_to_string(lock_file(&dir.db())).unwrap().trim(),
        std::process::id().to_string()
    );
    let other = fs::File::open(lock_file(&dir.db())).unwrap();
    assert!(
        matches!(other.try_lock(), Err(fs::TryLockError::WouldBlock)),
        "the open store holds the lock"
    );
    drop(store);
    other.try_lock().expect("a dropped store releases the lock");
}

/// `damage` is done to the database under an open store: every later write and ping fails
/// with `FileChanged`, and nothing is acknowledged.
fn assert_noticed(name: &str, damage: fn(&Path)) {
    let dir = TempDir::new(name);
    let (store, owner, id) = seeded(&dir);
    store.ping().unwrap();
    damage(&dir.db());
    let clock = ManualClock::at_unix(1_700_000_000);
    let err = store
        .apply(
            Change::SetProjectKeys {
                integrator: &owner,
                project: &id,
                keys: &keys(&clock, false),
            },
            &event(&owner, "project.secret.regenerated"),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::FileChanged { .. }), "{err}");
    let err = store.ping().unwrap_err();
    assert!(matches!(err, StoreError::FileChanged { .. }), "{err}");
    let err = store.record_uses(&[]).unwrap_err();
    assert!(matches!(err, StoreError::FileChanged { .. }), "{err}");
}

#[test]
fn a_database_deleted_under_an_open_store_fails_every_write_and_ping() {
    assert_noticed("deleted", |db| {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = db.as_os_str().to_owned();
            path.push(suffix);
            let _ = fs::remove_file(path);
        }
    });
}

#[test]
fn a_database_truncated_to_nothing_under_an_open_store_fails_every_write_and_ping() {
    assert_noticed("emptied", |db| {
        fs::OpenOptions::new()
            .write(true)
            .open(db)
            .unwrap()
            .set_len(0)
            .unwrap();
    });
}

#[test]
fn a_database_replaced_under_an_open_store_fails_every_write_and_ping() {
    assert_noticed("replaced", |db| {
        let copy = db.with_extension("copy");
        fs::copy(db, &copy).unwrap();
        fs::rename(&copy, db).unwrap();
    });
}

#[test]
fn rekey_refuses_a_store_its_keys_cannot_open_and_changes_nothing() {
    let dir = TempDir::new("rekey-refused");
    let clock = ManualClock::at_unix(1_700_000_000);
    let owner = IntegratorId::new("int_a");
    let store = SqliteStore::open(dir.db(), Sealer::encrypting(keys_named(KEY_A))).unwrap();
    store
        .apply(
            Change::CreateIntegrator(&integrator(&owner, &clock)),
            &event(&owner, "integrator.created"),
        )
        .unwrap();
    drop(store);
    let before = digest(&dir.db());
    // Key a dropped before the rekey: nothing can be moved to b.
    let store = SqliteStore::open(dir.db(), Sealer::encrypting(keys_named(KEY_B))).unwrap();
    let err = store.rekey().unwrap_err();
    assert!(matches!(err, StoreError::Crypt(_)), "{err}");
    drop(store);
    assert_eq!(digest(&dir.db()), before, "nothing was changed");
    let store = SqliteStore::open(dir.db(), Sealer::encrypting(keys_named(KEY_A))).unwrap();
    store.load().unwrap();
}

#[test]
fn a_database_path_that_cannot_be_looked_up_for_a_while_is_not_taken_for_deleted() {
    let dir = TempDir::new("unreachable");
    let (store, _, _) = seeded(&dir);
    // The data directory moved away and a file put in its place: the path cannot be looked
    // up (not a directory), which says nothing of the database, still open and unchanged.
    let moved = dir.0.with_extension("moved");
    fs::rename(&dir.0, &moved).unwrap();
    fs::write(&dir.0, "").unwrap();
    let err = store.ping().unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err}");
    fs::remove_file(&dir.0).unwrap();
    fs::rename(&moved, &dir.0).unwrap();
    store
        .ping()
        .expect("the same file is back: the store goes on");
}

#[test]
fn a_database_cut_short_under_an_open_store_fails_every_write_and_ping() {
    assert_noticed("shortened", |db| {
        let len = fs::metadata(db).unwrap().len();
        assert!(len > 4096, "database is {len} bytes");
        fs::OpenOptions::new()
            .write(true)
            .open(db)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
    });
}

/// Writes `contents` at a new database path and asserts the store refuses it with `reason`.
fn assert_not_a_database(name: &str, contents: &[u8], reason: &str) {
    let dir = TempDir::new(name);
    fs::write(dir.db(), contents).unwrap();
    match SqliteStore::open(dir.db(), Sealer::plaintext()).unwrap_err() {
        StoreError::NotADatabase { reason: found, .. } => assert_eq!(found, reason),
        err => panic!("unexpected error: {err}"),
    }
    assert_eq!(
        fs::read(dir.db()).unwrap(),
        contents,
        "the refused file was changed"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_refused_saying_why() {
    assert_not_a_database("why-empty", b"", "the file is empty");
    assert_not_a_database(
        "why-short",
        b"SQLite for",
        "the file is shorter than a SQLite header",
    );
    assert_not_a_database(
        "why-other",
        &[b'x'; 4096],
        "the file is not a SQLite database",
    );
}

#[test]
fn a_sqlite_header_over_garbage_is_refused_and_left_as_it_is() {
    let dir = TempDir::new("header-only");
    let mut contents = b"SQLite format 3\0".to_vec();
    contents.resize(4096, 0xff);
    fs::write(dir.db(), &contents).unwrap();
    assert_refused(&dir.db(), |e| matches!(e, StoreError::NotADatabase { .. }));
}

#[test]
fn audit_actions_show_compare_and_parse_as_their_stored_names() {
    use webhook_guard::store::AuditAction;
    let subjects: Vec<&str> = AuditAction::ALL.iter().map(|a| a.subject()).collect();
    assert_eq!(
        subjects,
        [
            "integrator",
            "integrator",
            "project",
            "project",
            "project",
            "project",
            "project",
            "project",
            "api-key",
            "api-key",
            "audit"
        ]
    );
    for action in AuditAction::ALL {
        let name = action.as_str();
        assert_eq!(action.to_string(), name);
        assert_eq!(name.parse::<AuditAction>(), Ok(action));
        assert!(action == name, "{name}");
        assert!(
            name.starts_with(&format!("{}.", action.subject())),
            "{name}"
        );
        for other in AuditAction::ALL.into_iter().filter(|&o| o != action) {
            assert!(action != other.as_str(), "{name} == {other}");
        }
    }
}

#[test]
fn a_database_named_without_a_directory_is_created_in_the_working_directory_and_found_after_it_changes(
) {
    // The only test here that uses a relative path: every other one names absolute paths, so
    // changing the working directory for a moment affects none of them.
    let dir = TempDir::new("relative");
    let previous = std::env::current_dir().unwrap();
    std::env::set_current_dir(&dir.0).unwrap();
    let opened = SqliteStore::open("wg.db", Sealer::plaintext());
    std::env::set_current_dir(previous).unwrap();
    let store = opened.unwrap();
    assert!(dir.db().is_file());
    // The working directory is elsewhere now: the store still finds its file, not "deleted".
    store.ping().unwrap();
}

#[test]
fn api_key_ids_are_exactly_twelve_base62_characters() {
    use webhook_guard::store::ApiKeyId;
    let id = ApiKeyId::parse("7GkQ2mZp9aXc").unwrap();
    assert_eq!(id.as_str(), "7GkQ2mZp9aXc");
    assert_eq!(id.to_string(), "7GkQ2mZp9aXc");
    for bad in [
        "7GkQ2mZp9aX",
        "7GkQ2mZp9aXc0",
        "7GkQ2mZp9aX-",
        "",
        "7GkQ2mZp9aé",
    ] {
        assert!(ApiKeyId::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(IntegratorId::new("int_a").to_string(), "int_a");
}

#[test]
fn an_upstream_and_its_resigning_secret_read_back_after_reopening() {
    use webhook_guard::store::UpstreamRow;
    let dir = TempDir::new("upstream");
    let (store, owner, id) = seeded(&dir);
    let upstream = UpstreamRow::new(
        "https://upstream.example/hook".into(),
        Some(Secret::from_bytes("a re-signing secret").unwrap()),
    );
    let set = |store: &SqliteStore, upstream: Option<&UpstreamRow>, action: &str| {
        store
            .apply(
                Change::SetProjectUpstream {
                    integrator: &owner,
                    project: &id,
                    upstream,
                },
                &event(&owner, action),
            )
            .unwrap();
    };
    set(&store, Some(&upstream), "project.upstream.set");
    drop(store);
    let store = SqliteStore::open(dir.db(), Sealer::plaintext()).unwrap();
    let state = store.load().unwrap();
    let read = state.projects[0].upstream.as_ref().expect("an upstream");
    assert_eq!(read.url, "https://upstream.example/hook");
    let secret = read.secret.as_ref().expect("its re-signing secret");
    assert_eq!(
        secret.reveal().into_bytes().to_vec(),
        b"a re-signing secret".to_vec()
    );
    set(&store, None, "project.upstream.removed");
    assert!(store.load().unwrap().projects[0].upstream.is_none());
}

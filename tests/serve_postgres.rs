//! `webhook-guard serve --database-url` (issue 21): two real servers on one PostgreSQL database
//! bootstrap once and serve each other's changes; `admin create-integrator` and `admin rekey`
//! work on the database too; without a master key nothing starts.

#![cfg(unix)]

mod pg_support;
mod serve_support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pg_support::TestDb;
use serve_support::{deliver, http, serving};
use webhook_guard::store::crypt::{MasterKeys, Sealer};
use webhook_guard::store::{PostgresOptions, PostgresStore, Store};

/// The master key every instance is given (`id:base64`, 32 bytes).
const KEY: &str = "a:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn sealer() -> Sealer {
    Sealer::encrypting(MasterKeys::parse(KEY).unwrap())
}

fn spawn(db: &TestDb, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
        .arg(db.url())
        .args(extra)
        .env("RUST_LOG", "warn")
        .env("WEBHOOK_GUARD_MASTER_KEYS", KEY)
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server")
}

fn within(bound: Duration, what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < bound, "{what}: not within {bound:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_servers_started_together_bootstrap_once_and_follow_each_other() {
    let db = TestDb::new();
    // Both started before either is read: they race for the bootstrap.
    let a = spawn(&db, &["--bootstrap"]);
    let b = spawn(&db, &["--bootstrap"]);
    let (a, b) = (serving(a), serving(b));
    let (made, other) = match (a.exported("WG_API_KEY"), b.exported("WG_API_KEY")) {
        (Some(_), None) => (a, b),
        (None, Some(_)) => (b, a),
        (x, y) => panic!(
            "bootstrapped {} times",
            usize::from(x.is_some()) + usize::from(y.is_some())
        ),
    };
    let store = PostgresStore::connect(&db.url(), sealer(), PostgresOptions::default()).unwrap();
    assert_eq!(store.load().unwrap().integrators.len(), 1);
    // Sealed: no signing secret in the database in the clear.
    let signing = made.exported("WG_SIGNING_SECRET").unwrap();
    let materials = db.run("SELECT material FROM keys");
    assert!(!materials.is_empty());
    for row in materials {
        let material: Vec<u8> = row.get(0);
        assert!(
            !material
                .windows(signing.len())
                .any(|w| w == signing.as_bytes()),
            "a signing secret stored in the clear"
        );
    }

    let key = made.exported("WG_API_KEY").unwrap();
    let project = made.exported("WG_PROJECT").unwrap();
    within(Duration::from_secs(1), "the other server verifies", || {
        deliver(other.addr, &project, &signing) == 200
    });
    // Regenerated on one, without grace: the other refuses the old secret within the bound.
    let (status, body) = http(
        made.addr,
        "POST",
        &format!("/v1/external-support/{project}/secret/regenerate"),
        &[("x-api-key", &key), ("content-type", "application/json")],
        b"{}",
    );
    assert_eq!(status, 200, "{body}");
    within(
        Duration::from_secs(1),
        "the other server refuses the old secret",
        || deliver(other.addr, &project, &signing) == 401,
    );
    let (status, _) = http(other.addr, "GET", "/readyz", &[], b"");
    assert_eq!(status, 200);
}

#[test]
fn admin_commands_work_on_the_database() {
    let db = TestDb::new();
    let run = |args: &[&str], keys: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_webhook-guard"));
        command
            .args(args)
            .args(["--database-url", &db.url()])
            .env_remove("DATABASE_URL")
            .env_remove("WEBHOOK_GUARD_MASTER_KEYS");
        if let Some(keys) = keys {
            command.env("WEBHOOK_GUARD_MASTER_KEYS", keys);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let created = run(
        &["admin", "create-integrator", "--insecure-plaintext-secrets"],
        None,
    );
    assert!(created.contains("clientId:     int_"), "{created}");
    let rekeyed = run(&["admin", "rekey"], Some(KEY));
    assert!(rekeyed.contains("re-encrypted 1 secrets"), "{rekeyed}");
    let store = PostgresStore::connect(&db.url(), sealer(), PostgresOptions::default()).unwrap();
    assert_eq!(store.load().unwrap().integrators.len(), 1);
}

/// A shared database has no place beside it for a generated key, and every instance needs the
/// same one: without a master key (or the explicit plaintext flag) nothing starts or is written.
#[test]
fn without_a_master_key_nothing_starts_on_the_database() {
    let db = TestDb::new();
    let output = Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--bootstrap",
            "--database-url",
        ])
        .arg(db.url())
        .env_remove("WEBHOOK_GUARD_MASTER_KEYS")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--master-key-file") && stderr.contains("WEBHOOK_GUARD_MASTER_KEYS"),
        "{stderr}"
    );
    let tables =
        db.run("SELECT count(*) FROM information_schema.tables WHERE table_name = 'integrators'");
    let count: i64 = tables[0].get(0);
    assert_eq!(count, 0, "the schema was created without a key");
}

/// DATABASE_URL names the database when no flag does, and never overrides --data-dir.
#[test]
fn database_url_from_the_environment_and_never_over_a_data_dir() {
    let db = TestDb::new();
    let output = Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
        .args(["admin", "create-integrator"])
        .env("WEBHOOK_GUARD_MASTER_KEYS", KEY)
        .env("DATABASE_URL", db.url())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let store = PostgresStore::connect(&db.url(), sealer(), PostgresOptions::default()).unwrap();
    assert_eq!(store.load().unwrap().integrators.len(), 1);

    let dir = std::env::temp_dir().join(format!("wg-serve-pg-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let output = Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
        .args(["admin", "create-integrator", "--data-dir"])
        .arg(&dir)
        .env("WEBHOOK_GUARD_MASTER_KEYS", KEY)
        .env("DATABASE_URL", db.url())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(dir.join("webhook-guard.db").exists());
    assert_eq!(
        store.load().unwrap().integrators.len(),
        1,
        "written to the database"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

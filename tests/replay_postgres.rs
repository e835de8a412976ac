//! Replay protection on PostgreSQL (feature `postgres`): shared by instances, expired rows
//! taken over and cleaned up, and an outage. Needs PostgreSQL on 127.0.0.1:5432
//! (`.ci/services.sh`); each test makes its own database and drops it at the end.

mod replay_support;

use std::time::Duration;

use replay_support::scenarios;
use replay_support::Capture;
use tokio_postgres::NoTls;
use webhook_guard::replay::{Claim, DeliveryKey, PostgresGuard, ReplayGuard, ReplayProtection};

const SERVER: &str = "host=127.0.0.1 port=5432 user=postgres";

/// A database of its own, dropped (`WITH (FORCE)`) when this is dropped.
struct Database {
    name: String,
}

impl Database {
    async fn new() -> Self {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).unwrap();
        let name = format!("wg_test_{:016x}", u64::from_le_bytes(bytes));
        admin(&format!("CREATE DATABASE {name}")).await;
        Self { name }
    }

    fn config(&self) -> String {
        format!("{SERVER} dbname={}", self.name)
    }

    async fn guard(&self) -> PostgresGuard {
        PostgresGuard::connect(&self.config()).await.unwrap()
    }

    async fn protection(&self) -> ReplayProtection {
        ReplayProtection::new(self.guard().await)
    }

    /// No new connections, and the open ones ended.
    async fn block(&self) {
        let name = &self.name;
        admin(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await;
        admin(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await;
    }
}

/// Runs `sql` on the server's `postgres` database.
async fn admin(sql: &str) {
    let (client, connection) = tokio_postgres::connect(&format!("{SERVER} dbname=postgres"), NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = task.await;
}

impl Drop for Database {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // A runtime of its own: the test's may be shutting down.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(admin(&sql)))
        })
        .join();
    }
}

#[tokio::test]
async fn two_instances_sharing_postgres_handle_each_delivery_once() {
    let db = Database::new().await;
    scenarios::two_instances_handle_each_delivery_once(
        db.protection().await,
        db.protection().await,
    )
    .await;
}

#[tokio::test]
async fn a_retry_after_a_500_is_handled_on_postgres() {
    let db = Database::new().await;
    scenarios::a_retry_after_a_500_is_handled(db.protection().await, db.protection().await).await;
}

#[tokio::test]
async fn dropped_and_stuck_holders_give_the_delivery_back_on_postgres() {
    let db = Database::new().await;
    let short = db.protection().await.lease(Duration::from_millis(300));
    scenarios::dropped_and_stuck_holders_give_the_delivery_back(db.protection().await, short).await;
}

#[tokio::test]
async fn a_release_removes_only_its_own_reservation_and_expired_rows_are_cleaned_up() {
    let db = Database::new().await;
    let guard = db.guard().await;
    let key = DeliveryKey::from_bytes([3; 32]);
    let Claim::Reserved(old) = guard
        .reserve(&key, Duration::from_millis(100))
        .await
        .unwrap()
    else {
        panic!("a new key is free");
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The expired row is taken over before any clean-up.
    let Claim::Reserved(new) = guard.reserve(&key, Duration::from_secs(60)).await.unwrap() else {
        panic!("a key whose lease ended is free");
    };
    guard.release(&key, old).await.unwrap();
    assert!(matches!(
        guard.reserve(&key, Duration::from_secs(60)).await.unwrap(),
        Claim::InProgress { .. }
    ));
    guard
        .complete(&key, new, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(
        guard.reserve(&key, Duration::from_secs(60)).await.unwrap(),
        Claim::Done
    );
    // A done row is not released by its old token.
    guard.release(&key, new).await.unwrap();
    assert_eq!(
        guard.reserve(&key, Duration::from_secs(60)).await.unwrap(),
        Claim::Done
    );

    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(guard.clean_up().await.unwrap(), 1);
    assert!(matches!(
        guard.reserve(&key, Duration::from_secs(60)).await.unwrap(),
        Claim::Reserved(_)
    ));
}

#[tokio::test(flavor = "current_thread")]
async fn postgres_down_fails_closed_or_open_each_logged_once() {
    let capture = Capture::default();
    let _log = capture.install();
    let db = Database::new().await;
    let protection = db.protection().await;
    db.block().await;
    scenarios::an_outage_fails_closed_or_open_logged_once(protection, &capture).await;
}

//! Replay protection on Redis (feature `redis`): shared by instances, the reservation's token
//! checked on release, and an outage. Needs Redis on 127.0.0.1:6379 (`.ci/services.sh`); each
//! test uses its own key prefix, deleted at the end.

mod replay_support;

use std::time::Duration;

use replay_support::scenarios;
use replay_support::Capture;
use webhook_guard::replay::{Claim, DeliveryKey, RedisGuard, ReplayGuard, ReplayProtection};

const URL: &str = "redis://127.0.0.1:6379/";

/// A key prefix of its own, its keys deleted when dropped.
struct Prefix(String);

impl Prefix {
    fn new() -> Self {
        Self(format!("wg_test_{:016x}:", rand_u64()))
    }

    fn guard(&self) -> RedisGuard {
        RedisGuard::open(URL).unwrap().prefix(&self.0)
    }

    fn protection(&self) -> ReplayProtection {
        ReplayProtection::new(self.guard())
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let Ok(mut connection) = redis::Client::open(URL).and_then(|c| c.get_connection()) else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.0))
            .query(&mut connection)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut connection);
        }
    }
}

fn rand_u64() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes)
}

#[tokio::test]
async fn two_instances_sharing_redis_handle_each_delivery_once() {
    let prefix = Prefix::new();
    scenarios::two_instances_handle_each_delivery_once(prefix.protection(), prefix.protection())
        .await;
}

#[tokio::test]
async fn a_retry_after_a_500_is_handled_on_redis() {
    let prefix = Prefix::new();
    scenarios::a_retry_after_a_500_is_handled(prefix.protection(), prefix.protection()).await;
}

#[tokio::test]
async fn dropped_and_stuck_holders_give_the_delivery_back_on_redis() {
    let prefix = Prefix::new();
    let short = prefix.protection().lease(Duration::from_millis(300));
    scenarios::dropped_and_stuck_holders_give_the_delivery_back(prefix.protection(), short).await;
}

#[tokio::test]
async fn a_release_removes_only_its_own_reservation() {
    let prefix = Prefix::new();
    let guard = prefix.guard();
    let key = DeliveryKey::from_bytes([3; 32]);
    let lease = Duration::from_millis(100);
    let Claim::Reserved(old) = guard.reserve(&key, lease).await.unwrap() else {
        panic!("a new key is free");
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let Claim::Reserved(new) = guard.reserve(&key, Duration::from_secs(60)).await.unwrap() else {
        panic!("a key whose lease ended is free");
    };
    // The first holder, late, releases: the second holder's reservation stays.
    guard.release(&key, old).await.unwrap();
    assert!(matches!(
        guard.reserve(&key, Duration::from_secs(60)).await.unwrap(),
        Claim::InProgress { .. }
    ));
    guard.release(&key, new).await.unwrap();
    assert!(matches!(
        guard.reserve(&key, Duration::from_secs(60)).await.unwrap(),
        Claim::Reserved(_)
    ));
}

#[tokio::test]
async fn a_done_delivery_expires_after_its_retention_on_redis() {
    let prefix = Prefix::new();
    let guard = prefix.guard();
    let key = DeliveryKey::from_bytes([4; 32]);
    let Claim::Reserved(token) = guard.reserve(&key, Duration::from_secs(60)).await.unwrap() else {
        panic!("a new key is free");
    };
    guard
        .complete(&key, token, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(
        guard.reserve(&key, Duration::from_secs(60)).await.unwrap(),
        Claim::Done
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(matches!(
        guard.reserve(&key, Duration::from_secs(60)).await.unwrap(),
        Claim::Reserved(_)
    ));
}

#[tokio::test(flavor = "current_thread")]
async fn redis_down_fails_closed_or_open_each_logged_once() {
    let capture = Capture::default();
    let _log = capture.install();
    // A port that was just bound and dropped: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let guard = RedisGuard::open(&format!("redis://127.0.0.1:{port}/")).unwrap();
    scenarios::an_outage_fails_closed_or_open_logged_once(ReplayProtection::new(guard), &capture)
        .await;
}

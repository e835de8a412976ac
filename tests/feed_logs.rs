//! The change feed logs each change of its state once, not once per attempt: while the
//! database refuses connections the listener retries every 50 ms, and each outage gives one
//! "disconnected" warning and each recovery one "connected" line (issue 21: "each state change
//! is logged once, not per request").
//!
//! Alone in its test binary: tracing caches each callsite's interest per process, so the
//! capturing subscriber must be the global one from the first event on.

mod log_support;
mod pg_support;

use std::time::{Duration, Instant};

use log_support::Captured;
use pg_support::TestDb;
use webhook_guard::admin::Admin;
use webhook_guard::store::crypt::Sealer;
use webhook_guard::store::feed::FeedOptions;
use webhook_guard::store::{PostgresOptions, PostgresStore};

fn until(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn each_outage_and_each_recovery_of_the_feed_is_logged_once() {
    let captured = Captured::init(tracing::Level::INFO);

    let db = TestDb::new();
    let store =
        PostgresStore::connect(&db.url(), Sealer::plaintext(), PostgresOptions::default()).unwrap();
    let source = store.feed();
    let admin = Admin::builder().open(store).unwrap();
    let options = FeedOptions::default()
        .reconnect(Duration::from_millis(50))
        .poll(Duration::from_millis(50));
    let listener = admin.follow(source, options);
    until("the listener connects", || listener.is_connected());

    for outage in 1..=2 {
        db.admin(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false",
            db.name
        ));
        db.admin(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
            db.name
        ));
        until("the listener notices", || !listener.is_connected());
        // About twenty attempts, each refused.
        std::thread::sleep(Duration::from_secs(1));
        db.admin(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            db.name
        ));
        until("the listener is back", || listener.is_connected());
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            captured.count("change feed disconnected"),
            outage,
            "one warning per outage"
        );
        assert_eq!(
            captured.count("change feed connected"),
            outage + 1,
            "one line per connection: the first and each recovery"
        );
    }
}

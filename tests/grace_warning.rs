//! The `warn` event for a delivery verified with a grace key: the sender has not switched to the
//! current secret yet, which an operator must hear about before the grace period ends, but not
//! once per delivery. It is logged at most once a minute per grace key, never for the current
//! key. Events are captured by a `tracing` layer; time moves only through a `ManualClock`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use webhook_guard::scheme::GitHub;
use webhook_guard::{Clock, KeyId, KeyRole, Keyring, ManualClock, Secret, Signer, Verifier};

const T0: i64 = 1_700_000_000;
const BODY: &[u8] = br#"{"action":"opened"}"#;
const MESSAGE: &str = "delivery verified with a grace key";

/// One captured event: its level and its fields, each as its `Debug` text.
#[derive(Debug, Clone)]
struct Captured {
    level: Level,
    fields: BTreeMap<String, String>,
}

/// A layer that keeps every event.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        struct Fields(BTreeMap<String, String>);
        impl Visit for Fields {
            fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
                self.0.insert(field.name().to_owned(), format!("{value:?}"));
            }
            fn record_str(&mut self, field: &Field, value: &str) {
                self.0.insert(field.name().to_owned(), value.to_owned());
            }
        }
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            fields: fields.0,
        });
    }
}

impl Capture {
    /// The `key` field of every grace-key warning so far, in order.
    fn warned_keys(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| {
                e.fields
                    .get("message")
                    .is_some_and(|m| m.starts_with(MESSAGE))
            })
            .map(|e| e.fields.get("key").cloned().unwrap_or_default())
            .collect()
    }

    /// Every grace-key warning so far.
    fn warnings(&self) -> Vec<Captured> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| {
                e.fields
                    .get("message")
                    .is_some_and(|m| m.starts_with(MESSAGE))
            })
            .cloned()
            .collect()
    }
}

/// Runs `test` with events on this thread captured.
fn captured(test: impl FnOnce(&Capture)) {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || test(&capture));
}

/// A keyring on a manual clock whose keys, oldest first, have ids and secrets `names`: the last
/// is current, the others are grace keys for an hour.
fn keyring(clock: &ManualClock, names: &[&str]) -> Keyring {
    let keyring = Keyring::builder()
        .clock(clock.clone())
        .key_id(KeyId::new(names[0]))
        .build(Secret::from_bytes(names[0]).unwrap());
    for name in &names[1..] {
        keyring
            .rotate_with_id(
                KeyId::new(name),
                Secret::from_bytes(name).unwrap(),
                Duration::from_secs(3600),
            )
            .unwrap();
    }
    keyring
}

/// Verifies a GitHub delivery signed with the secret `name`; asserts it matched key `name` with
/// `role`.
fn deliver(verifier: &Verifier, name: &str, role: KeyRole) {
    let headers = Signer::new(GitHub, Secret::from_bytes(name).unwrap())
        .sign(BODY)
        .unwrap();
    let verified = verifier.verify(&headers, BODY).unwrap();
    assert_eq!((verified.key_id().as_str(), verified.role()), (name, role));
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Seconds since T0 on `clock`.
fn elapsed(clock: &ManualClock) -> i64 {
    clock.now().timestamp() - T0
}

#[test]
fn first_grace_key_match_warns_with_the_key_the_current_key_and_the_scheme() {
    captured(|capture| {
        let clock = ManualClock::at_unix(T0);
        let verifier = Verifier::new(GitHub, keyring(&clock, &["old", "new"]));
        deliver(&verifier, "old", KeyRole::Grace);
        let warnings = capture.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let warning = &warnings[0];
        assert_eq!(warning.level, Level::WARN);
        assert_eq!(warning.fields["key"], "old");
        assert_eq!(warning.fields["current"], "new");
        assert_eq!(warning.fields["scheme"], "github");
    });
}

#[test]
fn grace_key_warning_is_not_repeated_within_sixty_seconds_and_is_after() {
    captured(|capture| {
        let clock = ManualClock::at_unix(T0);
        let verifier = Verifier::new(GitHub, keyring(&clock, &["old", "new"]));
        deliver(&verifier, "old", KeyRole::Grace);
        assert_eq!(capture.warned_keys(), ["old"]);
        // The same second, one later, the last second of the minute: no new warning.
        for step in [0, 1, 58] {
            clock.advance(secs(step));
            deliver(&verifier, "old", KeyRole::Grace);
            assert_eq!(
                capture.warned_keys(),
                ["old"],
                "at T0 + {} s",
                elapsed(&clock)
            );
        }
        // Exactly 60 s after the first warning: warned again.
        clock.advance(secs(1));
        deliver(&verifier, "old", KeyRole::Grace);
        assert_eq!(capture.warned_keys(), ["old", "old"]);
        // The minute now counts from the second warning.
        clock.advance(secs(59));
        deliver(&verifier, "old", KeyRole::Grace);
        assert_eq!(capture.warned_keys(), ["old", "old"]);
        clock.advance(secs(1));
        deliver(&verifier, "old", KeyRole::Grace);
        assert_eq!(capture.warned_keys(), ["old", "old", "old"]);
        // After a long quiet spell: once more, and only once.
        clock.advance(secs(600));
        deliver(&verifier, "old", KeyRole::Grace);
        deliver(&verifier, "old", KeyRole::Grace);
        assert_eq!(capture.warned_keys(), ["old", "old", "old", "old"]);
    });
}

#[test]
fn each_grace_key_is_rate_limited_on_its_own() {
    captured(|capture| {
        let clock = ManualClock::at_unix(T0);
        let verifier = Verifier::new(GitHub, keyring(&clock, &["a", "b", "c"]));
        deliver(&verifier, "a", KeyRole::Grace);
        // Another grace key's first match warns although `a` warned this very second.
        deliver(&verifier, "b", KeyRole::Grace);
        assert_eq!(capture.warned_keys(), ["a", "b"]);
        clock.advance(secs(30));
        deliver(&verifier, "a", KeyRole::Grace);
        deliver(&verifier, "b", KeyRole::Grace);
        assert_eq!(capture.warned_keys(), ["a", "b"]);
        // `b` warned 60 s ago; `a` too, but it is not used: only `b` warns.
        clock.advance(secs(30));
        deliver(&verifier, "b", KeyRole::Grace);
        assert_eq!(capture.warned_keys(), ["a", "b", "b"]);
        // `a`'s own minute has passed as well, independently of `b`'s fresh warning.
        deliver(&verifier, "a", KeyRole::Grace);
        assert_eq!(capture.warned_keys(), ["a", "b", "b", "a"]);
    });
}

#[test]
fn current_key_matches_never_warn() {
    captured(|capture| {
        let clock = ManualClock::at_unix(T0);
        let verifier = Verifier::new(GitHub, keyring(&clock, &["old", "new"]));
        for _ in 0..3 {
            deliver(&verifier, "new", KeyRole::Current);
            clock.advance(secs(61));
        }
        assert_eq!(capture.warned_keys(), Vec::<String>::new());
        // The capture works: a grace key's match right after is reported.
        deliver(&verifier, "old", KeyRole::Grace);
        assert_eq!(capture.warned_keys(), ["old"]);
        // Nor does a current-key match after a grace key has warned.
        deliver(&verifier, "new", KeyRole::Current);
        assert_eq!(capture.warned_keys(), ["old"]);
    });
}

#[test]
fn a_single_key_keyring_never_warns() {
    captured(|capture| {
        let clock = ManualClock::at_unix(T0);
        let verifier = Verifier::new(GitHub, keyring(&clock, &["only"]));
        for _ in 0..3 {
            deliver(&verifier, "only", KeyRole::Current);
            clock.advance(secs(60));
        }
        assert_eq!(capture.warned_keys(), Vec::<String>::new());
        // Events of the keyring itself are captured, so the silence above is not a dead capture.
        verifier
            .keyring()
            .rotate(Secret::from_bytes("next").unwrap(), secs(60))
            .unwrap();
        assert!(capture.0.lock().unwrap().iter().any(|e| e
            .fields
            .get("message")
            .map(String::as_str)
            == Some("keyring rotated")));
    });
}

//! A keyring's key records, exported for a durable store and imported after a restart: the same
//! keys, ids, roles, creation times and expiries, the same verification outcomes, and records
//! that do not describe a keyring refused with a precise error (issue 13, the keyring's part).

use std::time::Duration;

use chrono::{DateTime, Utc};
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{
    Clock, KeyId, KeyRecord, KeyRole, Keyring, ManualClock, RotationError, Secret, Signer, Verifier,
};

const BODY: &[u8] = br#"{"type":"invoice.paid"}"#;

fn secret(text: &str) -> Secret {
    Secret::from_bytes(text).expect("a non-empty secret")
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("a valid time")
}

/// `current` current, `a` and `b` in their grace periods (600 s and 300 s), `revoked` gone.
fn rotated(clock: &ManualClock) -> Keyring {
    let keyring = Keyring::builder()
        .clock(clock.clone())
        .key_id(KeyId::new("key-a"))
        .build(secret("a"));
    keyring
        .rotate(secret("revoked"), Duration::from_secs(600))
        .expect("rotated");
    let revoked = keyring.current_id();
    keyring
        .rotate(secret("b"), Duration::from_secs(300))
        .expect("rotated");
    keyring.revoke(&revoked).unwrap_or_else(|e| panic!("{e}"));
    keyring
        .rotate(secret("current"), Duration::from_secs(300))
        .expect("rotated");
    keyring
}

fn verifies_with(keyring: &Keyring, key: &str, now: DateTime<Utc>) -> Option<(KeyId, KeyRole)> {
    let headers = Signer::new(StandardWebhooks, secret(key))
        .sign_at(BODY, "msg_1", now)
        .expect("signed");
    Verifier::new(StandardWebhooks, keyring.clone())
        .verify_at(&headers, BODY, now)
        .ok()
        .map(|v| (v.key_id().clone(), v.role()))
}

#[test]
fn export_then_import_restores_the_same_keyring() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let keyring = rotated(&clock);
    clock.advance(Duration::from_secs(60));
    let records = keyring.export();
    assert_eq!(records.len(), 3, "the revoked key is not exported");
    assert_eq!(records[0].role, KeyRole::Current);
    assert!(records[1..].iter().all(|r| r.role == KeyRole::Grace));

    let restored = Keyring::builder()
        .clock(clock.clone())
        .import(records)
        .expect("imported");
    assert_eq!(restored.keys(), keyring.keys());
    let now = clock.now();
    for key in ["current", "a", "b", "revoked", "never"] {
        assert_eq!(
            verifies_with(&restored, key, now),
            verifies_with(&keyring, key, now),
            "{key}"
        );
    }
    assert_eq!(
        verifies_with(&restored, "a", now).map(|(id, role)| (id.as_str().to_owned(), role)),
        Some(("key-a".to_owned(), KeyRole::Grace))
    );
    // The restored keyring rotates on from where the old one was.
    restored
        .rotate(secret("next"), Duration::ZERO)
        .expect("rotated");
    assert!(verifies_with(&restored, "current", now).is_none());
}

#[test]
fn grace_keys_that_expired_while_stored_are_left_out() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let records = rotated(&clock).export();
    // 300 s later `b` expired (grace 300 s); `a` (600 s) is still live.
    clock.advance(Duration::from_secs(300));
    let restored = Keyring::builder()
        .clock(clock.clone())
        .import(records)
        .expect("imported");
    assert_eq!(restored.keys().len(), 2);
    assert!(verifies_with(&restored, "b", clock.now()).is_none());
    assert!(verifies_with(&restored, "a", clock.now()).is_some());
}

#[test]
fn records_that_do_not_describe_a_keyring_are_refused() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let record = |id: &str, role: KeyRole, expires_at: Option<i64>| {
        KeyRecord::new(
            KeyId::new(id),
            role,
            at(1_699_999_000),
            expires_at.map(at),
            secret(id),
        )
    };
    let import = |records: Vec<KeyRecord>| {
        Keyring::builder()
            .clock(clock.clone())
            .max_keys(3)
            .import(records)
            .map(|keyring| keyring.keys().len())
    };
    let invalid = |problem| Err(RotationError::InvalidRecords { problem });
    let current = || record("k0", KeyRole::Current, None);
    let grace = |id: &str| record(id, KeyRole::Grace, Some(1_700_000_600));

    assert_eq!(import(vec![]), invalid("no current key"));
    assert_eq!(
        import(vec![grace("k1")]),
        invalid("the first record is not a current key without an expiry")
    );
    assert_eq!(
        import(vec![record("k0", KeyRole::Current, Some(1_700_000_600))]),
        invalid("the first record is not a current key without an expiry")
    );
    assert_eq!(
        import(vec![current(), record("k1", KeyRole::Current, None)]),
        invalid("more than one current key")
    );
    assert_eq!(
        import(vec![current(), record("k1", KeyRole::Grace, None)]),
        invalid("a grace key without an expiry")
    );
    assert_eq!(
        import(vec![current(), grace("k0")]),
        Err(RotationError::DuplicateId {
            id: KeyId::new("k0")
        })
    );
    assert_eq!(
        import(vec![current(), grace("k1"), grace("k2"), grace("k3")]),
        Err(RotationError::TooManyKeys { live: 4, max: 3 })
    );
    assert_eq!(import(vec![current(), grace("k1"), grace("k2")]), Ok(3));
    let message = RotationError::InvalidRecords {
        problem: "no current key",
    }
    .to_string();
    assert_eq!(message, "key records cannot be imported: no current key");
}

#[test]
fn records_redact_their_material_and_reveal_it_only_when_asked() {
    let keyring = Keyring::new(secret("a secret to keep"));
    let records = keyring.export();
    let shown = format!("{records:?}");
    assert!(!shown.contains("a secret to keep"), "{shown}");
    assert!(shown.contains("KeyRecord"), "{shown}");
    let webhook_guard::KeyMaterial::Secret(stored) = &records[0].material else {
        panic!("an HMAC secret");
    };
    assert_eq!(&*stored.reveal().into_bytes(), b"a secret to keep");
}

#[cfg(feature = "ed25519")]
#[test]
fn public_and_signing_keys_round_trip_too() {
    use webhook_guard::scheme::Discord;
    use webhook_guard::SigningKey;

    let clock = ManualClock::at_unix(1_700_000_000);
    let old = SigningKey::ed25519_seed(&[1; 32]).expect("a seed");
    let new = SigningKey::ed25519_seed(&[2; 32]).expect("a seed");
    let keyring = Keyring::builder()
        .clock(clock.clone())
        .build(old.public_key());
    keyring
        .rotate(new.public_key(), Duration::from_secs(600))
        .expect("rotated");
    let restored = Keyring::builder()
        .clock(clock.clone())
        .import(keyring.export())
        .expect("imported");
    for key in [&old, &new] {
        let headers = Signer::new(Discord, key.clone())
            .sign_at(b"{}", "", clock.now())
            .expect("signed");
        let verifier = Verifier::new(Discord, restored.clone());
        assert!(verifier.verify_at(&headers, b"{}", clock.now()).is_ok());
    }
    // A signer's keyring (signing keys) exports and imports as well, still redacted.
    let signer_ring = Keyring::new(new.clone());
    let records = signer_ring.export();
    assert!(format!("{records:?}").contains("redacted"));
    let restored = Keyring::builder().import(records).expect("imported");
    let headers = Signer::from_keyring(Discord, restored)
        .sign(b"{}")
        .expect("signed");
    assert!(Verifier::new(Discord, Keyring::new(new.public_key()))
        .verify(&headers, b"{}")
        .is_ok());
}

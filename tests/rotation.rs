//! Key rotation through the public API: grace periods, expiry boundaries, limits, revocation,
//! regeneration and the `keys()` listing. Time moves only through a `ManualClock`.

use std::time::Duration;

use webhook_guard::scheme::{StandardWebhooks, Stripe};
use webhook_guard::{
    Clock, KeyId, KeyInfo, KeyRole, Keyring, KeyringBuilder, ManualClock, RotationError, Secret,
    Signer, Verifier, VerifyError, DEFAULT_MAX_GRACE, DEFAULT_MAX_KEYS,
};

/// 2023-11-14T22:13:20Z, a whole second.
const T0: i64 = 1_700_000_000;
const BODY: &[u8] = br#"{"type":"invoice.paid","amount":4200}"#;

/// A keyring on a manual clock, with one verifier per timestamped scheme.
struct Fixture {
    clock: ManualClock,
    keyring: Keyring,
    standard: Verifier,
    stripe: Verifier,
}

impl Fixture {
    fn new(first: &Secret) -> Self {
        Self::with(Keyring::builder(), first)
    }

    fn with(builder: KeyringBuilder, first: &Secret) -> Self {
        let clock = ManualClock::at_unix(T0);
        let keyring = builder.clock(clock.clone()).build(first.clone());
        // Deliveries are signed at the clock's "now", so the default 300 s tolerance always
        // holds; a short one makes sure the verifiers really use the shared manual clock.
        let standard =
            Verifier::new(StandardWebhooks, keyring.clone()).tolerance(Duration::from_secs(5));
        let stripe = Verifier::new(Stripe, keyring.clone()).tolerance(Duration::from_secs(5));
        Self {
            clock,
            keyring,
            standard,
            stripe,
        }
    }

    /// Signs a delivery with `secret` now and verifies it now, under both schemes; both must
    /// agree. Returns the matched key and its role.
    fn check(&self, secret: &Secret) -> Result<(KeyId, KeyRole), VerifyError> {
        let standard = {
            let headers = Signer::new(StandardWebhooks, secret.clone())
                .clock(self.clock.clone())
                .sign(BODY)
                .expect("sign standard webhooks");
            self.standard
                .verify(&headers, BODY)
                .map(|v| (v.key_id().clone(), v.role()))
        };
        let stripe = {
            let headers = Signer::new(Stripe, secret.clone())
                .clock(self.clock.clone())
                .sign(BODY)
                .expect("sign stripe");
            self.stripe
                .verify(&headers, BODY)
                .map(|v| (v.key_id().clone(), v.role()))
        };
        assert_eq!(standard, stripe, "schemes disagree at {}", self.clock.now());
        standard
    }

    fn accepted(&self, secret: &Secret, id: &KeyId, role: KeyRole) {
        assert_eq!(
            self.check(secret),
            Ok((id.clone(), role)),
            "expected {id} to verify as {role:?} at {}",
            self.clock.now()
        );
    }

    fn rejected(&self, secret: &Secret, live_keys: usize) {
        assert_eq!(
            self.check(secret),
            Err(VerifyError::NoMatch {
                signatures: 1,
                keys: live_keys,
            }),
            "expected rejection at {}",
            self.clock.now()
        );
    }

    fn ids(&self) -> Vec<KeyId> {
        self.keyring.keys().into_iter().map(|k| k.id).collect()
    }
}

fn secret(n: u8) -> Secret {
    Secret::from_bytes([n; 32]).expect("valid secret")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const MICRO: Duration = Duration::from_micros(1);

#[test]
fn grace_zero_rotation_rejects_old_secret_immediately_and_accepts_new() {
    let (a, b) = (secret(1), secret(2));
    let f = Fixture::new(&a);
    let a_id = f.keyring.current_id();
    f.accepted(&a, &a_id, KeyRole::Current);

    let rotation = f.keyring.rotate(b.clone(), Duration::ZERO).unwrap();

    assert_eq!(rotation.old_key, a_id);
    assert_eq!(rotation.new_key, f.keyring.current_id());
    assert_eq!(rotation.old_expires_at, None);
    let keys = f.keyring.keys();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id, rotation.new_key);
    assert_eq!(keys[0].role, KeyRole::Current);
    assert_eq!(keys[0].expires_at, None);
    assert_eq!(keys[0].created_at, f.clock.now());

    f.rejected(&a, 1);
    f.accepted(&b, &rotation.new_key, KeyRole::Current);
    // Still rejected later, and at the exact same instant as the rotation.
    f.clock.advance(secs(3600));
    f.rejected(&a, 1);
}

fn grace_boundary(grace_secs: u64) {
    let (a, b) = (secret(1), secret(2));
    let f = Fixture::new(&a);
    let a_id = f.keyring.current_id();
    // Rotate at a time with a sub-second part, so the boundary is not on a whole second.
    f.clock.advance(Duration::from_micros(250_000));
    let rotated_at = f.clock.now();

    let rotation = f.keyring.rotate(b.clone(), secs(grace_secs)).unwrap();
    let expires_at = rotated_at + secs(grace_secs);
    assert_eq!(rotation.old_key, a_id);
    assert_eq!(rotation.old_expires_at, Some(expires_at));

    let keys = f.keyring.keys();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        (keys[0].id.clone(), keys[0].role, keys[0].expires_at),
        (rotation.new_key.clone(), KeyRole::Current, None)
    );
    assert_eq!(
        (keys[1].id.clone(), keys[1].role, keys[1].expires_at),
        (a_id.clone(), KeyRole::Grace, Some(expires_at))
    );

    // Right after the rotation both keys verify, with their roles.
    f.accepted(&a, &a_id, KeyRole::Grace);
    f.accepted(&b, &rotation.new_key, KeyRole::Current);

    // One second before expiry (for grace >= 2 s), then one microsecond before: still valid.
    if grace_secs >= 2 {
        f.clock.set(expires_at - secs(1));
        f.accepted(&a, &a_id, KeyRole::Grace);
    }
    f.clock.set(expires_at - MICRO);
    f.accepted(&a, &a_id, KeyRole::Grace);
    assert_eq!(f.keyring.keys().len(), 2);

    // At exactly expires_at the old key is gone: valid only while now < expires_at.
    f.clock.set(expires_at);
    f.rejected(&a, 1);
    f.accepted(&b, &rotation.new_key, KeyRole::Current);
    assert_eq!(f.ids(), vec![rotation.new_key.clone()]);

    f.clock.set(expires_at + MICRO);
    f.rejected(&a, 1);
}

#[test]
fn grace_one_second_old_key_valid_until_exactly_expiry() {
    grace_boundary(1);
}

#[test]
fn grace_ten_minutes_old_key_valid_until_exactly_expiry() {
    grace_boundary(600);
}

#[test]
fn grace_one_hour_old_key_valid_until_exactly_expiry() {
    grace_boundary(3600);
}

#[test]
fn grace_exactly_one_hour_is_the_default_maximum() {
    assert_eq!(DEFAULT_MAX_GRACE, secs(3600));
    let f = Fixture::new(&secret(1));
    let rotation = f.keyring.rotate(secret(2), DEFAULT_MAX_GRACE).unwrap();
    assert_eq!(rotation.old_expires_at, Some(f.clock.now() + secs(3600)));
}

#[test]
fn grace_over_maximum_is_refused_and_keyring_unchanged() {
    let a = secret(1);
    let f = Fixture::new(&a);
    f.keyring.rotate(secret(2), secs(60)).unwrap();
    let current = f.keyring.current_id();
    let before = f.keyring.keys();

    let err = f.keyring.rotate(secret(3), secs(3601)).unwrap_err();
    assert_eq!(
        err,
        RotationError::GraceOutOfRange {
            requested: secs(3601),
            max: secs(3600),
        }
    );
    // Sub-second overshoot is out of range too.
    let err = f.keyring.rotate(secret(3), secs(3600) + MICRO).unwrap_err();
    assert_eq!(
        err,
        RotationError::GraceOutOfRange {
            requested: secs(3600) + MICRO,
            max: secs(3600),
        }
    );

    assert_eq!(f.keyring.current_id(), current);
    assert_eq!(f.keyring.keys(), before);
    f.rejected(&secret(3), 2);
}

#[test]
fn builder_max_grace_raises_the_limit() {
    let week = secs(7 * 24 * 3600);
    let a = secret(1);
    let f = Fixture::with(Keyring::builder().max_grace(week), &a);
    let a_id = f.keyring.current_id();

    let rotation = f.keyring.rotate(secret(2), secs(3601)).unwrap();
    assert_eq!(rotation.old_expires_at, Some(f.clock.now() + secs(3601)));
    let rotation = f.keyring.rotate(secret(3), week).unwrap();
    assert_eq!(rotation.old_expires_at, Some(f.clock.now() + week));

    assert_eq!(
        f.keyring.rotate(secret(4), week + secs(1)).unwrap_err(),
        RotationError::GraceOutOfRange {
            requested: week + secs(1),
            max: week,
        }
    );

    // The first key (grace 3601 s) is still accepted after the default hour.
    f.clock.advance(secs(3600));
    f.accepted(&a, &a_id, KeyRole::Grace);
    f.clock.advance(secs(1));
    f.rejected(&a, 2);
}

#[test]
fn overlapping_rotations_keep_each_grace_keys_own_expiry() {
    let (a, b, c) = (secret(0xA), secret(0xB), secret(0xC));
    let f = Fixture::new(&a);
    let t0 = f.clock.now();
    let a_id = f.keyring.current_id();

    let r1 = f.keyring.rotate(b.clone(), secs(3600)).unwrap();
    let b_id = r1.new_key.clone();
    assert_eq!(r1.old_key, a_id);
    assert_eq!(r1.old_expires_at, Some(t0 + secs(3600)));

    f.clock.advance(secs(300));
    let t1 = f.clock.now();
    let r2 = f.keyring.rotate(c.clone(), secs(600)).unwrap();
    let c_id = r2.new_key.clone();
    assert_eq!(r2.old_key, b_id);
    assert_eq!(r2.old_expires_at, Some(t1 + secs(600)));
    assert_eq!(f.keyring.current_id(), c_id);

    let b_expiry = t0 + secs(900);
    let a_expiry = t0 + secs(3600);

    // Listing: current, then grace keys newest first.
    let keys = f.keyring.keys();
    let listed: Vec<_> = keys
        .iter()
        .map(|k| (k.id.clone(), k.role, k.created_at, k.expires_at))
        .collect();
    assert_eq!(
        listed,
        vec![
            (c_id.clone(), KeyRole::Current, t1, None),
            (b_id.clone(), KeyRole::Grace, t0, Some(b_expiry)),
            (a_id.clone(), KeyRole::Grace, t0, Some(a_expiry)),
        ]
    );

    // t1: all three accepted.
    f.accepted(&a, &a_id, KeyRole::Grace);
    f.accepted(&b, &b_id, KeyRole::Grace);
    f.accepted(&c, &c_id, KeyRole::Current);

    // Just before B's expiry.
    f.clock.set(b_expiry - MICRO);
    f.accepted(&a, &a_id, KeyRole::Grace);
    f.accepted(&b, &b_id, KeyRole::Grace);
    f.accepted(&c, &c_id, KeyRole::Current);

    // At B's expiry: B gone, A still valid.
    f.clock.set(b_expiry);
    f.rejected(&b, 2);
    f.accepted(&a, &a_id, KeyRole::Grace);
    f.accepted(&c, &c_id, KeyRole::Current);
    assert_eq!(f.ids(), vec![c_id.clone(), a_id.clone()]);

    // Half an hour after the first rotation.
    f.clock.set(t0 + secs(1800));
    f.accepted(&a, &a_id, KeyRole::Grace);
    f.rejected(&b, 2);

    // Just before and at A's own expiry.
    f.clock.set(a_expiry - MICRO);
    f.accepted(&a, &a_id, KeyRole::Grace);
    f.clock.set(a_expiry);
    f.rejected(&a, 1);
    f.rejected(&b, 1);
    f.accepted(&c, &c_id, KeyRole::Current);
    let keys = f.keyring.keys();
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0].id.clone(), keys[0].role), (c_id, KeyRole::Current));
}

#[test]
fn expired_keys_are_never_accepted_even_before_pruning_and_are_pruned() {
    let (a, b, c) = (secret(1), secret(2), secret(3));
    let f = Fixture::with(Keyring::builder().max_keys(2), &a);
    let a_id = f.keyring.current_id();
    let r = f.keyring.rotate(b.clone(), secs(60)).unwrap();
    let expiry = r.old_expires_at.unwrap();

    // No write happens after expiry: the entry is still stored, but must not be accepted nor
    // listed.
    f.clock.set(expiry);
    f.rejected(&a, 1);
    assert_eq!(f.ids(), vec![r.new_key.clone()]);

    // verify_at judges keys at the instant it is given, whatever the clock says: expired at
    // `expiry`, live a second before it.
    f.clock.set(expiry - secs(1));
    let headers = Signer::new(StandardWebhooks, a.clone())
        .clock(f.clock.clone())
        .sign(BODY)
        .unwrap();
    assert_eq!(
        f.standard.verify_at(&headers, BODY, expiry),
        Err(VerifyError::NoMatch {
            signatures: 1,
            keys: 1
        })
    );
    assert_eq!(
        f.standard
            .verify_at(&headers, BODY, expiry - secs(1))
            .map(|v| v.role()),
        Ok(KeyRole::Grace)
    );
    // The clock-driven path does not go back: the keyring has judged keys at `expiry`, so
    // the clock stepping back a second does not revive the key (tests/clock_steps.rs).
    assert_eq!(
        f.standard.verify(&headers, BODY),
        Err(VerifyError::NoMatch {
            signatures: 1,
            keys: 1
        })
    );

    // After expiry, the next write prunes the key: with max_keys 2 a grace rotation fits only
    // because the expired key no longer counts.
    f.clock.set(expiry + secs(1));
    let r2 = f.keyring.rotate(c.clone(), secs(60)).unwrap();
    assert_eq!(f.ids(), vec![r2.new_key.clone(), r.new_key.clone()]);

    // Once pruned, winding the clock back does not bring the key back.
    f.clock.set(expiry - secs(10));
    f.rejected(&a, 2);
    assert!(!f.ids().contains(&a_id));
    f.accepted(&b, &r.new_key, KeyRole::Grace);
    f.accepted(&c, &r2.new_key, KeyRole::Current);
}

#[test]
fn default_max_keys_allows_eight_live_keys_and_refuses_a_ninth() {
    assert_eq!(DEFAULT_MAX_KEYS, 8);
    let secrets: Vec<Secret> = (0..10).map(secret).collect();
    let f = Fixture::new(&secrets[0]);
    let mut ids = vec![f.keyring.current_id()];
    for s in &secrets[1..8] {
        ids.push(f.keyring.rotate(s.clone(), secs(600)).unwrap().new_key);
    }
    assert_eq!(f.keyring.keys().len(), 8);
    let current = f.keyring.current_id();
    let before = f.keyring.keys();
    // Listing: newest first.
    let expected: Vec<KeyId> = ids.iter().rev().cloned().collect();
    assert_eq!(f.ids(), expected);

    let err = f.keyring.rotate(secrets[8].clone(), secs(600)).unwrap_err();
    assert_eq!(err, RotationError::TooManyKeys { live: 9, max: 8 });
    assert_eq!(f.keyring.current_id(), current);
    assert_eq!(f.keyring.keys(), before);
    f.rejected(&secrets[8], 8);
    // Every one of the 8 still verifies.
    for (i, (s, id)) in secrets[..8].iter().zip(&ids).enumerate() {
        let role = if i == 7 {
            KeyRole::Current
        } else {
            KeyRole::Grace
        };
        f.accepted(s, id, role);
    }

    // add_grace_key is bounded by the same limit.
    let err = f
        .keyring
        .add_grace_key(secrets[9].clone(), f.clock.now() + secs(60))
        .unwrap_err();
    assert_eq!(err, RotationError::TooManyKeys { live: 9, max: 8 });
    // Unchanged apart from the last_verified stamps the checks above left.
    let shape = |keys: Vec<KeyInfo>| -> Vec<_> {
        keys.into_iter()
            .map(|k| (k.id, k.role, k.created_at, k.expires_at))
            .collect()
    };
    assert_eq!(shape(f.keyring.keys()), shape(before));

    // A grace-0 rotation at the limit drops the old current key, so it fits.
    let r = f
        .keyring
        .rotate(secrets[8].clone(), Duration::ZERO)
        .unwrap();
    assert_eq!(r.old_key, current);
    assert_eq!(f.keyring.keys().len(), 8);
    assert!(!f.ids().contains(&current));
    f.rejected(&secrets[7], 8);
    f.accepted(&secrets[8], &r.new_key, KeyRole::Current);
}

#[test]
fn builder_max_keys_two_limits_live_keys() {
    let (a, b, c) = (secret(1), secret(2), secret(3));
    let f = Fixture::with(Keyring::builder().max_keys(2), &a);
    let a_id = f.keyring.current_id();
    let r1 = f.keyring.rotate(b.clone(), secs(600)).unwrap();
    let before = f.keyring.keys();

    let err = f.keyring.rotate(c.clone(), secs(600)).unwrap_err();
    assert_eq!(err, RotationError::TooManyKeys { live: 3, max: 2 });
    assert_eq!(f.keyring.current_id(), r1.new_key);
    assert_eq!(f.keyring.keys(), before);
    f.rejected(&c, 2);

    // Revoking the grace key makes room.
    f.keyring.revoke(&a_id).unwrap();
    let r2 = f.keyring.rotate(c.clone(), secs(600)).unwrap();
    assert_eq!(f.ids(), vec![r2.new_key.clone(), r1.new_key.clone()]);

    // Grace 0 at the limit succeeds.
    let d = secret(4);
    let r3 = f.keyring.rotate(d.clone(), Duration::ZERO).unwrap();
    assert_eq!(r3.old_key, r2.new_key);
    assert_eq!(f.ids(), vec![r3.new_key.clone(), r1.new_key.clone()]);
    f.rejected(&c, 2);
    f.accepted(&d, &r3.new_key, KeyRole::Current);
    f.accepted(&b, &r1.new_key, KeyRole::Grace);
}

#[test]
fn builder_max_keys_one_allows_only_grace_zero_rotation() {
    let f = Fixture::with(Keyring::builder().max_keys(1), &secret(1));
    assert_eq!(
        f.keyring.rotate(secret(2), secs(1)).unwrap_err(),
        RotationError::TooManyKeys { live: 2, max: 1 }
    );
    // max_keys(0) is clamped to 1.
    let g = Fixture::with(Keyring::builder().max_keys(0), &secret(1));
    assert_eq!(
        g.keyring.rotate(secret(2), secs(1)).unwrap_err(),
        RotationError::TooManyKeys { live: 2, max: 1 }
    );
    let r = g.keyring.rotate(secret(2), Duration::ZERO).unwrap();
    g.accepted(&secret(2), &r.new_key, KeyRole::Current);
}

#[test]
fn revoke_grace_key_rejects_it_at_once() {
    let (a, b, c) = (secret(1), secret(2), secret(3));
    let f = Fixture::new(&a);
    let a_id = f.keyring.current_id();
    let r1 = f.keyring.rotate(b.clone(), secs(3600)).unwrap();
    let r2 = f.keyring.rotate(c.clone(), secs(3600)).unwrap();
    f.accepted(&a, &a_id, KeyRole::Grace);

    f.keyring.revoke(&a_id).unwrap();
    f.rejected(&a, 2);
    assert_eq!(f.ids(), vec![r2.new_key.clone(), r1.new_key.clone()]);
    // The other grace key is untouched.
    f.accepted(&b, &r1.new_key, KeyRole::Grace);
    f.accepted(&c, &r2.new_key, KeyRole::Current);

    // Revoking it again: no live key has that id.
    assert_eq!(
        f.keyring.revoke(&a_id).unwrap_err(),
        RotationError::UnknownKey { id: a_id.clone() }
    );
}

#[test]
fn revoke_current_key_is_refused() {
    let f = Fixture::new(&secret(1));
    f.keyring.rotate(secret(2), secs(600)).unwrap();
    let current = f.keyring.current_id();
    let before = f.keyring.keys();
    assert_eq!(
        f.keyring.revoke(&current).unwrap_err(),
        RotationError::RevokeCurrent {
            id: current.clone()
        }
    );
    assert_eq!(f.keyring.keys(), before);
    f.accepted(&secret(2), &current, KeyRole::Current);
}

#[test]
fn revoke_unknown_or_expired_key_is_unknown_key() {
    let f = Fixture::new(&secret(1));
    let a_id = f.keyring.current_id();
    let unknown = KeyId::new("no-such-key");
    assert_eq!(
        f.keyring.revoke(&unknown).unwrap_err(),
        RotationError::UnknownKey { id: unknown }
    );

    f.keyring.rotate(secret(2), secs(60)).unwrap();
    f.clock.advance(secs(60));
    assert_eq!(
        f.keyring.revoke(&a_id).unwrap_err(),
        RotationError::UnknownKey { id: a_id }
    );
    assert_eq!(f.keyring.keys().len(), 1);
}

/// Standard base64 decoding, enough to compare the revealed secret's bytes.
fn decode_base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn regenerate_reveals_a_whsec_that_verifies_as_current_and_is_never_listed() {
    let a = secret(1);
    let f = Fixture::new(&a);
    let a_id = f.keyring.current_id();

    let (revealed, rotation) = f.keyring.regenerate(secs(600)).unwrap();
    assert_eq!(rotation.old_key, a_id);
    assert_eq!(rotation.new_key, f.keyring.current_id());
    assert_eq!(rotation.old_expires_at, Some(f.clock.now() + secs(600)));
    assert!(!format!("{revealed:?}").contains("whsec_"));

    let whsec = revealed.into_whsec();
    assert!(whsec.starts_with("whsec_"));
    let b64 = whsec["whsec_".len()..].to_owned();
    let bytes = decode_base64(&b64);
    assert_eq!(bytes.len(), 32);
    let hex_text = hex(&bytes);

    let parsed = Secret::from_whsec(&whsec).unwrap();
    assert_eq!(parsed.len(), 32);
    f.accepted(&parsed, &rotation.new_key, KeyRole::Current);
    f.accepted(&a, &a_id, KeyRole::Grace);

    let keys = f.keyring.keys();
    let dumps = [
        format!("{:?}", f.keyring),
        format!("{:#?}", f.keyring),
        format!("{keys:?}"),
        format!("{:?}", f.standard),
        format!("{:?}", parsed),
    ];
    for dump in &dumps {
        for needle in [&b64, &hex_text, &hex_text.to_uppercase()] {
            assert!(!dump.contains(needle.as_str()), "secret leaked in {dump}");
        }
        // The first key, a run of 0x01 bytes.
        assert!(!dump.contains(&hex(&[1u8; 32])), "secret leaked in {dump}");
    }

    // A second regeneration with grace 0 retires the first regenerated key.
    let (_, r2) = f.keyring.regenerate(Duration::ZERO).unwrap();
    assert_eq!(r2.old_key, rotation.new_key);
    f.rejected(&parsed, 2);
}

#[test]
fn keys_listing_debug_never_contains_secret_text() {
    let text = "my-very-recognisable-signing-secret";
    let s = Secret::from_bytes(text).unwrap();
    let f = Fixture::new(&s);
    f.keyring.rotate(secret(7), secs(60)).unwrap();
    let b64_of_text = "bXktdmVyeS1yZWNvZ25pc2FibGUtc2lnbmluZy1zZWNyZXQ";
    let hex_text = hex(text.as_bytes());
    let dumps = [
        format!("{:?}", f.keyring),
        format!("{:#?}", f.keyring.keys()),
        format!("{:?}", f.stripe),
    ];
    for dump in &dumps {
        for needle in [text, b64_of_text, hex_text.as_str()] {
            assert!(!dump.contains(needle), "secret leaked in {dump}");
        }
        assert!(!dump.contains(&hex(&[7u8; 32])));
    }
}

#[test]
fn keys_last_verified_is_none_until_a_verification_then_truncated_to_seconds() {
    let (a, b) = (secret(1), secret(2));
    let f = Fixture::new(&a);
    let a_id = f.keyring.current_id();
    let r = f.keyring.rotate(b.clone(), secs(600)).unwrap();
    let last =
        |id: &KeyId| -> Option<KeyInfo> { f.keyring.keys().into_iter().find(|k| &k.id == id) };

    assert_eq!(last(&a_id).unwrap().last_verified, None);
    assert_eq!(last(&r.new_key).unwrap().last_verified, None);

    f.clock.advance(Duration::from_micros(42_123_456));
    let now = f.clock.now();
    let truncated = now - Duration::from_micros(u64::from(now.timestamp_subsec_micros()));
    assert_eq!(truncated.timestamp(), T0 + 42);
    assert_eq!(truncated.timestamp_subsec_micros(), 0);

    f.accepted(&b, &r.new_key, KeyRole::Current);
    assert_eq!(last(&r.new_key).unwrap().last_verified, Some(truncated));
    assert_eq!(last(&a_id).unwrap().last_verified, None);

    // A failed verification touches nothing.
    f.clock.advance(secs(5));
    f.rejected(&secret(99), 2);
    assert_eq!(last(&r.new_key).unwrap().last_verified, Some(truncated));
    assert_eq!(last(&a_id).unwrap().last_verified, None);

    // The grace key records its own verification.
    let now2 = f.clock.now();
    f.accepted(&a, &a_id, KeyRole::Grace);
    let truncated2 = now2 - Duration::from_micros(u64::from(now2.timestamp_subsec_micros()));
    assert_eq!(last(&a_id).unwrap().last_verified, Some(truncated2));
    assert_eq!(last(&r.new_key).unwrap().last_verified, Some(truncated));
}

#[test]
fn add_grace_key_in_the_past_is_already_expired() {
    let f = Fixture::new(&secret(1));
    f.clock.advance(Duration::from_micros(500));
    let now = f.clock.now();
    let before = f.keyring.keys();

    let past = now - secs(1);
    assert_eq!(
        f.keyring.add_grace_key(secret(2), past).unwrap_err(),
        RotationError::AlreadyExpired {
            expires_at: past,
            now,
        }
    );
    // "Not after now": exactly now is refused too.
    assert_eq!(
        f.keyring.add_grace_key(secret(2), now).unwrap_err(),
        RotationError::AlreadyExpired {
            expires_at: now,
            now,
        }
    );
    assert_eq!(f.keyring.keys(), before);
    f.rejected(&secret(2), 1);
}

#[test]
fn add_grace_key_with_future_expiry_verifies_as_grace_until_it() {
    let (a, old) = (secret(1), secret(2));
    let f = Fixture::new(&a);
    let a_id = f.keyring.current_id();
    let expires_at = f.clock.now() + secs(300);

    let id = f.keyring.add_grace_key(old.clone(), expires_at).unwrap();
    assert_eq!(f.keyring.current_id(), a_id);
    let keys = f.keyring.keys();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        (keys[1].id.clone(), keys[1].role, keys[1].expires_at),
        (id.clone(), KeyRole::Grace, Some(expires_at))
    );
    assert_eq!(keys[1].created_at, f.clock.now());

    f.accepted(&old, &id, KeyRole::Grace);
    f.accepted(&a, &a_id, KeyRole::Current);
    f.clock.set(expires_at - MICRO);
    f.accepted(&old, &id, KeyRole::Grace);
    f.clock.set(expires_at);
    f.rejected(&old, 1);
}

#[test]
fn add_grace_key_orders_grace_keys_by_expiry_latest_first() {
    let f = Fixture::new(&secret(1));
    let now = f.clock.now();
    let mid = f.keyring.add_grace_key(secret(2), now + secs(200)).unwrap();
    let late = f.keyring.add_grace_key(secret(3), now + secs(300)).unwrap();
    let early = f.keyring.add_grace_key(secret(4), now + secs(100)).unwrap();
    let ids = f.ids();
    assert_eq!(ids[1..], [late, mid, early]);
}

#[test]
fn rotate_with_id_refuses_a_duplicate_live_id() {
    let f = Fixture::with(Keyring::builder().key_id(KeyId::new("a")), &secret(1));
    assert_eq!(f.keyring.current_id(), KeyId::new("a"));

    // Duplicate of the current key.
    assert_eq!(
        f.keyring
            .rotate_with_id(KeyId::new("a"), secret(2), secs(60))
            .unwrap_err(),
        RotationError::DuplicateId {
            id: KeyId::new("a")
        }
    );
    assert_eq!(f.ids(), vec![KeyId::new("a")]);

    let r = f
        .keyring
        .rotate_with_id(KeyId::new("b"), secret(2), secs(60))
        .unwrap();
    assert_eq!(r.new_key, KeyId::new("b"));
    assert_eq!(r.old_key, KeyId::new("a"));

    // Duplicate of a grace key.
    let before = f.keyring.keys();
    assert_eq!(
        f.keyring
            .rotate_with_id(KeyId::new("a"), secret(3), secs(60))
            .unwrap_err(),
        RotationError::DuplicateId {
            id: KeyId::new("a")
        }
    );
    assert_eq!(f.keyring.keys(), before);
    f.rejected(&secret(3), 2);

    // Once "a" has expired, its id is free again.
    f.clock.advance(secs(60));
    let r = f
        .keyring
        .rotate_with_id(KeyId::new("a"), secret(3), secs(60))
        .unwrap();
    assert_eq!(r.old_key, KeyId::new("b"));
    assert_eq!(f.ids(), vec![KeyId::new("a"), KeyId::new("b")]);
    f.accepted(&secret(3), &KeyId::new("a"), KeyRole::Current);
    f.rejected(&secret(1), 2);
}

#[test]
fn add_grace_key_is_bounded_by_the_maximum_grace_period() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let keyring = Keyring::builder()
        .clock(clock.clone())
        .build(Secret::from_bytes("current").unwrap());
    let too_far = clock.now() + chrono::Duration::seconds(3601);
    assert_eq!(
        keyring
            .add_grace_key(Secret::from_bytes("old").unwrap(), too_far)
            .unwrap_err(),
        RotationError::GraceOutOfRange {
            requested: Duration::from_secs(3601),
            max: Duration::from_secs(3600),
        }
    );
    assert_eq!(keyring.keys().len(), 1);
    let at_limit = clock.now() + chrono::Duration::seconds(3600);
    keyring
        .add_grace_key(Secret::from_bytes("old").unwrap(), at_limit)
        .unwrap();
    assert_eq!(keyring.keys().len(), 2);
}

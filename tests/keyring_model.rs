//! Model-based test of the keyring: random sequences of rotations, regenerations, revocations,
//! added grace keys and clock moves, checked after every step against a plain reference model
//! of the documented semantics.

use std::time::Duration;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{
    Clock, KeyId, KeyInfo, KeyRole, Keyring, ManualClock, RotationError, Secret, Signer, Verifier,
    VerifyError, DEFAULT_MAX_GRACE, DEFAULT_MAX_KEYS,
};

const T0: i64 = 1_700_000_000;
const MAX_GRACE: u64 = 3600;
const MAX_KEYS: usize = 8;
const BODY: &[u8] = br#"{"type":"model.step"}"#;

#[derive(Debug, Clone)]
enum RevokeTarget {
    /// The n-th (modulo) live grace key of the model.
    Grace(prop::sample::Index),
    /// The current key.
    Current,
    /// A key that was live once and no longer is (if any), else an unknown id.
    Dead(prop::sample::Index),
    /// An id no key ever had.
    Unknown(String),
}

#[derive(Debug, Clone)]
enum Op {
    Rotate { grace_secs: u64 },
    Regenerate { grace_secs: u64 },
    Revoke(RevokeTarget),
    AddGraceKey { expires_in_secs: i64 },
    Advance { secs: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..=4000).prop_map(|grace_secs| Op::Rotate { grace_secs }),
        1 => (0u64..=4000).prop_map(|grace_secs| Op::Regenerate { grace_secs }),
        2 => prop_oneof![
            4 => any::<prop::sample::Index>().prop_map(RevokeTarget::Grace),
            1 => Just(RevokeTarget::Current),
            1 => any::<prop::sample::Index>().prop_map(RevokeTarget::Dead),
            1 => "[a-z0-9_]{1,12}".prop_map(|s| RevokeTarget::Unknown(format!("unknown-{s}"))),
        ]
        .prop_map(Op::Revoke),
        3 => (-200i64..=4000).prop_map(|expires_in_secs| Op::AddGraceKey { expires_in_secs }),
        3 => (0u64..2000).prop_map(|secs| Op::Advance { secs }),
    ]
}

/// One key as the model sees it.
#[derive(Debug, Clone)]
struct ModelKey {
    id: KeyId,
    secret: Secret,
    created_at: DateTime<Utc>,
    /// `None` for the current key.
    expires_at: Option<DateTime<Utc>>,
}

/// The reference model: `live[0]` is current, then grace keys in listing order; `dead` holds
/// every key that was live once and is no longer (expired, revoked or rotated away with no
/// grace).
struct Model {
    live: Vec<ModelKey>,
    dead: Vec<ModelKey>,
}

impl Model {
    /// Moves the keys expired at `now` to `dead`: a key is valid while `now < expires_at`.
    fn expire(&mut self, now: DateTime<Utc>) {
        let (live, expired): (Vec<_>, Vec<_>) = self
            .live
            .drain(..)
            .partition(|k| k.expires_at.is_none_or(|at| now < at));
        self.live = live;
        self.dead.extend(expired);
    }

    fn rotate(
        &mut self,
        new: ModelKey,
        grace: Duration,
        now: DateTime<Utc>,
    ) -> Result<(KeyId, Option<DateTime<Utc>>), RotationError> {
        if grace > Duration::from_secs(MAX_GRACE) {
            return Err(RotationError::GraceOutOfRange {
                requested: grace,
                max: Duration::from_secs(MAX_GRACE),
            });
        }
        let mut next = self.live.clone();
        let old_id = next[0].id.clone();
        let old_expires = (!grace.is_zero()).then(|| now + grace);
        let mut retired = None;
        match old_expires {
            Some(at) => next[0].expires_at = Some(at),
            None => retired = Some(next.remove(0)),
        }
        next.insert(0, new);
        if next.len() > MAX_KEYS {
            return Err(RotationError::TooManyKeys {
                live: next.len(),
                max: MAX_KEYS,
            });
        }
        self.live = next;
        self.dead.extend(retired);
        Ok((old_id, old_expires))
    }

    fn revoke(&mut self, id: &KeyId) -> Result<(), RotationError> {
        let index = self
            .live
            .iter()
            .position(|k| &k.id == id)
            .ok_or_else(|| RotationError::UnknownKey { id: id.clone() })?;
        if index == 0 {
            return Err(RotationError::RevokeCurrent { id: id.clone() });
        }
        let key = self.live.remove(index);
        self.dead.push(key);
        Ok(())
    }

    /// Adds a grace key, returning where it goes in the listing; the id is filled in by the
    /// caller once the keyring has chosen it.
    fn add_grace_key(&mut self, key: ModelKey, now: DateTime<Utc>) -> Result<usize, RotationError> {
        let expires_at = key.expires_at.unwrap();
        if expires_at <= now {
            return Err(RotationError::AlreadyExpired { expires_at, now });
        }
        let requested = (expires_at - now).to_std().unwrap();
        if requested > Duration::from_secs(MAX_GRACE) {
            return Err(RotationError::GraceOutOfRange {
                requested,
                max: Duration::from_secs(MAX_GRACE),
            });
        }
        if self.live.len() + 1 > MAX_KEYS {
            return Err(RotationError::TooManyKeys {
                live: self.live.len() + 1,
                max: MAX_KEYS,
            });
        }
        // src/keyring.rs: "Grace keys are ordered by expiry, latest first, after the current
        // key": before the first grace key expiring strictly earlier, else last. (A rotation
        // puts the old current key first among the grace keys whatever its expiry.)
        let at = self
            .live
            .iter()
            .skip(1)
            .position(|k| k.expires_at.unwrap() < expires_at)
            .map_or(self.live.len(), |p| p + 1);
        self.live.insert(at, key);
        Ok(at)
    }
}

fn role(index: usize) -> KeyRole {
    if index == 0 {
        KeyRole::Current
    } else {
        KeyRole::Grace
    }
}

struct System {
    clock: ManualClock,
    keyring: Keyring,
    verifier: Verifier,
    model: Model,
    /// Numbers the secrets, so that no two keys ever share one.
    next_secret: u32,
}

impl System {
    fn new() -> Self {
        assert_eq!(DEFAULT_MAX_GRACE, Duration::from_secs(MAX_GRACE));
        assert_eq!(DEFAULT_MAX_KEYS, MAX_KEYS);
        let clock = ManualClock::at_unix(T0);
        let first = Secret::from_bytes("model secret 0").unwrap();
        let keyring = Keyring::builder()
            .clock(clock.clone())
            .key_id(KeyId::new("k0"))
            .build(first.clone());
        let verifier = Verifier::new(StandardWebhooks, keyring.clone());
        let model = Model {
            live: vec![ModelKey {
                id: KeyId::new("k0"),
                secret: first,
                created_at: clock.now(),
                expires_at: None,
            }],
            dead: Vec::new(),
        };
        Self {
            clock,
            keyring,
            verifier,
            model,
            next_secret: 1,
        }
    }

    fn fresh_secret(&mut self) -> Secret {
        let secret = Secret::from_bytes(format!("model secret {}", self.next_secret)).unwrap();
        self.next_secret += 1;
        secret
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let now = self.clock.now();
        self.model.expire(now);
        match op {
            Op::Rotate { grace_secs } | Op::Regenerate { grace_secs } => {
                let grace = Duration::from_secs(*grace_secs);
                let (secret, actual) = if matches!(op, Op::Rotate { .. }) {
                    let secret = self.fresh_secret();
                    let actual = self.keyring.rotate(secret.clone(), grace);
                    (Some(secret), actual)
                } else {
                    match self.keyring.regenerate(grace) {
                        Ok((revealed, rotation)) => (Some(revealed.secret()), Ok(rotation)),
                        Err(e) => (None, Err(e)),
                    }
                };
                let new_id = actual.as_ref().map(|r| r.new_key.clone());
                let new = ModelKey {
                    id: new_id.clone().unwrap_or_else(|_| KeyId::new("never-added")),
                    // On error the secret is never used; any placeholder does.
                    secret: secret.unwrap_or_else(|| Secret::from_bytes("unused").unwrap()),
                    created_at: now,
                    expires_at: None,
                };
                let expected = self.model.rotate(new, grace, now);
                match (&actual, &expected) {
                    (Ok(rotation), Ok((old_id, old_expires))) => {
                        prop_assert_eq!(&rotation.old_key, old_id);
                        prop_assert_eq!(rotation.old_expires_at, *old_expires);
                    }
                    (Err(a), Err(e)) => prop_assert_eq!(a, e),
                    _ => prop_assert!(
                        false,
                        "{:?}: keyring {:?}, model {:?}",
                        op,
                        actual,
                        expected
                    ),
                }
            }
            Op::Revoke(target) => {
                let id = match target {
                    RevokeTarget::Grace(i) if self.model.live.len() > 1 => self.model.live
                        [1 + i.index(self.model.live.len() - 1)]
                    .id
                    .clone(),
                    RevokeTarget::Current => self.model.live[0].id.clone(),
                    RevokeTarget::Dead(i) if !self.model.dead.is_empty() => {
                        self.model.dead[i.index(self.model.dead.len())].id.clone()
                    }
                    RevokeTarget::Unknown(name) => KeyId::new(name),
                    RevokeTarget::Grace(_) | RevokeTarget::Dead(_) => {
                        KeyId::new("unknown-fallback")
                    }
                };
                let actual = self.keyring.revoke(&id);
                let expected = self.model.revoke(&id);
                prop_assert_eq!(actual, expected, "{:?}", op);
            }
            Op::AddGraceKey { expires_in_secs } => {
                let expires_at = now + chrono::Duration::seconds(*expires_in_secs);
                let secret = self.fresh_secret();
                let actual = self.keyring.add_grace_key(secret.clone(), expires_at);
                let key = ModelKey {
                    id: KeyId::new("pending"),
                    secret,
                    created_at: now,
                    expires_at: Some(expires_at),
                };
                let expected = self.model.add_grace_key(key, now);
                match (&actual, &expected) {
                    (Ok(id), Ok(at)) => self.model.live[*at].id = id.clone(),
                    (Err(a), Err(e)) => prop_assert_eq!(a, e),
                    _ => prop_assert!(
                        false,
                        "{:?}: keyring {:?}, model {:?}",
                        op,
                        actual,
                        expected
                    ),
                }
            }
            Op::Advance { secs } => self.clock.advance(Duration::from_secs(*secs)),
        }
        self.check()
    }

    /// Every live key verifies with its role, every dead one is refused, and `keys()` lists
    /// exactly the live keys in order.
    fn check(&mut self) -> Result<(), TestCaseError> {
        let now = self.clock.now();
        self.model.expire(now);
        let live = self.model.live.len();
        for (i, key) in self.model.live.iter().enumerate() {
            let headers = Signer::new(StandardWebhooks, key.secret.clone())
                .sign_at(BODY, "msg_model", now)
                .unwrap();
            let verified = self.verifier.verify(&headers, BODY);
            prop_assert!(
                verified.is_ok(),
                "live key {} (#{}) refused: {:?}",
                key.id,
                i,
                verified
            );
            let verified = verified.unwrap();
            prop_assert_eq!(verified.key_id(), &key.id);
            prop_assert_eq!(verified.role(), role(i));
        }
        for key in &self.model.dead {
            let headers = Signer::new(StandardWebhooks, key.secret.clone())
                .sign_at(BODY, "msg_model", now)
                .unwrap();
            prop_assert_eq!(
                self.verifier.verify(&headers, BODY),
                Err(VerifyError::NoMatch {
                    signatures: 1,
                    keys: live
                }),
                "dead key {} accepted",
                &key.id
            );
        }
        let listed: Vec<KeyInfo> = self.keyring.keys();
        let ids: Vec<&KeyId> = listed.iter().map(|k| &k.id).collect();
        let expected_ids: Vec<&KeyId> = self.model.live.iter().map(|k| &k.id).collect();
        prop_assert_eq!(ids, expected_ids);
        for (i, (info, key)) in listed.iter().zip(&self.model.live).enumerate() {
            prop_assert_eq!(info.role, role(i));
            prop_assert_eq!(info.expires_at, key.expires_at, "expiry of {}", &key.id);
            prop_assert_eq!(info.created_at, key.created_at, "creation of {}", &key.id);
            // Every live key was just verified, at `now`.
            prop_assert_eq!(
                info.last_verified.map(|t| t.timestamp()),
                Some(now.timestamp())
            );
        }
        prop_assert_eq!(&self.keyring.current_id(), &self.model.live[0].id);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(256)
    })]

    #[test]
    fn keyring_matches_the_model(ops in prop::collection::vec(op(), 0..=40)) {
        let mut system = System::new();
        system.check()?;
        for op in &ops {
            system.step(op)?;
        }
    }
}

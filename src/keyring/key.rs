//! One key ([`Key`]: its material keyed once, its bookkeeping) and the immutable set of them a
//! keyring swaps ([`KeySet`]).

use super::*;

/// One key: its secret, the HMAC keyed with it once, and its bookkeeping.
pub(crate) struct Key {
    pub(crate) id: KeyId,
    pub(crate) created_at: DateTime<Utc>,
    pub(super) material: Material,
    /// Set when the key is invalidated at once (grace 0 or revoke), so a request that took its
    /// snapshot before the change still cannot be accepted after the change returned.
    pub(super) retired: AtomicBool,
    /// Unix seconds of the last verification, [`NEVER`] for never.
    pub(super) last_verified: AtomicI64,
    /// Unix seconds of the last grace-key warning, for rate limiting.
    pub(super) last_warned: AtomicI64,
}

/// A key's material, prepared for use.
// The HMAC variant is the large one and the common one: boxing it would add a pointer chase to
// every verification, and keys already sit behind an `Arc`.
#[allow(clippy::large_enum_variant)]
pub(super) enum Material {
    Hmac {
        /// Kept for keying other algorithms and, later, durable stores; never readable from
        /// outside the crate.
        secret: Secret,
        /// Keyed once when the key is built; cloned per request instead of re-running the key
        /// schedule.
        mac: HmacSha256,
        /// The same for HMAC-SHA1 (Twilio), keyed on first use.
        sha1: OnceLock<Hmac<Sha1>>,
    },
    Public(PublicKey),
    Signing(SigningKey),
}

impl Key {
    /// The key material, for [`Keyring::export`].
    // Without a public-key feature `PublicKey` is uninhabited, so its arm is unreachable.
    #[allow(unreachable_code)]
    pub(super) fn material(&self) -> KeyMaterial {
        match &self.material {
            Material::Hmac { secret, .. } => KeyMaterial::Secret(secret.clone()),
            Material::Public(key) => KeyMaterial::Public(key.clone()),
            Material::Signing(key) => KeyMaterial::Signing(key.clone()),
        }
    }

    pub(crate) fn new(id: KeyId, material: KeyMaterial, created_at: DateTime<Utc>) -> Self {
        let material = match material {
            KeyMaterial::Secret(secret) => Material::Hmac {
                mac: HmacSha256::new_from_slice(secret.expose())
                    .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length")),
                secret,
                sha1: OnceLock::new(),
            },
            KeyMaterial::Public(key) => Material::Public(key),
            KeyMaterial::Signing(key) => Material::Signing(key),
        };
        Self {
            id,
            created_at,
            material,
            retired: AtomicBool::new(false),
            last_verified: AtomicI64::new(NEVER),
            last_warned: AtomicI64::new(i64::MIN),
        }
    }

    /// The MAC of the content `write` feeds, under this key with `algorithm`; `None` when this
    /// is not a shared secret or `algorithm` is not a MAC.
    pub(crate) fn tag(
        &self,
        algorithm: Algorithm,
        write: impl FnOnce(&mut dyn FnMut(&[u8])),
    ) -> Option<Tag> {
        let Material::Hmac { secret, mac, sha1 } = &self.material else {
            return None;
        };
        match algorithm {
            Algorithm::HmacSha256 => {
                let mut mac = mac.clone();
                write(&mut |part| mac.update(part));
                Some(Tag::from(<[u8; 32]>::from(mac.finalize().into_bytes())))
            }
            Algorithm::HmacSha1 => {
                let keyed = sha1.get_or_init(|| {
                    Hmac::<Sha1>::new_from_slice(secret.expose())
                        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
                });
                let mut mac = keyed.clone();
                write(&mut |part| mac.update(part));
                Some(mac.finalize().into_bytes().iter().copied().collect())
            }
            _ => None,
        }
    }

    /// Whether `signature` is this public key's signature of `message` with `algorithm`.
    #[allow(unused_variables)]
    pub(crate) fn verifies(&self, algorithm: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        #[cfg(feature = "ed25519")]
        let derived;
        let public = match &self.material {
            Material::Public(key) => key,
            #[cfg(feature = "ed25519")]
            Material::Signing(key) => {
                derived = key.public_key();
                &derived
            }
            _ => return false,
        };
        match (algorithm, &public.inner) {
            #[cfg(feature = "ed25519")]
            (Algorithm::Ed25519, PublicInner::Ed25519(key)) => {
                ed25519_dalek::Signature::from_slice(signature)
                    .is_ok_and(|sig| key.verify_strict(message, &sig).is_ok())
            }
            #[cfg(feature = "paypal")]
            (Algorithm::RsaPkcs1Sha256, PublicInner::Rsa(key)) => {
                use rsa::signature::Verifier as _;
                rsa::pkcs1v15::Signature::try_from(signature)
                    .is_ok_and(|sig| key.verify(message, &sig).is_ok())
            }
            #[cfg(feature = "ecdsa")]
            (Algorithm::EcdsaP256Sha256, PublicInner::P256(key)) => {
                use p256::ecdsa::signature::Verifier as _;
                p256::ecdsa::Signature::from_der(signature)
                    .is_ok_and(|sig| key.verify(message, &sig).is_ok())
            }
            _ => false,
        }
    }

    /// This signing key's signature of `message` with `algorithm`, if it can make one.
    #[allow(unused_variables)]
    pub(crate) fn sign(&self, algorithm: Algorithm, message: &[u8]) -> Option<Vec<u8>> {
        match (&self.material, algorithm) {
            #[cfg(feature = "ed25519")]
            (Material::Signing(key), Algorithm::Ed25519) => {
                use ed25519_dalek::Signer as _;
                Some(key.inner.sign(message).to_bytes().to_vec())
            }
            _ => None,
        }
    }

    /// The keyed HMAC-SHA256 state of a shared-secret key.
    pub(crate) fn keyed_sha256(&self) -> Option<&HmacSha256> {
        match &self.material {
            Material::Hmac { mac, .. } => Some(mac),
            _ => None,
        }
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }

    /// Records a verification; writes only when the second changed, so readers on many cores do
    /// not fight over the cache line.
    pub(crate) fn mark_verified(&self, secs: i64) {
        if self.last_verified.load(Ordering::Relaxed) != secs {
            self.last_verified.store(secs, Ordering::Relaxed);
        }
    }

    /// True at most once per `every` for this key, across threads.
    pub(crate) fn should_warn(&self, secs: i64, every: Duration) -> bool {
        let last = self.last_warned.load(Ordering::Relaxed);
        let every = i64::try_from(every.as_secs()).unwrap_or(i64::MAX);
        secs.saturating_sub(last) >= every
            && self
                .last_warned
                .compare_exchange(last, secs, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let material: &dyn fmt::Debug = match &self.material {
            Material::Hmac { secret, .. } => secret,
            Material::Public(key) => key,
            Material::Signing(key) => key,
        };
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .field("material", material)
            .finish_non_exhaustive()
    }
}

/// A key as it stands in one key set: grace keys carry their expiry.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) key: Arc<Key>,
    pub(crate) expires_at: Option<DateTime<Utc>>,
}

impl Entry {
    pub(super) fn is_live(&self, now: Now) -> bool {
        self.expires_at.is_none_or(|at| now < Now::from(at))
    }
}

/// An immutable set of keys: `entries[0]` is current, the rest are grace keys, newest first.
#[derive(Debug)]
pub(crate) struct KeySet {
    pub(super) entries: Vec<Entry>,
}

impl KeySet {
    /// The keys a request may match at `now`, current first, each with its role.
    pub(crate) fn live(&self, now: Now) -> impl Iterator<Item = (&Arc<Key>, KeyRole)> {
        self.entries
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.is_live(now) && !e.key.is_retired())
            .map(|(i, e)| (&e.key, role_at(i)))
    }

    pub(crate) fn current(&self) -> &Arc<Key> {
        &self.entries[0].key
    }

    /// The entries still live at `now`, which is what a write starts from (pruning the rest).
    pub(super) fn pruned(&self, now: DateTime<Utc>) -> Vec<Entry> {
        self.entries
            .iter()
            .filter(|e| e.is_live(now.into()) && !e.key.is_retired())
            .cloned()
            .collect()
    }
}

pub(super) fn role_at(index: usize) -> KeyRole {
    if index == 0 {
        KeyRole::Current
    } else {
        KeyRole::Grace
    }
}

pub(super) fn record_of(role: KeyRole, e: &Entry) -> KeyRecord {
    KeyRecord {
        id: e.key.id.clone(),
        role,
        created_at: e.key.created_at,
        expires_at: e.expires_at,
        material: e.key.material(),
    }
}

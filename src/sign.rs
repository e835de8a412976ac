//! Producing signed deliveries: [`Signer`], for senders, tests and examples.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::header::HeaderMap;

use crate::clock::{Clock, SystemClock};
use crate::error::SignError;
use crate::keyring::{random_u64, Key, KeyId, Keyring};
use crate::public_key::KeyMaterial;
use crate::scheme::{outgoing, Algorithm, Scheme, Signature};

/// Signs deliveries the way a sender of one [`Scheme`] does.
///
/// # Examples
///
/// ```
/// use webhook_guard::{scheme::GitHub, Secret, Signer};
///
/// let signer = Signer::new(GitHub, Secret::from_bytes("It's a Secret to Everybody")?);
/// let headers = signer.sign(b"Hello, World!")?;
/// assert_eq!(
///     headers["x-hub-signature-256"],
///     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Signer {
    scheme: Arc<dyn Scheme>,
    keys: Keys,
    clock: Arc<dyn Clock>,
    url: Option<String>,
}

impl Signer {
    /// A signer for `scheme` with one key: a shared secret, or an Ed25519
    /// [`SigningKey`](crate::SigningKey) for Standard Webhooks `v1a`.
    pub fn new(scheme: impl Scheme, key: impl Into<KeyMaterial>) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let key = Key::new(KeyId::new("signer"), key.into(), clock.now());
        Self {
            scheme: Arc::new(scheme),
            keys: Keys::Fixed(Arc::new(key)),
            clock,
            url: None,
        }
    }

    /// A signer that signs with every live key of `keyring`, current first, as platforms do
    /// while they rotate: during a grace period each delivery carries one signature per live
    /// secret (for schemes with room for several: Standard Webhooks, Stripe, Paddle, a custom
    /// scheme with a separator), so a receiver that still holds only the old secret, or already
    /// holds only the new one, verifies it. Schemes with room for one signature get the current
    /// key's. The signer follows later rotations of the keyring.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use webhook_guard::{scheme::StandardWebhooks, Keyring, Secret, Signer, Verifier};
    ///
    /// let old = Secret::from_bytes("old secret")?;
    /// let sender = Keyring::new(old.clone());
    /// let signer = Signer::from_keyring(StandardWebhooks, sender.clone());
    /// let receiver = Verifier::new(StandardWebhooks, Keyring::new(old)); // not told yet
    ///
    /// sender.rotate(Secret::from_bytes("new secret")?, Duration::from_secs(3600))?;
    /// let headers = signer.sign(b"{}")?;
    /// assert_eq!(headers["webhook-signature"].to_str()?.matches("v1,").count(), 2);
    /// receiver.verify(&headers, b"{}")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_keyring(scheme: impl Scheme, keyring: Keyring) -> Self {
        Self {
            scheme: Arc::new(scheme),
            clock: keyring.clock(),
            keys: Keys::Ring(keyring),
            url: None,
        }
    }

    /// The full URL deliveries are posted to, for schemes that sign it (Square, Twilio).
    /// Default: none.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The clock [`sign`](Signer::sign) stamps deliveries with. Default: the system clock.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Signs `body` now, with a fresh random id (`msg_…`) for schemes that carry one.
    ///
    /// # Errors
    ///
    /// As for [`sign_at`](Signer::sign_at).
    pub fn sign(&self, body: &[u8]) -> Result<HeaderMap, SignError> {
        let id = format!("msg_{:016x}", random_u64());
        self.sign_at(body, &id, self.clock.now())
    }

    /// Signs `body` with webhook id `id` (ignored by schemes without one) at `timestamp`,
    /// returning the headers to send.
    ///
    /// # Errors
    ///
    /// [`SignError::InvalidHeaderValue`] when `id` cannot be a header value (or starts or ends
    /// with white space, which HTTP would strip); [`SignError::UrlRequired`] for a scheme that
    /// signs the URL when no [`url`](Signer::url) was set.
    pub fn sign_at(
        &self,
        body: &[u8],
        id: &str,
        timestamp: DateTime<Utc>,
    ) -> Result<HeaderMap, SignError> {
        let scheme = &*self.scheme;
        if id.trim() != id {
            return Err(SignError::InvalidId);
        }
        if scheme.uses_url() && self.url.is_none() {
            return Err(SignError::UrlRequired {
                scheme: scheme.name(),
            });
        }
        let text = scheme.timestamp_text(timestamp);
        let ts = text.as_deref().map(|t| (timestamp.timestamp(), t));
        let delivery = outgoing(
            (!id.is_empty()).then_some(id),
            ts,
            self.url.as_deref(),
            body,
        );
        let algorithm = scheme.algorithm();
        let keys: Vec<Arc<Key>> = match &self.keys {
            Keys::Fixed(key) => vec![Arc::clone(key)],
            Keys::Ring(keyring) => keyring
                .snapshot()
                .live(timestamp.into())
                .map(|(key, _)| Arc::clone(key))
                .collect(),
        };
        let mut message: Option<Vec<u8>> = None;
        let mut made: Vec<(Algorithm, Vec<u8>)> = Vec::with_capacity(keys.len());
        for key in &keys {
            if let Some(tag) = key.tag(algorithm, |out| scheme.signed_content(&delivery, body, out))
            {
                made.push((algorithm, tag.to_vec()));
                continue;
            }
            // A signing key: the scheme's own algorithm if it is a public-key one, else the
            // asymmetric variant it carries beside its MACs (Standard Webhooks `v1a`).
            let message = message.get_or_insert_with(|| {
                let mut all = Vec::with_capacity(body.len() + 128);
                scheme.signed_content(&delivery, body, &mut |part| all.extend_from_slice(part));
                all
            });
            let asymmetric = if algorithm.is_mac() {
                Algorithm::Ed25519
            } else {
                algorithm
            };
            if let Some(signature) = key.sign(asymmetric, message) {
                made.push((asymmetric, signature));
            }
        }
        if made.is_empty() {
            return Err(SignError::NoSigningKey);
        }
        let tags: Vec<Signature<'_>> = made
            .iter()
            .map(|(algorithm, bytes)| Signature::new(*algorithm, bytes))
            .collect();
        let mut headers = HeaderMap::new();
        self.scheme
            .signature_headers(&delivery, &tags, &mut headers)?;
        Ok(headers)
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("scheme", &self.scheme)
            .field(
                "keys",
                &match &self.keys {
                    Keys::Fixed(_) => 1,
                    Keys::Ring(keyring) => keyring.keys().len(),
                },
            )
            .finish_non_exhaustive()
    }
}

/// The keys a signer signs with.
#[derive(Clone)]
enum Keys {
    /// One secret, given at construction.
    Fixed(Arc<Key>),
    /// Every key live in a keyring when signing.
    Ring(Keyring),
}

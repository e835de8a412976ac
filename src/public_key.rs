//! Keys for the public-key schemes: [`PublicKey`] (Ed25519, ECDSA P-256) verifies; an Ed25519
//! [`SigningKey`] signs (Standard Webhooks `v1a` senders). Both go into a
//! [`Keyring`](crate::Keyring) beside HMAC secrets, as [`KeyMaterial`], and rotate the same way.

use std::fmt;

#[cfg(any(feature = "ed25519", feature = "ecdsa"))]
use base64::engine::general_purpose::STANDARD;
#[cfg(any(feature = "ed25519", feature = "ecdsa"))]
use base64::Engine as _;

use crate::secret::Secret;

/// What a keyring key is: a shared secret (HMAC schemes), a public key (verifying public-key
/// schemes) or a signing key (sending them).
///
/// Every constructor that takes a key accepts anything that converts into it, so
/// `Keyring::new(secret)` and `Keyring::new(public_key)` both work.
#[derive(Clone)]
#[non_exhaustive]
pub enum KeyMaterial {
    /// A shared HMAC secret.
    Secret(Secret),
    /// A public verification key.
    Public(PublicKey),
    /// A private signing key (secret; zeroized on drop).
    Signing(SigningKey),
}

impl From<Secret> for KeyMaterial {
    fn from(secret: Secret) -> Self {
        Self::Secret(secret)
    }
}

impl From<PublicKey> for KeyMaterial {
    fn from(key: PublicKey) -> Self {
        Self::Public(key)
    }
}

impl From<SigningKey> for KeyMaterial {
    fn from(key: SigningKey) -> Self {
        Self::Signing(key)
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(s) => fmt::Debug::fmt(s, f),
            Self::Public(k) => fmt::Debug::fmt(k, f),
            Self::Signing(k) => fmt::Debug::fmt(k, f),
        }
    }
}

/// A public verification key. Not a secret: `Debug` shows it.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "ed25519")] {
/// use webhook_guard::PublicKey;
///
/// // Discord shows an application's public key as 64 hex digits.
/// let key = PublicKey::ed25519_hex("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8")?;
/// assert!(format!("{key:?}").starts_with("PublicKey(ed25519"));
/// # }
/// # Ok::<(), webhook_guard::PublicKeyError>(())
/// ```
#[derive(Clone)]
pub struct PublicKey {
    pub(crate) inner: PublicInner,
}

/// Two keys are equal when they are of the same kind with the same bytes.
impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.to_bytes() == other.to_bytes()
    }
}

impl Eq for PublicKey {}

#[derive(Clone)]
pub(crate) enum PublicInner {
    #[cfg(feature = "ed25519")]
    Ed25519(ed25519_dalek::VerifyingKey),
    #[cfg(feature = "ecdsa")]
    P256(p256::ecdsa::VerifyingKey),
    /// Kept as the PKCS#1 v1.5 / SHA-256 verifying key, so a verification neither rebuilds nor
    /// copies it.
    #[cfg(feature = "paypal")]
    Rsa(rsa::pkcs1v15::VerifyingKey<sha2::Sha256>),
}

impl PublicKey {
    /// An Ed25519 public key from its 32 bytes.
    ///
    /// # Errors
    ///
    /// [`PublicKeyError::Invalid`] when the bytes are not a valid curve point.
    #[cfg(feature = "ed25519")]
    pub fn ed25519(bytes: &[u8]) -> Result<Self, PublicKeyError> {
        let bytes: &[u8; 32] = bytes.try_into().map_err(|_| PublicKeyError::Length {
            len: bytes.len(),
            expected: 32,
        })?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map_err(|_| PublicKeyError::Invalid { kind: "ed25519" })?;
        Ok(Self {
            inner: PublicInner::Ed25519(key),
        })
    }

    /// An Ed25519 public key as 64 hex digits (Discord's "Public Key").
    ///
    /// # Errors
    ///
    /// [`PublicKeyError::Encoding`] for bad hex, otherwise as for [`PublicKey::ed25519`].
    #[cfg(feature = "ed25519")]
    pub fn ed25519_hex(text: &str) -> Result<Self, PublicKeyError> {
        let bytes =
            hex::decode(text.trim()).map_err(|_| PublicKeyError::Encoding { encoding: "hex" })?;
        Self::ed25519(&bytes)
    }

    /// A Standard Webhooks public key, `whpk_` followed by the base64 of 32 bytes.
    ///
    /// # Errors
    ///
    /// [`PublicKeyError::Prefix`] without `whpk_`, otherwise as for [`PublicKey::ed25519`].
    #[cfg(feature = "ed25519")]
    pub fn from_whpk(text: &str) -> Result<Self, PublicKeyError> {
        let rest = text
            .trim()
            .strip_prefix("whpk_")
            .ok_or(PublicKeyError::Prefix { prefix: "whpk_" })?;
        let bytes = STANDARD
            .decode(rest)
            .map_err(|_| PublicKeyError::Encoding { encoding: "base64" })?;
        Self::ed25519(&bytes)
    }

    /// An ECDSA P-256 public key as base64 DER SubjectPublicKeyInfo (SendGrid's "verification
    /// key", `MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE…`).
    ///
    /// # Errors
    ///
    /// [`PublicKeyError::Encoding`] for bad base64, [`PublicKeyError::Invalid`] when the DER is
    /// not a P-256 public key.
    #[cfg(feature = "ecdsa")]
    pub fn p256_der_base64(text: &str) -> Result<Self, PublicKeyError> {
        use p256::pkcs8::DecodePublicKey as _;
        let der = STANDARD
            .decode(text.trim())
            .map_err(|_| PublicKeyError::Encoding { encoding: "base64" })?;
        let key = p256::ecdsa::VerifyingKey::from_public_key_der(&der).map_err(|_| {
            PublicKeyError::Invalid {
                kind: "P-256 SubjectPublicKeyInfo",
            }
        })?;
        Ok(Self {
            inner: PublicInner::P256(key),
        })
    }

    /// The RSA public key of a PEM X.509 certificate (PayPal's signing certificate, fetched
    /// once from its `PAYPAL-CERT-URL` and pinned). Only the key is read: the certificate's
    /// chain and validity dates are the caller's to check when fetching it.
    ///
    /// # Errors
    ///
    /// [`PublicKeyError::Invalid`] when the text is not a PEM certificate with an RSA key.
    #[cfg(feature = "paypal")]
    pub fn rsa_certificate_pem(pem: &str) -> Result<Self, PublicKeyError> {
        use rsa::pkcs8::DecodePublicKey as _;
        use x509_cert::der::{DecodePem as _, Encode as _};
        let invalid = |_| PublicKeyError::Invalid {
            kind: "PEM certificate with an RSA",
        };
        let cert = x509_cert::Certificate::from_pem(pem.trim()).map_err(invalid)?;
        let der = cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(invalid)?;
        let key =
            rsa::PublicKey::from_public_key_der(&der).map_err(|_| PublicKeyError::Invalid {
                kind: "PEM certificate with an RSA",
            })?;
        Ok(Self {
            inner: PublicInner::Rsa(rsa::pkcs1v15::VerifyingKey::new(key)),
        })
    }

    /// The key's bytes as the vendor shows them: Ed25519's 32 bytes, P-256's SEC1 point, RSA's
    /// DER SubjectPublicKeyInfo.
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.inner {
            #[cfg(feature = "ed25519")]
            PublicInner::Ed25519(k) => k.to_bytes().to_vec(),
            #[cfg(feature = "ecdsa")]
            PublicInner::P256(k) => k.to_sec1_bytes().to_vec(),
            #[cfg(feature = "paypal")]
            PublicInner::Rsa(k) => {
                use rsa::pkcs8::EncodePublicKey as _;
                AsRef::<rsa::PublicKey>::as_ref(k)
                    .to_public_key_der()
                    .map(|der| der.as_bytes().to_vec())
                    .unwrap_or_default()
            }
            #[allow(unreachable_patterns)]
            _ => Vec::new(),
        }
    }

    fn kind(&self) -> &'static str {
        match &self.inner {
            #[cfg(feature = "ed25519")]
            PublicInner::Ed25519(_) => "ed25519",
            #[cfg(feature = "ecdsa")]
            PublicInner::P256(_) => "p256",
            #[cfg(feature = "paypal")]
            PublicInner::Rsa(_) => "rsa",
            #[allow(unreachable_patterns)]
            _ => "none",
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({}, {})",
            self.kind(),
            hex::encode(self.to_bytes())
        )
    }
}

/// A private Ed25519 signing key (a Standard Webhooks `whsk_` key). A secret: zeroized on drop,
/// redacted in `Debug`.
#[derive(Clone)]
pub struct SigningKey {
    #[cfg(feature = "ed25519")]
    pub(crate) inner: ed25519_dalek::SigningKey,
}

impl SigningKey {
    /// A Standard Webhooks signing key, `whsk_` followed by the base64 of a 32-byte seed.
    ///
    /// # Errors
    ///
    /// [`PublicKeyError::Prefix`] without `whsk_`, [`PublicKeyError::Encoding`] for bad base64,
    /// [`PublicKeyError::Length`] unless the seed is 32 bytes. Messages never quote the key.
    #[cfg(feature = "ed25519")]
    pub fn from_whsk(text: &str) -> Result<Self, PublicKeyError> {
        let rest = text
            .trim()
            .strip_prefix("whsk_")
            .ok_or(PublicKeyError::Prefix { prefix: "whsk_" })?;
        let seed = zeroize::Zeroizing::new(
            STANDARD
                .decode(rest)
                .map_err(|_| PublicKeyError::Encoding { encoding: "base64" })?,
        );
        Self::ed25519_seed(&seed)
    }

    /// An Ed25519 signing key from its 32-byte seed.
    ///
    /// # Errors
    ///
    /// [`PublicKeyError::Length`] unless `seed` is 32 bytes.
    #[cfg(feature = "ed25519")]
    pub fn ed25519_seed(seed: &[u8]) -> Result<Self, PublicKeyError> {
        let seed: zeroize::Zeroizing<[u8; 32]> =
            zeroize::Zeroizing::new(seed.try_into().map_err(|_| PublicKeyError::Length {
                len: seed.len(),
                expected: 32,
            })?);
        Ok(Self {
            inner: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// The matching public key, to give to receivers (as `whpk_…` with
    /// [`PublicKey::to_bytes`]).
    #[cfg(feature = "ed25519")]
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: PublicInner::Ed25519(self.inner.verifying_key()),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// Why a public or signing key could not be read. Never quotes the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublicKeyError {
    /// The key has the wrong length.
    #[error("key is {len} bytes, expected {expected}")]
    Length {
        /// Length given.
        len: usize,
        /// Length required.
        expected: usize,
    },
    /// The text is not in the expected encoding.
    #[error("key is not valid {encoding}")]
    Encoding {
        /// The encoding expected.
        encoding: &'static str,
    },
    /// The text lacks its prefix.
    #[error("key does not start with {prefix:?}")]
    Prefix {
        /// The prefix expected.
        prefix: &'static str,
    },
    /// The bytes are not a valid key of the kind.
    #[error("not a valid {kind} key")]
    Invalid {
        /// The kind of key expected.
        kind: &'static str,
    },
}

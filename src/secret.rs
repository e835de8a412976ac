//! Signing secrets: [`Secret`] holds key bytes, [`RevealedSecret`] hands a fresh one out once.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use zeroize::Zeroizing;

/// The prefix Standard Webhooks puts in front of a base64 secret.
const WHSEC_PREFIX: &str = "whsec_";

/// Number of random bytes in a generated secret.
pub const GENERATED_SECRET_LEN: usize = 32;

/// Longest secret accepted, in bytes. Real signing secrets are 16–64 bytes; the cap keeps a
/// mistaken file or environment variable from being used as a key.
pub const MAX_SECRET_LEN: usize = 1024;

/// A shared signing secret: the key bytes an HMAC is keyed with.
///
/// The bytes are zeroized when the secret is dropped. `Debug` prints only the length, there is
/// no `Display`, and there is no way to read the bytes back: a secret goes into a
/// [`Keyring`](crate::Keyring) or a [`Signer`](crate::Signer) and stays there.
///
/// # Examples
///
/// ```
/// use webhook_guard::Secret;
///
/// let secret = Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// assert_eq!(secret.len(), 24);
/// assert_eq!(format!("{secret:?}"), "Secret(<redacted>, 24 bytes)");
///
/// // Stripe keys its HMAC with the whole `whsec_…` string, not its decoded bytes.
/// let stripe = Secret::from_bytes("whsec_test_secret")?;
/// assert_eq!(stripe.len(), 17);
/// # Ok::<(), webhook_guard::SecretError>(())
/// ```
#[derive(Clone)]
pub struct Secret {
    bytes: Zeroizing<Vec<u8>>,
}

impl Secret {
    /// Uses `bytes` as they are as the key.
    ///
    /// # Errors
    ///
    /// [`SecretError::Empty`] for no bytes, [`SecretError::TooLong`] past [`MAX_SECRET_LEN`].
    pub fn from_bytes(bytes: impl AsRef<[u8]>) -> Result<Self, SecretError> {
        let bytes = bytes.as_ref();
        check_len(bytes.len())?;
        Ok(Self {
            bytes: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// Decodes a hex secret (upper or lower case, no prefix).
    ///
    /// # Errors
    ///
    /// [`SecretError::InvalidHex`] when `text` is not hex, or a length error as for
    /// [`Secret::from_bytes`].
    pub fn from_hex(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        check_len(text.len() / 2)?;
        let bytes = Zeroizing::new(hex::decode(text).map_err(|e| SecretError::InvalidHex {
            reason: hex_reason(&e),
        })?);
        Ok(Self { bytes })
    }

    /// Decodes a standard-alphabet base64 secret (padding optional).
    ///
    /// # Errors
    ///
    /// [`SecretError::InvalidBase64`] when `text` is not base64, or a length error as for
    /// [`Secret::from_bytes`].
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = decode_base64(text.trim())?;
        check_len(bytes.len())?;
        Ok(Self { bytes })
    }

    /// Decodes a Standard Webhooks secret, `whsec_` followed by base64.
    ///
    /// # Errors
    ///
    /// [`SecretError::MissingWhsecPrefix`] without the prefix, otherwise as for
    /// [`Secret::from_base64`].
    pub fn from_whsec(text: &str) -> Result<Self, SecretError> {
        let rest = text
            .trim()
            .strip_prefix(WHSEC_PREFIX)
            .ok_or(SecretError::MissingWhsecPrefix)?;
        Self::from_base64(rest)
    }

    /// Generates a 32-byte secret from the operating system's random number generator.
    ///
    /// The result can be read exactly once, through the consuming methods of
    /// [`RevealedSecret`]; turn it into a [`Secret`] with [`RevealedSecret::secret`] first.
    ///
    /// # Errors
    ///
    /// [`SecretError::Rng`] when the operating system refuses to give random bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use webhook_guard::Secret;
    ///
    /// let revealed = Secret::generate()?;
    /// let secret = revealed.secret(); // keep this one
    /// let shown = revealed.into_whsec(); // show this one to the operator, once
    /// assert!(shown.starts_with("whsec_"));
    /// assert_eq!(secret.len(), 32);
    /// # Ok::<(), webhook_guard::SecretError>(())
    /// ```
    pub fn generate() -> Result<RevealedSecret, SecretError> {
        let mut bytes = Zeroizing::new(vec![0u8; GENERATED_SECRET_LEN]);
        getrandom::fill(&mut bytes).map_err(|e| SecretError::Rng {
            code: e.raw_os_error(),
        })?;
        Ok(RevealedSecret {
            secret: Self { bytes },
        })
    }

    /// Number of key bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always `false`: empty secrets are rejected when built. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The secret, to be read once more: for a durable store that must keep it (encrypted at
    /// rest), the only way to a secret's bytes besides [`Secret::generate`]. Every other use
    /// keeps the secret inside the crate.
    ///
    /// # Examples
    ///
    /// ```
    /// use webhook_guard::Secret;
    ///
    /// let secret = Secret::from_hex("00ff")?;
    /// assert_eq!(&*secret.reveal().into_bytes(), &[0x00, 0xff]);
    /// # Ok::<(), webhook_guard::SecretError>(())
    /// ```
    pub fn reveal(&self) -> RevealedSecret {
        RevealedSecret::new(self.clone())
    }

    /// The key bytes, for keying a MAC inside this crate.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<redacted>, {} bytes)", self.bytes.len())
    }
}

/// A freshly generated secret that can be read once.
///
/// Returned by [`Secret::generate`] and [`Keyring::regenerate`](crate::Keyring::regenerate).
/// Each reading method consumes it, so the value cannot be shown twice by mistake; the keyring
/// keeps its own copy, which is never readable.
pub struct RevealedSecret {
    secret: Secret,
}

impl RevealedSecret {
    pub(crate) fn new(secret: Secret) -> Self {
        Self { secret }
    }

    /// A [`Secret`] with the same bytes, to put in a keyring or signer before revealing.
    pub fn secret(&self) -> Secret {
        self.secret.clone()
    }

    /// Reveals the secret as lowercase hex.
    pub fn into_hex(self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.secret.expose()))
    }

    /// Reveals the secret as standard base64 with padding.
    pub fn into_base64(self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.secret.expose()))
    }

    /// Reveals the secret's bytes, for a store that keeps them (encrypted).
    pub fn into_bytes(self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.secret.expose().to_vec())
    }

    /// Reveals the secret in the Standard Webhooks form, `whsec_<base64>`.
    pub fn into_whsec(self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::from(WHSEC_PREFIX));
        STANDARD.encode_string(self.secret.expose(), &mut out);
        out
    }
}

impl fmt::Debug for RevealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RevealedSecret(<redacted>, {} bytes)", self.secret.len())
    }
}

/// Why a secret could not be built. Never contains any of the secret's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The secret has no bytes; an empty HMAC key would make every signature forgeable.
    #[error("secret is empty")]
    Empty,
    /// The secret is longer than [`MAX_SECRET_LEN`].
    #[error("secret is {len} bytes, longer than the {max}-byte limit")]
    TooLong {
        /// Length given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The text is not hex.
    #[error("secret is not valid hex: {reason}")]
    InvalidHex {
        /// What is wrong, without the text itself.
        reason: String,
    },
    /// The text is not base64.
    #[error("secret is not valid base64: {reason}")]
    InvalidBase64 {
        /// What is wrong, without the text itself.
        reason: String,
    },
    /// A Standard Webhooks secret must start with `whsec_`.
    #[error("secret does not start with \"whsec_\"")]
    MissingWhsecPrefix,
    /// The operating system random number generator failed.
    #[error("the operating system random number generator failed (os error {code:?})")]
    Rng {
        /// The raw OS error code, when there is one.
        code: Option<i32>,
    },
}

fn check_len(len: usize) -> Result<(), SecretError> {
    match len {
        0 => Err(SecretError::Empty),
        n if n > MAX_SECRET_LEN => Err(SecretError::TooLong {
            len: n,
            max: MAX_SECRET_LEN,
        }),
        _ => Ok(()),
    }
}

/// Describes a hex error by position only: `hex`'s own messages quote the offending character.
fn hex_reason(e: &hex::FromHexError) -> String {
    match e {
        hex::FromHexError::InvalidHexCharacter { index, .. } => {
            format!("invalid character at position {index}")
        }
        hex::FromHexError::OddLength => "odd number of digits".to_owned(),
        hex::FromHexError::InvalidStringLength => "wrong length".to_owned(),
    }
}

fn decode_base64(text: &str) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    if text.len() > MAX_SECRET_LEN * 2 {
        return Err(SecretError::TooLong {
            len: text.len() / 4 * 3,
            max: MAX_SECRET_LEN,
        });
    }
    LENIENT
        .decode(text)
        .map(Zeroizing::new)
        .map_err(|e| SecretError::InvalidBase64 {
            reason: match e {
                base64::DecodeError::InvalidByte(index, _) => {
                    format!("invalid character at position {index}")
                }
                base64::DecodeError::InvalidLength(_) => "wrong length".to_owned(),
                base64::DecodeError::InvalidLastSymbol(index, _) => {
                    format!("invalid last character at position {index}")
                }
                base64::DecodeError::InvalidPadding => "invalid padding".to_owned(),
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_never_quote_the_text() {
        let err = Secret::from_hex("zz-super-secret!").unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret is not valid hex: invalid character at position 0"
        );
        let err = Secret::from_base64("s3cr#t").unwrap_err();
        assert!(!err.to_string().contains("s3cr"), "{err}");
        assert!(matches!(err, SecretError::InvalidBase64 { .. }));
    }

    #[test]
    fn lengths_are_bounded() {
        assert_eq!(Secret::from_bytes([]).unwrap_err(), SecretError::Empty);
        assert_eq!(Secret::from_hex("").unwrap_err(), SecretError::Empty);
        assert_eq!(
            Secret::from_whsec("whsec_").unwrap_err(),
            SecretError::Empty
        );
        let long = vec![1u8; MAX_SECRET_LEN + 1];
        assert!(matches!(
            Secret::from_bytes(&long),
            Err(SecretError::TooLong {
                len: 1025,
                max: 1024
            })
        ));
    }

    #[test]
    fn base64_padding_is_optional() {
        let a = Secret::from_base64("AAEC").unwrap();
        let b = Secret::from_base64("AAECAw").unwrap();
        let c = Secret::from_base64("AAECAw==").unwrap();
        assert_eq!(a.expose(), &[0, 1, 2]);
        assert_eq!(b.expose(), c.expose());
    }

    #[test]
    fn revealed_forms_round_trip() {
        let revealed = Secret::generate().unwrap();
        let kept = revealed.secret();
        let whsec = revealed.into_whsec();
        assert_eq!(Secret::from_whsec(&whsec).unwrap().expose(), kept.expose());
        let other = Secret::generate().unwrap();
        assert_ne!(other.secret().expose(), kept.expose());
        let hex = RevealedSecret::new(kept.clone()).into_hex();
        assert_eq!(Secret::from_hex(&hex).unwrap().expose(), kept.expose());
        let b64 = RevealedSecret::new(kept.clone()).into_base64();
        assert_eq!(Secret::from_base64(&b64).unwrap().expose(), kept.expose());
    }
}

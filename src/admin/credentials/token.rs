//! The form of API keys and API secrets: prefix, key id, 32 random bytes in base62, CRC32
//! checksum; how they are made, checked without a lookup, and masked (see the
//! [`credentials`](super) docs for the picture).

use arrayvec::ArrayString;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::store::ApiKeyId;

/// The prefix of every API key.
const API_KEY_PREFIX: &str = "wgk_";
/// The prefix of every integrator API secret.
const CLIENT_SECRET_PREFIX: &str = "wgs_";
/// Characters of a key id.
const ID_LEN: usize = 12;
/// Random bytes of a secret part.
const SECRET_BYTES: usize = 32;
/// Base62 characters of a secret part: 62^43 > 2^256, so 43 always suffice.
const SECRET_LEN: usize = 43;
/// Base62 characters of a checksum: 62^6 > 2^32.
const CHECKSUM_LEN: usize = 6;
/// Characters of a whole API key: 65.
const API_KEY_LEN: usize = API_KEY_PREFIX.len() + ID_LEN + SECRET_LEN + CHECKSUM_LEN;
/// Characters of a whole API secret: 53.
const CLIENT_SECRET_LEN: usize = CLIENT_SECRET_PREFIX.len() + SECRET_LEN + CHECKSUM_LEN;

/// The base62 digits, in value order.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why an API key or API secret is not well-formed, or could not be made. The message never
/// includes the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// The token does not start with the expected prefix.
    #[error("the token does not start with {expected}")]
    WrongPrefix {
        /// The prefix expected (`wgk_` or `wgs_`).
        expected: &'static str,
    },
    /// The token (or key id) does not have the fixed length.
    #[error("the token is {len} bytes long, not {expected}")]
    WrongLength {
        /// Its length in bytes.
        len: usize,
        /// The length of every such token.
        expected: usize,
    },
    /// A character is not a base62 digit (`0-9`, `A-Z`, `a-z`).
    #[error("the token has a character other than 0-9, A-Z, a-z at byte {position}")]
    BadCharacter {
        /// Its byte offset.
        position: usize,
    },
    /// The last 6 characters are not the CRC32 of the rest: a typo, or not one of our tokens.
    #[error("the token's checksum does not match; it was mistyped or truncated")]
    ChecksumMismatch,
    /// The operating system's random number generator failed.
    #[error("no random bytes from the operating system: {0}")]
    Random(#[source] getrandom::Error),
}

/// A new API key: its id, the token to show once, and the SHA-256 digest of the token, which
/// is what a store keeps.
///
/// # Errors
///
/// [`ApiKeyError::Random`] when the operating system gives no random bytes.
///
/// # Examples
///
/// ```
/// use webhook_guard::admin::credentials::{check_api_key, generate_api_key, mask_api_key};
///
/// let (id, token, digest) = generate_api_key()?;
/// assert!(token.starts_with("wgk_"));
/// assert_eq!(token.len(), 65);
/// assert_eq!(check_api_key(&token)?, (id, digest));
/// assert!(!mask_api_key(&id).contains(&token[16..]));
/// # Ok::<(), webhook_guard::admin::credentials::ApiKeyError>(())
/// ```
pub fn generate_api_key() -> Result<(ApiKeyId, Zeroizing<String>, [u8; 32]), ApiKeyError> {
    let id = random_id()?;
    let token = generate_token(API_KEY_PREFIX, id.as_str(), API_KEY_LEN)?;
    let digest = sha256(&token);
    Ok((id, token, digest))
}

/// A new integrator API secret (the Basic `clientSecret`, `wgs_` + 43 + 6 characters): the
/// token to show once and its SHA-256 digest, which becomes a key of the integrator's
/// [`Keyring`](crate::Keyring) (`Secret::from_bytes(digest)`), so it rotates with the keyring's grace periods.
///
/// # Errors
///
/// [`ApiKeyError::Random`] when the operating system gives no random bytes.
///
/// # Examples
///
/// ```
/// use webhook_guard::admin::credentials::generate_client_secret;
/// use webhook_guard::{Keyring, Secret};
///
/// let (secret, digest) = generate_client_secret()?;
/// assert!(secret.starts_with("wgs_"));
/// assert_eq!(secret.len(), 53);
/// let keyring = Keyring::new(Secret::from_bytes(digest)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn generate_client_secret() -> Result<(Zeroizing<String>, [u8; 32]), ApiKeyError> {
    let token = generate_token(CLIENT_SECRET_PREFIX, "", CLIENT_SECRET_LEN)?;
    let digest = sha256(&token);
    Ok((token, digest))
}

/// Checks an API key's form (prefix, length, characters, checksum) without any lookup, and
/// returns its id and the SHA-256 digest of the whole token, to compare with the stored one.
///
/// # Errors
///
/// [`ApiKeyError::WrongPrefix`], [`ApiKeyError::WrongLength`], [`ApiKeyError::BadCharacter`] or
/// [`ApiKeyError::ChecksumMismatch`], checked in this order.
///
/// # Examples
///
/// ```
/// use webhook_guard::admin::credentials::{check_api_key, generate_api_key, ApiKeyError};
///
/// let (_, token, _) = generate_api_key()?;
/// let mut typo = token.to_string();
/// let last = if typo.ends_with('0') { "1" } else { "0" };
/// typo.replace_range(64.., last);
/// assert_eq!(check_api_key(&typo), Err(ApiKeyError::ChecksumMismatch));
/// # Ok::<(), ApiKeyError>(())
/// ```
pub fn check_api_key(token: &str) -> Result<(ApiKeyId, [u8; 32]), ApiKeyError> {
    check_token(token, API_KEY_PREFIX, API_KEY_LEN)?;
    // check_token saw base62 characters of the right length: the id part is an id.
    let id = ApiKeyId::parse(&token[API_KEY_PREFIX.len()..API_KEY_PREFIX.len() + ID_LEN]).map_err(
        |_| ApiKeyError::BadCharacter {
            position: API_KEY_PREFIX.len(),
        },
    )?;
    Ok((id, sha256(token)))
}

/// How a key is shown in lists and logs: `wgk_<id>…`, nothing of the secret.
///
/// # Examples
///
/// ```
/// use webhook_guard::admin::credentials::{mask_api_key, ApiKeyId};
///
/// let id = ApiKeyId::parse("7GkQ2mZp9aXc")?;
/// assert_eq!(mask_api_key(&id), "wgk_7GkQ2mZp9aXc…");
/// # Ok::<(), webhook_guard::store::IdError>(())
/// ```
pub fn mask_api_key(id: &ApiKeyId) -> String {
    format!("{API_KEY_PREFIX}{id}…")
}

/// SHA-256 of a token. A fast unsalted hash is right here, unlike for passwords: the tokens
/// carry 256 random bits, so there is nothing to guess and no dictionary to slow down, and the
/// check stays well under a microsecond per request.
fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// 12 random base62 characters, unbiased (bytes of 248 and above are drawn again).
fn random_id() -> Result<ApiKeyId, ApiKeyError> {
    let mut id = ArrayString::<ID_LEN>::new();
    let mut bytes = [0u8; 32];
    while !id.is_full() {
        getrandom::fill(&mut bytes).map_err(ApiKeyError::Random)?;
        for byte in bytes.iter().filter(|b| **b < 248) {
            if id
                .try_push(char::from(BASE62[usize::from(*byte % 62)]))
                .is_err()
            {
                break;
            }
        }
    }
    ApiKeyId::parse(&id).map_err(|_| ApiKeyError::WrongLength {
        len: id.len(),
        expected: ID_LEN,
    })
}

/// `prefix` + `id` + 43 base62 characters of 32 fresh random bytes + the checksum.
fn generate_token(prefix: &str, id: &str, len: usize) -> Result<Zeroizing<String>, ApiKeyError> {
    let mut random = Zeroizing::new([0u8; SECRET_BYTES]);
    getrandom::fill(random.as_mut()).map_err(ApiKeyError::Random)?;
    let mut digits = Zeroizing::new([0u8; SECRET_LEN]);
    encode_base62(random.as_ref(), digits.as_mut());
    let mut token = Zeroizing::new(String::with_capacity(len));
    token.push_str(prefix);
    token.push_str(id);
    token.extend(digits.iter().map(|&d| char::from(d)));
    let checksum = checksum(token.as_bytes());
    token.extend(checksum.iter().map(|&d| char::from(d)));
    debug_assert_eq!(token.len(), len);
    Ok(token)
}

/// The CRC32 of `body` as 6 base62 characters.
fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut digits = [0u8; CHECKSUM_LEN];
    encode_base62(&crc32fast::hash(body).to_be_bytes(), &mut digits);
    digits
}

/// Writes the big-endian number `bytes` as `out.len()` base62 digits, most significant first,
/// zero-padded. `out` must be long enough for the number (43 digits for 32 bytes).
fn encode_base62(bytes: &[u8], out: &mut [u8]) {
    let mut number = Zeroizing::new(bytes.to_vec());
    for digit in out.iter_mut().rev() {
        // Long division of the whole number by 62; the remainder is the next digit.
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let acc = (remainder << 8) | u32::from(*byte);
            // acc < 62 * 256, so the quotient fits a byte.
            *byte = (acc / 62) as u8;
            remainder = acc % 62;
        }
        *digit = BASE62[remainder as usize];
    }
    debug_assert!(number.iter().all(|&b| b == 0), "out is too short");
}

/// Checks prefix, length, characters and checksum of a token.
fn check_token(token: &str, prefix: &'static str, len: usize) -> Result<(), ApiKeyError> {
    if !token.starts_with(prefix) {
        return Err(ApiKeyError::WrongPrefix { expected: prefix });
    }
    if token.len() != len {
        return Err(ApiKeyError::WrongLength {
            len: token.len(),
            expected: len,
        });
    }
    let bytes = token.as_bytes();
    if let Some(position) = bytes[prefix.len()..]
        .iter()
        .position(|b| !b.is_ascii_alphanumeric())
    {
        return Err(ApiKeyError::BadCharacter {
            position: prefix.len() + position,
        });
    }
    let (body, sum) = bytes.split_at(len - CHECKSUM_LEN);
    // The checksum is computable from the token itself, so comparing it is not secret.
    if sum != checksum(body) {
        return Err(ApiKeyError::ChecksumMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_draw_every_base62_character_equally_often() {
        // 10 000 ids, 120 000 characters: each character expected 1 935.5 times (σ ≈ 43.6).
        // A byte of 248 taken as `0` (248 % 62) would give `0` about 2 410.
        let mut counts = [0u32; 128];
        for _ in 0..10_000 {
            for b in random_id().unwrap().as_str().bytes() {
                counts[usize::from(b)] += 1;
            }
        }
        let expected = 120_000.0 / 62.0;
        for &c in BASE62 {
            let drawn = f64::from(counts[usize::from(c)]);
            assert!(
                (drawn - expected).abs() < 8.0 * 43.6,
                "{} drawn {drawn} times, expected about {expected:.0}",
                char::from(c)
            );
        }
    }

    /// Reads base62 digits back as a big-endian number of `len` bytes (the inverse of
    /// `encode_base62`, for the tests only).
    fn decode_base62(digits: &[u8], len: usize) -> Vec<u8> {
        let mut number = vec![0u8; len];
        for &d in digits {
            let mut carry = BASE62.iter().position(|&c| c == d).unwrap() as u32;
            for byte in number.iter_mut().rev() {
                let acc = u32::from(*byte) * 62 + carry;
                *byte = acc as u8;
                carry = acc >> 8;
            }
            assert_eq!(carry, 0, "overflow");
        }
        number
    }

    #[test]
    fn base62_is_fixed_width_big_endian() {
        let mut out = [0u8; SECRET_LEN];
        encode_base62(&[0; 32], &mut out);
        assert_eq!(out, [b'0'; SECRET_LEN]);
        let mut one = [0u8; 32];
        one[31] = 61;
        encode_base62(&one, &mut out);
        assert_eq!(&out[..42], &[b'0'; 42]);
        assert_eq!(out[42], b'z');
        one[31] = 62;
        encode_base62(&one, &mut out);
        assert_eq!(&out[41..], b"10");
        // The largest 32-byte number still fits 43 digits.
        encode_base62(&[0xff; 32], &mut out);
        assert_eq!(decode_base62(&out, 32), vec![0xff; 32]);
    }

    #[test]
    fn base62_round_trips_random_numbers() {
        for _ in 0..200 {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).unwrap();
            let mut out = [0u8; SECRET_LEN];
            encode_base62(&bytes, &mut out);
            assert_eq!(decode_base62(&out, 32), bytes);
        }
        for value in [0u32, 1, 61, 62, 0xdead_beef, u32::MAX] {
            let mut out = [0u8; CHECKSUM_LEN];
            encode_base62(&value.to_be_bytes(), &mut out);
            assert_eq!(decode_base62(&out, 4), value.to_be_bytes());
        }
    }

    #[test]
    fn checksum_is_the_crc32_of_the_rest() {
        let (_, token, _) = generate_api_key().unwrap();
        let (body, sum) = token.as_bytes().split_at(API_KEY_LEN - CHECKSUM_LEN);
        assert_eq!(
            decode_base62(sum, 4),
            crc32fast::hash(body).to_be_bytes().to_vec()
        );
    }

    #[test]
    fn random_ids_use_the_whole_alphabet() {
        let mut seen = [false; 62];
        for _ in 0..200 {
            for c in random_id().unwrap().as_str().bytes() {
                seen[BASE62.iter().position(|&d| d == c).unwrap()] = true;
            }
        }
        assert!(seen.iter().all(|s| *s));
    }
}

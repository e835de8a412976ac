//! The secret length limit, `MAX_SECRET_LEN` (1024 bytes), at its exact boundary for every way
//! of building a `Secret`: raw bytes, hex, base64 and Standard Webhooks `whsec_` text. A secret
//! of exactly the limit is accepted, one byte more is `SecretError::TooLong`, whose message
//! carries the numbers and none of the secret's text.

use base64::engine::general_purpose::{STANDARD as B64, STANDARD_NO_PAD as B64_NO_PAD};
use base64::Engine as _;
use webhook_guard::scheme::GitHub;
use webhook_guard::{Keyring, Secret, SecretError, Signer, Verifier, MAX_SECRET_LEN};

/// `len` bytes of recognisable text, so a message that quoted them would be caught.
fn secret_bytes(len: usize) -> Vec<u8> {
    b"s3cr3t-k3y:".iter().copied().cycle().take(len).collect()
}

/// Asserts that `result` is `TooLong` for `len` bytes and that its message has the numbers but
/// no piece of `text`.
fn assert_too_long(result: Result<Secret, SecretError>, len: usize, text: &str) {
    let err = result.expect_err("a secret over the limit was accepted");
    assert_eq!(
        err,
        SecretError::TooLong {
            len,
            max: MAX_SECRET_LEN
        }
    );
    let message = err.to_string();
    assert_eq!(
        message,
        format!("secret is {len} bytes, longer than the {MAX_SECRET_LEN}-byte limit")
    );
    for piece in text.as_bytes().chunks(8).filter(|p| p.len() == 8) {
        let piece = std::str::from_utf8(piece).unwrap();
        assert!(!message.contains(piece), "{message:?} quotes {piece:?}");
    }
}

/// Asserts that `secret` holds exactly `bytes`: it verifies what those bytes sign, and has their
/// length.
fn assert_holds(secret: Secret, bytes: &[u8]) {
    assert_eq!(secret.len(), bytes.len());
    let headers = Signer::new(GitHub, Secret::from_bytes(bytes).unwrap())
        .sign(b"{}")
        .unwrap();
    let verified = Verifier::new(GitHub, Keyring::new(secret)).verify(&headers, b"{}");
    assert!(verified.is_ok(), "{verified:?}");
}

#[test]
fn from_bytes_accepts_exactly_the_limit_and_refuses_one_more() {
    let at = secret_bytes(MAX_SECRET_LEN);
    assert_holds(Secret::from_bytes(&at).unwrap(), &at);
    let over = secret_bytes(MAX_SECRET_LEN + 1);
    assert_too_long(
        Secret::from_bytes(&over),
        MAX_SECRET_LEN + 1,
        std::str::from_utf8(&over).unwrap(),
    );
}

#[test]
fn from_hex_accepts_exactly_the_limit_and_refuses_one_more() {
    let at = secret_bytes(MAX_SECRET_LEN);
    let at_hex = hex::encode(&at);
    assert_eq!(at_hex.len(), 2 * MAX_SECRET_LEN);
    assert_holds(Secret::from_hex(&at_hex).unwrap(), &at);
    assert_holds(Secret::from_hex(&at_hex.to_uppercase()).unwrap(), &at);
    let over_hex = hex::encode(secret_bytes(MAX_SECRET_LEN + 1));
    assert_too_long(Secret::from_hex(&over_hex), MAX_SECRET_LEN + 1, &over_hex);
}

#[test]
fn from_base64_accepts_exactly_the_limit_and_refuses_one_more() {
    let at = secret_bytes(MAX_SECRET_LEN);
    let over = secret_bytes(MAX_SECRET_LEN + 1);
    for engine in [&B64, &B64_NO_PAD] {
        let text = engine.encode(&at);
        assert_holds(Secret::from_base64(&text).unwrap(), &at);
        let text = engine.encode(&over);
        assert_too_long(Secret::from_base64(&text), MAX_SECRET_LEN + 1, &text);
    }
}

#[test]
fn from_whsec_accepts_exactly_the_limit_and_refuses_one_more() {
    let at = secret_bytes(MAX_SECRET_LEN);
    let text = format!("whsec_{}", B64.encode(&at));
    assert_holds(Secret::from_whsec(&text).unwrap(), &at);
    let text = format!("whsec_{}", B64.encode(secret_bytes(MAX_SECRET_LEN + 1)));
    assert_too_long(Secret::from_whsec(&text), MAX_SECRET_LEN + 1, &text);
}

#[test]
fn overlong_base64_is_refused_for_its_length_before_it_is_decoded() {
    // Far past the limit, the text is refused by its length alone: a character that is not
    // base64 at the end is never reached, and the length reported is what the text would
    // decode to (4096 characters, 3072 bytes).
    let text = format!("{}!", "QUJD".repeat(1023) + "QUJ");
    assert_eq!(text.len(), 4096);
    assert_too_long(Secret::from_base64(&text), 3072, &text);
    assert_too_long(Secret::from_whsec(&format!("whsec_{text}")), 3072, &text);
    // The same character in a short text is a decoding error.
    assert!(matches!(
        Secret::from_base64("QUJ!"),
        Err(SecretError::InvalidBase64 { .. })
    ));
}

/// `Debug` says what a secret is and how long, and never its bytes; `len` and `is_empty` agree
/// with what was given (a secret is never empty: that is refused when it is built).
#[test]
fn debug_names_the_length_and_hides_the_bytes() {
    let secret = Secret::from_bytes("hunter2-hunter2").expect("a secret");
    assert_eq!((secret.len(), secret.is_empty()), (15, false));
    assert_eq!(format!("{secret:?}"), "Secret(<redacted>, 15 bytes)");
    let revealed = Secret::generate().expect("OS randomness");
    let shown = format!("{revealed:?}");
    assert_eq!(shown, "RevealedSecret(<redacted>, 32 bytes)");
    let hex = revealed.into_hex();
    assert!(!shown.contains(&hex[..8]));
}

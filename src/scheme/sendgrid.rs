//! [SendGrid](https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features)
//! Event Webhook signatures (feature `ecdsa`).
//!
//! `X-Twilio-Email-Event-Webhook-Signature: <base64 DER>`, an ECDSA P-256 / SHA-256 signature
//! over `X-Twilio-Email-Event-Webhook-Timestamp` followed by the raw body (which ends with
//! `\r\n` as SendGrid sends it: verify the bytes received). Verify with the account's
//! verification key, base64 DER ([`PublicKey::p256_der_base64`](crate::PublicKey::p256_der_base64)).
//! Receiving only: this crate does not sign with P-256 private keys.
//!
//! A signature's text is not an identity: ECDSA signatures are malleable (for a valid `(r, s)`,
//! `(r, n − s)` is valid too; SendGrid does not normalize to low S, so both are accepted), DER
//! and base64 padding leave room for other spellings of the same signature. Never deduplicate or
//! key a replay cache by the signature header; use the timestamp and the events' `sg_event_id`.

use http::header::HeaderName;

use super::{laid_out, Algorithm, Encoding, Scheme, TimestampedSignature};

const SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-email-event-webhook-signature");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-twilio-email-event-webhook-timestamp");
const LAYOUT: TimestampedSignature = TimestampedSignature {
    signature: SIGNATURE,
    timestamp: TIMESTAMP,
    prefix: "",
    encoding: Encoding::Base64,
    before: b"",
    between: b"",
};

/// SendGrid's signed Event Webhook headers.
///
/// # Examples
///
/// The vector from sendgrid-nodejs `packages/eventwebhook/src/eventwebhook.spec.js`:
///
/// ```
/// use http::HeaderMap;
/// use webhook_guard::{scheme::SendGrid, Keyring, PublicKey, Verifier};
///
/// let key = PublicKey::p256_der_base64("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==")?;
/// let mut headers = HeaderMap::new();
/// headers.insert("x-twilio-email-event-webhook-signature", "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=".parse()?);
/// headers.insert("x-twilio-email-event-webhook-timestamp", "1588788367".parse()?);
/// let body = br#"{"category":"example_payload","event":"test_event","message_id":"message_id"}"#;
/// let at = chrono::DateTime::from_timestamp(1588788367, 0).unwrap();
/// Verifier::new(SendGrid, Keyring::new(key)).verify_at(&headers, body, at)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SendGrid;

impl Scheme for SendGrid {
    fn name(&self) -> &'static str {
        "sendgrid"
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::EcdsaP256Sha256
    }

    laid_out!(LAYOUT);
}

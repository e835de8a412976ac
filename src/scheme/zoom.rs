//! [Zoom](https://developers.zoom.us/docs/api/webhooks/#verify-webhook-events) webhook
//! signatures and the endpoint URL validation.
//!
//! `x-zm-signature: v0=<hex>`, an HMAC-SHA256 keyed with the app's secret token (its text as
//! bytes) over `v0:{x-zm-request-timestamp}:{body}`. When an endpoint is added, Zoom posts a
//! signed `endpoint.url_validation` event with a `plainToken`; the answer is JSON with that
//! `plainToken` and `encryptedToken`, the hex HMAC-SHA256 of the plain token under the same
//! secret. The middleware answers it ([`Scheme::handshake`]).

use http::header::HeaderName;
use http::request::Parts;

use super::{answer, laid_out, Scheme, TimestampedSignature};
use crate::error::VerifyError;
use crate::keyring::Keyring;
use crate::verified::Verified;

const SIGNATURE: HeaderName = HeaderName::from_static("x-zm-signature");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-zm-request-timestamp");
const LAYOUT: TimestampedSignature = TimestampedSignature::v0(SIGNATURE, TIMESTAMP);

/// Zoom's `x-zm-signature` header and `endpoint.url_validation` answer.
///
/// # Examples
///
/// ```
/// use webhook_guard::{scheme::Zoom, Keyring, Secret, Signer, Verifier};
///
/// let secret = Secret::from_bytes("zoom secret token")?;
/// let keyring = Keyring::new(secret.clone());
/// let body = br#"{"event":"endpoint.url_validation","payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"}}"#;
/// let headers = Signer::new(Zoom, secret).sign(body)?; // Zoom's side
/// let verified = Verifier::new(Zoom, keyring.clone()).verify(&headers, body)?;
/// let answer = Zoom::url_validation(&keyring, &verified, body).unwrap();
/// let json: serde_json::Value = serde_json::from_slice(&answer)?;
/// assert_eq!(json["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
/// assert_eq!(json["encryptedToken"].as_str().unwrap().len(), 64);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Zoom;

impl Zoom {
    /// The JSON answer to a verified `endpoint.url_validation` event body, an HMAC of its
    /// `plainToken` under the key that `verified` it; `None` for any other body.
    ///
    /// It takes a [`Verified`] because answering unverified requests would make it a signing
    /// oracle: a `plainToken` of `v0:{timestamp}:{forged body}` would come back as a valid
    /// `x-zm-signature`. The middleware calls it after verification.
    pub fn url_validation(keyring: &Keyring, verified: &Verified, body: &[u8]) -> Option<Vec<u8>> {
        let key = verified.key_id();
        let event: serde_json::Value = serde_json::from_slice(body).ok()?;
        if event.get("event")?.as_str()? != "endpoint.url_validation" {
            return None;
        }
        let plain = event.get("payload")?.get("plainToken")?.as_str()?;
        let tag = keyring.hmac_sha256(key, plain.as_bytes())?;
        serde_json::to_vec(&serde_json::json!({
            "plainToken": plain,
            "encryptedToken": hex::encode(tag),
        }))
        .ok()
    }
}

impl Scheme for Zoom {
    fn signs_body_as_is(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "zoom"
    }

    fn handshake(
        &self,
        _: &Parts,
        body: &[u8],
        keyring: &Keyring,
        verified: &Verified,
    ) -> Result<Option<http::Response<bytes::Bytes>>, VerifyError> {
        Ok(Self::url_validation(keyring, verified, body)
            .map(|json| answer("application/json", json)))
    }

    laid_out!(LAYOUT);
}
